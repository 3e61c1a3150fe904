//! `dmch kernel check` and `dmch vectors generate`: the real kernel as
//! oracle, on the host (device-mapper and root) or in a QEMU guest.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use dmcrypt_harness::oracle::{self, Case, KernelResult, Verdict, matrix};
use dmcrypt_harness::sys;
use dmcrypt_harness::vm::{self, KernelSource, PreparedKernel};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The host when it has device-mapper and root, else a QEMU guest.
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

/// One kernel's run.
pub struct KernelRun {
    pub label: String,
    pub release: String,
    pub backend: String,
    pub elapsed: Duration,
    pub results: BTreeMap<String, KernelResult>,
    /// Algorithms the kernel has, when known (guests report /proc/crypto).
    pub algorithms: Option<std::collections::BTreeSet<String>>,
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

fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let (k, n) = s.split_once('/').context("--shard takes K/N, e.g. 1/4")?;
    let (k, n): (usize, usize) = (
        k.parse().context("--shard K")?,
        n.parse().context("--shard N")?,
    );
    if n == 0 || k == 0 || k > n {
        bail!("--shard {s}: K must be between 1 and N");
    }
    Ok((k, n))
}

/// The host's device-mapper, asked of the kernel (see `kernel::probe`).
pub fn host_has_dm() -> Result<(), String> {
    sys::probe::host_dm().map(|_| ()).map_err(|e| e.0)
}

fn run_host(cases: &[Case]) -> Result<KernelRun> {
    dmcrypt_harness::interrupt::install();
    let ctl = sys::probe::control().map_err(|why| anyhow::anyhow!("host backend: {why}"))?;
    let dir = tempfile::tempdir().context("creating a directory for backing files")?;
    let started = Instant::now();
    let mut results = BTreeMap::new();
    let pid = std::process::id();
    let rig = oracle::Rig::new(dir.path(), "backing", cases).context("setting up a loop device")?;
    for (i, c) in cases.iter().enumerate() {
        if dmcrypt_harness::interrupt::requested() {
            // Dropping the rig detaches the loop device.
            bail!("interrupted after {i} cases; every mapping and loop device was removed");
        }
        // Names unique per process, so parallel runs never collide.
        let r = rig.run(&ctl, c, &format!("dmch-{pid}-{i}"));
        results.insert(c.id.clone(), r);
    }
    drop(rig);
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    Ok(KernelRun {
        label: "host".into(),
        release: release.trim().into(),
        backend: "host".into(),
        elapsed: started.elapsed(),
        results,
        algorithms: None,
    })
}

/// Boot a guest, telling the user once if KVM was given up for TCG.
fn boot(k: &PreparedKernel, initrd: &Path, timeout: u64) -> Result<vm::GuestRun> {
    dmcrypt_harness::interrupt::install();
    let run = vm::run(k, initrd, Duration::from_secs(timeout))
        .with_context(|| format!("booting {}", k.label))?;
    if let Some(note) = &run.accel_note {
        eprintln!("dmch: {note}");
    }
    Ok(run)
}

fn run_vm(k: &PreparedKernel, cases: &[Case], timeout: u64) -> Result<KernelRun> {
    let dir = vm::work_dir()?;
    let initrd = dir.path().join("initrd.cpio");
    vm::build_initramfs(k, cases, &initrd)
        .with_context(|| format!("building the initramfs for {}", k.label))?;
    // For debugging a guest by hand: keep a copy of its initramfs.
    if let Some(keep) = std::env::var_os("DMCH_KEEP_INITRD") {
        std::fs::copy(&initrd, &keep).context("copying the initramfs to DMCH_KEEP_INITRD")?;
    }
    let run = boot(k, &initrd, timeout)?;
    Ok(KernelRun {
        label: k.label.clone(),
        release: run.kernel_release,
        backend: format!("vm ({})", run.accel.as_str()),
        elapsed: run.elapsed,
        results: run.results,
        algorithms: Some(
            run.algorithms
                .into_iter()
                .chain(k.crypto_templates())
                .collect(),
        ),
    })
}

/// Run the (sharded) matrix on every requested kernel.
pub fn run_kernels(a: &KernelArgs) -> Result<(Vec<Case>, Vec<KernelRun>)> {
    let mut cases = matrix::cases();
    if let Some(s) = &a.shard {
        let (k, n) = parse_shard(s)?;
        cases = matrix::shard(cases, k, n);
    }
    if !a.only.is_empty() {
        cases.retain(|c| a.only.iter().any(|t| c.id.contains(t.as_str())));
        if cases.is_empty() {
            bail!("no case id contains {}", a.only.join(" or "));
        }
    }
    let sources = a.sources.list();
    let backend = match a.backend {
        Backend::Auto if sources.is_empty() && host_has_dm().is_ok() => Backend::Host,
        Backend::Auto => Backend::Vm,
        b => b,
    };
    let mut runs = Vec::new();
    match backend {
        Backend::Host => {
            host_has_dm().map_err(|why| anyhow::anyhow!("host backend unavailable: {why}"))?;
            runs.push(run_host(&cases)?);
        }
        _ => {
            if sources.is_empty() {
                bail!(
                    "the host has no usable device-mapper ({}); name a guest kernel, e.g. --kernel debian:6.12",
                    host_has_dm().err().unwrap_or_default()
                );
            }
            for s in &sources {
                let k = vm::prepare(s).with_context(|| format!("preparing kernel {s:?}"))?;
                runs.push(run_vm(&k, &cases, a.timeout)?);
            }
        }
    }
    Ok((cases, runs))
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The test-only fault selected by DMCH_TEST_FAULT, announced loudly.
fn fault() -> oracle::Fault {
    match std::env::var("DMCH_TEST_FAULT").as_deref() {
        Ok("byteswap-iv") => {
            eprintln!(
                "dmch: warning: DMCH_TEST_FAULT=byteswap-iv: the reference is broken on purpose"
            );
            oracle::Fault::ByteswapIv
        }
        _ => oracle::Fault::None,
    }
}

/// The comparison of every run with the reference, rendered three ways.
pub struct Evaluation {
    pub text: String,
    pub json: serde_json::Value,
    pub junit: String,
    pub failed: bool,
}

pub fn evaluate(cases: &[Case], runs: &[KernelRun], fault: oracle::Fault) -> Evaluation {
    use std::fmt::Write;
    let mut text = String::new();
    let mut any_fail = false;
    let mut reports = Vec::new();
    let mut junit = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for run in runs {
        let verdicts: Vec<(&Case, Verdict)> = cases
            .iter()
            .map(|c| {
                let v = match run.results.get(&c.id) {
                    Some(r) => oracle::compare(c, r, run.algorithms.as_ref(), fault),
                    None => Verdict::Fail("no result from the kernel side".into()),
                };
                (c, v)
            })
            .collect();
        let count = |f: &dyn Fn(&Verdict) -> bool| verdicts.iter().filter(|v| f(&v.1)).count();
        let passed = count(&|v| *v == Verdict::Pass);
        let rejected = count(&|v| *v == Verdict::RejectedAsExpected);
        let unavailable = count(&|v| matches!(v, Verdict::Unavailable(_)));
        let failed = verdicts.len() - passed - rejected - unavailable;
        any_fail |= failed > 0;
        let secs = run.elapsed.as_secs_f64();
        let rate = cases.len() as f64 / secs.max(0.001);
        let _ = writeln!(
            text,
            "kernel {} [{}], backend {}",
            run.release, run.label, run.backend
        );
        let _ = writeln!(
            text,
            "  cases {:>5}  passed {passed:>5}  rejected as expected {rejected:>4}  not in this kernel {unavailable:>3}  failed {failed:>4}  ({secs:.1} s, {rate:.1} cases/s)",
            cases.len()
        );
        let mut missing: Vec<&str> = verdicts
            .iter()
            .filter_map(|v| match &v.1 {
                Verdict::Unavailable(w) => Some(w.as_str()),
                _ => None,
            })
            .collect();
        missing.sort();
        missing.dedup();
        for m in missing {
            let _ = writeln!(text, "  skipped, {m}");
        }
        for (c, v) in &verdicts {
            if let Verdict::Fail(why) = v {
                let table = c.params("<dev>").replace(&c.key_hex, "<key>");
                let _ = writeln!(text, "  FAIL {}: table '{table}': {why}", c.id);
            }
        }
        let _ = writeln!(
            junit,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" skipped=\"{unavailable}\" time=\"{secs:.3}\">",
            xml(&run.release),
            cases.len()
        );
        for (c, v) in &verdicts {
            let body = match v {
                Verdict::Fail(why) => format!("<failure message=\"{}\"/>", xml(why)),
                Verdict::Unavailable(why) => format!("<skipped message=\"{}\"/>", xml(why)),
                _ => String::new(),
            };
            let _ = writeln!(
                junit,
                "    <testcase classname=\"{}\" name=\"{}\">{body}</testcase>",
                xml(&run.release),
                xml(&c.id)
            );
        }
        junit.push_str("  </testsuite>\n");
        reports.push(json!({
            "kernel": run.release, "source": run.label, "backend": run.backend,
            "seconds": secs, "cases": cases.len(), "passed": passed,
            "rejected_as_expected": rejected, "unavailable": unavailable, "failed": failed,
            "failures": verdicts.iter().filter_map(|(c, v)| match v {
                Verdict::Fail(w) => Some(json!({"id": c.id, "reason": w})), _ => None }).collect::<Vec<_>>(),
        }));
    }
    junit.push_str("</testsuites>\n");
    Evaluation {
        text,
        json: json!({"kernels": reports, "ok": !any_fail}),
        junit,
        failed: any_fail,
    }
}

pub fn check(a: CheckArgs) -> Result<ExitCode> {
    let fault = fault();
    let (cases, runs) = run_kernels(&a.k)?;
    let e = evaluate(&cases, &runs, fault);
    if let Some(f) = &a.junit {
        std::fs::write(f, &e.junit).with_context(|| format!("writing {}", f.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&e.json)?);
    } else {
        print!("{}", e.text);
    }
    Ok(if e.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Args)]
pub struct ScenarioArgs {
    #[command(flatten)]
    sources: KernelSources,
    #[arg(long, value_name = "S", default_value_t = 600)]
    timeout: u64,
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
        let k = vm::prepare(s).with_context(|| format!("preparing kernel {s:?}"))?;
        let dir = vm::work_dir()?;
        let initrd = dir.path().join("initrd.cpio");
        vm::build_initramfs_with(&k, &[], true, &initrd).context("building the initramfs")?;
        let run = boot(&k, &initrd, a.timeout)?;
        println!(
            "setups on kernel {} [{}], {:.1} s",
            run.kernel_release,
            k.label,
            run.elapsed.as_secs_f64()
        );
        if run.checks.is_empty() {
            failed = true;
            println!("  FAIL: the guest reported no checks");
        }
        for (name, ok, detail) in &run.checks {
            failed |= !ok;
            if *ok {
                println!("  ok    {name}");
            } else {
                println!("  FAIL  {name}: {detail}");
            }
        }
        let n = run.checks.iter().filter(|c| c.1).count();
        println!("  {} passed, {} failed", n, run.checks.len() - n);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Long hex values continue on indented lines of 64 digits (vectors/README.md).
fn wrap_hex(h: &str) -> String {
    let parts: Vec<&str> = h
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    parts.join("\n  ")
}

pub fn generate(a: GenerateArgs) -> Result<ExitCode> {
    let (cases, runs) = run_kernels(&a.k)?;
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    for run in &runs {
        let series = run.release.split('.').take(2).collect::<Vec<_>>().join(".");
        let path = a.out.join(format!("kernel-{series}.vec"));
        let mut out = format!(
            "# Ciphertexts produced by the Linux {} dm-crypt target\n# Written by `dmch vectors generate`; format: vectors/README.md\n\n[file]\nsource: Linux {} ({}), dm-crypt target, {}\nretrieved: {date}\nsemantics: each plaintext was written through a fresh crypt mapping over a loop device and the ciphertext read from the backing file; a second fresh mapping read it back to the plaintext. Digests are of the whole ciphertext.\n\n",
            run.release, run.release, run.label, run.backend
        );
        let mut n = 0;
        for c in &cases {
            let Some(KernelResult::Data {
                ct_sha256,
                pt_sha256,
                ..
            }) = run.results.get(&c.id)
            else {
                continue;
            };
            if *pt_sha256 != dmcrypt_harness::hash::sha256(&c.plaintext()) {
                continue;
            }
            n += 1;
            out.push_str(&format!(
                "[vector {}]\nsource: Linux {} dm-crypt, case {}\nproduced: kernel-produced on {date} ({}); read back by the kernel\nkind: sector\nspec: {}\nkey: {}\niv-offset: {}\nsector-size: {}\n{}start-sector: 0\nplaintext: counter {}\nciphertext-sha256: {}\n\n",
                c.id, run.release, c.id, run.backend, c.cipher, wrap_hex(&c.key_hex), c.iv_offset, c.sector_size,
                if c.iv_large_sectors { "flags: iv_large_sectors\n" } else { "" },
                c.len, hex::encode(ct_sha256)
            ));
        }
        std::fs::write(&path, out.trim_end().to_string() + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("{}: {n} vectors from {}", path.display(), run.release);
    }
    Ok(ExitCode::SUCCESS)
}
