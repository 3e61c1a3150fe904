//! Protects `dmch encrypt|decrypt`: published ciphertexts come out of the
//! binary, both option styles agree, and stdin/stdout work.

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");

fn dmch(args: &[&str]) -> std::process::Output {
    let out = Command::new(DMCH).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "dmch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// IEEE P1619 XTS-AES vector 10 (a 512-byte unit, sequence number 0xff),
/// taken from the shipped vectors so the test and `check` share one source.
fn ieee_vector_10() -> (String, Vec<u8>, Vec<u8>, u64) {
    use dmcrypt_harness::vectors::{self, Expected, Kind};
    let (name, text) = vectors::builtin()
        .into_iter()
        .find(|(n, _)| *n == "ieee1619-xts-aes.vec")
        .unwrap();
    let f = vectors::parse(name, text).unwrap();
    let v = f
        .vectors
        .iter()
        .find(|v| v.id == "kernel XTS-AES 10/sector")
        .unwrap();
    let Kind::Sector { iv_offset, .. } = v.kind else {
        panic!()
    };
    let Expected::Hex(ct) = &v.expected else {
        panic!()
    };
    (
        v.key.table_form(),
        v.plaintext.bytes(),
        ct.clone(),
        iv_offset,
    )
}

#[test]
fn encrypt_reproduces_ieee_1619_vector_10_and_decrypt_inverts_it() {
    let (key, pt, ct, seq) = ieee_vector_10();
    let dir = tempfile::tempdir().unwrap();
    let (p, c, back) = (
        dir.path().join("p"),
        dir.path().join("c"),
        dir.path().join("b"),
    );
    fs::write(&p, &pt).unwrap();
    let seq = seq.to_string();
    let (ps, cs, bs) = (
        p.to_str().unwrap(),
        c.to_str().unwrap(),
        back.to_str().unwrap(),
    );
    dmch(&[
        "encrypt",
        "--cipher",
        "aes-xts-plain64",
        "--key",
        &key,
        "--iv-offset",
        &seq,
        ps,
        cs,
    ]);
    assert_eq!(fs::read(&c).unwrap(), ct);
    dmch(&[
        "decrypt",
        "--cipher",
        "capi:xts(aes)-plain64",
        "--key",
        &key,
        "--iv-offset",
        &seq,
        cs,
        bs,
    ]);
    assert_eq!(fs::read(&back).unwrap(), pt);
}

#[test]
fn table_and_separate_options_give_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    fs::write(&input, &data).unwrap();
    let key = "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b8e73b0f7da0e6452";
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let c = dir.path().join("c");
    let i = input.to_str().unwrap();
    dmch(&[
        "encrypt",
        "--cipher",
        "aes-cbc-essiv:sha256",
        "--key",
        key,
        "--iv-offset",
        "16",
        "--sector-size",
        "4096",
        "--iv-large-sectors",
        "--start-sector",
        "8",
        i,
        a.to_str().unwrap(),
    ]);
    let line = format!(
        "0 128 crypt aes-cbc-essiv:sha256 {key} 16 /dev/sdz 2048 2 sector_size:4096 iv_large_sectors"
    );
    dmch(&[
        "encrypt",
        "--table",
        &line,
        "--start-sector",
        "8",
        i,
        b.to_str().unwrap(),
    ]);
    let params = format!("aes-cbc-essiv:sha256 {key} 16 - 0 2 iv_large_sectors sector_size:4096");
    dmch(&[
        "encrypt",
        "--table",
        &params,
        "--start-sector",
        "8",
        i,
        c.to_str().unwrap(),
    ]);
    let a = fs::read(a).unwrap();
    assert_ne!(a, data);
    assert_eq!(a, fs::read(b).unwrap());
    assert_eq!(a, fs::read(c).unwrap());
}

#[test]
fn stdin_to_stdout_round_trips() {
    let key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let data: Vec<u8> = (0..20 * 512).map(|i| (i * 13) as u8).collect();
    let pipe = |cmd: &str, input: &[u8]| -> Vec<u8> {
        let mut child = Command::new(DMCH)
            .args([cmd, "--cipher", "twofish-cbc-benbi", "--key", key, "-", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let ct = pipe("encrypt", &data);
    assert_eq!(ct.len(), data.len());
    assert_ne!(ct, data);
    assert_eq!(pipe("decrypt", &ct), data);
}

#[test]
fn table_command_normalises_and_hides_the_key() {
    let line = "0 8 crypt aes 000102030405060708090a0b0c0d0e0f 0 /dev/loop0 0 2 Same_CPU_Crypt allow_discards";
    let out = dmch(&["table", line]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("0 8 crypt aes 00000000000000000000000000000000 0 /dev/loop0 0 2 allow_discards same_cpu_crypt\n"), "{text}");
    assert!(
        text.contains("cipher aes-cbc-plain (capi: capi:cbc(aes)-plain)"),
        "{text}"
    );
    let shown = String::from_utf8(dmch(&["table", "--show-keys", line]).stdout).unwrap();
    assert!(shown.contains("000102030405060708090a0b0c0d0e0f"));
}

/// The kernel reads only as many options as the count says and ignores
/// the rest (found by the kernel fuzzer): `dmch table` does the same, shows
/// the table the kernel would hold, and warns about what it left out.
#[test]
fn table_command_ignores_options_past_the_count_as_the_kernel_does() {
    let line = "0 8 crypt aes-xts-plain64 000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f 0 /dev/loop0 0 1 allow_discards sector_size:4096";
    let out = dmch(&["table", line]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("0 8 crypt aes-xts-plain64 "), "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with(" 0 /dev/loop0 0 1 allow_discards"),
        "{text}"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("leaves out 'sector_size:4096': the kernel ignores it"),
        "{err}"
    );
}

/// Files are cut into pieces transformed in parallel at their offsets;
/// pipes are streamed. Both, with one thread or all, must give the bytes the
/// library engine gives for the whole input at once, across piece
/// boundaries and with a start sector that is not zero.
#[test]
fn file_pieces_and_streamed_pipes_give_the_engines_bytes() {
    use dmcrypt_harness::engine::{Geometry, SectorCrypt};
    use dmcrypt_harness::key::Key;
    use dmcrypt_harness::spec::CipherSpec;

    let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let spec = "aes-cbc-essiv:sha256";
    // Two whole 4 MiB pieces and a partial one.
    let data: Vec<u8> = (0..(9 << 20) + 8192)
        .map(|i| (i * 7 + i / 4096) as u8)
        .collect();
    let mut expected = data.clone();
    SectorCrypt::new(
        &CipherSpec::parse(spec).unwrap(),
        &Key::parse(key).unwrap(),
        Geometry {
            sector_size: 4096,
            iv_offset: 0,
            iv_large_sectors: false,
        },
    )
    .unwrap()
    .encrypt(24, &mut expected)
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p");
    fs::write(&p, &data).unwrap();
    let common = [
        "--cipher",
        spec,
        "--key",
        key,
        "--sector-size",
        "4096",
        "--start-sector",
        "24",
    ];
    for threads in ["1", "2"] {
        let c = dir.path().join(format!("c{threads}"));
        let mut args = vec!["encrypt", "--threads", threads];
        args.extend(common);
        args.extend([p.to_str().unwrap(), c.to_str().unwrap()]);
        dmch(&args);
        assert!(
            fs::read(&c).unwrap() == expected,
            "file path, {threads} thread(s)"
        );
    }
    let mut child = Command::new(DMCH)
        .arg("encrypt")
        .args(common)
        .args(["-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(out.status.success());
    assert!(out.stdout == expected, "pipe path");
}

/// `--kernel-version` reads a table as that kernel does: an iv_offset of
/// 2^64 wraps to 0 up to 6.12 and saturates at 2^64 - 1 from 7.2 (the
/// newest kernels' rule is the default), in `dmch table` and in
/// `dmch encrypt --table` alike.
#[test]
fn kernel_version_picks_the_number_rule_of_that_kernel() {
    let key = "000102030405060708090a0b0c0d0e0f";
    let line = format!("0 8 crypt aes-cbc-plain64 {key} 18446744073709551616 /dev/loop0 0");
    let shown = |v: Option<&str>| {
        let mut args = vec!["table", line.as_str()];
        if let Some(v) = v {
            args.extend(["--kernel-version", v]);
        }
        let text = String::from_utf8(dmch(&args).stdout).unwrap();
        text.lines().next().unwrap().to_string()
    };
    assert!(
        shown(Some("6.12")).ends_with(" 0 /dev/loop0 0"),
        "{}",
        shown(Some("6.12"))
    );
    for v in [Some("7.2"), None] {
        assert!(
            shown(v).ends_with(" 18446744073709551615 /dev/loop0 0"),
            "{v:?}: {}",
            shown(v)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::write(&input, vec![7u8; 1024]).unwrap();
    let enc = |extra: &[&str], name: &str| {
        let out = dir.path().join(name);
        let mut args = vec!["encrypt"];
        args.extend_from_slice(extra);
        args.extend([input.to_str().unwrap(), out.to_str().unwrap()]);
        dmch(&args);
        fs::read(out).unwrap()
    };
    let old = enc(&["--table", &line, "--kernel-version", "6.12"], "old");
    let new = enc(&["--table", &line, "--kernel-version", "7.2"], "new");
    let zero = enc(&["--cipher", "aes-cbc-plain64", "--key", key], "zero");
    assert_eq!(old, zero, "6.12 wraps 2^64 to iv_offset 0");
    assert_ne!(old, new, "7.2 saturates instead");

    let bad = Command::new(DMCH)
        .args(["table", &line, "--kernel-version", "seven"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8(bad.stderr).unwrap();
    assert!(
        err.contains("kernel version 'seven' is not MAJOR.MINOR"),
        "{err}"
    );
}
