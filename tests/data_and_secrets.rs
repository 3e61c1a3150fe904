//! Protects data and secrets on hostile or unusual input: outputs that are
//! devices, FIFOs or symlinks are written, never replaced; replaced files
//! keep mode and owner; keys come from files or stdin and never show in an
//! error; non-UTF-8 arguments, closed pipes, full disks and absurd sizes end
//! in one line; interrupted runs leave nothing behind; the command line
//! derives the same keys as cryptsetup's password-hash-test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");
const K32: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn dmch(args: &[&str]) -> Output {
    Command::new(DMCH).args(args).output().unwrap()
}

fn one_error_line(what: &str, o: &Output, want: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{what}: succeeded");
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: exit {:?}: {err}",
        o.status
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: want one line: {err}");
    assert!(err.contains(want), "{what}: want '{want}' in: {err}");
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let input: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("in.bin"), &input).unwrap();
        std::fs::write(dir.path().join("key.hex"), format!("{K32}\n")).unwrap();
        std::fs::write(dir.path().join("key.raw"), hex::decode(K32).unwrap()).unwrap();
        Files { dir }
    }

    fn p(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }

    fn s(&self, n: &str) -> String {
        self.p(n).to_str().unwrap().to_string()
    }

    /// `dmch encrypt` of in.bin to `out` with the hex key file.
    fn encrypt_to(&self, out: &str) -> Output {
        dmch(&[
            "encrypt",
            "--cipher",
            "aes-xts-plain64",
            "--key-file",
            &self.s("key.hex"),
            "--key-format",
            "hex",
            &self.s("in.bin"),
            out,
        ])
    }

    /// The reference ciphertext, by the argv key.
    fn expected(&self) -> Vec<u8> {
        let o = dmch(&[
            "encrypt",
            "--cipher",
            "aes-xts-plain64",
            "--key",
            K32,
            &self.s("in.bin"),
            &self.s("expected.bin"),
        ]);
        assert!(o.status.success());
        std::fs::read(self.p("expected.bin")).unwrap()
    }

    fn no_partials(&self) {
        let left: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".dmch"))
            .collect();
        assert!(left.is_empty(), "temporary outputs left: {left:?}");
    }
}

#[test]
fn key_files_raw_hex_and_stdin_give_the_argv_keys_result_and_argv_keys_warn() {
    let f = Files::new();
    let want = f.expected();
    assert!(f.encrypt_to(&f.s("hex.bin")).status.success());
    assert_eq!(std::fs::read(f.p("hex.bin")).unwrap(), want);
    let raw = dmch(&[
        "encrypt",
        "--cipher",
        "aes-xts-plain64",
        "--key-file",
        &f.s("key.raw"),
        &f.s("in.bin"),
        &f.s("raw.bin"),
    ]);
    assert!(raw.status.success());
    assert!(raw.stderr.is_empty(), "no warning for a key file");
    assert_eq!(std::fs::read(f.p("raw.bin")).unwrap(), want);
    let mut c = Command::new(DMCH)
        .args([
            "encrypt",
            "--cipher",
            "aes-xts-plain64",
            "--key-file",
            "-",
            &f.s("in.bin"),
            &f.s("stdin.bin"),
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(&hex::decode(K32).unwrap())
        .unwrap();
    assert!(c.wait().unwrap().success());
    assert_eq!(std::fs::read(f.p("stdin.bin")).unwrap(), want);
    let argv = dmch(&[
        "encrypt",
        "--cipher",
        "aes-xts-plain64",
        "--key",
        K32,
        &f.s("in.bin"),
        &f.s("argv.bin"),
    ]);
    let err = String::from_utf8_lossy(&argv.stderr);
    assert!(err.contains("visible to other users"), "{err}");
    let both = dmch(&[
        "encrypt",
        "--cipher",
        "aes-xts-plain64",
        "--key-file",
        "-",
        "-",
        &f.s("x.bin"),
    ]);
    one_error_line(
        "key and input on stdin",
        &both,
        "cannot both come from standard input",
    );
}

#[test]
fn a_fifo_output_is_streamed_not_replaced() {
    let f = Files::new();
    let fifo = f.p("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let o = f.encrypt_to(fifo.to_str().unwrap());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(reader.join().unwrap(), f.expected());
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    f.no_partials();
}

#[test]
fn a_character_device_output_stays_a_device() {
    let f = Files::new();
    let o = f.encrypt_to("/dev/null");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn a_block_device_output_is_written_in_place_and_size_checked() {
    if !root() || !Path::new("/dev/loop-control").exists() {
        println!("SKIPPED: a loop device as OUTPUT needs root and /dev/loop-control");
        return;
    }
    let f = Files::new();
    let want = f.expected();
    for (size, fits) in [(want.len() as u64, true), (want.len() as u64 / 2, false)] {
        let img = f.p("dev.img");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&img)
            .unwrap();
        file.set_len(size).unwrap();
        let lo = dmcrypt_harness::sys::loopdev::LoopDevice::attach(&file).unwrap();
        let o = f.encrypt_to(&lo.path);
        let node_kind = std::fs::metadata(&lo.path).map(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_block_device()
        });
        let path = lo.path.clone();
        lo.detach().unwrap();
        assert_eq!(node_kind.ok(), Some(true), "{path} is no longer a device");
        let on_disk = std::fs::read(&img).unwrap();
        if fits {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(on_disk, want);
        } else {
            one_error_line("device too small", &o, "holds");
            assert!(
                on_disk.iter().all(|&b| b == 0),
                "a refused run wrote to the device"
            );
        }
    }
}

#[test]
fn symlinks_are_followed_dangling_ones_and_directories_refused() {
    let f = Files::new();
    std::fs::write(f.p("target.bin"), b"old").unwrap();
    std::os::unix::fs::symlink(f.p("target.bin"), f.p("link")).unwrap();
    assert!(f.encrypt_to(&f.s("link")).status.success());
    assert!(
        std::fs::symlink_metadata(f.p("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(f.p("target.bin")).unwrap(), f.expected());
    std::os::unix::fs::symlink(f.p("missing/x"), f.p("dangling")).unwrap();
    one_error_line(
        "dangling symlink",
        &f.encrypt_to(&f.s("dangling")),
        "symlink",
    );
    std::fs::create_dir(f.p("dir")).unwrap();
    one_error_line("directory", &f.encrypt_to(&f.s("dir")), "is a directory");
    f.no_partials();
}

#[test]
fn a_replaced_output_keeps_its_mode_and_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let f = Files::new();
    std::fs::write(f.p("out.bin"), b"old").unwrap();
    std::fs::set_permissions(f.p("out.bin"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let owner = if root() {
        let c = std::ffi::CString::new(f.s("out.bin")).unwrap();
        // SAFETY: chown with a valid path.
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        65534
    } else {
        std::fs::metadata(f.p("out.bin")).unwrap().uid()
    };
    assert!(f.encrypt_to(&f.s("out.bin")).status.success());
    let m = std::fs::metadata(f.p("out.bin")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_eq!(m.uid(), owner);
    assert_eq!(std::fs::read(f.p("out.bin")).unwrap(), f.expected());
}

#[test]
fn a_closed_stdin_is_an_error_not_an_empty_input() {
    let f = Files::new();
    std::fs::write(f.p("out.bin"), b"keep me").unwrap();
    // SAFETY: closing descriptor 0 in the child before exec.
    let o = unsafe {
        use std::os::unix::process::CommandExt;
        Command::new(DMCH)
            .args([
                "encrypt",
                "--cipher",
                "aes-xts-plain64",
                "--key-file",
                &f.s("key.raw"),
                "-",
                &f.s("out.bin"),
            ])
            .pre_exec(|| {
                libc::close(0);
                Ok(())
            })
            .output()
            .unwrap()
    };
    one_error_line("closed stdin", &o, "gave no data");
    assert_eq!(std::fs::read(f.p("out.bin")).unwrap(), b"keep me");
}

#[test]
fn no_error_line_shows_a_key_or_a_terminal_escape() {
    // A key typed into the cipher field.
    let o = dmch(&["encrypt", "--cipher", K32, "--key", K32, "-", "-"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(!err.contains(K32), "{err}");
    assert!(!err.contains(&K32[..32]), "{err}");
    // An escape sequence in a file name.
    let o = dmch(&[
        "encrypt",
        "--cipher",
        "aes-xts-plain64",
        "--key",
        "-",
        "/nonexistent/\x1b[2Jx",
        "-",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains('\x1b'), "{err:?}");
}

#[test]
fn non_utf8_arguments_neither_panic_nor_echo() {
    use std::os::unix::ffi::OsStrExt;
    let latin1 = std::ffi::OsStr::from_bytes(b"/dev/h\xe9da5");
    let mut table = format!("0 8 crypt aes-xts-plain64 {K32} 0 ").into_bytes();
    table.extend_from_slice(latin1.as_bytes());
    table.extend_from_slice(b" 0");
    let o = Command::new(DMCH)
        .arg("encrypt")
        .arg("--table")
        .arg(std::ffi::OsStr::from_bytes(&table))
        .args(["-", "-"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        !err.contains("panicked") && !err.contains(&K32[..32]),
        "{err}"
    );
    let o = Command::new(DMCH)
        .args(["-h", "plain", "create", "x"])
        .arg(latin1)
        .output()
        .unwrap();
    one_error_line("non-UTF-8 device", &o, "invalid UTF-8");
    let o = dmch(&["-é", "create", "x", "/dev/null"]);
    one_error_line("non-ASCII option", &o, "unknown option");
}

#[test]
fn closed_pipes_end_quietly_and_full_disks_give_one_line() {
    let mut c = Command::new(DMCH)
        .args(["check", "--no-kernel"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then close the pipe as `head -1` would.
    let mut out = c.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    drop(out);
    let o = c.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.is_empty(), "a closed pipe printed: {err}");
    for args in [
        vec![
            "table".to_string(),
            format!("0 8 crypt aes-xts-plain64 {K32} 0 /dev/x 0"),
        ],
        vec!["derive-key".into(), "-h".into(), "plain".into()],
        vec![
            "bench".into(),
            "--spec".into(),
            "aes-xts-plain64:256".into(),
            "--seconds".into(),
            "0.01".into(),
        ],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = Command::new(DMCH)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(full)
            .output()
            .unwrap();
        one_error_line(&args[0], &o, "No space left on device");
    }
}

#[test]
fn absurd_sizes_are_refused_before_any_allocation() {
    let f = Files::new();
    for (what, args, want) in [
        (
            "keycount",
            vec![
                "encrypt",
                "--cipher",
                "cipher_null:2147483648-ecb",
                "--key",
                "-",
            ],
            "key count 2147483648 is over",
        ),
        (
            "bench key bits",
            vec!["bench", "--spec", "aes-xts-plain64:18446744073709551615"],
            "keys are at most",
        ),
        (
            "bench seconds nan",
            vec!["bench", "--seconds", "nan"],
            "--seconds",
        ),
        (
            "bench seconds inf",
            vec!["bench", "--seconds", "inf"],
            "--seconds",
        ),
        (
            "bench seconds huge",
            vec!["bench", "--seconds", "1e30"],
            "--seconds",
        ),
        (
            "bench threads",
            vec!["bench", "--threads", "100000"],
            "over 1024",
        ),
        (
            "derive-key size",
            vec!["derive-key", "-s", "18446744073709551608", "-h", "plain"],
            "key size",
        ),
    ] {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if a[0] == "encrypt" {
            a.push(f.s("in.bin"));
            a.push(f.s("out.bin"));
        }
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        one_error_line(what, &dmch(&a), want);
    }
    let vec_file = f.p("huge.vec");
    std::fs::write(
        &vec_file,
        format!("[file]\nsource: test\n\n[vector v]\nsource: test\nproduced: test\nkind: sector\nspec: aes-cbc-plain\nkey: 000102030405060708090a0b0c0d0e0f\nplaintext: zeros 18446744073709551615\nciphertext-sha256: {}\n", "0".repeat(64)),
    )
    .unwrap();
    one_error_line(
        "vector zeros",
        &dmch(&[
            "check",
            "--no-kernel",
            "--vectors",
            vec_file.to_str().unwrap(),
        ]),
        "a vector may generate",
    );
    assert!(!f.p("out.bin").exists());
}

/// lmk v3 with key parts under 16 bytes has no defined result (the
/// kernel copies its 16-byte seed from past the key part,
/// crypt_iv_lmk_init; 7.2 built with gcc 15 BUG()s there): dmch refuses
/// with one line saying why, a non-zero exit and no output written.
#[test]
fn lmk_with_key_parts_under_16_bytes_is_refused_as_undefined() {
    let f = Files::new();
    let key = "a5".repeat(65);
    let o = dmch(&[
        "encrypt",
        "--cipher",
        "serpent:64-cbc-lmk",
        "--key",
        &key,
        &f.s("in.bin"),
        &f.s("out.bin"),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("undefined") && err.contains("crypt_iv_lmk_init"),
        "{err}"
    );
    assert!(!err.contains(&key), "the key was printed: {err}");
    assert!(!f.p("out.bin").exists());
}

#[test]
fn setup_geometry_and_names_are_bounded() {
    let f = Files::new();
    std::fs::write(f.p("vol.img"), vec![0u8; 1 << 20]).unwrap();
    let key = f.s("key.raw");
    let vol = f.s("vol.img");
    let run = |args: &[&str]| dmch(args);
    one_error_line(
        "offset overflow",
        &run(&[
            "--dry-run",
            "-d",
            &key,
            "-s",
            "256",
            "-o",
            "18446744073709551615",
            "-b",
            "1",
            "create",
            "x",
            &vol,
        ]),
        "past the end",
    );
    let long = "n".repeat(200);
    one_error_line(
        "200-byte name",
        &run(&["--dry-run", "-d", &key, "-s", "256", "create", &long, &vol]),
        "at most 127",
    );
    let dir = f.s("");
    one_error_line(
        "directory as device",
        &run(&["--dry-run", "-d", &key, "-s", "256", "create", "x", &dir]),
        "not a block device or a regular file",
    );
    let ten = "allow_discards ".repeat(10);
    one_error_line(
        "ten optional parameters",
        &run(&[
            "table",
            &format!(
                "0 8 crypt aes-xts-plain64 {K32} 0 /dev/x 0 10 {}",
                ten.trim()
            ),
        ]),
        "over the kernel's 9",
    );
}

/// cryptsetup's password-hash-test, through the command line: every case
/// read from stdin (passphrase or `-d -`) gives the published volume key,
/// --keyfile-size and --keyfile-offset included.
#[test]
fn derive_key_on_the_command_line_matches_cryptsetups_password_hash_test() {
    let text = include_str!("../vectors/cryptsetup-password-hash.vec");
    let file = dmcrypt_harness::vectors::parse("cryptsetup-password-hash.vec", text).unwrap();
    let mut ran = 0;
    for v in &file.vectors {
        let dmcrypt_harness::vectors::Kind::Passphrase {
            hash,
            key_size,
            source,
            keyfile_size,
            keyfile_offset,
            must_fail,
        } = &v.kind
        else {
            continue;
        };
        let mut args = vec![
            "derive-key".to_string(),
            "-h".into(),
            hash.clone(),
            "-s".into(),
            (key_size * 8).to_string(),
        ];
        match source.as_str() {
            "passphrase" => {}
            "keyfile-stdin" => args.extend(["-d".into(), "-".into()]),
            _ => continue,
        }
        if *keyfile_size > 0 {
            args.extend(["--keyfile-size".into(), keyfile_size.to_string()]);
        }
        if *keyfile_offset > 0 {
            args.extend(["--keyfile-offset".into(), keyfile_offset.to_string()]);
        }
        let mut c = Command::new(DMCH)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let input = v.plaintext.bytes();
        let mut stdin = c.stdin.take().unwrap();
        let _ = stdin.write_all(&input);
        drop(stdin);
        let o = c.wait_with_output().unwrap();
        ran += 1;
        if *must_fail {
            assert!(!o.status.success(), "{}: should fail", v.id);
            continue;
        }
        let dmcrypt_harness::vectors::Expected::Hex(want) = &v.expected else {
            panic!("{}: no expected key", v.id)
        };
        let got = String::from_utf8_lossy(&o.stdout).trim().to_string();
        assert_eq!(
            got,
            hex::encode(want),
            "{} ({}): {}",
            v.id,
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(ran >= 30, "only {ran} stdin cases found");
}

/// Ctrl-C and SIGTERM stop a run within a second and remove its temporary
/// output; the leftover of a SIGKILLed run is removed, and reported, by the
/// next run writing to the same directory.
#[test]
fn interrupted_runs_stop_fast_and_leave_nothing_behind() {
    let f = Files::new();
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGKILL] {
        std::fs::write(f.p("out.bin"), b"old").unwrap();
        // stdin stays open and quiet after some data: the run is mid-way.
        let mut c = Command::new(DMCH)
            .args([
                "decrypt",
                "--cipher",
                "aes-xts-plain64",
                "--key-file",
                &f.s("key.raw"),
                "-",
                &f.s("out.bin"),
            ])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = c.stdin.take().unwrap();
        stdin.write_all(&vec![0u8; 9 << 20]).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let partial = std::fs::read_dir(f.dir.path()).unwrap().flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".dmch-partial-")
        });
        assert!(partial, "the run has no temporary output yet");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as i32, sig) };
        let t = Instant::now();
        let status = loop {
            if let Some(s) = c.try_wait().unwrap() {
                break s;
            }
            assert!(t.elapsed() < Duration::from_secs(1), "signal {sig} ignored");
            std::thread::sleep(Duration::from_millis(10));
        };
        drop(stdin);
        assert!(!status.success());
        assert_eq!(std::fs::read(f.p("out.bin")).unwrap(), b"old");
        if sig == libc::SIGKILL {
            // The next run into this directory sweeps the leftover.
            let o = f.encrypt_to(&f.s("other.bin"));
            assert!(o.status.success());
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("partial output of a run that was killed"),
                "{err}"
            );
        }
        f.no_partials();
    }
}
