//! Protects `dmch reencrypt`'s promise that it may be killed anywhere:
//! real processes on small images with small zones, each SIGKILLed at a
//! random point (a counted write that is torn first, so inside journal
//! writes as often as inside data writes, or a random moment), resumed
//! (some resumes killed again), and compared byte for byte with a fresh
//! `dmch encrypt` of the plaintext under the new parameters. Needs the
//! test-fault feature for the counted kills (ci/test.sh enables it).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Plaintext with an ext4 superblock magic, so the old side is recognised.
fn plaintext(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    let mut b: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
    b[1080] = 0x53;
    b[1081] = 0xef;
    b
}

fn dmch(args: &[&str], stdin: &[u8], env: &[(&str, String)]) -> std::process::Output {
    let mut c = Command::new(DMCH);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

/// One conversion to be killed over and over.
struct Scenario {
    name: &'static str,
    /// Bytes before the data (kept, except a journal there, which ends zeroed).
    header: usize,
    data: usize,
    /// How the old data is made: `dmch encrypt` arguments (None: plaintext).
    old: Option<Vec<&'static str>>,
    /// How the expected data is made (None: plaintext).
    new: Option<Vec<&'static str>>,
    /// The reencrypt arguments (before the image).
    args: Vec<&'static str>,
    stdin: &'static [u8],
    /// Where an on-device journal lies, and its length.
    journal_on_device: Option<(usize, usize)>,
}

fn scenarios() -> Vec<Scenario> {
    let zone = 16384;
    let jlen = 8192 + 2 * zone;
    vec![
        Scenario {
            name: "aes-cbc-plain -> aes-xts-plain64, journal file, key files",
            header: 0,
            data: 256 << 10,
            old: Some(vec!["--cipher", "aes-cbc-plain", "--key-file", "OLDKEY"]),
            new: Some(vec!["--cipher", "aes-xts-plain64", "--key-file", "NEWKEY"]),
            args: vec![
                "--old-cipher",
                "aes-cbc-plain",
                "--old-key-file",
                "OLDKEY",
                "-c",
                "aes-xts-plain64",
                "-d",
                "NEWKEY",
                "--zone-size",
                "16K",
            ],
            stdin: b"",
            journal_on_device: None,
        },
        Scenario {
            name: "serpent-cbc-essiv 512 -> aes-xts-plain64 4096 with skips, journal on the device",
            header: 128 * 512,
            data: 256 << 10,
            old: Some(vec![
                "--cipher",
                "serpent-cbc-essiv:sha256",
                "--key-file",
                "OLDKEY",
                "--iv-offset",
                "5",
            ]),
            new: Some(vec![
                "--cipher",
                "aes-xts-plain64",
                "--key-file",
                "NEWKEY",
                "--sector-size",
                "4096",
                "--iv-offset",
                "64",
            ]),
            args: vec![
                "--old-cipher",
                "serpent-cbc-essiv:sha256",
                "--old-key-file",
                "OLDKEY",
                "--old-skip",
                "5",
                "-c",
                "aes-xts-plain64",
                "-d",
                "NEWKEY",
                "--sector-size",
                "4096",
                "-p",
                "64",
                "-o",
                "128",
                "--journal-on-device",
                "0",
                "--zone-size",
                "16K",
            ],
            stdin: b"",
            journal_on_device: Some((0, jlen)),
        },
        Scenario {
            name: "--encrypt a plaintext image (twofish-xts-plain64)",
            header: 0,
            data: 256 << 10,
            old: None,
            new: Some(vec![
                "--cipher",
                "twofish-xts-plain64",
                "--key-file",
                "NEWKEY64",
            ]),
            args: vec![
                "--encrypt",
                "-c",
                "twofish-xts-plain64",
                "-s",
                "512",
                "-d",
                "NEWKEY64",
                "--zone-size",
                "16K",
            ],
            stdin: b"",
            journal_on_device: None,
        },
        Scenario {
            name: "--decrypt (aes-xts-plain64)",
            header: 0,
            data: 256 << 10,
            old: Some(vec!["--cipher", "aes-xts-plain64", "--key-file", "OLDKEY"]),
            new: None,
            args: vec![
                "--decrypt",
                "--old-cipher",
                "aes-xts-plain64",
                "--old-key-file",
                "OLDKEY",
                "--zone-size",
                "16K",
            ],
            stdin: b"",
            journal_on_device: None,
        },
        Scenario {
            name: "the seed's aes/ripemd160 passphrase volume -> aes-xts-plain64, passphrases piped",
            header: 0,
            data: 256 << 10,
            old: Some(vec![
                "--cipher",
                "aes-cbc-plain",
                "--key-file",
                "OLDPASSKEY",
            ]),
            new: Some(vec![
                "--cipher",
                "aes-xts-plain64",
                "--key-file",
                "NEWPASSKEY",
            ]),
            args: vec!["--legacy", "--zone-size", "16K"],
            stdin: b"old secret\nnew secret\n",
            journal_on_device: None,
        },
    ]
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn path(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }
    /// Arguments with the key placeholders made paths.
    fn args(&self, a: &[&str]) -> Vec<String> {
        a.iter()
            .map(|x| match *x {
                "OLDKEY" | "NEWKEY" | "NEWKEY64" | "OLDPASSKEY" | "NEWPASSKEY" => {
                    s(&self.path(x)).to_string()
                }
                other => other.to_string(),
            })
            .collect()
    }
}

fn keys(f: &Files) {
    std::fs::write(f.path("OLDKEY"), [0x11u8; 32]).unwrap();
    std::fs::write(f.path("NEWKEY"), (0..32u8).collect::<Vec<_>>()).unwrap();
    std::fs::write(
        f.path("NEWKEY64"),
        (0..64u8).map(|i| i ^ 0x5c).collect::<Vec<_>>(),
    )
    .unwrap();
    // Plain mode's passphrase hashing, as cryptsetup: ripemd160 for the
    // seed's volume (20 bytes, then ripemd160 of "A" + passphrase), sha256
    // for the new one. Derived by dmch derive-key, the setup path's own.
    for (name, hash, pass) in [
        ("OLDPASSKEY", "ripemd160", &b"old secret\n"[..]),
        ("NEWPASSKEY", "sha256", &b"new secret\n"[..]),
    ] {
        let o = dmch(&["derive-key", "-h", hash, "-s", "256"], pass, &[]);
        assert!(
            o.status.success(),
            "derive-key: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let hex = String::from_utf8(o.stdout).unwrap();
        std::fs::write(f.path(name), hex::decode(hex.trim()).unwrap()).unwrap();
    }
}

/// Data made by `dmch encrypt` (or left as it is).
fn encrypted(f: &Files, how: &Option<Vec<&str>>, plain: &[u8], tag: &str) -> Vec<u8> {
    let Some(how) = how else {
        return plain.to_vec();
    };
    let (i, o) = (f.path(&format!("{tag}.in")), f.path(&format!("{tag}.out")));
    std::fs::write(&i, plain).unwrap();
    let mut a = vec!["encrypt".to_string()];
    a.extend(f.args(how));
    a.push(s(&i).into());
    a.push(s(&o).into());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = dmch(&a, b"", &[]);
    assert!(
        out.status.success(),
        "dmch encrypt {a:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&o).unwrap()
}

fn journal_files(f: &Files) -> bool {
    f.path("img.dmch-journal").exists()
}

/// Whether a journal is under way: its file, or a header magic in the room
/// on the device (a wiped journal has none).
fn journal_present(f: &Files, sc: &Scenario) -> bool {
    match sc.journal_on_device {
        None => journal_files(f),
        Some((at, _)) => {
            let b = std::fs::read(f.path("img")).unwrap();
            [at, at + 4096].iter().any(|&o| &b[o..o + 8] == b"DMCHRJ01")
        }
    }
}

/// One kill-and-resume run; returns whether the kill landed mid-way.
fn one_run(
    f: &Files,
    sc: &Scenario,
    before: &[u8],
    after: &[u8],
    rng: &mut Rng,
    timer: bool,
) -> bool {
    let img = f.path("img");
    std::fs::write(&img, before).unwrap();
    let _ = std::fs::remove_file(f.path("img.dmch-journal"));
    let mut args = vec!["reencrypt".to_string()];
    args.extend(f.args(&sc.args));
    args.push(s(&img).into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let writes = (sc.data / 16384) as u64 * 3 + 8;
    let killed = if timer {
        let mut c = Command::new(DMCH);
        c.args(&args)
            .env("DMCH_TEST_NONE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(sc.stdin);
        std::thread::sleep(Duration::from_micros(rng.below(40_000)));
        let _ = child.kill();
        let st = child.wait().unwrap();
        st.signal() == Some(9)
    } else {
        let n = 1 + rng.below(writes);
        let o = dmch(
            &args,
            sc.stdin,
            &[("DMCH_TEST_CRASH_AFTER_WRITES", n.to_string())],
        );
        assert!(
            o.status.signal() == Some(9) || o.status.success(),
            "{}: crash at write {n}: {:?} {}",
            sc.name,
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        o.status.signal() == Some(9)
    };
    let mid = killed && journal_present(f, sc);
    // Resume until complete; every second resume is itself killed once.
    let mut resumes = 0;
    loop {
        let state = std::fs::read(&img).unwrap();
        // Complete: the data is final and no journal is left (a kill while
        // the room on the device was being zeroed leaves no magic there).
        if state[sc.header..] == after[sc.header..] && !journal_present(f, sc) {
            break;
        }
        resumes += 1;
        assert!(
            resumes < 5,
            "{}: no progress after {resumes} resumes",
            sc.name
        );
        let started = journal_present(f, sc);
        let mut r = f.args(&sc.args);
        let keep: Vec<String> = if started {
            // Only the keys (and where the journal is) on a resume.
            let mut k = vec!["reencrypt".to_string(), "--resume".to_string()];
            let mut it = r.drain(..);
            while let Some(a) = it.next() {
                if matches!(a.as_str(), "--old-key-file" | "-d" | "--journal-on-device") {
                    k.push(a);
                    k.push(it.next().unwrap());
                }
            }
            k
        } else {
            // Killed before the journal existed: nothing may have changed.
            assert!(
                state == before,
                "{}: the image changed without a journal",
                sc.name
            );
            std::iter::once("reencrypt".to_string()).chain(r).collect()
        };
        let mut keep = keep;
        keep.push(s(&img).into());
        let a: Vec<&str> = keep.iter().map(String::as_str).collect();
        let env = if resumes == 1 && rng.below(2) == 0 {
            vec![(
                "DMCH_TEST_CRASH_AFTER_WRITES",
                (1 + rng.below(writes)).to_string(),
            )]
        } else {
            vec![]
        };
        let o = dmch(&a, sc.stdin, &env);
        assert!(
            o.status.success() || (!env.is_empty() && o.status.signal() == Some(9)),
            "{}: {a:?}: {}",
            sc.name,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let got = std::fs::read(&img).unwrap();
    let got_head = &got[..sc.header];
    // The head is kept, but for the journal's room, which ends zeroed or
    // (killed while zeroing) without a header.
    let head_ok = match sc.journal_on_device {
        None => got_head == &before[..sc.header],
        Some((at, len)) => {
            got_head[..at] == before[..at] && got_head[at + len..] == before[at + len..sc.header]
        }
    };
    assert!(head_ok, "{}: the bytes before the data changed", sc.name);
    assert!(
        got[sc.header..] == after[sc.header..],
        "{}: differs from dmch encrypt at byte {:?}",
        sc.name,
        got.iter().zip(after).position(|(a, b)| a != b)
    );
    mid
}

#[test]
#[cfg_attr(
    not(feature = "test-fault"),
    ignore = "the counted kills need --features test-fault (ci/test.sh enables it)"
)]
fn killed_anywhere_then_resumed_equals_a_fresh_encryption() {
    // tmpfs where there is one: a SIGKILL keeps the page cache, so syncs
    // need not cost a disk's time here (power loss is the other test's).
    let dir = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let f = Files { dir };
    keys(&f);
    let mut rng = Rng(0x2545f4914f6cdd1d);
    let (mut runs, mut mid, mut timed) = (0, 0, 0);
    for (k, sc) in scenarios().iter().enumerate() {
        let plain = plaintext(sc.data, k as u64 + 1);
        let head: Vec<u8> = (0..sc.header).map(|i| (i * 13) as u8 | 1).collect();
        let mut before = head.clone();
        before.extend(encrypted(&f, &sc.old, &plain, "old"));
        let mut after = head.clone();
        if let Some((at, len)) = sc.journal_on_device {
            after[at..at + len].fill(0);
        }
        after.extend(encrypted(&f, &sc.new, &plain, "new"));
        for i in 0..64 {
            let timer = i % 5 == 4;
            mid += usize::from(one_run(&f, sc, &before, &after, &mut rng, timer));
            timed += usize::from(timer);
            runs += 1;
        }
    }
    println!(
        "{runs} runs killed ({timed} by a timer), {mid} of them mid-way with a journal; every one resumed to the bytes of dmch encrypt"
    );
    assert!(runs >= 300);
    assert!(mid >= runs / 2, "only {mid} of {runs} kills landed mid-way");
}
