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

/// `--kernel` measures the host's target where it can (root and
/// device-mapper) and otherwise says why in the table, the JSON and on
/// stderr; the reference figures are there either way. The guest scenario
/// (`dmch kernel setups`) checks the measuring path on real kernels.
#[test]
fn bench_kernel_measures_the_target_or_says_why_not() {
    let run = |json: bool| {
        let mut c = Command::new(DMCH);
        c.args([
            "bench",
            "--kernel",
            "--seconds",
            "0.01",
            "--spec",
            "aes-cbc-essiv:sha256:128",
        ]);
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let text = run(false);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("kernel enc"), "{stdout}");
    let json = run(true);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let row = &v[0];
    assert!(row["encrypt_mib_s"].as_f64().unwrap() > 0.0);
    let host_dm = dmcrypt_harness::sys::probe::host_dm().is_ok();
    if host_dm {
        eprintln!("host has dm-crypt: checking measured kernel figures");
        assert!(row["kernel_encrypt_mib_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["kernel_decrypt_mib_s"].as_f64().unwrap() > 0.0, "{row}");
    } else {
        eprintln!("host lacks dm-crypt or root: checking the stated reason");
        let why = row["kernel_not_measured"].as_str().unwrap();
        assert!(!why.is_empty());
        assert!(
            stdout.contains(&format!("# kernel: not measured: {why}")),
            "{stdout}"
        );
        assert!(stdout.contains("N/A"), "{stdout}");
        assert!(String::from_utf8_lossy(&text.stderr).contains(why));
    }
}
