//! Protects `dmch check`: the shipped vectors pass, the summary and the
//! kernel line are printed, JSON is valid, and a wrong vector is reported.

use std::fs;
use std::process::Command;

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");

#[test]
fn shipped_vectors_pass_with_a_summary_and_the_kernel_status() {
    let out = Command::new(DMCH).arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("cryptsetup-cipher-iv.vec") && l.contains(" aes-cbc-eboiv ")),
        "{text}"
    );
    assert!(text.contains(" 0 failed"), "{text}");
    assert!(text.contains("kernel: not run: "), "{text}");
}

#[test]
fn json_output_is_machine_readable() {
    let out = Command::new(DMCH)
        .args(["check", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["reference"]["failed"], 0);
    assert!(v["reference"]["cases"].as_u64().unwrap() >= 180);
    assert_eq!(v["kernel"]["ran"], false);
    assert!(!v["kernel"]["reason"].as_str().unwrap().is_empty());
}

#[test]
fn a_wrong_expected_value_fails_with_a_readable_diff() {
    let (_, text) = dmcrypt_harness::vectors::builtin()
        .into_iter()
        .find(|(n, _)| *n == "nist-sp800-38a-aes.vec")
        .unwrap();
    // F.2.1's ciphertext starts 7649abac: change one digit.
    let tampered = text.replacen("ciphertext: 7649abac", "ciphertext: 7649abad", 1);
    assert_ne!(tampered, text);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("nist.vec");
    fs::write(&f, tampered).unwrap();
    let out = Command::new(DMCH)
        .args(["check", "--vectors"])
        .arg(&f)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("FAIL nist.vec: F.2.1"), "{text}");
    assert!(text.contains("differs from byte 3"), "{text}");
    assert!(text.contains("reference: 5 passed, 1 failed"), "{text}");
}

#[test]
fn a_malformed_vector_file_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.vec");
    fs::write(
        &f,
        "[file]\nsource: test\n\n[vector x]\nsource: s\nproduced: p\nkind: sector\nspec: aes-cbc-plain64\nkey: 00\nplaintext: zeros 512\nciphertext: 00\nbogus: 1\n",
    )
    .unwrap();
    let out = Command::new(DMCH)
        .args(["check", "--vectors"])
        .arg(&f)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.vec:4: unknown field 'bogus'"), "{err}");
}

/// With the SIMD implementations turned off the crate fallbacks (what a CPU
/// without AVX-512 runs) must pass every shipped vector too.
#[test]
fn portable_fallbacks_pass_every_vector() {
    let out = Command::new(DMCH)
        .args(["check", "--json", "--no-kernel"])
        .env("DMCH_PORTABLE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reference"]["failed"], 0);
    assert!(v["reference"]["cases"].as_u64().unwrap() >= 1700);
}
