//! Protects LUKS compatibility with the real client: images formatted by
//! cryptsetup (LUKS1 and LUKS2, several ciphers, hashes, sector sizes,
//! PBKDF2 and Argon2 with small costs, several key slots, key files with
//! offsets) unlock in dmch to exactly the volume key `cryptsetup luksDump
//! --dump-volume-key` prints; images dmch formats are read by cryptsetup,
//! give it our key, and take keys cryptsetup adds (and the reverse).
//!
//! cryptsetup works on image files without device-mapper for ciphers the
//! host kernel's crypto API offers (here only aes): serpent and twofish
//! volumes are checked at header level here, and opened by the kernel in
//! the guest scenario. Without cryptsetup every test says SKIPPED.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");
/// Small costs: these images are for tests.
const FAST: &[&str] = &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"];

fn cryptsetup() -> bool {
    let ok = Command::new("cryptsetup")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIPPED: cryptsetup is not installed (ci/test.sh installs cryptsetup-bin)");
    }
    ok
}

fn run(cmd: &str, args: &[&str], stdin: &[u8]) -> (bool, String, String) {
    let mut c = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let _ = c.stdin.take().unwrap().write_all(stdin);
    let o = c.wait_with_output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The hex of the "MK dump:" lines (cryptsetup's and dmch's format).
fn mk(dump: &str) -> Option<String> {
    let at = dump.find("MK dump:")?;
    let hex: String = dump[at + 8..]
        .lines()
        .take_while(|l| l.trim().chars().all(|c| c.is_ascii_hexdigit() || c == ' '))
        .flat_map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .collect();
    (!hex.is_empty()).then_some(hex)
}

fn cryptsetup_vk(img: &Path, key_file: &Path) -> String {
    let (ok, out, err) = run(
        "cryptsetup",
        &[
            "luksDump",
            "--dump-volume-key",
            "-q",
            "--key-file",
            key_file.to_str().unwrap(),
            img.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        ok,
        "cryptsetup --dump-volume-key on {}: {err}",
        img.display()
    );
    mk(&out).unwrap()
}

fn dmch_vk(img: &Path, extra: &[&str], stdin: &[u8]) -> Result<String, String> {
    let mut args = vec!["luks", "dump", "--dump-volume-key"];
    args.extend_from_slice(extra);
    args.push(img.to_str().unwrap());
    let (ok, out, err) = run(DMCH, &args, stdin);
    if !ok {
        assert_eq!(err.lines().count(), 1, "{err}");
        return Err(err);
    }
    Ok(mk(&out).unwrap())
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn image(dir: &Path, name: &str, size: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(size).unwrap();
    p
}

#[test]
fn volumes_cryptsetup_formats_unlock_in_dmch_to_its_volume_key() {
    if !cryptsetup() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = file(d, "pw", b"first passphrase");
    let kf = file(d, "kf", &(0..100u8).collect::<Vec<_>>());
    let kf_part = file(d, "kf-part", &(0..200u8).rev().collect::<Vec<_>>());
    let mut n = 0;
    for (kind, cipher, bits, extra) in [
        ("luks1", "aes-xts-plain64", "256", vec!["--hash", "sha256"]),
        ("luks1", "aes-xts-plain64", "512", vec!["--hash", "sha512"]),
        (
            "luks1",
            "aes-cbc-essiv:sha256",
            "256",
            vec!["--hash", "sha1"],
        ),
        (
            "luks1",
            "aes-cbc-essiv:sha256",
            "128",
            vec!["--hash", "ripemd160"],
        ),
        (
            "luks1",
            "aes-xts-plain64",
            "256",
            vec!["--hash", "whirlpool"],
        ),
        (
            "luks2",
            "aes-xts-plain64",
            "512",
            vec!["--pbkdf", "pbkdf2", "--sector-size", "4096"],
        ),
        (
            "luks2",
            "aes-xts-plain64",
            "256",
            vec![
                "--pbkdf",
                "pbkdf2",
                "--hash",
                "sha512",
                "--sector-size",
                "512",
            ],
        ),
        (
            "luks2",
            "aes-cbc-essiv:sha256",
            "256",
            vec!["--pbkdf", "pbkdf2", "--sector-size", "4096"],
        ),
        (
            "luks2",
            "aes-xts-plain64",
            "512",
            vec![
                "--pbkdf",
                "argon2id",
                "--pbkdf-memory",
                "64",
                "--pbkdf-parallel",
                "2",
            ],
        ),
        (
            "luks2",
            "aes-xts-plain64",
            "256",
            vec![
                "--pbkdf",
                "argon2i",
                "--pbkdf-memory",
                "32",
                "--pbkdf-parallel",
                "1",
            ],
        ),
    ] {
        n += 1;
        let img = image(d, &format!("{kind}-{n}.img"), 20 << 20);
        let i = img.to_str().unwrap();
        let mut args = vec![
            "luksFormat",
            "-q",
            "--type",
            kind,
            "-c",
            cipher,
            "-s",
            bits,
            "--key-file",
            pw.to_str().unwrap(),
        ];
        args.extend_from_slice(FAST);
        args.extend(extra.iter().copied());
        args.push(i);
        let (ok, _, err) = run("cryptsetup", &args, b"");
        assert!(ok, "cryptsetup {args:?}: {err}");
        // More slots: a key file, part of a key file, a piped passphrase.
        let mut add = vec!["luksAddKey", "-q", "--key-file", pw.to_str().unwrap()];
        add.extend_from_slice(FAST);
        for a in [
            vec![i, kf.to_str().unwrap()],
            vec![
                "--new-keyfile-offset",
                "7",
                "--new-keyfile-size",
                "20",
                i,
                kf_part.to_str().unwrap(),
            ],
        ] {
            let mut c = add.clone();
            c.extend(a);
            let (ok, _, err) = run("cryptsetup", &c, b"");
            assert!(ok, "cryptsetup {c:?}: {err}");
        }
        let piped = file(d, "piped", b"typed words");
        let mut c = add.clone();
        c.extend([i, piped.to_str().unwrap()]);
        assert!(run("cryptsetup", &c, b"").0);
        let want = cryptsetup_vk(&img, &pw);
        let what = format!("{kind} {cipher} {bits} {extra:?}");
        assert_eq!(
            dmch_vk(&img, &["-d", pw.to_str().unwrap()], b"").unwrap(),
            want,
            "{what}: passphrase file"
        );
        assert_eq!(
            dmch_vk(&img, &["-d", kf.to_str().unwrap()], b"").unwrap(),
            want,
            "{what}: key file"
        );
        assert_eq!(
            dmch_vk(
                &img,
                &[
                    "-d",
                    kf_part.to_str().unwrap(),
                    "--keyfile-offset",
                    "7",
                    "--keyfile-size",
                    "20"
                ],
                b""
            )
            .unwrap(),
            want,
            "{what}: part of a key file"
        );
        assert_eq!(
            dmch_vk(&img, &[], b"typed words\nmore").unwrap(),
            want,
            "{what}: piped passphrase"
        );
        assert_eq!(
            dmch_vk(&img, &["-d", "-"], b"typed words").unwrap(),
            want,
            "{what}: key file on stdin"
        );
        assert_eq!(
            dmch_vk(&img, &["--key-slot", "1", "-d", kf.to_str().unwrap()], b"").unwrap(),
            want
        );
        let wrong = dmch_vk(&img, &["-d", kf_part.to_str().unwrap()], b"").unwrap_err();
        assert!(
            wrong.contains("no key slot opens with this passphrase"),
            "{wrong}"
        );
        let not_that =
            dmch_vk(&img, &["--key-slot", "0", "-d", kf.to_str().unwrap()], b"").unwrap_err();
        assert!(not_that.contains("no key slot opens"), "{not_that}");
    }
    println!(
        "{n} cryptsetup-made volumes, 4 key slots each: dmch unlocks each slot to cryptsetup's volume key"
    );
}

#[test]
fn volumes_dmch_formats_are_cryptsetups_and_take_its_keys() {
    if !cryptsetup() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = file(d, "pw", b"dmch passphrase");
    let pw2 = file(d, "pw2", b"cryptsetup added this");
    let pw3 = file(d, "pw3", b"dmch added this");
    let vk64: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
    let vk = file(d, "vk", &vk64);
    let vk32 = file(d, "vk32", &vk64[..32]);
    let uuid = "5a0cd4a2-6b8e-4c1b-9a77-0123456789ab";
    for (n, (kind, cipher, key, extra)) in [
        (
            "luks2",
            "aes-xts-plain64",
            &vk,
            vec![
                "--sector-size",
                "4096",
                "--label",
                "data-vol",
                "--pbkdf",
                "argon2id",
                "--pbkdf-memory",
                "64",
                "--pbkdf-force-iterations",
                "4",
            ],
        ),
        (
            "luks2",
            "aes-xts-plain64",
            &vk,
            vec![
                "--sector-size",
                "512",
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
            ],
        ),
        (
            "luks2",
            "aes-cbc-essiv:sha256",
            &vk32,
            vec![
                "-s",
                "256",
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
            ],
        ),
        (
            "luks1",
            "aes-xts-plain64",
            &vk,
            vec!["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
        ),
        (
            "luks1",
            "aes-cbc-essiv:sha256",
            &vk32,
            vec![
                "-s",
                "256",
                "--hash",
                "sha1",
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
            ],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let img = image(d, &format!("d{n}.img"), 20 << 20);
        let i = img.to_str().unwrap();
        let mut args = vec![
            "luks",
            "format",
            i,
            "--type",
            kind,
            "-c",
            cipher,
            "-d",
            pw.to_str().unwrap(),
            "--uuid",
            uuid,
            "--volume-key-file",
            key.to_str().unwrap(),
        ];
        args.extend(extra.iter().copied());
        let (ok, _, err) = run(DMCH, &args, b"");
        assert!(ok, "dmch {args:?}: {err}");
        let (ok, dump, err) = run("cryptsetup", &["luksDump", i], b"");
        assert!(ok, "cryptsetup luksDump of dmch's {kind}: {err}");
        assert!(dump.contains(uuid), "{dump}");
        assert!(
            dump.contains(cipher) || dump.contains(cipher.split_once('-').unwrap().1),
            "{dump}"
        );
        if extra.contains(&"data-vol") {
            assert!(
                dump.contains("data-vol") && dump.contains("sector: 4096"),
                "{dump}"
            );
        }
        let want = hex::encode(std::fs::read(key).unwrap());
        assert_eq!(
            cryptsetup_vk(&img, &pw),
            want,
            "{kind} {cipher}: cryptsetup reads our key"
        );
        // cryptsetup adds a key; dmch opens with it.
        let mut add = vec!["luksAddKey", "-q", "--key-file", pw.to_str().unwrap()];
        add.extend_from_slice(FAST);
        add.extend([i, pw2.to_str().unwrap()]);
        let (ok, _, err) = run("cryptsetup", &add, b"");
        assert!(ok, "cryptsetup luksAddKey on dmch's {kind}: {err}");
        assert_eq!(
            dmch_vk(&img, &["-d", pw2.to_str().unwrap()], b"").unwrap(),
            want
        );
        // dmch adds a key; cryptsetup opens with it.
        let (ok, _, err) = run(
            DMCH,
            &[
                "luks",
                "add-key",
                i,
                pw3.to_str().unwrap(),
                "-d",
                pw2.to_str().unwrap(),
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
            ],
            b"",
        );
        assert!(ok, "dmch add-key: {err}");
        assert_eq!(
            cryptsetup_vk(&img, &pw3),
            want,
            "{kind}: cryptsetup opens dmch's new slot"
        );
        // dmch removes cryptsetup's slot: cryptsetup no longer opens with it.
        let (ok, _, err) = run(
            DMCH,
            &["luks", "remove-key", i, "-d", pw2.to_str().unwrap()],
            b"",
        );
        assert!(ok, "{err}");
        let (ok, _, _) = run(
            "cryptsetup",
            &[
                "luksDump",
                "--dump-volume-key",
                "-q",
                "--key-file",
                pw2.to_str().unwrap(),
                i,
            ],
            b"",
        );
        assert!(!ok, "{kind}: cryptsetup still opens a removed key slot");
        assert_eq!(cryptsetup_vk(&img, &pw), want);
    }
    // Ciphers this host's crypto API lacks: cryptsetup reads the header
    // (unlocking them needs device-mapper: the guest scenario does it).
    for (kind, cipher) in [
        ("luks2", "serpent-xts-plain64"),
        ("luks2", "twofish-xts-plain64"),
        ("luks1", "serpent-cbc-essiv:sha256"),
    ] {
        let img = image(d, &format!("{cipher}.img"), 20 << 20);
        let i = img.to_str().unwrap();
        let (ok, _, err) = run(
            DMCH,
            &[
                "luks",
                "format",
                i,
                "--type",
                kind,
                "-c",
                cipher,
                "-d",
                pw.to_str().unwrap(),
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
            ],
            b"",
        );
        assert!(ok, "{err}");
        let (ok, dump, err) = run("cryptsetup", &["luksDump", i], b"");
        assert!(
            ok && dump.contains(cipher.split_once('-').unwrap().0),
            "{cipher}: {dump}{err}"
        );
    }
}
