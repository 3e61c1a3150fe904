//! Protects `dmch bench`: the table, JSON with every requested spec, the SVG
//! chart, and a clean error for a bad spec. (Figures are not asserted: speed
//! is measured, never tested.)

use std::process::Command;

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");

#[test]
fn bench_prints_json_and_draws_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("b.svg");
    let out = Command::new(DMCH)
        .args([
            "bench",
            "--json",
            "--seconds",
            "0.01",
            "--spec",
            "aes-xts-plain64:512",
            "--spec",
            "cast5-cbc-plain64:128",
            "--plot",
        ])
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["spec"], "aes-xts-plain64");
    assert!(rows[1]["encrypt_mib_s"].as_f64().unwrap() > 0.0);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("cast5-cbc-plain64 (128 bits)"));
}

#[test]
fn bench_rejects_a_bad_spec_in_one_line() {
    let out = Command::new(DMCH)
        .args(["bench", "--spec", "aes-xts-plain64:100"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("100-bit key"), "{err}");
}

/// `--buffer` sets the bytes per call (reported in the JSON) and must be
/// whole sectors: a bad one is one error line.
#[test]
fn bench_buffer_is_whole_sectors() {
    let out = Command::new(DMCH)
        .args(["bench", "--json", "--seconds", "0.01", "--buffer", "8192"])
        .args(["--sector-size", "4096", "--spec", "aes-xts-plain64:256"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["buffer_bytes"], 8192);
    for bad in ["1000", "0", "2147483648"] {
        let out = Command::new(DMCH)
            .args(["bench", "--seconds", "0.01", "--buffer", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--buffer {bad} accepted");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("--buffer"), "{err}");
    }
}

/// `--kernel` alone runs the kernel matrix on the host where it can (root
/// and device-mapper) and otherwise says why, in the JSON report (which
/// keeps its schema and the reference figures) and on stderr, with a
/// non-zero exit. The guest scenario (`dmch kernel setups`) and
/// ci/kernel-check.sh check the measuring path on real kernels.
#[test]
fn bench_kernel_measures_the_target_or_says_why_not() {
    let out = Command::new(DMCH)
        .args([
            "bench",
            "--kernel",
            "--seconds",
            "0.01",
            "--spec",
            "aes-cbc-essiv:sha256:128",
            "--flags",
            "none",
            "--sector-sizes",
            "512",
            "--workload",
            "4k-rand:qd=2",
            "--device-mib",
            "8",
            "--json",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    dmcrypt_harness::kbench::report::validate(&v).unwrap();
    assert!(v["reference"][0]["encrypt_mib_s"].as_f64().unwrap() > 0.0);
    let run = &v["runs"][0];
    assert_eq!(run["label"], "host");
    assert_eq!(run["emulated"], false);
    if dmcrypt_harness::sys::probe::host_dm().is_ok() {
        eprintln!("host has dm-crypt: checking measured kernel figures");
        assert!(out.status.success(), "{err}");
        let crypt = run["crypt"].as_array().unwrap();
        assert_eq!(crypt.len(), 2);
        assert!(
            crypt
                .iter()
                .all(|p| p["result"]["mib_s"].as_f64().unwrap() > 0.0),
            "{run}"
        );
    } else {
        eprintln!("host lacks dm-crypt or root: checking the stated reason");
        assert!(!out.status.success());
        let why = run["problem"].as_str().unwrap();
        assert!(why.starts_with("not measured: "), "{why}");
        assert!(err.contains(why), "{err}");
        assert!(run["crypt"].as_array().unwrap().is_empty());
    }
}

/// Bad matrix arguments are refused in one line before anything is
/// fetched, booted or mapped.
#[test]
fn bench_kernel_refuses_bad_matrices_in_one_line() {
    for (args, says) in [
        (&["--flags", "turbo"][..], "--flags turbo"),
        (&["--workload", "3k-seq"], "multiple of 4096"),
        (&["--workload", "4k-rand:qd=999"], "queue depth 999"),
        (&["--sector-sizes", "8192"], "sector size 8192"),
        (
            &["--device-mib", "1", "--workload", "1m-seq:qd=4"],
            "in flight",
        ),
        (&["--device-mib", "100000"], "100000 MiB"),
        (&["--kernel", "debian:9"], "unknown Debian kernel"),
        (&["--spec", "aes-xts-plain64:0"], "0-bit key"),
        (&["--guests", "0"], "--guests 0"),
    ] {
        let out = Command::new(DMCH)
            .args(["bench", "--kernel", "host", "--seconds", "0.01"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed a report");
    }
}
