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
    /// Guest kernel (repeatable): a Debian line (debian:5.10, 6.1, 6.12,
    /// 7.2, 7.3) or suite (debian:bullseye, trixie, bookworm-backports,
    /// sid, experimental: its newest linux-image); `dmch doctor` shows
    /// what each resolves to.
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
    /// A case with no result after this many seconds hangs the kernel: the
    /// guest is stopped, the case is a kernel fault, a new guest goes on.
    #[arg(long, value_name = "S", default_value_t = 120)]
    case_timeout: u64,
    /// Run this many guests (or host rigs) at once, the cases dealt
    /// between them (one vCPU each: up to the host's cores pays).
    #[arg(long, value_name = "N", default_value_t = 1)]
    jobs: usize,
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub k: KernelArgs,
    /// Run only this case, given as words (`cipher=... key=... len=...`,
    /// as a fuzzer's reproduce line prints it; repeatable).
    #[arg(long = "case", value_name = "WORDS")]
    cases: Vec<String>,
    /// Also replay the regression cases in FILE (repeatable); the ones
    /// built into dmch always run with the matrix.
    #[arg(long = "regressions", value_name = "FILE")]
    regressions: Vec<PathBuf>,
    #[command(flatten)]
    out: super::verdicts::ReportArgs,
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
pub struct ScenarioArgs {
    #[command(flatten)]
    sources: KernelSources,
    /// LUKS images made elsewhere (by cryptsetup): NAME.img with its
    /// passphrase in NAME.pass; the kernel opens each in the guest.
    #[arg(long, value_name = "DIR")]
    luks_images: Option<PathBuf>,
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
            case_timeout: 120,
            jobs: 1,
        }
    }

    /// The shard asked for, checked.
    pub fn shard(&self) -> Result<Option<(usize, usize)>> {
        Ok(self.shard.as_deref().map(run::parse_shard).transpose()?)
    }

    /// `--jobs`, checked.
    pub fn jobs(&self) -> Result<usize> {
        if !(1..=64).contains(&self.jobs) {
            bail!("--jobs {} is not between 1 and 64", self.jobs);
        }
        Ok(self.jobs)
    }

    /// The kernels these arguments name (guest kernels are fetched here).
    pub fn targets(&self) -> Result<Vec<run::Target>> {
        Ok(run::targets(backend(self.backend), &self.sources.list())?)
    }

    /// How long a guest may run, and each case in it.
    pub fn limits(&self) -> dmcrypt_harness::vm::Limits {
        dmcrypt_harness::vm::Limits {
            per_case: Duration::from_secs(self.case_timeout.max(1)),
            ..dmcrypt_harness::vm::Limits::new(Duration::from_secs(self.timeout))
        }
    }

    /// `--only`, for callers that filter their own cases.
    pub fn only(&self) -> &[String] {
        &self.only
    }

    /// The arguments that name the `i`-th kernel of [`KernelArgs::targets`]
    /// again, for reproduce lines.
    pub fn target_args(&self, i: usize) -> String {
        match self.sources.list().get(i) {
            Some(s) if self.backend != Backend::Host => s.to_args(),
            _ => "--backend host".into(),
        }
    }
}

/// Today's date (UTC), YYYY-MM-DD, for records of what a kernel did.
pub fn utc_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days since 1970-01-01 to a civil date (Hinnant's algorithm).
    let z = (secs / 86400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The one line a run says when KVM is given up for TCG.
pub fn note(n: &str) {
    eprintln!("dmch: {n}");
}

/// Run `cases` on every requested kernel.
pub fn run_cases(a: &KernelArgs, cases: &[Case]) -> Result<Vec<KernelRun>> {
    let jobs = a.jobs()?;
    let mut runs = Vec::new();
    for t in a.targets()? {
        runs.push(t.run(cases, a.limits(), jobs, &mut note)?);
    }
    Ok(runs)
}

/// Run the (selected) matrix on every requested kernel, with the built-in
/// regressions when `regressions` says so.
pub fn run_kernels(a: &KernelArgs, regressions: bool) -> Result<(Vec<Case>, Vec<KernelRun>)> {
    let extra = if regressions {
        builtin_regressions()
    } else {
        Vec::new()
    };
    let cases = run::select(a.shard()?, &a.only, &extra)?;
    let runs = run_cases(a, &cases)?;
    Ok((cases, runs))
}

fn builtin_regressions() -> Vec<Case> {
    oracle::regressions::builtin()
        .into_iter()
        .map(|r| r.case)
        .collect()
}

/// The cases `kernel check` runs: the `--case`s alone when given, else the
/// matrix and every regression (built in and from `--regressions`).
fn check_cases(a: &CheckArgs) -> Result<Vec<Case>> {
    if !a.cases.is_empty() {
        return a
            .cases
            .iter()
            .enumerate()
            .map(|(i, w)| {
                Case::from_words(w, &format!("case-{}", i + 1))
                    .map_err(|e| anyhow::anyhow!("--case: {e}"))
            })
            .collect();
    }
    let mut extra = builtin_regressions();
    for f in &a.regressions {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading the regression file {}", f.display()))?;
        let file = oracle::regressions::parse(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        extra.extend(file.into_iter().map(|r| r.case));
    }
    Ok(run::select(a.k.shard()?, &a.k.only, &extra)?)
}

pub fn check(a: CheckArgs) -> Result<ExitCode> {
    let cases = check_cases(&a)?;
    let runs = run_cases(&a.k, &cases)?;
    Ok(report(&cases, &runs, &a.out)?.0)
}

fn backend(b: Backend) -> RunBackend {
    match b {
        Backend::Auto => RunBackend::Auto,
        Backend::Host => RunBackend::Host,
        Backend::Vm => RunBackend::Vm,
    }
}

/// The verdicts on `runs`, printed as text or JSON (and the reports
/// `out` asks for written).
pub fn report(
    cases: &[Case],
    runs: &[KernelRun],
    out: &super::verdicts::ReportArgs,
) -> Result<(ExitCode, oracle::Evaluation)> {
    let fault = run::fault_from_env()?;
    if fault != oracle::Fault::None {
        eprintln!("dmch: warning: DMCH_TEST_FAULT: the reference is broken on purpose");
    }
    let e = oracle::evaluate(cases, runs, fault, &out.known()?);
    out.write(&e)?;
    if out.json {
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
    let extra = match &a.luks_images {
        Some(d) => luks_images(d)?,
        None => Vec::new(),
    };
    let mut failed = false;
    for s in &sources {
        let k = run::prepare(s)?;
        let r = run::boot(
            &k,
            &[],
            true,
            &extra,
            Duration::from_secs(a.timeout),
            &mut note,
        )?;
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

/// The *.img and *.pass files of `dir`, for the guest's `luks/`: at most
/// 256 MiB in all (they travel in the initramfs).
fn luks_images(dir: &std::path::Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut total = 0u64;
    let rd = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !(name.ends_with(".img") || name.ends_with(".pass")) || !p.is_file() {
            continue;
        }
        total += std::fs::metadata(&p)?.len();
        if total > 256 << 20 {
            bail!(
                "{}: over 256 MiB of images; they travel in the guest's initramfs",
                dir.display()
            );
        }
        let data = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        out.push((format!("{}/{name}", dmcrypt_harness::guest::LUKS_DIR), data));
    }
    Ok(out)
}

pub fn generate(a: GenerateArgs) -> Result<ExitCode> {
    let (cases, runs) = run_kernels(&a.k, false)?;
    let date = utc_date();
    for r in &runs {
        let path = a
            .out
            .join(dmcrypt_harness::oracle::kernel_vectors::kernel_file_name(
                &r.release,
            ));
        let (text, n) = dmcrypt_harness::oracle::kernel_vectors::kernel_vectors(r, &cases, &date);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("{}: {n} vectors from {}", path.display(), r.release);
    }
    Ok(ExitCode::SUCCESS)
}
