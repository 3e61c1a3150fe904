//! The real-setup scenario, run inside the guest: `dmch create/remove/
//! reload/resize/status` driven as a user would, checking the data, the
//! ciphertext on disk (against the reference) and that every failure leaves
//! no mapping and no loop device behind. One DMCH-CHECK line per check.

use crate::engine::{Geometry, SectorCrypt};
use crate::key::Key;
use crate::protocol::Line;
use crate::spec::CipherSpec;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

const VOL: &str = "/tmp/vol.img";
const VOL_SECTORS: u64 = 8192;

fn dmch(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/init".into());
    let mut child = match Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return (-1, String::new(), e.to_string()),
    };
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(name: &str, ok: bool, detail: &str) -> bool {
    Line::Check {
        name: name.into(),
        passed: ok,
        detail: detail.into(),
    }
    .print();
    ok
}

/// Mappings and loop devices currently alive.
fn leftovers() -> (usize, usize) {
    let mut dm = 0;
    let mut lo = 0;
    if let Ok(rd) = std::fs::read_dir("/sys/block") {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("dm-") {
                dm += 1;
            }
            if n.starts_with("loop") && e.path().join("loop/backing_file").exists() {
                lo += 1;
            }
        }
    }
    (dm, lo)
}

fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(29) ^ salt).collect()
}

fn write_dev(path: &str, data: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

fn read_dev(path: &str, n: usize) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let mut b = vec![0u8; n];
    f.read_exact(&mut b)?;
    Ok(b)
}

fn clean(what: &str) -> bool {
    let (dm, lo) = leftovers();
    check(
        &format!("{what}: nothing left behind"),
        dm == 0 && lo == 0,
        &format!("{dm} mappings, {lo} loop devices"),
    )
}

/// Run the whole scenario; prints DMCH-CHECK lines.
pub fn run() {
    let _ = std::fs::write(VOL, vec![0u8; (VOL_SECTORS * 512) as usize]);
    let pass = b"correct horse\n";
    let data = pattern(65536, 7);

    let (c, _, e) = dmch(&["create", "t1", VOL], pass);
    check("create on a file with a passphrase", c == 0, &e);
    let wrote = write_dev("/dev/mapper/t1", &data);
    check(
        "write through the mapping",
        wrote.is_ok(),
        &format!("{wrote:?}"),
    );
    let (c, out, e) = dmch(&["status", "t1"], b"");
    check(
        "status shows the setup",
        c == 0
            && out.contains("cipher:      aes-xts-plain64")
            && out.contains("keysize:     256 bits")
            && out.contains(&format!("size:        {VOL_SECTORS} sectors"))
            && out.contains("loop:        /tmp/vol.img")
            && out.contains("mode:        read/write"),
        &format!("{out}{e}"),
    );
    let (_, key_hex, _) = dmch(&["derive-key"], pass);
    check(
        "status never shows the key",
        !key_hex.trim().is_empty() && !out.contains(key_hex.trim()),
        "",
    );
    let (c, _, e) = dmch(&["remove", "t1"], b"");
    check("remove", c == 0, &e);
    clean("remove");

    // The ciphertext on disk is what the reference (dmch encrypt) makes.
    let disk = read_dev(VOL, data.len()).unwrap_or_default();
    let key = Key::parse(key_hex.trim()).unwrap_or(Key::from_bytes(&[]));
    let mut want = data.clone();
    let ok = SectorCrypt::new(
        &CipherSpec::parse("aes-xts-plain64").unwrap(),
        &key,
        Geometry::default(),
    )
    .and_then(|e| e.encrypt(0, &mut want))
    .is_ok();
    check(
        "ciphertext on disk equals dmch encrypt",
        ok && disk == want,
        "",
    );

    let (c, _, e) = dmch(&["open", "--type", "plain", VOL, "t1"], pass);
    let back = read_dev("/dev/mapper/t1", data.len()).unwrap_or_default();
    check(
        "open again with the same passphrase reads the data back",
        c == 0 && back == data,
        &e,
    );
    dmch(&["close", "t1"], b"");
    let (c, _, _) = dmch(&["create", "t1", VOL], b"wrong horse\n");
    let wrong = read_dev("/dev/mapper/t1", data.len()).unwrap_or_default();
    check(
        "a wrong passphrase reads different bytes",
        c == 0 && wrong != data,
        "",
    );
    dmch(&["remove", "t1"], b"");
    clean("wrong passphrase");

    // reload to a different offset; resize.
    dmch(&["create", "t1", VOL, "-b", "2048"], pass);
    let (c, _, e) = dmch(&["reload", "t1", "-o", "8", "-b", "2048"], pass);
    let (_, out, _) = dmch(&["status", "t1"], b"");
    check(
        "reload to a new offset",
        c == 0 && out.contains("offset:      8 sectors"),
        &format!("{e}{out}"),
    );
    let (c, _, e) = dmch(&["resize", "t1", "-b", "1024"], b"");
    let (_, out, _) = dmch(&["status", "t1"], b"");
    check(
        "resize to -b",
        c == 0 && out.contains("size:        1024 sectors"),
        &format!("{e}{out}"),
    );
    let (c, _, e) = dmch(&["resize", "t1"], b"");
    let (_, out, _) = dmch(&["status", "t1"], b"");
    check(
        "resize to the device",
        c == 0 && out.contains(&format!("size:        {} sectors", VOL_SECTORS - 8)),
        &format!("{e}{out}"),
    );
    let (c, _, e) = dmch(&["reload", "t1", "-c", "aes-cbc-essiv:sha512"], pass);
    let (_, out, _) = dmch(&["status", "t1"], b"");
    check(
        "a refused reload keeps the old table",
        c != 0 && out.contains("cipher:      aes-xts-plain64"),
        &format!("{e}{out}"),
    );
    dmch(&["remove", "t1"], b"");
    clean("reload and resize");

    // Swap: a new random key each time.
    let (c, _, e) = dmch(&["create", "sw", VOL, "-d", "/dev/urandom"], b"");
    let w = write_dev("/dev/mapper/sw", &data).is_ok();
    let r = read_dev("/dev/mapper/sw", data.len())
        .map(|b| b == data)
        .unwrap_or(false);
    dmch(&["remove", "sw"], b"");
    dmch(&["create", "sw", VOL, "-d", "/dev/urandom"], b"");
    let again = read_dev("/dev/mapper/sw", data.len()).unwrap_or_default();
    dmch(&["remove", "sw"], b"");
    check(
        "-d /dev/urandom swap setup",
        c == 0 && w && r && again != data,
        &e,
    );
    clean("swap");

    // Failure paths leave nothing behind.
    let _ = std::fs::write("/tmp/short.key", b"too short");
    let fails: [(&str, Vec<&str>); 4] = [
        ("bad device", vec!["create", "f1", "/nonexistent"]),
        (
            "bad cipher",
            vec!["create", "f1", VOL, "-c", "rot13-cbc-plain"],
        ),
        (
            "key file too short",
            vec!["create", "f1", VOL, "-d", "/tmp/short.key"],
        ),
        (
            "cipher the kernel refuses",
            vec!["create", "f1", VOL, "-c", "aes-cbc-essiv:sha512"],
        ),
    ];
    for (what, args) in fails {
        let (c, _, e) = dmch(&args, pass);
        check(
            &format!("{what} fails with one line"),
            c != 0 && e.trim().lines().count() == 1,
            &e,
        );
        clean(what);
    }
    dmch(&["create", "t1", VOL], pass);
    let (c, _, e) = dmch(&["create", "t1", VOL], pass);
    check(
        "a taken name is refused",
        c != 0 && e.contains("exists already"),
        &e,
    );
    let still = read_dev("/dev/mapper/t1", 512).is_ok();
    check("the first mapping survives", still, "");
    dmch(&["remove", "t1"], b"");
    clean("taken name");

    // dmch bench --kernel measures the real target and leaves nothing behind.
    let (c, out, e) = dmch(
        &[
            "bench",
            "--kernel",
            "--spec",
            "aes-xts-plain64:256",
            "--sector-size",
            "512",
            "--seconds",
            "0.05",
            "--json",
        ],
        b"",
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap_or_default();
    let positive = |r: &serde_json::Value, k: &str| r[k].as_f64().is_some_and(|v| v > 0.0);
    check(
        "bench --kernel measures the real target",
        c == 0
            && rows.len() == 1
            && positive(&rows[0], "kernel_encrypt_mib_s")
            && positive(&rows[0], "kernel_decrypt_mib_s"),
        &format!("{out}{e}"),
    );
    clean("bench --kernel");
}
