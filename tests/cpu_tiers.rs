//! Protects the CPU tiers: every shipped vector passes at every tier this
//! machine can run (`DMCH_CPU=portable|aesni|avx2|vaes256|avx512`), so a
//! CI runner without AVX-512 runs code that was tested; doctor and bench
//! name the tier in use; a bad DMCH_CPU is one error line.

use dmcrypt_harness::cpu::Tier;
use std::process::Command;

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");

fn dmch(tier: &str, args: &[&str]) -> std::process::Output {
    Command::new(DMCH)
        .env_remove("DMCH_PORTABLE")
        .env("DMCH_CPU", tier)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_vector_passes_at_every_tier_this_cpu_has() {
    let tiers = Tier::available();
    for t in Tier::ALL {
        if !tiers.contains(&t) {
            println!(
                "SKIPPED tier {}: this CPU lacks {:?}",
                t.name(),
                t.features()
            );
        }
    }
    for t in &tiers {
        let out = dmch(t.name(), &["check", "--no-kernel"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tier {}: {text}{}",
            t.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = text
            .lines()
            .find(|l| l.starts_with("reference: "))
            .unwrap_or("");
        assert!(
            summary.contains(" 0 failed"),
            "tier {}: {summary}",
            t.name()
        );
        println!("tier {}: {summary}", t.name());
    }
}

#[test]
fn doctor_and_bench_name_the_tier_in_use() {
    for t in Tier::available() {
        let out = dmch(t.name(), &["doctor", "--json", "--no-probe"]);
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["cpu"]["tier_cap"], t.name());
        let out = dmch(
            t.name(),
            &[
                "bench",
                "--json",
                "--seconds",
                "0.01",
                "--spec",
                "aes-xts-plain64:256",
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // aes has a backend at every tier from aesni up.
        let want = if t == Tier::Avx2 { "aesni" } else { t.name() };
        assert_eq!(v[0]["tier"], want, "DMCH_CPU={}", t.name());
    }
}

#[test]
fn a_bad_tier_is_one_error_line() {
    let out = dmch("avx1024", &["check", "--no-kernel"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("DMCH_CPU=avx1024: not one of portable, aesni, avx2, vaes256, avx512"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
