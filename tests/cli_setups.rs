//! Protects the cryptsetup-style syntax on the host: option parsing (options
//! before or after the action), defaults and --legacy, key derivation as
//! `derive-key` prints it, weak-choice warnings, and clean errors. The real
//! mappings run in the QEMU guest (`dmch kernel setups`, ci/kernel-check.sh).

use std::io::Write;
use std::process::{Command, Output, Stdio};

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut c = Command::new(DMCH)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The process may exit before reading (an early error): ignore EPIPE.
    let _ = c.stdin.take().unwrap().write_all(stdin);
    c.wait_with_output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn derive_key_matches_cryptsetup_password_hash_test() {
    // crypt_key ripemd160 0 pwd "xxx" (password-hash-test, also in vectors/).
    let o = run(&["derive-key", "-h", "ripemd160"], b"xxx");
    assert_eq!(
        text(&o).0.trim(),
        "aeb26d1f69eb6dddfb9381eed4d7299f091e99aa5d3ff06866d4ce9f620f7aca"
    );
    // Options after the action; the passphrase stops at the newline.
    let o = run(
        &["-s", "128", "derive-key", "-h", "sha256:14"],
        b"0123456789abcdef\nrest",
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.trim().len(), 32);
    assert!(out.trim().ends_with("0000"), "{out}");
}

#[test]
fn key_files_are_raw_and_must_be_long_enough() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("k");
    std::fs::write(&f, (0u8..64).collect::<Vec<_>>()).unwrap();
    let o = run(&["derive-key", "-d", f.to_str().unwrap(), "-s", "256"], b"");
    assert_eq!(
        text(&o).0.trim(),
        hex::encode((0u8..32).collect::<Vec<_>>())
    );
    let o = run(
        &["derive-key", "-d", f.to_str().unwrap(), "-s", "1024"],
        b"",
    );
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("key file holds 64 bytes") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn create_dry_run_shows_defaults_legacy_and_options_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("vol.img");
    std::fs::write(&vol, vec![0u8; 1 << 20]).unwrap();
    let v = vol.to_str().unwrap();
    let o = run(&["create", "--dry-run", "vol", v], b"pw\n");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        out.trim(),
        format!("0 2048 crypt aes-xts-plain64 {} 0 {v} 0", "0".repeat(64))
    );
    let o = run(
        &[
            "--legacy",
            "-o",
            "8",
            "create",
            "vol",
            v,
            "-p",
            "8",
            "-b",
            "1024",
            "--dry-run",
            "-r",
        ],
        b"pw\n",
    );
    let (out, err) = text(&o);
    assert_eq!(
        out.trim(),
        format!("0 1024 crypt aes {} 8 {v} 8", "0".repeat(64))
    );
    assert!(err.contains("32-bit plain IV"), "{err}");
    let o = run(
        &[
            "create",
            "vol",
            v,
            "--dry-run",
            "-c",
            "serpent-ecb",
            "--sector-size",
            "4096",
            "--allow-discards",
        ],
        b"pw\n",
    );
    let (out, err) = text(&o);
    assert!(
        out.contains("serpent-ecb") && out.trim().ends_with("2 allow_discards sector_size:4096"),
        "{out}"
    );
    assert!(err.contains("ecb leaks"), "{err}");
}

#[test]
fn bad_setup_input_gets_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("vol.img");
    std::fs::write(&vol, vec![0u8; 1 << 20]).unwrap();
    let v = vol.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["create", "--dry-run", "x", "/nonexistent"],
            "does not exist",
        ),
        (
            vec!["create", "--dry-run", "x", v, "-c", "rot13-cbc-plain"],
            "unknown block cipher",
        ),
        (
            vec!["create", "--dry-run", "x", v, "-s", "96"],
            "takes twice (16, 24 or 32 bytes)",
        ),
        (
            vec!["create", "--dry-run", "x", v, "-s", "7"],
            "multiple of 8",
        ),
        (
            vec!["create", "--dry-run", "x", v, "-h", "sha999"],
            "unknown hash",
        ),
        (
            vec!["create", "--dry-run", "x", v, "-b", "4096"],
            "past the end",
        ),
        (
            vec!["create", "--dry-run", "x", v, "-o", "2048"],
            "nothing after offset",
        ),
        (
            vec!["create", "--dry-run", "x", v, "--bogus"],
            "unknown option --bogus",
        ),
        (vec!["create", "--dry-run", "x"], "needs <device>"),
        (
            vec!["create", "--dry-run", "x", v, "extra"],
            "unexpected argument",
        ),
        (
            vec!["open", "--type", "tcrypt", v, "x"],
            "plain, luks, luks1 or luks2",
        ),
        (
            vec!["open", "--type", "luks2", "--dry-run", v, "x"],
            "not a LUKS volume",
        ),
        (vec!["create", "--dry-run", "x", v, "-b"], "needs a value"),
        (
            vec!["create", "--dry-run", "x", v, "-b", "ten"],
            "not a number",
        ),
        (
            vec!["derive-key", "-h", "plain:9"],
            "needs 9 passphrase bytes",
        ),
    ];
    for (args, want) in cases {
        let o = run(&args, b"short\n");
        let (_, err) = text(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("dmch: error")).count(),
            1,
            "{args:?}: {err}"
        );
        assert!(err.contains(want), "{args:?}: '{err}' lacks '{want}'");
    }
}

/// One grammar: the top-level help lists every command, setup actions
/// included; `help ACTION`, `ACTION --help` and `ACTION -?` describe it;
/// `-h` stays the hash for the setup actions, before or after the action.
#[test]
fn one_grammar_lists_and_describes_every_command() {
    let o = run(&["--help"], b"");
    let (out, _) = text(&o);
    assert!(o.status.success());
    for c in [
        "check",
        "encrypt",
        "decrypt",
        "table",
        "bench",
        "doctor",
        "kernel",
        "vectors",
        "create",
        "open",
        "remove",
        "close",
        "reload",
        "resize",
        "status",
        "derive-key",
    ] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(&format!("{c} "))),
            "dmch --help lacks {c}: {out}"
        );
    }
    for args in [
        vec!["help", "create"],
        vec!["create", "--help"],
        vec!["create", "-?"],
        vec!["derive-key", "--help"],
    ] {
        let o = run(&args, b"");
        let (out, err) = text(&o);
        assert!(o.status.success(), "{args:?}: {err}");
        assert!(
            out.contains("--hash <HASH>") && out.contains("-?, --help"),
            "{args:?}: {out}"
        );
    }
    // -h is the hash, wherever it stands; the same key either way.
    let before = run(&["-h", "sha512", "-s", "512", "derive-key"], b"pw\n");
    let after = run(&["derive-key", "-h", "sha512", "-s", "512"], b"pw\n");
    let mixed = run(&["-s", "512", "derive-key", "--hash=sha512"], b"pw\n");
    assert!(before.status.success(), "{}", text(&before).1);
    assert_eq!(text(&before).0.trim().len(), 128);
    assert_eq!(text(&before).0, text(&after).0);
    assert_eq!(text(&before).0, text(&mixed).0);
    // Setup options with no action after them: one line saying so.
    let o = run(&["-h", "create", "x"], b"");
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("need an action"), "{err}");
}
