//! Protects `dmch kernel fuzz` and `dmch kernel check` from bad arguments
//! (counts, times, shards, case words, regression files): each is refused
//! in one line before any kernel is fetched or booted.

use std::process::Command;

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");

#[test]
fn bad_fuzz_arguments_get_one_line_and_boot_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (args, want) in [
        (
            vec!["--cases", "0"],
            "--cases 0 is not between 1 and 1000000",
        ),
        (vec!["--cases", "2000000"], "is not between 1 and 1000000"),
        (vec!["--seed", "x"], "invalid value 'x'"),
        (vec!["--shard", "3/2"], "--shard 3/2"),
        (
            vec!["--only", "fuzz-v1-1-999999"],
            "fuzz-v1-1-999999 is from another fuzz generator",
        ),
        (
            vec!["--only", "fuzz-v3-7-3"],
            "no case of seed 1 has id fuzz-v3-7-3",
        ),
        (vec!["--time", "0"], "--time takes 1 to 604800 seconds"),
        (
            vec!["--shrink-rounds", "0"],
            "--shrink-rounds takes 1 to 100",
        ),
        (vec!["--jobs", "0"], "--jobs 0 is not between 1 and 64"),
        (vec!["--jobs", "65"], "--jobs 65 is not between 1 and 64"),
    ] {
        run_refused(
            &["kernel", "fuzz", "--kernel", "debian:6.12"],
            &args,
            want,
            dir.path(),
        );
    }
}

#[test]
fn bad_check_arguments_get_one_line_and_boot_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad_file = dir.path().join("bad-regressions.txt");
    std::fs::write(
        &bad_file,
        "# ok\nkernel=x date=y found=z cipher=aes key=00 len=512\n",
    )
    .unwrap();
    let bad_file = bad_file.to_string_lossy().to_string();
    for (args, want) in [
        (
            vec!["--case", "cipher=aes key=00"],
            "--case: a case needs len=",
        ),
        (
            vec!["--case", "cipher=aes key=00 len=512 steps=write:9:1:zeros"],
            "--case: step write:9:1:zeros: units 9..10 are not inside",
        ),
        (
            vec!["--case", "cipher=aes key=00 len=512 nonsense"],
            "'nonsense' is not key=value",
        ),
        (
            vec!["--regressions", "/nonexistent/file"],
            "reading the regression file /nonexistent/file",
        ),
        (
            vec!["--regressions", bad_file.as_str()],
            "line 2: no expect=",
        ),
        (vec!["--jobs", "0"], "--jobs 0 is not between 1 and 64"),
    ] {
        run_refused(
            &["kernel", "check", "--kernel", "debian:6.12"],
            &args,
            want,
            dir.path(),
        );
    }
}

fn run_refused(cmd: &[&str], args: &[&str], want: &str, cache: &std::path::Path) {
    {
        let o = Command::new(DMCH)
            .args(cmd)
            .args(args)
            // Nothing may be fetched: an empty cache that would show it.
            .env("XDG_CACHE_HOME", cache)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want '{want}' in {err}");
        let touched = std::fs::read_dir(cache)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name() != "bad-regressions.txt");
        assert!(!touched, "{args:?} touched the kernel cache");
    }
}
