//! Protects `dmch kernel fuzz` from bad arguments: each is refused in one
//! line before any kernel is fetched or booted.

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
            "no case of seed 1 has id",
        ),
    ] {
        let o = Command::new(DMCH)
            .args(["kernel", "fuzz", "--kernel", "debian:6.12"])
            .args(&args)
            // Nothing may be fetched: an empty cache that would show it.
            .env("XDG_CACHE_HOME", dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want '{want}' in {err}");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{args:?} touched the kernel cache"
        );
    }
}
