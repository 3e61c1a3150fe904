//! Protects the promise that bad input gets one clear error line, a non-zero
//! exit, no panic, and no output file.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");
const K16: &str = "000102030405060708090a0b0c0d0e0f";
const K32: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const K64: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// (what is wrong, words the error must contain, arguments before INPUT OUTPUT)
fn catalogue() -> Vec<(&'static str, &'static str, Vec<String>)> {
    let enc = |cipher: &str, key: &str, extra: &[&str]| {
        let mut v = vec![
            "encrypt".to_string(),
            "--cipher".into(),
            cipher.into(),
            "--key".into(),
            key.into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let table = |line: String| vec!["encrypt".to_string(), "--table".into(), line];
    vec![
        // cipher specs
        (
            "unknown cipher",
            "unknown block cipher 'rot13'",
            enc("rot13-cbc-plain64", K16, &[]),
        ),
        (
            "unknown chain mode",
            "unknown chaining mode 'gcm'",
            enc("aes-gcm-plain64", K16, &[]),
        ),
        (
            "unknown IV mode",
            "unknown IV mode 'plain32'",
            enc("aes-cbc-plain32", K16, &[]),
        ),
        (
            "missing IV mode",
            "IV mechanism required",
            enc("aes-cbc", K16, &[]),
        ),
        (
            "keycount not a power of two",
            "not a power of two",
            enc("aes:3-cbc-plain", K64, &[]),
        ),
        (
            "keycount zero",
            "not a power of two",
            enc("aes:0-cbc-plain", K16, &[]),
        ),
        (
            "keycount not a number",
            "not a number",
            enc("aes:x-cbc-plain", K16, &[]),
        ),
        (
            "parentheses in old form",
            "capi form",
            enc("cbc(aes)-plain64", K16, &[]),
        ),
        (
            "capi without parentheses",
            "not a crypto API name",
            enc("capi:aes-plain64", K16, &[]),
        ),
        (
            "capi non-ecb without IV mode",
            "uninitialised IV",
            enc("capi:cbc(aes)", K16, &[]),
        ),
        (
            "capi unbalanced",
            "parentheses",
            enc("capi:cbc(aes-plain64", K16, &[]),
        ),
        (
            "empty chain mode",
            "empty chaining mode",
            enc("aes--plain64", K16, &[]),
        ),
        ("empty IV mode", "empty IV mode", enc("aes-cbc-", K16, &[])),
        (
            "essiv without hash",
            "ESSIV needs a digest",
            enc("aes-cbc-essiv", K16, &[]),
        ),
        (
            "essiv unknown hash",
            "unknown hash 'sha999'",
            enc("aes-cbc-essiv:sha999", K16, &[]),
        ),
        (
            "essiv userspace hash name",
            "kernel calls it 'rmd160'",
            enc("blowfish-cbc-essiv:ripemd160", K16, &[]),
        ),
        (
            "essiv digest not a key",
            "not a valid aes key",
            enc("aes-cbc-essiv:sha512", K16, &[]),
        ),
        (
            "essiv digest not a 3des key",
            "not a valid des3_ede key",
            enc(
                "des3_ede-cbc-essiv:sha256",
                "00112233445566778899aabbccddeeff0011223344556677",
                &[],
            ),
        ),
        (
            "xts over 8-byte blocks",
            "16-byte block cipher",
            enc("des-xts-plain64", "0011223344556677", &[]),
        ),
        (
            "random IVs",
            "cannot be reproduced",
            enc("aes-xts-random", K32, &[]),
        ),
        (
            "lmk on 4096-byte sectors",
            "512-byte sectors only",
            enc(
                "aes:64-cbc-lmk",
                &K16.repeat(64),
                &["--sector-size", "4096"],
            ),
        ),
        (
            "tcw on 1024-byte sectors",
            "512-byte sectors only",
            enc(
                "aes-cbc-tcw",
                &format!("{K16}{K32}"),
                &["--sector-size", "1024"],
            ),
        ),
        (
            "tcw key with no room for the data key",
            "leaves no data key",
            enc("aes-cbc-tcw", K32, &[]),
        ),
        (
            "elephant key too long",
            "at most 32 bytes",
            enc("aes-cbc-elephant", &K64.repeat(2), &[]),
        ),
        (
            "elephant key not an AES key",
            "not an AES key",
            enc("serpent-cbc-elephant", &"00".repeat(40), &[]),
        ),
        (
            "adiantum with an unknown stream cipher",
            "xchacha12 or xchacha20",
            enc("salsa20,aes-adiantum-plain64", K32, &[]),
        ),
        (
            "adiantum key of wrong length",
            "32 bytes",
            enc("capi:adiantum(xchacha12,aes)-plain64", K16, &[]),
        ),
        (
            "lrw over an 8-byte block cipher",
            "16-byte block cipher",
            enc("des-lrw-benbi", K16, &[]),
        ),
        (
            "lrw key without its tweak key",
            "16 tweak-key bytes",
            enc("aes-lrw-benbi", K16, &[]),
        ),
        (
            "essiv with adiantum",
            "IV size",
            enc("xchacha12,aes-adiantum-essiv:sha256", K32, &[]),
        ),
        (
            "table device offset not a whole sector",
            "device offset 3 is not a multiple of sector_size/512 (8)",
            table(format!(
                "0 8 crypt aes-cbc-plain64 {K16} 0 /dev/x 3 1 sector_size:4096"
            )),
        ),
        // keys
        (
            "key of wrong length",
            "takes 16, 24 or 32 bytes",
            enc("aes-cbc-plain64", "00112233", &[]),
        ),
        (
            "xts key of odd halves",
            "twice",
            enc("aes-xts-plain64", K16, &[]),
        ),
        (
            "key with odd digits",
            "odd number of digits",
            enc("aes-cbc-plain64", "0011223", &[]),
        ),
        (
            "key not hex",
            "non-hex character at position 3",
            enc("aes-cbc-plain64", "00zz", &[]),
        ),
        ("empty key", "empty key", enc("aes-cbc-plain64", "", &[])),
        (
            "keyring key offline",
            "kernel keyring",
            enc("aes-cbc-plain64", ":32:logon:my:key", &[]),
        ),
        (
            "keyring bad type",
            "keyring key type 'foo'",
            enc("aes-cbc-plain64", ":32:foo:desc", &[]),
        ),
        (
            "keycount split too small",
            "per key",
            enc("aes:4-cbc-plain64", K32, &[]),
        ),
        (
            "blowfish key too long",
            "4 to 56 bytes",
            enc("blowfish-cbc-plain64", &"00".repeat(57), &[]),
        ),
        // geometry
        (
            "sector size not a power of two",
            "power of two",
            enc("aes-cbc-plain64", K16, &["--sector-size", "1000"]),
        ),
        (
            "sector size too big",
            "between 512 and 4096",
            enc("aes-cbc-plain64", K16, &["--sector-size", "8192"]),
        ),
        (
            "iv_offset misaligned",
            "iv_offset 3 is not a multiple of 8",
            enc(
                "aes-cbc-plain64",
                K16,
                &["--sector-size", "4096", "--iv-offset", "3"],
            ),
        ),
        (
            "start sector misaligned",
            "start sector 1",
            enc(
                "aes-cbc-plain64",
                K16,
                &["--sector-size", "4096", "--start-sector", "1"],
            ),
        ),
        (
            "iv offset not a number",
            "invalid value",
            enc("aes-cbc-plain64", K16, &["--iv-offset=-1"]),
        ),
        (
            "thread count not a number",
            "invalid value 'many' for '--threads",
            enc("aes-cbc-plain64", K16, &["--threads", "many"]),
        ),
        // tables
        (
            "table with too few fields",
            "got 3 field(s)",
            table(format!("aes-cbc-plain64 {K16} 0")),
        ),
        (
            "table wrong target",
            "not crypt",
            table(format!("0 8 linear aes-cbc-plain64 {K16} 0 /dev/x 0")),
        ),
        (
            "table length not a multiple",
            "not a multiple",
            table(format!(
                "0 7 crypt aes-cbc-plain64 {K16} 0 /dev/x 0 1 sector_size:4096"
            )),
        ),
        (
            "table zero length",
            "length is zero",
            table(format!("0 0 crypt aes-cbc-plain64 {K16} 0 /dev/x 0")),
        ),
        (
            "table option count wrong",
            "count says 2",
            table(format!(
                "0 8 crypt aes-cbc-plain64 {K16} 0 /dev/x 0 2 allow_discards"
            )),
        ),
        (
            "table unknown option",
            "unknown optional parameter 'turbo'",
            table(format!(
                "0 8 crypt aes-cbc-plain64 {K16} 0 /dev/x 0 1 turbo"
            )),
        ),
        (
            "table bad sector_size",
            "sector_size:1000",
            table(format!(
                "0 8 crypt aes-cbc-plain64 {K16} 0 /dev/x 0 1 sector_size:1000"
            )),
        ),
        (
            "table iv_offset not a number",
            "iv_offset 'x'",
            table(format!("0 8 crypt aes-cbc-plain64 {K16} x /dev/x 0")),
        ),
        (
            "table offset not a number",
            "device offset '-5'",
            table(format!("0 8 crypt aes-cbc-plain64 {K16} 0 /dev/x -5")),
        ),
        (
            "table integrity offline",
            "integrity",
            table(format!(
                "0 8 crypt aes-cbc-plain64 {K16} 0 /dev/x 0 1 integrity:28:aead"
            )),
        ),
        (
            "table bad integrity profile",
            "not aead or none",
            table(format!(
                "0 8 crypt aes-cbc-plain64 {K16} 0 /dev/x 0 1 integrity:28:hmac"
            )),
        ),
        (
            "table misaligned iv_offset",
            "not a multiple of 8",
            table(format!(
                "0 8 crypt aes-cbc-plain64 {K16} 4 /dev/x 0 1 sector_size:4096"
            )),
        ),
        (
            "table start not a number",
            "start 'a'",
            table(format!("a 8 crypt aes-cbc-plain64 {K16} 0 /dev/x 0")),
        ),
    ]
}

fn assert_clean_failure(what: &str, want: &str, out: &std::process::Output, output: &Path) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: exit status was success");
    assert!(!stderr.contains("panicked"), "{what}: panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() == 1 || lines[0].starts_with("error: "),
        "{what}: expected one error line, got: {stderr}"
    );
    assert!(
        stderr.contains(want),
        "{what}: error does not say '{want}': {stderr}"
    );
    assert!(!output.exists(), "{what}: output file was written");
}

#[test]
fn every_malformed_input_in_the_catalogue_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.img");
    fs::write(&input, vec![0u8; 8192]).unwrap();
    let cat = catalogue();
    assert!(cat.len() >= 40, "catalogue has only {} entries", cat.len());
    for (what, want, args) in cat {
        let output = dir.path().join("out.img");
        let out = Command::new(DMCH)
            .args(&args)
            .arg(&input)
            .arg(&output)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_clean_failure(what, want, &out, &output);
    }
}

#[test]
fn truncated_missing_and_unaligned_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.img");
    let truncated = dir.path().join("truncated.img");
    fs::write(&truncated, vec![0u8; 1000]).unwrap();
    let small = dir.path().join("small.img");
    fs::write(&small, vec![0u8; 1024]).unwrap();
    let cases: Vec<(&str, &str, Vec<&Path>, &[&str])> = vec![
        (
            "truncated image",
            "not a whole number of 512-byte sectors",
            vec![&truncated],
            &[],
        ),
        (
            "missing input",
            "cannot open input",
            vec![Path::new("/nonexistent/in.img")],
            &[],
        ),
        (
            "image smaller than one 4096-byte sector",
            "4096-byte sectors",
            vec![&small],
            &["--sector-size", "4096"],
        ),
    ];
    for (what, want, inputs, extra) in cases {
        let out = Command::new(DMCH)
            .args(["encrypt", "--cipher", "aes-xts-plain64", "--key", K32])
            .args(extra)
            .args(inputs)
            .arg(&output)
            .output()
            .unwrap();
        assert_clean_failure(what, want, &out, &output);
    }
    // A truncated stream on stdin is caught at its end, and nothing reaches stdout.
    let mut child = Command::new(DMCH)
        .args([
            "encrypt",
            "--cipher",
            "aes-xts-plain64",
            "--key",
            K32,
            "-",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&[7u8; 1536 + 5])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "partial output reached stdout");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a whole number"));
}

#[test]
fn an_existing_output_is_left_untouched_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.img");
    fs::write(&input, vec![0u8; 1000]).unwrap();
    let output = dir.path().join("out.img");
    fs::write(&output, b"precious").unwrap();
    let out = Command::new(DMCH)
        .args(["encrypt", "--cipher", "aes-xts-plain64", "--key", K32])
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(fs::read(&output).unwrap(), b"precious");
    let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 2, "a temporary file was left behind");
}
