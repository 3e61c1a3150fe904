//! A run's verdicts, rendered for people (text), machines (JSON) and CI
//! (JUnit XML).

use super::run::KernelRun;
use super::{Case, Fault, Verdict, compare};
use serde_json::json;

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The comparison of every run with the reference, rendered three ways.
pub struct Evaluation {
    /// For people: a table per kernel and each failure.
    pub text: String,
    /// For machines (`--json`).
    pub json: serde_json::Value,
    /// For CI (`--junit`): a testsuite per kernel.
    pub junit: String,
    /// Whether any case failed on any kernel.
    pub failed: bool,
}

/// Compare every run's results with the reference.
pub fn evaluate(cases: &[Case], runs: &[KernelRun], fault: Fault) -> Evaluation {
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
                    Some(r) => compare(c, r, run.algorithms.as_ref(), fault),
                    None => Verdict::Fail(
                        super::Mismatch::KernelSide,
                        "no result from the kernel side".into(),
                    ),
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
            if let Verdict::Fail(_, why) = v {
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
                Verdict::Fail(_, why) => format!("<failure message=\"{}\"/>", xml(why)),
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
                Verdict::Fail(_, w) => Some(json!({"id": c.id, "reason": w})), _ => None }).collect::<Vec<_>>(),
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
