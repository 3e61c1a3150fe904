//! `dmch bench`: a quick throughput table in the spirit of `cryptsetup
//! benchmark`: encrypt and decrypt MiB/s per spec through the reference
//! engine, with `--json` and an SVG bar chart (`--plot`).

use anyhow::{Context, Result};
use clap::Args;
use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::key::Key;
use dmcrypt_harness::spec::CipherSpec;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// (spec, key bits) as cryptsetup benchmark lists them, plus our others.
const DEFAULT: &[(&str, usize)] = &[
    ("aes-cbc-essiv:sha256", 128),
    ("aes-cbc-essiv:sha256", 256),
    ("aes-cbc-plain64", 256),
    ("aes-xts-plain64", 256),
    ("aes-xts-plain64", 512),
    ("serpent-cbc-plain64", 256),
    ("serpent-xts-plain64", 512),
    ("twofish-cbc-plain64", 256),
    ("twofish-xts-plain64", 512),
    ("camellia-xts-plain64", 512),
    ("cast6-cbc-plain64", 256),
    ("cast5-cbc-plain64", 128),
    ("blowfish-cbc-plain64", 256),
    ("des-cbc-plain64", 64),
    ("des3_ede-cbc-plain64", 192),
    ("xchacha12,aes-adiantum-plain64", 256),
    ("xchacha20,aes-adiantum-plain64", 256),
];

#[derive(Args)]
pub struct BenchArgs {
    /// Specs to measure as SPEC:KEYBITS (repeatable; default: a cryptsetup-like list).
    #[arg(long = "spec", value_name = "SPEC:BITS")]
    specs: Vec<String>,
    /// Encryption sector size in bytes.
    #[arg(long, default_value_t = 4096)]
    sector_size: u32,
    /// Threads (1 = single-thread figures; 0 = all cores).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 0.5)]
    seconds: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Also draw a bar chart of the figures to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

struct Row {
    spec: String,
    bits: usize,
    enc: f64,
    dec: f64,
}

fn measure(e: &SectorCrypt, buf: &mut [u8], enc: bool, secs: f64) -> Result<f64> {
    let until = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut bytes = 0u64;
    while start.elapsed() < until || bytes == 0 {
        if enc {
            e.encrypt(0, buf)?;
        } else {
            e.decrypt(0, buf)?;
        }
        bytes += buf.len() as u64;
    }
    Ok(bytes as f64 / start.elapsed().as_secs_f64() / (1 << 20) as f64)
}

fn svg(rows: &[Row], title: &str) -> String {
    let max = rows.iter().map(|r| r.enc.max(r.dec)).fold(1.0, f64::max);
    let (w, label_w, bar_h) = (900.0, 330.0, 12.0);
    let h = 40.0 + rows.len() as f64 * 32.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"10\" y=\"20\" font-size=\"14\">{title}</text>\n"
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 34.0 + i as f64 * 32.0;
        let scale = (w - label_w - 90.0) / max;
        s.push_str(&format!(
            "<text x=\"10\" y=\"{:.0}\">{} ({} bits)</text>\n",
            y + 16.0,
            r.spec,
            r.bits
        ));
        for (j, (v, color, name)) in [(r.enc, "#3b7dd8", "enc"), (r.dec, "#e08a1e", "dec")]
            .iter()
            .enumerate()
        {
            let by = y + j as f64 * (bar_h + 2.0);
            s.push_str(&format!(
                "<rect x=\"{label_w}\" y=\"{by:.0}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.0}\">{name} {v:.0} MiB/s</text>\n",
                v * scale,
                label_w + v * scale + 4.0,
                by + 10.0
            ));
        }
    }
    s.push_str("</svg>\n");
    s
}

pub fn run(a: BenchArgs) -> Result<ExitCode> {
    let list: Vec<(String, usize)> = if a.specs.is_empty() {
        DEFAULT.iter().map(|(s, b)| (s.to_string(), *b)).collect()
    } else {
        a.specs
            .iter()
            .map(|s| {
                let (spec, bits) = s
                    .rsplit_once(':')
                    .with_context(|| format!("--spec {s}: write SPEC:KEYBITS"))?;
                Ok((
                    spec.to_string(),
                    bits.parse()
                        .with_context(|| format!("--spec {s}: key bits"))?,
                ))
            })
            .collect::<Result<_>>()?
    };
    let threads = if a.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        a.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    // Large enough for the engine to spread over threads when asked.
    let mut buf = vec![0x5au8; if threads > 1 { 8 << 20 } else { 1 << 20 }];
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
        let key = Key::from_bytes(&vec![0x42u8; bits / 8]);
        let g = Geometry {
            sector_size: a.sector_size,
            ..Geometry::default()
        };
        let e =
            SectorCrypt::new(&s, &key, g).with_context(|| format!("{spec} with {bits}-bit key"))?;
        let (enc, dec) = pool.install(|| -> Result<(f64, f64)> {
            Ok((
                measure(&e, &mut buf, true, a.seconds)?,
                measure(&e, &mut buf, false, a.seconds)?,
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
            .map(|r| json!({"spec": r.spec, "key_bits": r.bits, "sector_size": a.sector_size, "threads": threads, "encrypt_mib_s": r.enc, "decrypt_mib_s": r.dec}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "# dmch reference engine, {}-byte sectors, {threads} thread(s)",
            a.sector_size
        );
        println!(
            "{:>32} {:>8} {:>14} {:>14}",
            "spec", "key", "encryption", "decryption"
        );
        for r in &rows {
            println!(
                "{:>32} {:>4}b {:>9.1} MiB/s {:>9.1} MiB/s",
                r.spec, r.bits, r.enc, r.dec
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
