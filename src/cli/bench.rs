//! `dmch bench`: a quick throughput table in the spirit of `cryptsetup
//! benchmark`: encrypt and decrypt MiB/s per spec through the reference
//! engine, with `--json` and an SVG bar chart (`--plot`). `--kernel` adds
//! the real dm-crypt target beside it (see `sys::bench`), or says why it
//! cannot.

use anyhow::{Context, Result, bail};
use clap::Args;
use dmcrypt_harness::cipher::Direction;
use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::key::{Key, MAX_KEY_BYTES};
use dmcrypt_harness::spec::CipherSpec;
use dmcrypt_harness::sys::bench as kbench;
use dmcrypt_harness::throughput::{DEFAULT, Row, measure, svg};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Also measure the host's dm-crypt target (root, device-mapper): a
    /// mapping over a loop device on tmpfs, with O_DIRECT I/O.
    #[arg(long)]
    kernel: bool,
}

pub fn run(a: BenchArgs) -> Result<ExitCode> {
    if !(a.seconds.is_finite() && a.seconds > 0.0 && a.seconds <= 3600.0) {
        bail!("--seconds {} is not a time between 0 and 3600", a.seconds);
    }
    if a.threads > 1024 {
        bail!("--threads {} is over 1024", a.threads);
    }
    let list: Vec<(String, usize)> = if a.specs.is_empty() {
        DEFAULT.iter().map(|(s, b)| (s.to_string(), *b)).collect()
    } else {
        a.specs
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
                Ok((spec.to_string(), bits))
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
    // The kernel side: a dm control handle, or the reason there is none.
    let ctl = if a.kernel {
        Some(dmcrypt_harness::sys::probe::control().map_err(|e| e.0))
    } else {
        None
    };
    if let Some(Err(why)) = &ctl {
        eprintln!("dmch bench: kernel: not measured: {why}");
    }
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
        let kernel = ctl.as_ref().map(|c| match c {
            Ok(ctl) => kbench::measure(ctl, spec, &raw_key, a.sector_size, a.seconds)
                .map(|t| (t.encrypt, t.decrypt))
                .map_err(|e| e.to_string()),
            Err(why) => Err(why.clone()),
        });
        if let Some(Err(why)) = &kernel
            && ctl.as_ref().is_some_and(|c| c.is_ok())
        {
            eprintln!("dmch bench: kernel: {spec} ({bits} bits): {why}");
        }
        rows.push(Row {
            spec: spec.clone(),
            bits: *bits,
            enc,
            dec,
            kernel,
        });
    }
    if tty {
        eprint!("\r{}\r", " ".repeat(70));
    }
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut v = json!({"spec": r.spec, "key_bits": r.bits, "sector_size": a.sector_size, "threads": threads, "encrypt_mib_s": r.enc, "decrypt_mib_s": r.dec});
                match &r.kernel {
                    Some(Ok((e, d))) => {
                        v["kernel_encrypt_mib_s"] = json!(e);
                        v["kernel_decrypt_mib_s"] = json!(d);
                    }
                    Some(Err(why)) => v["kernel_not_measured"] = json!(why),
                    None => {}
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "# dmch reference engine, {}-byte sectors, {threads} thread(s)",
            a.sector_size
        );
        match &ctl {
            Some(Ok(_)) => println!(
                "# kernel: the host's dm-crypt target over a tmpfs loop device, O_DIRECT, all cores"
            ),
            Some(Err(why)) => println!("# kernel: not measured: {why}"),
            None => {}
        }
        print!(
            "{:>32} {:>8} {:>14} {:>14}",
            "spec", "key", "encryption", "decryption"
        );
        if ctl.is_some() {
            print!(" {:>14} {:>14}", "kernel enc", "kernel dec");
        }
        println!();
        for r in &rows {
            print!(
                "{:>32} {:>4}b {:>9.1} MiB/s {:>9.1} MiB/s",
                r.spec, r.bits, r.enc, r.dec
            );
            if ctl.is_some() {
                let (e, d) = r.kernel_cells();
                print!(" {e:>14} {d:>14}");
            }
            println!();
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
