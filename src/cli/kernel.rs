//! `dmch kernel check|setups` and `dmch vectors generate`: the real kernel
//! as oracle, on the host (device-mapper) or in QEMU guests. The runner and
//! the reports live in `oracle`; this file parses and prints.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use dmcrypt_harness::oracle::run::{self, Backend as RunBackend, KernelRun};
use dmcrypt_harness::oracle::{self, Case};
use dmcrypt_harness::vm::KernelSource;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The host when its kernel answers as device-mapper, else a QEMU guest.
    Auto,
    Host,
    Vm,
}

/// Where guest kernels come from (repeatable, in any mix).
#[derive(Args, Clone, Default)]
pub struct KernelSources {
    /// Guest kernel: debian:5.10, debian:6.1 or debian:6.12 (repeatable).
    #[arg(long = "kernel", value_name = "SOURCE")]
    kernels: Vec<KernelSource>,
    /// A linux-image .deb to boot (repeatable).
    #[arg(long = "kernel-deb", value_name = "FILE")]
    debs: Vec<PathBuf>,
    /// Your own kernel image (with --modules).
    #[arg(long, value_name = "BZIMAGE", requires = "modules")]
    kernel_image: Option<PathBuf>,
    /// lib/modules/<version> of --kernel-image (after modules_install).
    #[arg(long, value_name = "DIR", requires = "kernel_image")]
    modules: Option<PathBuf>,
}

impl KernelSources {
    /// Every source named, in order: Debian kernels, .debs, an own image.
    pub fn list(&self) -> Vec<KernelSource> {
        let mut sources = self.kernels.clone();
        sources.extend(self.debs.iter().cloned().map(KernelSource::Deb));
        if let (Some(b), Some(m)) = (&self.kernel_image, &self.modules) {
            sources.push(KernelSource::Image {
                bzimage: b.clone(),
                modules: m.clone(),
            });
        }
        sources
    }
}

#[derive(Args, Clone)]
pub struct KernelArgs {
    #[arg(long, value_enum, default_value = "auto")]
    backend: Backend,
    #[command(flatten)]
    sources: KernelSources,
    /// Run only shard K of N of the matrix (e.g. 2/4).
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Run only the cases whose id contains TEXT (repeatable: any of them).
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,
    /// Give up on a guest after this many seconds.
    #[arg(long, value_name = "S", default_value_t = 600)]
    timeout: u64,
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub k: KernelArgs,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Also write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    k: KernelArgs,
    /// Directory for the vector files.
    #[arg(long, value_name = "DIR", default_value = "vectors")]
    out: PathBuf,
}

#[derive(Args)]
pub struct FuzzArgs {
    #[command(flatten)]
    k: KernelArgs,
    /// The generator's seed: the same seed gives the same cases everywhere.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many cases.
    #[arg(long, default_value_t = 2000)]
    cases: usize,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Also write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

#[derive(Args)]
pub struct ScenarioArgs {
    #[command(flatten)]
    sources: KernelSources,
    #[arg(long, value_name = "S", default_value_t = 600)]
    timeout: u64,
}

impl KernelArgs {
    /// The arguments `dmch check` uses for its kernel part.
    pub fn for_check(kernels: Vec<KernelSource>) -> Self {
        KernelArgs {
            backend: Backend::Auto,
            sources: KernelSources {
                kernels,
                ..Default::default()
            },
            shard: None,
            only: Vec::new(),
            timeout: 600,
        }
    }
}

/// The one line a run says when KVM is given up for TCG.
fn note(n: &str) {
    eprintln!("dmch: {n}");
}

/// Run the (selected) matrix on every requested kernel.
pub fn run_kernels(a: &KernelArgs) -> Result<(Vec<Case>, Vec<KernelRun>)> {
    let shard = a.shard.as_deref().map(run::parse_shard).transpose()?;
    let cases = run::select(shard, &a.only)?;
    let runs = run::run(
        backend(a.backend),
        &a.sources.list(),
        &cases,
        Duration::from_secs(a.timeout),
        &mut note,
    )?;
    Ok((cases, runs))
}

pub fn check(a: CheckArgs) -> Result<ExitCode> {
    let (cases, runs) = run_kernels(&a.k)?;
    Ok(report(&cases, &runs, a.json, a.junit.as_deref())?.0)
}

/// Seeded random cases through the kernel and the reference.
pub fn fuzz(a: FuzzArgs) -> Result<ExitCode> {
    if a.cases == 0 || a.cases > 1_000_000 {
        bail!("--cases {} is not between 1 and 1000000", a.cases);
    }
    let shard = a.k.shard.as_deref().map(run::parse_shard).transpose()?;
    let mut cases = oracle::fuzz::generate(a.seed, a.cases);
    if let Some((k, n)) = shard {
        cases = oracle::matrix::shard(cases, k, n);
    }
    if !a.k.only.is_empty() {
        cases.retain(|c| a.k.only.contains(&c.id));
        if cases.is_empty() {
            bail!(
                "no case of seed {} has id {}",
                a.seed,
                a.k.only.join(" or ")
            );
        }
    }
    let runs = run::run(
        backend(a.k.backend),
        &a.k.sources.list(),
        &cases,
        Duration::from_secs(a.k.timeout),
        &mut note,
    )?;
    let (code, e) = report(&cases, &runs, a.json, a.junit.as_deref())?;
    if e.failed && !a.json {
        // One command per failing case, to paste.
        let mut ids: Vec<&str> = e.json["kernels"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|k| k["failures"].as_array().into_iter().flatten())
            .filter_map(|f| f["id"].as_str())
            .collect();
        ids.sort();
        ids.dedup();
        for id in ids.iter().take(10) {
            println!(
                "  reproduce: dmch kernel fuzz --seed {} --cases {} --only {id} --kernel ...",
                a.seed, a.cases
            );
        }
    }
    Ok(code)
}

fn backend(b: Backend) -> RunBackend {
    match b {
        Backend::Auto => RunBackend::Auto,
        Backend::Host => RunBackend::Host,
        Backend::Vm => RunBackend::Vm,
    }
}

/// The verdicts on `runs`, printed as text or JSON (and JUnit when asked).
fn report(
    cases: &[Case],
    runs: &[KernelRun],
    json: bool,
    junit: Option<&std::path::Path>,
) -> Result<(ExitCode, oracle::Evaluation)> {
    let fault = run::fault_from_env();
    if fault != oracle::Fault::None {
        eprintln!("dmch: warning: DMCH_TEST_FAULT: the reference is broken on purpose");
    }
    let e = oracle::evaluate(cases, runs, fault);
    if let Some(f) = junit {
        std::fs::write(f, &e.junit).with_context(|| format!("writing {}", f.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&e.json)?);
    } else {
        print!("{}", e.text);
    }
    let code = if e.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    };
    Ok((code, e))
}

/// The real-setup scenario (create, remove, reload, resize, status, swap,
/// failure paths) run by `dmch` itself inside a guest.
pub fn setups(a: ScenarioArgs) -> Result<ExitCode> {
    let sources = a.sources.list();
    if sources.is_empty() {
        bail!(
            "name a guest kernel: --kernel debian:6.12, --kernel-deb FILE or --kernel-image BZIMAGE --modules DIR"
        );
    }
    let mut failed = false;
    for s in &sources {
        let k = run::prepare(s)?;
        let r = run::boot(&k, &[], true, Duration::from_secs(a.timeout), &mut note)?;
        println!(
            "setups on kernel {} [{}], {:.1} s",
            r.kernel_release,
            k.label,
            r.elapsed.as_secs_f64()
        );
        if r.checks.is_empty() {
            failed = true;
            println!("  FAIL: the guest reported no checks");
        }
        for (name, ok, detail) in &r.checks {
            failed |= !ok;
            if *ok {
                println!("  ok    {name}");
            } else {
                println!("  FAIL  {name}: {detail}");
            }
        }
        let n = r.checks.iter().filter(|c| c.1).count();
        println!("  {} passed, {} failed", n, r.checks.len() - n);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn generate(a: GenerateArgs) -> Result<ExitCode> {
    let (cases, runs) = run_kernels(&a.k)?;
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    for r in &runs {
        let path = a
            .out
            .join(dmcrypt_harness::vectors::kernel_file_name(&r.release));
        let (text, n) = dmcrypt_harness::vectors::kernel_vectors(r, &cases, &date);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("{}: {n} vectors from {}", path.display(), r.release);
    }
    Ok(ExitCode::SUCCESS)
}
