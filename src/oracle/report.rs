//! A run's verdicts, rendered for people (text), machines (JSON) and CI
//! (JUnit XML, KTAP).

use super::known::KnownFault;
use super::run::KernelRun;
use super::{Case, Fault, Verdict, judge};
use crate::kver::KernelVersion;
use serde_json::json;

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A case that failed or faulted on one kernel: what a reproducer needs.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The kernel release it happened on.
    pub kernel: String,
    /// The case.
    pub case: Case,
    /// How.
    pub verdict: Verdict,
}

/// The comparison of every run with the reference, rendered four ways.
pub struct Evaluation {
    /// For people: a table per kernel and each failure.
    pub text: String,
    /// For machines (`--json`).
    pub json: serde_json::Value,
    /// For CI (`--junit`): a testsuite per kernel.
    pub junit: String,
    /// For kernel CI systems (`--ktap`): a subtest per kernel.
    pub ktap: String,
    /// Every failure and fault (known ones too), for reproducers.
    pub findings: Vec<Finding>,
    /// Whether any case failed or faulted (unknown faults) on any kernel.
    pub failed: bool,
}

/// The verdicts on one run's cases, known faults applied.
fn verdicts<'a>(
    cases: &'a [Case],
    run: &KernelRun,
    fault: Fault,
    known: &[KnownFault],
) -> Vec<(&'a Case, Verdict)> {
    let version = KernelVersion::from_release(&run.release);
    cases
        .iter()
        .map(|c| {
            let v = judge(
                c,
                run.results.get(&c.id),
                run.faults.get(&c.id),
                run.algorithms.as_ref(),
                fault,
                crate::table::Rules {
                    kernel: version,
                    fault: Fault::None,
                },
            );
            let v = match (v, version) {
                (Verdict::KernelFault(f), Some(ver)) => {
                    match known.iter().find(|k| k.expects(c, ver, &f)) {
                        Some(k) => Verdict::KnownKernelFault(f, k.note.clone()),
                        None => Verdict::KernelFault(f),
                    }
                }
                (v, _) => v,
            };
            (c, v)
        })
        .collect()
}

/// Known faults this run could have shown (a covered case ran) and did
/// not. An entry whose cases faulted otherwise (another entry's fault,
/// such as 7.2's fortify BUG before the silent over-read could happen) is
/// shadowed, not gone.
fn not_seen<'a>(
    verdicts: &[(&Case, Verdict)],
    run: &KernelRun,
    known: &'a [KnownFault],
) -> Vec<&'a KnownFault> {
    let Some(ver) = KernelVersion::from_release(&run.release) else {
        return Vec::new();
    };
    known
        .iter()
        .filter(|k| {
            let covered: Vec<&(&Case, Verdict)> =
                verdicts.iter().filter(|(c, _)| k.covers(c, ver)).collect();
            let faulted = covered
                .iter()
                .any(|(_, v)| matches!(v, Verdict::KnownKernelFault(..) | Verdict::KernelFault(_)));
            !covered.is_empty() && !faulted
        })
        .collect()
}

/// A case id as a KTAP description (no `#`, which starts a directive).
fn ktap_name(id: &str) -> String {
    id.replace('#', "_")
}

/// Compare every run with the reference; `known` lists the faults that do
/// not fail the run.
pub fn evaluate(
    cases: &[Case],
    runs: &[KernelRun],
    fault: Fault,
    known: &[KnownFault],
) -> Evaluation {
    use std::fmt::Write;
    let mut text = String::new();
    let mut any_fail = false;
    let mut reports = Vec::new();
    let mut findings = Vec::new();
    let mut junit = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    let mut ktap = format!("KTAP version 1\n1..{}\n", runs.len());
    for (ri, run) in runs.iter().enumerate() {
        let verdicts = verdicts(cases, run, fault, known);
        let count = |f: &dyn Fn(&Verdict) -> bool| verdicts.iter().filter(|v| f(&v.1)).count();
        let passed = count(&|v| *v == Verdict::Pass);
        let rejected = count(&|v| *v == Verdict::RejectedAsExpected);
        let unavailable = count(&|v| matches!(v, Verdict::Unavailable(_)));
        let faults = count(&|v| matches!(v, Verdict::KernelFault(_)));
        let known_faults = count(&|v| matches!(v, Verdict::KnownKernelFault(..)));
        let failed = count(&|v| matches!(v, Verdict::Fail(..)));
        any_fail |= failed + faults > 0;
        let gone = not_seen(&verdicts, run, known);
        let secs = run.elapsed.as_secs_f64();
        let rate = cases.len() as f64 / secs.max(0.001);
        let restarts = match run.restarts {
            0 => String::new(),
            n => format!(", {n} guests booted again after a fault"),
        };
        let _ = writeln!(
            text,
            "kernel {} [{}], backend {}{restarts}",
            run.release, run.label, run.backend
        );
        let _ = writeln!(
            text,
            "  cases {:>5}  passed {passed:>5}  rejected as expected {rejected:>4}  not in this kernel {unavailable:>3}  failed {failed:>4}  kernel faults {faults:>3}  known faults {known_faults:>3}  ({secs:.1} s, {rate:.1} cases/s)",
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
            let table = c.params("<dev>").replace(&c.key_hex, "<key>");
            match v {
                Verdict::Fail(_, why) => {
                    let _ = writeln!(text, "  FAIL {}: table '{table}': {why}", c.id);
                }
                Verdict::KernelFault(f) => {
                    let _ = writeln!(text, "  FAULT {}: table '{table}': {}", c.id, f.summary());
                    for l in &f.lines {
                        let _ = writeln!(text, "      | {l}");
                    }
                }
                Verdict::KnownKernelFault(f, note) => {
                    let _ = writeln!(text, "  KNOWN {}: {} (known: {note})", c.id, f.summary());
                }
                _ => {}
            }
            if v.reason().is_some() {
                findings.push(Finding {
                    kernel: run.release.clone(),
                    case: (*c).clone(),
                    verdict: v.clone(),
                });
            }
        }
        for k in &gone {
            let _ = writeln!(
                text,
                "  known fault not seen on this kernel (fixed?): kernels {} {}: {}",
                k.kernels,
                k.kind.map_or("any", |k| k.name()),
                k.note
            );
        }
        let _ = writeln!(
            junit,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{secs:.3}\">",
            xml(&run.release),
            cases.len(),
            failed + faults,
            unavailable + known_faults
        );
        let _ = writeln!(
            ktap,
            "    KTAP version 1\n    # Subtest: kernel {}",
            run.release
        );
        let _ = writeln!(ktap, "    1..{}", verdicts.len());
        for (i, (c, v)) in verdicts.iter().enumerate() {
            let body = match v {
                Verdict::Fail(_, why) => format!("<failure message=\"{}\"/>", xml(why)),
                Verdict::KernelFault(f) => format!(
                    "<failure message=\"{}\" type=\"kernel-fault\">{}</failure>",
                    xml(&f.summary()),
                    xml(&f.lines.join("\n"))
                ),
                Verdict::KnownKernelFault(f, note) => format!(
                    "<skipped message=\"known kernel fault: {}\"/>",
                    xml(&format!("{} ({note})", f.summary()))
                ),
                Verdict::Unavailable(why) => format!("<skipped message=\"{}\"/>", xml(why)),
                _ => String::new(),
            };
            let _ = writeln!(
                junit,
                "    <testcase classname=\"{}\" name=\"{}\">{body}</testcase>",
                xml(&run.release),
                xml(&c.id)
            );
            let name = ktap_name(&c.id);
            let n = i + 1;
            let _ = match v {
                Verdict::Pass | Verdict::RejectedAsExpected => {
                    writeln!(ktap, "    ok {n} {name}")
                }
                Verdict::Unavailable(why) => writeln!(ktap, "    ok {n} {name} # SKIP {why}"),
                Verdict::Fail(_, why) => writeln!(ktap, "    # {why}\n    not ok {n} {name}"),
                Verdict::KernelFault(f) => {
                    for l in &f.lines {
                        let _ = writeln!(ktap, "    # {l}");
                    }
                    writeln!(ktap, "    not ok {n} {name}")
                }
                Verdict::KnownKernelFault(f, note) => writeln!(
                    ktap,
                    "    # {}\n    not ok {n} {name} # TODO known kernel fault: {note}",
                    f.summary()
                ),
            };
        }
        let _ = writeln!(
            ktap,
            "{} {} kernel {}",
            if failed + faults > 0 { "not ok" } else { "ok" },
            ri + 1,
            ktap_name(&run.release)
        );
        junit.push_str("  </testsuite>\n");
        let entry = |c: &Case, v: &Verdict| -> Option<serde_json::Value> {
            Some(match v {
                Verdict::Fail(_, w) => json!({"id": c.id, "verdict": "mismatch", "reason": w}),
                Verdict::KernelFault(f) => json!({
                    "id": c.id, "verdict": "kernel-fault", "kind": f.kind.name(),
                    "reason": f.summary(), "log": f.lines,
                }),
                Verdict::KnownKernelFault(f, note) => json!({
                    "id": c.id, "verdict": "known-kernel-fault", "kind": f.kind.name(),
                    "reason": f.summary(), "log": f.lines, "note": note,
                }),
                _ => return None,
            })
        };
        reports.push(json!({
            "kernel": run.release, "source": run.label, "backend": run.backend,
            "seconds": secs, "cases": cases.len(), "passed": passed,
            "rejected_as_expected": rejected, "unavailable": unavailable, "failed": failed,
            "kernel_faults": faults, "known_kernel_faults": known_faults,
            "guest_restarts": run.restarts,
            "failures": verdicts.iter().filter(|(_, v)| v.fails()).filter_map(|(c, v)| entry(c, v)).collect::<Vec<_>>(),
            "known_faults": verdicts.iter().filter(|(_, v)| matches!(v, Verdict::KnownKernelFault(..))).filter_map(|(c, v)| entry(c, v)).collect::<Vec<_>>(),
            "known_faults_not_seen": gone.iter().map(|k| json!({"kernels": k.kernels.to_string(), "note": k.note})).collect::<Vec<_>>(),
        }));
    }
    junit.push_str("</testsuites>\n");
    Evaluation {
        text,
        json: json!({"kernels": reports, "ok": !any_fail}),
        junit,
        ktap,
        findings,
        failed: any_fail,
    }
}
