//! `dmch check`: every known vector through the reference, then (where a
//! kernel backend exists) through the kernel. Prints a summary per source and
//! spec; exits non-zero on any mismatch.

use anyhow::{Context, Result};
use clap::Args;
use dmcrypt_harness::vectors::{self, CaseOutcome, Report, VectorFile};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct CheckArgs {
    /// Vector files or directories of *.vec files (default: the vectors built into dmch).
    #[arg(long = "vectors", value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print the result as JSON (for CI).
    #[arg(long)]
    json: bool,
    /// List every case, not just the summary and failures.
    #[arg(long, short)]
    verbose: bool,
    /// Also run the kernel matrix in a QEMU guest booting this kernel
    /// (debian:5.10|6.1|6.12; repeatable). Without it, the kernel part runs
    /// on the host when the host has device-mapper and root.
    #[arg(long = "kernel", value_name = "SOURCE")]
    kernels: Vec<dmcrypt_harness::vm::KernelSource>,
    /// Skip the kernel part.
    #[arg(long, conflicts_with = "kernels")]
    no_kernel: bool,
}

/// The kernel half: host when possible, a guest when asked, else why not.
fn kernel_part(a: &CheckArgs) -> Result<Result<dmcrypt_harness::oracle::Evaluation, String>> {
    if a.no_kernel {
        return Ok(Err("--no-kernel was given".into()));
    }
    if a.kernels.is_empty()
        && let Err(why) = dmcrypt_harness::sys::probe::host_dm()
    {
        return Ok(Err(format!(
            "the host cannot run it ({why}); a QEMU guest can: dmch check --kernel debian:6.12"
        )));
    }
    let args = super::kernel::KernelArgs::for_check(a.kernels.clone());
    let (cases, runs) = super::kernel::run_kernels(&args, true)?;
    Ok(Ok(dmcrypt_harness::oracle::evaluate(
        &cases,
        &runs,
        dmcrypt_harness::oracle::Fault::None,
        &dmcrypt_harness::oracle::known::builtin(),
    )))
}

fn load(paths: &[PathBuf]) -> Result<Vec<VectorFile>> {
    if paths.is_empty() {
        return vectors::builtin()
            .into_iter()
            .map(|(name, text)| Ok(vectors::parse(name, text)?))
            .collect();
    }
    let mut files = Vec::new();
    for p in paths {
        let mut list = Vec::new();
        if p.is_dir() {
            for e in std::fs::read_dir(p).with_context(|| format!("reading {}", p.display()))? {
                let path = e?.path();
                if path.extension().is_some_and(|x| x == "vec") {
                    list.push(path);
                }
            }
            list.sort();
        } else {
            list.push(p.clone());
        }
        for f in list {
            let text = std::fs::read_to_string(&f)
                .with_context(|| format!("cannot read vector file {}", f.display()))?;
            let name = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            files.push(vectors::parse(&name, &text)?);
        }
    }
    if files.is_empty() {
        anyhow::bail!("no vector files found");
    }
    Ok(files)
}

fn print_table(report: &Report, verbose: bool) {
    let rows = report.summary();
    let fw = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(6);
    let sw = rows.iter().map(|r| r.1.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<fw$}  {:<sw$}  {:>5}  {:>6}  {:>6}",
        "source", "spec", "cases", "passed", "failed"
    );
    for (f, s, n, p, x) in &rows {
        println!("{f:<fw$}  {s:<sw$}  {n:>5}  {p:>6}  {x:>6}");
    }
    let total = report.cases.len();
    let failed = report.failed();
    println!(
        "{:<fw$}  {:<sw$}  {total:>5}  {:>6}  {failed:>6}",
        "total",
        "",
        total - failed
    );
    for c in &report.cases {
        match &c.outcome {
            CaseOutcome::Fail(why) => {
                println!("FAIL {}: {} [{}]: {why}", c.file, c.id, c.source)
            }
            CaseOutcome::Pass if verbose => println!("ok   {}: {}", c.file, c.id),
            CaseOutcome::Pass => {}
        }
    }
}

pub fn run(a: CheckArgs) -> Result<ExitCode> {
    let files = load(&a.paths)?;
    let report = vectors::run_files(&files);
    // The kernel's recorded answers to the fuzzer's shrunk cases.
    let regressions = dmcrypt_harness::oracle::regressions::builtin();
    let regression_failures: Vec<String> = regressions
        .iter()
        .filter_map(|r| r.replay(dmcrypt_harness::oracle::Fault::None).err())
        .collect();
    let failed = report.failed() + regression_failures.len();
    let kernel = kernel_part(&a)?;
    let kernel_failed = matches!(&kernel, Ok(e) if e.failed);
    if a.json {
        let groups: Vec<_> = report
            .summary()
            .into_iter()
            .map(|(f, s, n, p, x)| json!({"file": f, "spec": s, "cases": n, "passed": p, "failed": x}))
            .collect();
        let failures: Vec<_> = report
            .cases
            .iter()
            .filter_map(|c| match &c.outcome {
                CaseOutcome::Fail(w) => Some(json!({"file": c.file, "id": c.id, "spec": c.label, "source": c.source, "reason": w})),
                CaseOutcome::Pass => None,
            })
            .collect();
        let out = json!({
            "reference": {
                "cases": report.cases.len(),
                "passed": report.cases.len() - report.failed(),
                "failed": report.failed(),
                "groups": groups,
                "failures": failures,
            },
            "regressions": {
                "cases": regressions.len(),
                "failed": regression_failures.len(),
                "failures": regression_failures,
            },
            "kernel": match &kernel {
                Ok(e) => json!({"ran": true, "result": e.json}),
                Err(why) => json!({"ran": false, "reason": why}),
            },
            "ok": failed == 0 && !kernel_failed,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&report, a.verbose);
        for f in &regression_failures {
            println!("FAIL regression {f}");
        }
        println!();
        println!(
            "reference: {} passed, {} failed; kernel regressions: {} replayed, {} failed",
            report.cases.len() - report.failed(),
            report.failed(),
            regressions.len(),
            regression_failures.len()
        );
        match &kernel {
            Ok(e) => print!("{}", e.text),
            Err(why) => println!("kernel: not run: {why}"),
        }
    }
    Ok(if failed == 0 && !kernel_failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
