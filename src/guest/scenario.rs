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

pub(super) fn dmch(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
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

pub(super) fn check(name: &str, ok: bool, detail: &str) -> bool {
    Line::Check {
        name: name.into(),
        passed: ok,
        detail: detail.into(),
    }
    .print();
    ok
}

/// Mappings and loop devices currently alive.
pub(super) fn leftovers() -> (usize, usize) {
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

pub(super) fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(29) ^ salt).collect()
}

pub(super) fn write_dev(path: &str, data: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

pub(super) fn read_dev(path: &str, n: usize) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let mut b = vec![0u8; n];
    f.read_exact(&mut b)?;
    Ok(b)
}

pub(super) fn clean(what: &str) -> bool {
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

    // dmch bench --kernel measures the real target and leaves nothing
    // behind; here, with no modprobe for brd, over its loop fallback.
    let (c, out, e) = dmch(
        &[
            "bench",
            "--kernel",
            "--spec",
            "aes-xts-plain64:256",
            "--flags",
            "none,both",
            "--sector-sizes",
            "512",
            "--workload",
            "4k-rand:qd=4",
            "--device-mib",
            "16",
            "--seconds",
            "0.05",
            "--json",
        ],
        b"",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let run = &v["runs"][0];
    let crypt = run["crypt"].as_array().cloned().unwrap_or_default();
    let measured = |p: &serde_json::Value| p["result"]["mib_s"].as_f64().is_some_and(|m| m > 0.0);
    check(
        "bench --kernel measures the real target (flag sets none and both, write and read)",
        c == 0
            && crypt.len() == 4
            && crypt.iter().all(measured)
            && run["raw"]
                .as_array()
                .is_some_and(|r| r.len() == 2 && r.iter().all(measured))
            && run["backing"]["kind"] == "loop-on-tmpfs"
            && run["backing"]["note"]
                .as_str()
                .is_some_and(|n| n.contains("brd")),
        &format!("{out}{e}"),
    );
    clean("bench --kernel");

    // Ctrl-C mid-matrix: the run stops after the point in progress, says
    // so, prints what it measured and leaves no mapping or loop device.
    let exe = std::env::current_exe().unwrap_or_else(|_| "/init".into());
    let child = Command::new(exe)
        .args([
            "bench",
            "--kernel",
            "--spec",
            "aes-xts-plain64:256",
            "--flags",
            "none,both",
            "--sector-sizes",
            "512,4096",
            "--workload",
            "4k-rand:qd=4",
            "--device-mib",
            "16",
            "--seconds",
            "0.5",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    match child {
        Err(e) => {
            check(
                "bench --kernel: Ctrl-C stops it cleanly",
                false,
                &e.to_string(),
            );
        }
        Ok(child) => {
            std::thread::sleep(std::time::Duration::from_millis(3500));
            // SAFETY: kill(2) on our own child's pid.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(child.id() as i32, libc::SIGINT);
            }
            let out = child.wait_with_output();
            let (code, stdout, stderr) = match &out {
                Ok(o) => (
                    o.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                ),
                Err(e) => (-1, String::new(), e.to_string()),
            };
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
            let problem = v["runs"][0]["problem"].as_str().unwrap_or("");
            check(
                "bench --kernel: Ctrl-C stops it between points and reports what it measured",
                code == 1
                    && problem.starts_with("interrupted")
                    && v["runs"][0]["missing_points"]
                        .as_u64()
                        .is_some_and(|m| m > 0),
                &format!("exit {code}: {stdout}{stderr}"),
            );
        }
    }
    clean("bench --kernel interrupted");

    dmsetup_style();
}

/// The seed's first way: `dmsetup create` with the table on stdin, over a
/// loop device, and dmsetup's other commands, checked against the ioctls.
fn dmsetup_style() {
    use crate::sys::dm::Control;
    let key = "0123456789abcdef0123456789abcdef";
    let f = std::fs::OpenOptions::new().read(true).write(true).open(VOL);
    let lo = f
        .as_ref()
        .ok()
        .and_then(|f| crate::sys::loopdev::LoopDevice::attach(f).ok());
    let Some(lo) = lo else {
        check(
            "dmsetup: a loop device for the seed's example",
            false,
            "attach failed",
        );
        return;
    };
    let dev = lo.path.clone();
    // echo 0 `blockdev --getsize /dev/hda5` crypt aes-plain <key> 0 /dev/hda5 0 | dmsetup create volume1
    let line = format!("0 {VOL_SECTORS} crypt aes-plain {key} 0 {dev} 0\n");
    let (c, out, e) = dmch(
        &["dmsetup", "create", "volume1", "--verify"],
        line.as_bytes(),
    );
    check(
        "dmsetup create: the seed's example line, verified against the reference",
        c == 0 && out.contains("agree with the reference"),
        &format!("{out}{e}"),
    );
    let data = pattern(8192, 3);
    let wrote = write_dev("/dev/mapper/volume1", &data);
    let back = read_dev("/dev/mapper/volume1", data.len());
    check(
        "dmsetup: the device reads what was written",
        wrote.is_ok() && back.as_deref().ok() == Some(&data[..]),
        &format!("{wrote:?}"),
    );
    let ctl = Control::open();
    let live = ctl
        .as_ref()
        .ok()
        .and_then(|c| Some((c.find("volume1").ok()??.0, c)))
        .and_then(|(m, c)| Some((c.table(&m).ok()?, c.status(&m).ok()?, m)));
    let (_, table_out, _) = dmch(&["dmsetup", "table", "volume1"], b"");
    let (_, keys_out, _) = dmch(&["dmsetup", "table", "--showkeys", "volume1"], b"");
    let (_, status_out, _) = dmch(&["dmsetup", "status", "volume1"], b"");
    let (_, info_out, _) = dmch(&["dmsetup", "info", "volume1"], b"");
    let (_, ls_out, _) = dmch(&["dmsetup", "ls"], b"");
    match &live {
        Some((t, st, m)) => {
            let (s0, l0, ty, p) = &t[0];
            let want = format!("{s0} {l0} {ty} {}", p.as_str());
            check(
                "dmsetup table --showkeys is the kernel's table",
                keys_out.trim() == want,
                &format!("{keys_out} vs {want}"),
            );
            check(
                "dmsetup table hides the key",
                table_out.trim() == want.replace(key, &"0".repeat(32)) && !table_out.contains(key),
                &table_out,
            );
            let (s1, l1, ty1, p1) = &st[0];
            check(
                "dmsetup status is the kernel's status",
                status_out.trim_end_matches('\n') == format!("{s1} {l1} {ty1} {}", p1.as_str()),
                &status_out,
            );
            let (maj, min) = m.major_minor();
            check(
                "dmsetup info and ls name the device the kernel made",
                info_out.contains("Name:              volume1")
                    && info_out.contains("State:             ACTIVE")
                    && info_out.contains("Tables present:    LIVE")
                    && info_out.contains(&format!("Major, minor:      {maj}, {min}"))
                    && info_out.contains("Number of targets: 1")
                    && ls_out.contains(&format!("volume1\t({maj}:{min})")),
                &format!("{info_out}{ls_out}"),
            );
        }
        None => {
            check(
                "dmsetup: the kernel's own view of volume1",
                false,
                "not found",
            );
        }
    }
    // Reload under data: a new table (here a second, identical crypt line
    // split in two targets) keeps the data readable once resumed.
    let half = VOL_SECTORS / 2;
    let two = format!(
        "0 {half} crypt aes-plain {key} 0 {dev} 0\n{half} {half} crypt aes-plain {key} {half} {dev} {half}\n"
    );
    let (c1, _, e1) = dmch(&["dmsetup", "reload", "volume1"], two.as_bytes());
    let (_, info_mid, _) = dmch(&["dmsetup", "info", "volume1"], b"");
    let (c2, _, e2) = dmch(&["dmsetup", "suspend", "--noflush", "volume1"], b"");
    let (c3, out3, e3) = dmch(&["dmsetup", "resume", "--verify", "volume1"], b"");
    let back = read_dev("/dev/mapper/volume1", data.len());
    check(
        "dmsetup reload + suspend --noflush + resume keeps the data readable",
        c1 == 0
            && info_mid.contains("LIVE & INACTIVE")
            && c2 == 0
            && c3 == 0
            && out3.contains(&format!("0+{half}, {half}+{half}"))
            && back.as_deref().ok() == Some(&data[..]),
        &format!("{e1}{e2}{out3}{e3}"),
    );
    // A line the reference refuses is not sent; one the kernel refuses
    // leaves nothing.
    let (c, _, e) = dmch(
        &["dmsetup", "create", "bad1"],
        format!("0 8 crypt aes-xts-plain64 {key} 0 {dev} 0\n").as_bytes(),
    );
    check(
        "dmsetup: a table the reference refuses is not sent",
        c != 0 && e.lines().count() == 1 && e.contains("table line 1"),
        &e,
    );
    let (c, _, e) = dmch(
        &["dmsetup", "create", "bad2"],
        format!("0 8 crypt aes-cbc-plain {key} 0 /dev/nonexistent 0\n").as_bytes(),
    );
    let left = Control::open()
        .ok()
        .and_then(|c| c.find("bad2").ok())
        .flatten()
        .is_some();
    check(
        "dmsetup: a table the kernel refuses leaves nothing",
        c != 0 && e.contains("refused") && !left,
        &e,
    );
    #[cfg(feature = "test-fault")]
    {
        let exe = std::env::current_exe().unwrap_or_else(|_| "/init".into());
        let out = Command::new(exe)
            .args(["dmsetup", "resume", "--verify", "volume1"])
            .env("DMCH_TEST_FAULT", "byteswap-iv")
            .output();
        let (ok, err) = out
            .map(|o| {
                (
                    o.status.success(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                )
            })
            .unwrap_or((true, String::new()));
        check(
            "dmsetup --verify fails on a deliberately wrong reference",
            !ok && err.contains("disagree"),
            &err,
        );
    }
    // --readonly: the kernel refuses writes, info says so.
    let (c, _, e) = dmch(
        &["dmsetup", "create", "--readonly", "ro1"],
        format!("0 8 crypt aes-cbc-plain {key} 0 {dev} 0\n").as_bytes(),
    );
    let (_, info_ro, _) = dmch(&["dmsetup", "info", "ro1"], b"");
    let write = write_dev("/dev/mapper/ro1", &[0u8; 4096]);
    check(
        "dmsetup create --readonly makes a device the kernel keeps read-only",
        c == 0 && info_ro.contains("ACTIVE (READ-ONLY)") && write.is_err(),
        &format!("{e}{info_ro}{write:?}"),
    );
    dmch(&["dmsetup", "remove", "ro1"], b"");
    let (c, _, e) = dmch(&["dmsetup", "remove", "--retry", "volume1"], b"");
    let (_, ls_after, _) = dmch(&["dmsetup", "ls"], b"");
    check(
        "dmsetup remove leaves no device",
        c == 0 && ls_after.trim() == "No devices found",
        &format!("{e}{ls_after}"),
    );
    let _ = lo.detach();
    clean("dmsetup");
}
