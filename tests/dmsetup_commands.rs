//! Protects `dmch dmsetup` on the host: every table is checked by the
//! reference before anything else happens (a refused line is named, one
//! line, nothing sent), tables come from a file or stdin with a bound, and
//! a host without device-mapper says so in one line. The devices themselves
//! are made in the QEMU guest (`dmch kernel setups`, 43 checks).

use std::io::Write;
use std::process::{Command, Output, Stdio};

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");
const K: &str = "0123456789abcdef0123456789abcdef";

fn run(args: &[&str], stdin: &[u8], control: Option<&std::path::Path>) -> Output {
    let mut c = Command::new(DMCH);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = control {
        c.env("DMCH_DM_CONTROL", p);
    }
    let mut child = c.spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn one_line(what: &str, o: &Output, want: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{what}: succeeded");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(err.contains(want), "{what}: want '{want}' in {err}");
    assert!(!err.contains(K), "{what}: the key is in the error: {err}");
}

#[test]
fn tables_the_reference_refuses_are_named_and_never_sent() {
    // A stand-in control node that would fail if anything reached it.
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    std::fs::write(&control, b"").unwrap();
    for (what, table, want) in [
        (
            "unknown cipher",
            format!("0 8 crypt rot13-cbc-plain {K} 0 /dev/loop0 0\n"),
            "table line 1: cipher spec",
        ),
        (
            "wrong key length on line 2",
            format!("0 8 zero\n8 8 crypt aes-xts-plain64 {K} 0 /dev/loop0 0\n"),
            "table line 2",
        ),
        (
            "misaligned length",
            format!("0 7 crypt aes-cbc-plain {K} 0 /dev/loop0 0 1 sector_size:4096\n"),
            "length 7 is not a multiple",
        ),
        (
            "ten optional parameters",
            format!(
                "0 8 crypt aes-cbc-plain {K} 0 /dev/loop0 0 10 {}\n",
                "allow_discards ".repeat(10).trim()
            ),
            "over the kernel's 9",
        ),
        ("not a number", "x 8 zero\n".to_string(), "start 'x'"),
        ("empty table", "\n# nothing\n".to_string(), "no lines"),
    ] {
        let o = run(
            &["dmsetup", "create", "vol"],
            table.as_bytes(),
            Some(&control),
        );
        one_line(what, &o, want);
    }
}

#[test]
fn a_good_table_on_a_host_without_device_mapper_gets_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    std::fs::write(&control, b"").unwrap();
    let table = format!("0 8 crypt aes-plain {K} 0 /dev/loop0 0\n2048 8 zero\n");
    let o = run(
        &["dmsetup", "create", "vol"],
        table.as_bytes(),
        Some(&control),
    );
    one_line("no device-mapper", &o, "cannot set up dm-crypt mappings");
    let file = dir.path().join("table");
    std::fs::write(&file, &table).unwrap();
    let o = run(
        &["dmsetup", "create", "vol", file.to_str().unwrap()],
        b"",
        Some(&control),
    );
    one_line("table from a file", &o, "cannot set up dm-crypt mappings");
    for args in [
        vec!["dmsetup", "ls"],
        vec!["dmsetup", "table"],
        vec!["dmsetup", "info", "vol"],
        vec!["dmsetup", "remove", "--retry", "vol"],
    ] {
        let o = run(&args, b"", Some(&control));
        one_line(&args.join(" "), &o, "does not answer the DM_VERSION ioctl");
    }
}

#[test]
fn tables_come_from_a_file_or_stdin_with_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    std::fs::write(&control, b"").unwrap();
    let o = run(
        &["dmsetup", "create", "vol", "/nonexistent/table"],
        b"",
        Some(&control),
    );
    one_line("missing table file", &o, "cannot open /nonexistent/table");
    let huge = vec![b'#'; (1 << 20) + 1];
    let o = run(&["dmsetup", "create", "vol"], &huge, Some(&control));
    one_line("huge table", &o, "over 1024 KiB");
    let o = run(
        &["dmsetup", "create", "vol"],
        &[0xff, 0xfe, b'\n'],
        Some(&control),
    );
    one_line("binary table", &o, "not text");
}

#[test]
fn dmsetup_commands_are_in_the_one_grammar() {
    let o = run(&["dmsetup", "--help"], b"", None);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    for c in [
        "create", "reload", "suspend", "resume", "remove", "table", "status", "info", "ls",
    ] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(&format!("{c} "))),
            "dmch dmsetup --help lacks {c}: {out}"
        );
    }
    let o = run(&["dmsetup", "table", "--help"], b"", None);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--showkeys"));
}
