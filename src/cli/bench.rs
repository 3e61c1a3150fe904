//! `dmch bench`: a quick throughput table in the spirit of `cryptsetup
//! benchmark`: encrypt and decrypt MiB/s per spec through the reference
//! engine, with `--json` and an SVG bar chart (`--plot`). `--kernel` runs
//! the kernel benchmark matrix instead (`cli::kbench`, `kbench`).

use anyhow::{Context, Result, bail};
use clap::Args;
use dmcrypt_harness::cipher::Direction;
use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::key::{Key, MAX_KEY_BYTES};
use dmcrypt_harness::spec::CipherSpec;
use dmcrypt_harness::throughput::{DEFAULT, Row, measure, svg};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct BenchArgs {
    /// Specs to measure as SPEC:KEYBITS (repeatable; default: a cryptsetup-like list).
    #[arg(long = "spec", value_name = "SPEC:BITS")]
    pub specs: Vec<String>,
    /// Encryption sector size in bytes.
    #[arg(long, default_value_t = 4096)]
    pub sector_size: u32,
    /// Threads (1 = single-thread figures; 0 = all cores).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 0.5)]
    pub seconds: f64,
    /// Bytes processed per call, whole sectors (default 1 MiB, 8 MiB with
    /// several threads). `--buffer 4096` matches `openssl speed -bytes
    /// 4096` and `botan speed --buf-size=4096`: one cache-hot sector.
    #[arg(long, value_name = "BYTES")]
    pub buffer: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw a bar chart of the figures to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Run the kernel matrix instead: on the host (`--kernel` alone or
    /// `--kernel host`: root, device-mapper) or in a guest booting SOURCE
    /// (debian:6.1, debian:6.12; repeatable, one chart).
    #[arg(long, value_name = "SOURCE", num_args = 0..=1, default_missing_value = "host")]
    pub kernel: Vec<String>,
    #[command(flatten)]
    pub matrix: super::kbench::MatrixArgs,
}

pub fn run(a: BenchArgs) -> Result<ExitCode> {
    if !a.kernel.is_empty() {
        return super::kbench::run(&a);
    }
    if !(a.seconds.is_finite() && a.seconds > 0.0 && a.seconds <= 3600.0) {
        bail!("--seconds {} is not a time between 0 and 3600", a.seconds);
    }
    if a.threads > 1024 {
        bail!("--threads {} is over 1024", a.threads);
    }
    let list = if a.specs.is_empty() {
        DEFAULT.iter().map(|(s, b)| (s.to_string(), *b)).collect()
    } else {
        parse_specs(&a.specs)?
    };
    let threads = if a.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        a.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    // By default large enough for the engine to spread over threads.
    let len = a
        .buffer
        .unwrap_or(if threads > 1 { 8 << 20 } else { 1 << 20 });
    let ss = a.sector_size as usize;
    if ss == 0 || len == 0 || !len.is_multiple_of(ss) || len > 1 << 30 {
        bail!("--buffer {len}: not a whole number of {ss}-byte sectors up to 1 GiB");
    }
    let mut buf = vec![0x5au8; len];
    let mut rows = Vec::new();
    let tty = std::io::stderr().is_terminal() && !a.json;
    for (i, (spec, bits)) in list.iter().enumerate() {
        if tty {
            eprint!(
                "\r[{}/{}] {spec} ({bits} bits)...{}",
                i + 1,
                list.len(),
                " ".repeat(20)
            );
            let _ = std::io::stderr().flush();
        }
        let s = CipherSpec::parse(spec)?;
        let raw_key = vec![0x42u8; bits / 8];
        let key = Key::from_bytes(&raw_key);
        let g = Geometry {
            sector_size: a.sector_size,
            ..Geometry::default()
        };
        let e =
            SectorCrypt::new(&s, &key, g).with_context(|| format!("{spec} with {bits}-bit key"))?;
        let (enc, dec) = pool.install(|| -> Result<(f64, f64)> {
            Ok((
                measure(&e, &mut buf, Direction::Encrypt, a.seconds)?,
                measure(&e, &mut buf, Direction::Decrypt, a.seconds)?,
            ))
        })?;
        rows.push(Row {
            spec: spec.clone(),
            bits: *bits,
            enc,
            dec,
        });
    }
    if tty {
        eprint!("\r{}\r", " ".repeat(70));
    }
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({"spec": r.spec, "key_bits": r.bits, "sector_size": a.sector_size, "buffer_bytes": len, "threads": threads, "tier": tier(&r.spec), "encrypt_mib_s": r.enc, "decrypt_mib_s": r.dec})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "# dmch reference engine, {}-byte sectors, {len}-byte buffer, {threads} thread(s), CPU tiers up to {} (DMCH_CPU caps them)",
            a.sector_size,
            dmcrypt_harness::cpu::tier_cap().name()
        );
        println!(
            "{:>32} {:>8} {:>14} {:>14}  tier",
            "spec", "key", "encryption", "decryption"
        );
        for r in &rows {
            println!(
                "{:>32} {:>4}b {:>9.1} MiB/s {:>9.1} MiB/s  {}",
                r.spec,
                r.bits,
                r.enc,
                r.dec,
                tier(&r.spec)
            );
        }
    }
    if let Some(p) = &a.plot {
        let title = format!(
            "dmch reference engine, {}-byte sectors, {threads} thread(s)",
            a.sector_size
        );
        std::fs::write(p, svg(&rows, &title))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `SPEC:KEYBITS` words, checked.
pub fn parse_specs(specs: &[String]) -> Result<Vec<(String, usize)>> {
    specs
        .iter()
        .map(|s| {
            let (spec, bits) = s
                .rsplit_once(':')
                .with_context(|| format!("--spec {s}: write SPEC:KEYBITS"))?;
            let bits: usize = bits
                .parse()
                .with_context(|| format!("--spec {s}: key bits"))?;
            if bits / 8 > MAX_KEY_BYTES {
                bail!("--spec {s}: keys are at most {} bits", MAX_KEY_BYTES * 8);
            }
            if bits == 0 || !bits.is_multiple_of(8) {
                bail!("--spec {s}: a {bits}-bit key is not whole bytes");
            }
            CipherSpec::parse(spec).with_context(|| format!("--spec {s}"))?;
            Ok((spec.to_string(), bits))
        })
        .collect()
}

/// The instruction tier the engine runs `spec` at here.
fn tier(spec: &str) -> &'static str {
    CipherSpec::parse(spec).map_or("?", |s| {
        dmcrypt_harness::cpu::tier_of(&s.cipher, &s.chain).name()
    })
}
