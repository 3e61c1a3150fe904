//! Protects the host backend: loop devices attach and detach cleanly (runs
//! where /dev/loop-control exists and we are root), and the dm part runs the
//! kernel matrix where the host has device-mapper. Each skip prints why.

use dmcrypt_harness::sys::loopdev::LoopDevice;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

/// Loop device numbers are reused at once: tests that watch one device
/// appear and vanish run one at a time.
static LOOPS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn skip(why: &str) {
    // Shown by `cargo test -- --show-output` (as ci/test.sh runs it).
    println!("SKIPPED: {why}");
}

#[test]
fn loop_device_attaches_reads_writes_and_detaches() {
    if !root() || !Path::new("/dev/loop-control").exists() {
        return skip("loop devices need root and /dev/loop-control");
    }
    let _serial = LOOPS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backing.img");
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let backing = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let lo = LoopDevice::attach(&backing).unwrap();
    let name = lo.path.trim_start_matches("/dev/").to_string();
    let sys = format!("/sys/block/{name}/loop/backing_file");
    assert_eq!(
        std::fs::read_to_string(&sys).unwrap().trim(),
        path.to_str().unwrap()
    );
    let mut dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lo.path)
        .unwrap();
    let mut first = vec![0u8; 4096];
    dev.read_exact(&mut first).unwrap();
    assert_eq!(first, data[..4096]);
    dev.seek(SeekFrom::Start(8192)).unwrap();
    dev.write_all(&[0xee; 512]).unwrap();
    dev.sync_all().unwrap();
    drop(dev);
    lo.detach().unwrap();
    assert!(!Path::new(&sys).exists(), "{name} is still attached");
    let after = std::fs::read(&path).unwrap();
    assert_eq!(&after[8192..8704], &[0xee; 512][..]);
    assert_eq!(after[..8192], data[..8192]);
}

#[test]
fn kernel_matrix_runs_on_a_host_with_device_mapper() {
    if let Err(why) = dmcrypt_harness::sys::probe::host_dm() {
        return skip(&format!(
            "the host cannot run dm-crypt ({why}); the QEMU guest covers it in ci/test.sh"
        ));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_dmch"))
        .args(["kernel", "check", "--backend", "host", "--shard", "1/10"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("failed    0"), "{text}");
}

#[test]
fn an_autoclear_loop_device_goes_away_when_its_last_user_closes_it() {
    if !root() || !Path::new("/dev/loop-control").exists() {
        return skip("loop devices need root and /dev/loop-control");
    }
    let _serial = LOOPS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vol.img");
    std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
    let backing = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let lo = LoopDevice::attach_autoclear(&backing).unwrap();
    let name = lo.path.trim_start_matches("/dev/").to_string();
    let flags = std::fs::read_to_string(format!("/sys/block/{name}/loop/autoclear")).unwrap();
    assert_eq!(flags.trim(), "1");
    // Opening and closing the device (as a mapping would) releases it.
    drop(std::fs::File::open(&lo.path).unwrap());
    drop(lo);
    let gone = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        !Path::new(&format!("/sys/block/{name}/loop/backing_file")).exists()
    });
    assert!(gone, "{name} stayed attached");
}
