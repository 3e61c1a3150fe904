//! Protects `dmch reencrypt` from what goes wrong around it: a wrong old
//! key (refused before any write), read and write errors and a full disk
//! mid-way (one line, the journal kept, `--resume` finishes), and a
//! journal that is missing, damaged, of other keys or of another device on
//! resume (one line, nothing written).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");

fn dmch(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = Command::new(DMCH);
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("internal error"), "{args:?} panicked: {err}");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        err,
    )
}

/// A refusal or a stop: one error line naming `what`.
fn one_line(args: &[&str], env: &[(&str, &str)], what: &str) -> String {
    let (ok, _, err) = dmch(args, env);
    assert!(!ok, "{args:?} succeeded");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("dmch reencrypt:"))
        .collect();
    assert_eq!(lines.len(), 1, "{args:?}: {err}");
    assert!(lines[0].contains(what), "{args:?}: want '{what}' in {err}");
    lines[0].to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Vol {
    dir: tempfile::TempDir,
    plain: Vec<u8>,
}

impl Vol {
    /// A 1 MiB ext4-looking plaintext encrypted with aes-cbc-plain.
    fn new() -> Vol {
        Self::in_dir(tempfile::tempdir().unwrap(), 1 << 20)
    }

    fn in_dir(dir: tempfile::TempDir, len: usize) -> Vol {
        let mut plain: Vec<u8> = (0..len).map(|i| (i * 31 + i / 511) as u8).collect();
        plain[1080] = 0x53;
        plain[1081] = 0xef;
        let v = Vol { dir, plain };
        std::fs::write(v.p("old.key"), [7u8; 32]).unwrap();
        std::fs::write(v.p("new.key"), [9u8; 32]).unwrap();
        std::fs::write(v.p("other.key"), [1u8; 32]).unwrap();
        std::fs::write(v.p("plain"), &v.plain).unwrap();
        v.encrypt("aes-cbc-plain", "old.key", "img");
        v.encrypt("aes-xts-plain64", "new.key", "want");
        v
    }

    fn p(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }

    fn encrypt(&self, cipher: &str, key: &str, out: &str) {
        let (ok, _, e) = dmch(
            &[
                "encrypt",
                "--cipher",
                cipher,
                "--key-file",
                s(&self.p(key)),
                s(&self.p("plain")),
                s(&self.p(out)),
            ],
            &[],
        );
        assert!(ok, "{e}");
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = [
            "reencrypt",
            "--old-cipher",
            "aes-cbc-plain",
            "--old-key-file",
            s(&self.p("old.key")),
            "-d",
            s(&self.p("new.key")),
            "--zone-size",
            "64K",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a.push(s(&self.p("img")).to_string());
        a
    }

    fn resume_args(&self, new_key: &str) -> Vec<String> {
        [
            "reencrypt",
            "--resume",
            "--old-key-file",
            s(&self.p("old.key")),
            "-d",
            s(&self.p(new_key)),
            s(&self.p("img")),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    }

    fn img(&self) -> Vec<u8> {
        std::fs::read(self.p("img")).unwrap()
    }

    fn journal(&self) -> PathBuf {
        self.p("img.dmch-journal")
    }

    fn is_converted(&self) -> bool {
        self.img() == std::fs::read(self.p("want")).unwrap() && !self.journal().exists()
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_wrong_old_key_is_refused_before_any_write() {
    let v = Vol::new();
    let before = v.img();
    let mut a = v.args(&[]);
    let i = a.iter().position(|x| x.ends_with("old.key")).unwrap();
    a[i] = s(&v.p("other.key")).into();
    one_line(&strs(&a), &[], "holds no known signature");
    assert!(v.img() == before, "the image was written");
    assert!(!v.journal().exists(), "a journal was made");
    // The wrong cipher is refused the same way.
    let mut a = v.args(&[]);
    a[2] = "aes-xts-plain64".into();
    one_line(&strs(&a), &[], "holds no known signature");
    assert!(v.img() == before);
    // --dry-run says what the old side holds and writes nothing.
    let (ok, out, e) = dmch(&strs(&v.args(&["--dry-run"])), &[]);
    assert!(ok, "{e}");
    assert!(out.contains("the old side holds: ext2/3/4"), "{out}");
    assert!(v.img() == before && !v.journal().exists());
}

#[cfg_attr(
    not(feature = "test-fault"),
    ignore = "the I/O fault layer needs --features test-fault (ci/test.sh enables it)"
)]
#[test]
fn read_and_write_errors_stop_in_one_line_and_resume_finishes() {
    for (var, val, what) in [
        (
            "DMCH_TEST_FAIL_READ",
            "5:eio",
            "reading the device at byte 262144: Input/output error",
        ),
        ("DMCH_TEST_FAIL_WRITE", "9:eio", "Input/output error"),
        (
            "DMCH_TEST_FAIL_WRITE",
            "8:enospc",
            "No space left on device",
        ),
        ("DMCH_TEST_FAIL_WRITE", "7:eio", "writing the journal"),
    ] {
        let v = Vol::new();
        let line = one_line(&strs(&v.args(&[])), &[(var, val)], what);
        assert!(line.contains("--resume"), "{line}");
        assert!(v.journal().exists(), "{var}={val}: the journal is gone");
        let (ok, _, e) = dmch(&strs(&v.resume_args("new.key")), &[]);
        assert!(ok, "{var}={val}: resume: {e}");
        assert!(
            v.is_converted(),
            "{var}={val}: not the new ciphertext after resume"
        );
    }
}

#[cfg_attr(
    not(feature = "test-fault"),
    ignore = "stopping a conversion mid-way needs the I/O fault layer: --features test-fault (ci/test.sh enables it)"
)]
#[test]
fn a_missing_damaged_or_foreign_journal_is_refused_on_resume_and_nothing_is_written() {
    let v = Vol::new();
    let before = v.img();
    one_line(&strs(&v.resume_args("new.key")), &[], "no journal");
    assert!(v.img() == before);

    // A conversion stopped mid-way, then its journal damaged in several ways.
    let interrupted = interrupted(&v);
    let journal = std::fs::read(v.journal()).unwrap();

    // Other keys than those the conversion began with.
    one_line(
        &strs(&v.resume_args("other.key")),
        &[],
        "not the ones the conversion",
    );
    assert!(v.img() == interrupted);

    // Both header slots damaged; the journal cut short.
    let mut bad = journal.clone();
    bad[100] ^= 1;
    bad[4096 + 100] ^= 1;
    for damaged in [bad, journal[..100].to_vec(), Vec::new()] {
        std::fs::write(v.journal(), &damaged).unwrap();
        one_line(&strs(&v.resume_args("new.key")), &[], "damaged");
        assert!(v.img() == interrupted, "the image was written");
        assert!(
            std::fs::read(v.journal()).unwrap() == damaged,
            "the journal was written"
        );
    }

    // A start while a journal is there.
    std::fs::write(v.journal(), &journal).unwrap();
    one_line(
        &strs(&v.args(&["--force"])),
        &[],
        "a conversion is under way",
    );
    assert!(v.img() == interrupted);

    // The device is not the one the journal was made for (cut short).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(v.p("img"))
        .unwrap();
    f.set_len(512 * 1024).unwrap();
    one_line(&strs(&v.resume_args("new.key")), &[], "does not fit");
    f.set_len(1 << 20).unwrap();
    std::fs::write(v.p("img"), &interrupted).unwrap();

    // With the journal intact again, resume finishes.
    let (ok, _, e) = dmch(&strs(&v.resume_args("new.key")), &[]);
    assert!(ok, "{e}");
    assert!(v.is_converted());
}

/// Stop a conversion of `v` half-way (a write error at its 12th write);
/// returns the image as it was left.
fn interrupted(v: &Vol) -> Vec<u8> {
    let (ok, _, _) = dmch(&strs(&v.args(&[])), &[("DMCH_TEST_FAIL_WRITE", "12:eio")]);
    assert!(!ok);
    assert!(v.journal().exists());
    v.img()
}

#[test]
fn plans_that_cannot_be_done_are_refused_in_one_line() {
    let v = Vol::new();
    let before = v.img();
    for (extra, what) in [
        (&["--journal-on-device", "0"][..], "overlaps the data"),
        (&["--journal-on-device", "4096"][..], "the journal needs"),
        (&["--zone-size", "1000"][..], "zone size 1000"),
        (&["--zone-size", "128M"][..], "zone size"),
        (&["-o", "4096"][..], "offset 4096 sectors is not inside"),
        (&["-b", "4096"][..], "past the end"),
        (
            &["--sector-size", "4096", "-o", "1"][..],
            "not a whole number of 4096-byte sectors",
        ),
        (&["-c", "aes-nonsense-plain64"][..], "aes-nonsense-plain64"),
        (&["-s", "100"][..], "key size 100 bits"),
        (
            &["--journal", "IMG"][..],
            "the journal cannot be the device",
        ),
    ] {
        let extra: Vec<String> = extra
            .iter()
            .map(|x| {
                if *x == "IMG" {
                    s(&v.p("img")).to_string()
                } else {
                    x.to_string()
                }
            })
            .collect();
        let extra: Vec<&str> = strs(&extra);
        let mut a = v.args(&extra);
        if extra.contains(&"--zone-size") {
            let i = a.iter().position(|x| x == "--zone-size").unwrap();
            a.drain(i..i + 2);
        }
        one_line(&strs(&a), &[], what);
        assert!(v.img() == before, "{extra:?}: the image was written");
        assert!(!v.journal().exists(), "{extra:?}: a journal was made");
    }
    one_line(
        &[
            "reencrypt",
            "--resume",
            "-c",
            "aes-xts-plain64",
            s(&v.p("img")),
        ],
        &[],
        "cannot be used with",
    );
    one_line(
        &["reencrypt", "-d", s(&v.p("new.key")), s(&v.p("img"))],
        &[],
        "give the old cipher",
    );
    one_line(
        &[
            "reencrypt",
            "--encrypt",
            "-d",
            s(&v.p("new.key")),
            s(&v.p("nowhere")),
        ],
        &[],
        "does not exist",
    );
    assert!(v.img() == before);
}

/// A real full disk: a sparse plaintext image on a small tmpfs fills it
/// mid-way through `--encrypt`; with room made, `--resume` finishes.
#[test]
fn a_full_disk_stops_in_one_line_and_resume_finishes_once_there_is_room() {
    let mnt = tempfile::tempdir().unwrap();
    let m = s(mnt.path());
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs", m])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        println!(
            "SKIPPED a_full_disk_...: cannot mount a small tmpfs here (needs root); the fault-layer ENOSPC case of read_and_write_errors_... covers the stop"
        );
        return;
    }
    struct Unmount(String);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(m.to_string());
    let img = mnt.path().join("img");
    // 8 MiB, only its first 64 KiB written: the rest is holes.
    let f = std::fs::File::create(&img).unwrap();
    let mut head: Vec<u8> = (0..65536).map(|i| (i * 3) as u8).collect();
    head[1080] = 0x53;
    head[1081] = 0xef;
    std::os::unix::fs::FileExt::write_all_at(&f, &head, 0).unwrap();
    f.set_len(8 << 20).unwrap();
    drop(f);
    let side = tempfile::tempdir().unwrap();
    let key = side.path().join("key");
    std::fs::write(&key, [5u8; 32]).unwrap();
    let plain = side.path().join("plain");
    std::fs::copy(&img, &plain).unwrap();
    let journal = side.path().join("journal");
    let args = [
        "reencrypt",
        "--encrypt",
        "-d",
        s(&key),
        "--journal",
        s(&journal),
        "--zone-size",
        "256K",
        s(&img),
    ];
    let line = one_line(&args, &[], "No space left on device");
    assert!(line.contains("--resume"), "{line}");
    let grown = Command::new("mount")
        .args(["-o", "remount,size=16m", m])
        .status()
        .is_ok_and(|s| s.success());
    assert!(grown, "remounting the tmpfs larger failed");
    let (ok, _, e) = dmch(
        &[
            "reencrypt",
            "--resume",
            "-d",
            s(&key),
            "--journal",
            s(&journal),
            s(&img),
        ],
        &[],
    );
    assert!(ok, "{e}");
    let want = side.path().join("want");
    let (ok, _, e) = dmch(
        &[
            "encrypt",
            "--cipher",
            "aes-xts-plain64",
            "--key-file",
            s(&key),
            s(&plain),
            s(&want),
        ],
        &[],
    );
    assert!(ok, "{e}");
    assert!(std::fs::read(&img).unwrap() == std::fs::read(&want).unwrap());
    assert!(!journal.exists());

    // A journal that does not fit on the disk is refused before the image is touched.
    let full = mnt.path().join("filler");
    let _ = std::fs::write(&full, vec![1u8; 7 << 20]);
    let before = std::fs::read(&img).unwrap();
    let args = [
        "reencrypt",
        "--decrypt",
        "--old-cipher",
        "aes-xts-plain64",
        "--old-key-file",
        s(&key),
        "--zone-size",
        "4M",
        s(&img),
    ];
    one_line(&args, &[], "making the journal");
    assert!(std::fs::read(&img).unwrap() == before);
    assert!(!mnt.path().join("img.dmch-journal").exists());
    assert!(!mnt.path().join("img.dmch-journal.new").exists());
}
