//! `dmch bench --kernel [SOURCE]...`: the kernel benchmark matrix on the
//! host or in guests, with the reference engine's figure beside each spec.
//! The plan, the runner and the report live in `kbench`; this file parses,
//! boots and prints.

use super::bench::{BenchArgs, parse_specs};
use anyhow::{Context, Result, bail};
use clap::Args;
use dmcrypt_harness::cipher::Direction;
use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::kbench::backing::{Backing, host_loader};
use dmcrypt_harness::kbench::plan::{FlagSet, Plan, SpecKey, Workload};
use dmcrypt_harness::kbench::report::{self, KernelRun, Reference};
use dmcrypt_harness::key::Key;
use dmcrypt_harness::oracle::run as orun;
use dmcrypt_harness::spec::CipherSpec;
use dmcrypt_harness::throughput::measure;
use dmcrypt_harness::vm::KernelSource;
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;

/// The specs measured when none is named: the two a LUKS volume most often has.
const DEFAULT_SPECS: &[(&str, usize)] = &[("aes-xts-plain64", 512), ("aes-cbc-essiv:sha256", 256)];

/// The matrix options of `dmch bench --kernel`.
#[derive(Args, Clone)]
pub struct MatrixArgs {
    /// Flag sets, comma-separated (none, no_read_workqueue,
    /// no_write_workqueue, both, same_cpu_crypt, submit_from_crypt_cpus,
    /// high_priority; default: all).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    flags: Vec<String>,
    /// Sector sizes, comma-separated (default 512,4096).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    sector_sizes: Vec<u32>,
    /// A workload: SIZE-seq|rand[:qd=N][:jobs=N] (repeatable; default
    /// 4k-rand:qd=1, 4k-rand:qd=32, 128k-seq:qd=8, 1m-seq:qd=4).
    #[arg(long = "workload", value_name = "W")]
    workloads: Vec<String>,
    /// Size of the RAM disk under the mapping, MiB.
    #[arg(long, value_name = "MIB", default_value_t = 128)]
    device_mib: u32,
    /// vCPUs per guest (default 1: under TCG more only compete for the
    /// host's cores; under KVM name the CPUs to measure with).
    #[arg(long, value_name = "N", default_value_t = 1)]
    guest_cpus: usize,
    /// Guests at once (default 1: figures undisturbed by each other).
    #[arg(long, value_name = "N", default_value_t = 1)]
    guests: usize,
    /// Give up on a guest after this many seconds (default: from the plan).
    #[arg(long, value_name = "S")]
    timeout: Option<u64>,
}

enum Target {
    Host,
    Guest(KernelSource, String),
}

fn plan_of(a: &BenchArgs) -> Result<Plan> {
    let specs: Vec<SpecKey> = if a.specs.is_empty() {
        DEFAULT_SPECS
            .iter()
            .map(|(s, b)| SpecKey {
                spec: s.to_string(),
                bits: *b,
            })
            .collect()
    } else {
        parse_specs(&a.specs)?
            .into_iter()
            .map(|(spec, bits)| SpecKey { spec, bits })
            .collect()
    };
    let m = &a.matrix;
    let mut plan = Plan::with_defaults(specs);
    if !m.flags.is_empty() {
        plan.flags = m
            .flags
            .iter()
            .map(|f| {
                FlagSet::parse(f).with_context(|| {
                    format!(
                        "--flags {f}: not one of {}, both",
                        FlagSet::ALL.map(|f| f.name()).join(", ")
                    )
                })
            })
            .collect::<Result<_>>()?;
    }
    if !m.sector_sizes.is_empty() {
        plan.sector_sizes = m.sector_sizes.clone();
    }
    if !m.workloads.is_empty() {
        plan.workloads = m
            .workloads
            .iter()
            .map(|w| Workload::parse(w).map_err(anyhow::Error::msg))
            .collect::<Result<_>>()?;
    }
    plan.seconds = a.seconds;
    plan.device_mib = m.device_mib;
    plan.check().map_err(anyhow::Error::msg)?;
    Ok(plan)
}

/// The reference engine for each spec and sector size, on this machine.
fn reference(plan: &Plan) -> Result<Vec<Reference>> {
    let mut out = Vec::new();
    let mut buf = vec![0x5au8; 1 << 20];
    let secs = plan.seconds.min(1.0);
    for s in &plan.specs {
        let spec = CipherSpec::parse(&s.spec)?;
        let key = dmcrypt_harness::kbench::run::bench_key(s.bits);
        for &ss in &plan.sector_sizes {
            let g = Geometry {
                sector_size: ss,
                ..Geometry::default()
            };
            let e = SectorCrypt::new(&spec, &Key::from_bytes(&key), g)
                .with_context(|| format!("{} with a {}-bit key", s.spec, s.bits))?;
            out.push(Reference {
                spec: s.spec.clone(),
                bits: s.bits,
                sector_size: ss,
                encrypt: measure(&e, &mut buf, Direction::Encrypt, secs)?,
                decrypt: measure(&e, &mut buf, Direction::Decrypt, secs)?,
            });
        }
    }
    Ok(out)
}

fn host_run(plan: &Plan) -> KernelRun {
    let mut run = KernelRun {
        label: "host".into(),
        accel: None,
        records: Vec::new(),
        problem: None,
    };
    let ctl = match dmcrypt_harness::sys::probe::control() {
        Ok(c) => c,
        Err(e) => {
            run.problem = Some(format!("not measured: {}", e.0));
            return run;
        }
    };
    let backing = match Backing::prepare(plan.device_mib, &host_loader) {
        Ok(b) => b,
        Err(e) => {
            run.problem = Some(format!("no backing device: {e}"));
            return run;
        }
    };
    let records = &mut run.records;
    dmcrypt_harness::kbench::run::run(plan, &ctl, &backing, &mut |v| records.push(v));
    if dmcrypt_harness::interrupt::requested() {
        run.problem = Some("interrupted: the points measured until then are shown".into());
    }
    run
}

fn guest_run(plan: &Plan, source: &KernelSource, label: &str, timeout: Duration) -> KernelRun {
    let mut run = KernelRun {
        label: label.into(),
        accel: None,
        records: Vec::new(),
        problem: None,
    };
    let result = (|| -> Result<()> {
        let k = orun::prepare(source)?;
        let mut extra = vec![(
            dmcrypt_harness::kbench::GUEST_PLAN.to_string(),
            plan.to_json().to_string().into_bytes(),
        )];
        if let Some(brd) = dmcrypt_harness::vm::module_bytes(&k, "brd")? {
            extra.push((dmcrypt_harness::kbench::GUEST_BRD.to_string(), brd));
        }
        let g = orun::boot(&k, &[], false, &extra, timeout, &mut |n| {
            eprintln!("dmch bench: {n}")
        })?;
        run.accel = Some(g.accel.as_str().to_string());
        for line in &g.bench {
            run.records.push(serde_json::from_str::<Value>(line)?);
        }
        Ok(())
    })();
    if let Err(e) = result {
        run.problem = Some(format!("{e:#}"));
    }
    run
}

pub fn run(a: &BenchArgs) -> Result<ExitCode> {
    let plan = plan_of(a)?;
    // Ctrl-C ends the host run between points (its mapping, loop device
    // and brd removed) and stops guests; the report shows what was measured.
    dmcrypt_harness::interrupt::install();
    let mut targets = Vec::new();
    for k in &a.kernel {
        targets.push(if k == "host" {
            Target::Host
        } else {
            let s: KernelSource = k
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--kernel {k}: {e}"))?;
            Target::Guest(s, k.clone())
        });
    }
    if a.matrix.guests == 0 || a.matrix.guests > 16 {
        bail!("--guests {} is not 1..=16", a.matrix.guests);
    }
    if !(1..=64).contains(&a.matrix.guest_cpus) {
        bail!("--guest-cpus {} is not 1..=64", a.matrix.guest_cpus);
    }
    // A two-vCPU TCG guest beside another on a 2-core host once starved
    // its own timer (an RCU stall, the guest hung): one vCPU by default.
    dmcrypt_harness::vm::set_guest_cpus(a.matrix.guest_cpus);
    // Each point: its seconds, draining, and a mapping now and then; a
    // guest under TCG boots in about 10 s.
    let points = plan.points().len() as u64;
    let timeout = Duration::from_secs(
        a.matrix
            .timeout
            .unwrap_or(120 + points * (plan.seconds.ceil() as u64 * 2 + 2)),
    );
    eprintln!(
        "dmch bench --kernel: {} points per kernel ({} specs x {} sector sizes x {} flag sets x {} workloads x 2, and the raw device), {} s each",
        points,
        plan.specs.len(),
        plan.sector_sizes.len(),
        plan.flags.len(),
        plan.workloads.len(),
        plan.seconds
    );
    let reference = reference(&plan)?;
    let mut runs: Vec<Option<KernelRun>> = targets.iter().map(|_| None).collect();
    // Guests (and the host) in batches of --guests.
    for chunk in (0..targets.len())
        .collect::<Vec<_>>()
        .chunks(a.matrix.guests)
    {
        let done: Vec<(usize, KernelRun)> = std::thread::scope(|s| {
            let hs: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let t = &targets[i];
                    let plan = &plan;
                    s.spawn(move || {
                        (
                            i,
                            match t {
                                Target::Host => host_run(plan),
                                Target::Guest(src, label) => guest_run(plan, src, label, timeout),
                            },
                        )
                    })
                })
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (i, r) in done {
            runs[i] = Some(r);
        }
    }
    let runs: Vec<KernelRun> = runs.into_iter().flatten().collect();
    let json = report::to_json(&runs, &reference);
    report::validate(&json)
        .map_err(|e| anyhow::anyhow!("the report breaks its own schema: {e}"))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{}", report::table(&runs, &reference));
    }
    if let Some(p) = &a.plot {
        std::fs::write(p, report::svg_throughput(&runs))
            .with_context(|| format!("writing {}", p.display()))?;
        let lat = latency_path(p);
        std::fs::write(&lat, report::svg_latency(&runs))
            .with_context(|| format!("writing {}", lat.display()))?;
        eprintln!(
            "dmch bench: charts in {} and {}",
            p.display(),
            lat.display()
        );
    }
    let mut failed = false;
    for (run, j) in runs
        .iter()
        .zip(json["runs"].as_array().into_iter().flatten())
    {
        if let Some(p) = &run.problem {
            eprintln!("dmch bench: {}: {p}", run.label);
            failed = true;
        }
        let errors = ["raw", "crypt"]
            .iter()
            .flat_map(|k| j[*k].as_array().into_iter().flatten())
            .filter(|p| !p["error"].is_null())
            .count();
        let missing = j["missing_points"].as_u64().unwrap_or(0);
        if errors > 0 || missing > 0 {
            eprintln!(
                "dmch bench: {}: {errors} points failed, {missing} lost",
                run.label
            );
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `chart.svg` -> `chart-latency.svg`.
fn latency_path(p: &std::path::Path) -> std::path::PathBuf {
    let stem = p.file_stem().unwrap_or_default().to_string_lossy();
    p.with_file_name(format!("{stem}-latency.svg"))
}
