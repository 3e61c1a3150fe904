//! `dmch kernel fuzz`: seeded cases through real kernels and the reference,
//! in batches until the count or the time is spent; failures shrunk to
//! minimal cases, printed to paste and recorded in a regression file.

use super::kernel::{KernelArgs, note};
use anyhow::{Result, bail};
use clap::Args;
use dmcrypt_harness::oracle::regressions::{self, Regression};
use dmcrypt_harness::oracle::run::{self, KernelRun};
use dmcrypt_harness::oracle::{self, Case, Fault, Mismatch, fuzz, shrink};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct FuzzArgs {
    #[command(flatten)]
    k: KernelArgs,
    /// The generator's seed: the same seed gives the same cases everywhere.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many cases (default 2000; with --time, the most to run).
    #[arg(long)]
    cases: Option<usize>,
    /// Run batches of cases until SECS have passed (a campaign).
    #[arg(long, value_name = "SECS")]
    time: Option<u64>,
    /// Shrink up to N failing cases to minimal ones (0: none).
    #[arg(long, value_name = "N", default_value_t = 3)]
    shrink: usize,
    /// At most this many shrinking rounds (kernel runs) per failing case.
    #[arg(long, value_name = "N", default_value_t = 16)]
    shrink_rounds: usize,
    /// Append shrunk cases to FILE [default: vectors/kernel-regressions.txt
    /// when ./vectors exists, else ./dmch-kernel-regressions.txt].
    #[arg(long, value_name = "FILE")]
    regressions: Option<PathBuf>,
    #[command(flatten)]
    out: super::verdicts::ReportArgs,
}

/// Cases per guest boot in a campaign: enough that a boot is a small part.
const BATCH: usize = 600;

/// The generated cases `first..first + n` this run takes: its shard, or
/// the `--only` ones (made from their ids, wherever they are in the seed).
fn batch(a: &FuzzArgs, first: usize, n: usize) -> Result<Vec<Case>> {
    if !a.k.only().is_empty() {
        return a
            .k
            .only()
            .iter()
            .map(|id| match fuzz::parse_id(id) {
                Some((seed, i)) if seed == a.seed => Ok(fuzz::one(seed, i)),
                // An id from an older report: its cases are not this
                // generator's, so say so rather than run something else.
                _ if id.starts_with("fuzz-v")
                    && !id.starts_with(&format!("fuzz-v{}-", fuzz::GENERATOR_VERSION)) =>
                {
                    bail!(
                        "{id} is from another fuzz generator; this dmch generates fuzz-v{}-* \
                         (its minimal case and regression record still reproduce it)",
                        fuzz::GENERATOR_VERSION
                    )
                }
                _ => bail!("no case of seed {} has id {id}", a.seed),
            })
            .collect();
    }
    let shard = a.k.shard()?;
    Ok(fuzz::generate_range(a.seed, first, n)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|(k, n)| (first + i) % n == k - 1))
        .map(|(_, c)| c)
        .collect())
}

pub fn run(a: FuzzArgs) -> Result<ExitCode> {
    let total = a
        .cases
        .unwrap_or(if a.time.is_some() { 1_000_000 } else { 2000 });
    if total == 0 || total > 1_000_000 {
        bail!("--cases {total} is not between 1 and 1000000");
    }
    if a.time.is_some_and(|t| t == 0 || t > 7 * 86400) {
        bail!("--time takes 1 to 604800 seconds");
    }
    if a.shrink_rounds == 0 || a.shrink_rounds > 100 {
        bail!("--shrink-rounds takes 1 to 100");
    }
    let fault = run::fault_from_env()?;
    let jobs = a.k.jobs()?;
    a.k.shard()?;
    // Only the named cases: one batch of them.
    let total = if a.k.only().is_empty() {
        total
    } else {
        batch(&a, 0, 0)?.len()
    };
    let targets = a.k.targets()?;
    let deadline = a.time.map(|s| Instant::now() + Duration::from_secs(s));
    let per_batch = if deadline.is_some() && a.k.only().is_empty() {
        BATCH * jobs
    } else {
        total
    };
    let mut cases: Vec<Case> = Vec::new();
    let mut runs: Vec<Option<KernelRun>> = targets.iter().map(|_| None).collect();
    let mut first = 0;
    // Every batch on every kernel, so each report covers the same cases.
    while first < total {
        let n = per_batch.min(total - first);
        let b = batch(&a, first, n)?;
        first += n;
        for (t, slot) in targets.iter().zip(&mut runs) {
            let r = t.run(&b, a.k.limits(), jobs, &mut note)?;
            match slot {
                None => *slot = Some(r),
                Some(m) => {
                    m.results.extend(r.results);
                    m.faults.extend(r.faults);
                    m.restarts += r.restarts;
                    m.elapsed += r.elapsed;
                }
            }
        }
        cases.extend(b);
        if deadline.is_some_and(|d| Instant::now() >= d) || dmcrypt_harness::interrupt::requested()
        {
            break;
        }
    }
    let runs: Vec<KernelRun> = runs.into_iter().flatten().collect();
    if fault != Fault::None {
        eprintln!("dmch: warning: DMCH_TEST_FAULT: the reference is broken on purpose");
    }
    let mut e = oracle::evaluate(&cases, &runs, fault, &a.out.known()?);
    a.out.write(&e)?;
    if !a.out.json {
        print!("{}", e.text);
    }
    let shrunk = if e.failed {
        shrink_failures(&a, &e.findings, &runs, &targets, fault, jobs)?
    } else {
        Vec::new()
    };
    if a.out.json {
        e.json["shrunk"] = serde_json::Value::Array(shrunk);
        e.json["seed"] = a.seed.into();
        e.json["generator"] = fuzz::GENERATOR_VERSION.into();
        println!("{}", serde_json::to_string_pretty(&e.json)?);
    }
    Ok(if e.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Shrink the first `--shrink` failures and unknown kernel faults on the
/// kernel each happened on (a fault is shrunk as a fault: the smaller case
/// must still make the kernel fault), print each as a case to paste and
/// record the mismatches as regressions. Returns them as JSON.
fn shrink_failures(
    a: &FuzzArgs,
    findings: &[oracle::Finding],
    runs: &[KernelRun],
    targets: &[run::Target],
    fault: Fault,
    jobs: usize,
) -> Result<Vec<serde_json::Value>> {
    let mut failures = Vec::new();
    for f in findings.iter().filter(|f| f.verdict.fails()) {
        let Some(ti) = runs.iter().position(|r| r.release == f.kernel) else {
            continue;
        };
        let (Some(m), Some(why)) = (f.verdict.mismatch(), f.verdict.reason()) else {
            continue;
        };
        let k = runs[ti].results.get(&f.case.id).cloned();
        failures.push((ti, &f.case, k, m, why));
    }
    let file = a.regressions.clone().unwrap_or_else(|| {
        if std::path::Path::new("vectors").is_dir() {
            "vectors/kernel-regressions.txt".into()
        } else {
            "dmch-kernel-regressions.txt".into()
        }
    });
    let record = fault == Fault::None || a.regressions.is_some();
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (ti, c, k, m, why) in failures {
        if out.len() >= a.shrink || !seen.insert(&c.id) {
            continue;
        }
        println!(
            "  reproduce: dmch kernel fuzz --seed {} --only {} {}",
            a.seed,
            c.id,
            a.k.target_args(ti)
        );
        let rules = dmcrypt_harness::table::Rules::of_release(&runs[ti].release);
        let s = shrink::shrink(
            shrink::Failure {
                case: c,
                kernel: k.as_ref(),
                mismatch: m,
                why: &why,
            },
            fault,
            rules,
            a.shrink_rounds,
            |batch| {
                let r = targets[ti].run(batch, a.k.limits(), jobs, &mut note)?;
                Ok::<_, anyhow::Error>((r.results, r.faults, r.algorithms))
            },
        )?;
        let mut words = s.case.clone();
        words.id = format!("{}-min", c.id);
        let line = words.to_words();
        println!(
            "  shrunk {} on {} in {} rounds ({} cases tried): {}",
            c.id, runs[ti].release, s.rounds, s.tried, s.why
        );
        println!(
            "  minimal: dmch kernel check --case '{line}' {}",
            a.k.target_args(ti)
        );
        // A fault is no rule to replay: it goes to the known-faults list
        // once reported, not into the regressions.
        let expect = match (&s.kernel, m) {
            (Some(k), m) if m != Mismatch::Fault => k.clone(),
            _ => {
                println!(
                    "  kernel fault: not recorded as a regression; add it to a --known-faults file once reported"
                );
                out.push(serde_json::json!({
                    "found": c.id, "kernel": runs[ti].release, "rounds": s.rounds,
                    "tried": s.tried, "reason": s.why, "case": line, "verdict": "kernel-fault",
                }));
                continue;
            }
        };
        let reg = Regression {
            case: words,
            kernel: runs[ti].release.clone(),
            date: super::kernel::utc_date(),
            found: c.id.clone(),
            expect,
        };
        if record {
            regressions::append(&file, &reg, &format!("{}: {}", c.id, s.why))
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))?;
            println!("  recorded in {}", file.display());
        } else {
            println!(
                "  not recorded: the reference is broken on purpose (DMCH_TEST_FAULT); --regressions FILE records it anyway"
            );
        }
        out.push(serde_json::json!({
            "found": c.id, "kernel": runs[ti].release, "rounds": s.rounds,
            "tried": s.tried, "reason": s.why, "case": line,
        }));
    }
    Ok(out)
}
