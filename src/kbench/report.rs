//! The results of one or more kernels gathered into one report: its JSON
//! (schema `dmch-kernel-bench/1`, checked by [`validate`]), the table, and
//! two SVG charts (throughput per flag set and sector size; latency CDFs).
//! A run under emulation (TCG) is marked on every figure: its mechanics
//! are real, its numbers are not speeds.

use serde_json::{Value, json};
use std::fmt::Write as _;

/// The schema name every report carries.
pub const SCHEMA: &str = "dmch-kernel-bench/1";

/// What one kernel produced.
pub struct KernelRun {
    /// `host`, or the guest kernel's source (`debian:6.12`).
    pub label: String,
    /// `kvm` or `tcg` for a guest, `None` on the host.
    pub accel: Option<String>,
    /// The records as the runner emitted them.
    pub records: Vec<Value>,
    /// Why the run ended early, when it did.
    pub problem: Option<String>,
}

impl KernelRun {
    /// TCG figures are not speeds.
    pub fn emulated(&self) -> bool {
        self.accel.as_deref() == Some("tcg")
    }
}

/// The reference engine's figure for a spec and sector size (on the host
/// running dmch, one thread).
pub struct Reference {
    /// Cipher spec.
    pub spec: String,
    /// Key bits.
    pub bits: usize,
    /// Sector size.
    pub sector_size: u32,
    /// MiB/s.
    pub encrypt: f64,
    /// MiB/s.
    pub decrypt: f64,
}

fn kind<'a>(records: &'a [Value], k: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    records.iter().filter(move |r| r["kind"] == k)
}

fn mib(r: &Value) -> Option<f64> {
    r["result"]["mib_s"].as_f64()
}

/// The raw device's record for the same workload and direction.
fn raw_for<'a>(records: &'a [Value], r: &Value) -> Option<&'a Value> {
    kind(records, "raw").find(|x| x["workload"] == r["workload"] && x["op"] == r["op"])
}

/// The report as JSON.
pub fn to_json(runs: &[KernelRun], reference: &[Reference]) -> Value {
    let runs: Vec<Value> = runs
        .iter()
        .map(|run| {
            let emulated = run.emulated();
            // A run that ended before its first record: the host's machine
            // is still known, a guest's is not.
            let ctx = kind(&run.records, "context")
                .next()
                .cloned()
                .unwrap_or_else(|| {
                    if run.accel.is_none() {
                        super::context::machine()
                    } else {
                        json!({})
                    }
                });
            let mark = |r: &Value| {
                let mut r = r.clone();
                if let Some(o) = r.as_object_mut() {
                    o.remove("kind");
                    o.insert("emulated".into(), json!(emulated));
                }
                r
            };
            let crypt: Vec<Value> = kind(&run.records, "crypt")
                .map(|r| {
                    let mut m = mark(r);
                    if let (Some(c), Some(raw)) = (mib(r), raw_for(&run.records, r).and_then(mib))
                        && raw > 0.0
                    {
                        m["ratio_to_raw"] = json!((c / raw * 1000.0).round() / 1000.0);
                    }
                    m
                })
                .collect();
            let planned = ctx["plan"].clone();
            let expected = super::plan::Plan::from_json(&planned)
                .map(|p| p.points().len())
                .unwrap_or(0);
            let got = kind(&run.records, "raw").count() + crypt.len();
            let mut machine = ctx.clone();
            if let Some(o) = machine.as_object_mut() {
                for k in ["kind", "backing", "plan"] {
                    o.remove(k);
                }
            }
            json!({
                "label": run.label,
                "where": if run.accel.is_some() { "guest" } else { "host" },
                "accel": run.accel,
                "emulated": emulated,
                "machine": machine,
                "backing": ctx["backing"],
                "plan": planned,
                "raw": kind(&run.records, "raw").map(mark).collect::<Vec<_>>(),
                "crypt": crypt,
                "cipher": kind(&run.records, "cipher").map(mark).collect::<Vec<_>>(),
                "missing_points": expected.saturating_sub(got),
                "problem": run.problem,
            })
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "host": super::context::machine(),
        "reference": reference.iter().map(|r| json!({
            "spec": r.spec, "key_bits": r.bits, "sector_size": r.sector_size, "threads": 1,
            "encrypt_mib_s": (r.encrypt * 100.0).round() / 100.0,
            "decrypt_mib_s": (r.decrypt * 100.0).round() / 100.0,
        })).collect::<Vec<_>>(),
        "runs": runs,
    })
}

/// Check a report against schema `dmch-kernel-bench/1`: every field a
/// consumer may rely on is there with its type, and each point has exactly
/// one of `result`, `refused`, `error`.
pub fn validate(v: &Value) -> Result<(), String> {
    let need = |v: &Value, path: &str, what: &str, ok: fn(&Value) -> bool| {
        let mut cur = v;
        for k in path.split('.') {
            cur = &cur[k];
        }
        if ok(cur) {
            Ok(())
        } else {
            Err(format!("{path}: not {what} ({cur})"))
        }
    };
    let s = |v: &Value| v.is_string();
    let n = |v: &Value| v.is_number();
    let b = |v: &Value| v.is_boolean();
    let a = |v: &Value| v.is_array();
    let o = |v: &Value| v.is_object();
    if v["schema"] != SCHEMA {
        return Err(format!("schema is {}, not {SCHEMA}", v["schema"]));
    }
    need(v, "host.cpu_model", "a string", s)?;
    need(v, "reference", "a list", a)?;
    for r in v["reference"].as_array().into_iter().flatten() {
        need(r, "spec", "a string", s)?;
        for k in ["key_bits", "sector_size", "encrypt_mib_s", "decrypt_mib_s"] {
            need(r, k, "a number", n)?;
        }
    }
    let runs = v["runs"].as_array().ok_or("runs: not a list")?;
    for run in runs {
        let label = run["label"].as_str().ok_or("a run without a label")?;
        let ctx = |e: String| format!("run {label}: {e}");
        need(run, "emulated", "a boolean", b).map_err(ctx)?;
        need(run, "where", "a string", s).map_err(ctx)?;
        need(run, "missing_points", "a number", n).map_err(ctx)?;
        // A run that stopped says why; what it measured until then (maybe
        // nothing, not even its machine) follows the same rules.
        let stopped = run["problem"].is_string();
        if !run["problem"].is_null() && !stopped {
            return Err(ctx("problem: not a string".into()));
        }
        if !stopped || !run["machine"]["kernel"].is_null() {
            for k in ["cpu_model", "kernel"] {
                need(run, &format!("machine.{k}"), "a string", s).map_err(ctx)?;
            }
            need(run, "machine.cpu_flags", "a list", a).map_err(ctx)?;
            need(run, "machine.mitigations", "an object", o).map_err(ctx)?;
        }
        if !stopped || !run["backing"].is_null() {
            need(run, "backing.kind", "a string", s).map_err(ctx)?;
        }
        for section in ["raw", "crypt"] {
            let pts = run[section]
                .as_array()
                .ok_or_else(|| ctx(format!("{section}: not a list")))?;
            for p in pts {
                let pctx = |e: String| ctx(format!("{section} {} {}: {e}", p["workload"], p["op"]));
                need(p, "workload", "a string", s).map_err(pctx)?;
                need(p, "op", "a string", s).map_err(pctx)?;
                need(p, "emulated", "a boolean", b).map_err(pctx)?;
                if section == "crypt" {
                    need(p, "spec", "a string", s).map_err(pctx)?;
                    need(p, "flags", "a string", s).map_err(pctx)?;
                    need(p, "sector_size", "a number", n).map_err(pctx)?;
                    need(p, "key_bits", "a number", n).map_err(pctx)?;
                }
                let outcomes = ["result", "refused", "error"]
                    .iter()
                    .filter(|k| !p[**k].is_null())
                    .count();
                if outcomes != 1 {
                    return Err(pctx(format!("{outcomes} of result/refused/error")));
                }
                if !p["result"].is_null() {
                    for k in [
                        "result.mib_s",
                        "result.iops",
                        "result.ios",
                        "result.seconds",
                    ] {
                        need(p, k, "a number", n).map_err(pctx)?;
                    }
                    for k in ["p50", "p99", "p99_9", "mean", "max"] {
                        need(p, &format!("result.lat_us.{k}"), "a number", n).map_err(pctx)?;
                    }
                    let cdf = p["result"]["cdf_us"]
                        .as_array()
                        .ok_or_else(|| pctx("result.cdf_us: not a list".into()))?;
                    let mut last = (0.0, 0.0);
                    for pt in cdf {
                        let (q, us) = (pt[0].as_f64(), pt[1].as_f64());
                        let (Some(q), Some(us)) = (q, us) else {
                            return Err(pctx(format!("cdf point {pt}")));
                        };
                        if q <= last.0 || us < last.1 {
                            return Err(pctx("the CDF is not increasing".into()));
                        }
                        last = (q, us);
                    }
                }
            }
        }
        for c in run["cipher"]
            .as_array()
            .ok_or_else(|| ctx("cipher: not a list".into()))?
        {
            need(c, "spec", "a string", s).map_err(ctx)?;
            if c["error"].is_null() {
                need(c, "encrypt_mib_s", "a number", n).map_err(ctx)?;
                need(c, "decrypt_mib_s", "a number", n).map_err(ctx)?;
            }
        }
    }
    Ok(())
}

/// `12.3` or `12.3~` when emulated.
fn fig(x: f64, emulated: bool) -> String {
    format!("{x:.1}{}", if emulated { "~" } else { "" })
}

fn lat(r: &Value, emulated: bool) -> String {
    let l = &r["result"]["lat_us"];
    let g = |k: &str| l[k].as_f64().unwrap_or(0.0);
    let m = if emulated { "~" } else { "" };
    format!("{:.0}/{:.0}/{:.0}{m}", g("p50"), g("p99"), g("p99_9"))
}

/// A point's cells: MiB/s, ratio to raw, latency; or why there is none.
fn cells(records: &[Value], r: Option<&Value>, emulated: bool) -> (String, String, String) {
    let Some(r) = r else {
        return ("lost".into(), String::new(), String::new());
    };
    if let Some(why) = r["refused"].as_str() {
        let short = if why.contains("errno 22") {
            "refused"
        } else {
            why
        };
        return (short.into(), String::new(), String::new());
    }
    if !r["error"].is_null() {
        return ("error".into(), String::new(), String::new());
    }
    let m = mib(r).unwrap_or(0.0);
    let ratio = raw_for(records, r)
        .and_then(mib)
        .filter(|&x| x > 0.0)
        .map_or(String::new(), |raw| format!("{:.2}", m / raw));
    (fig(m, emulated), ratio, lat(r, emulated))
}

/// The report as text: per kernel its context, the raw device, then per
/// spec and sector size every flag set and workload, write and read.
pub fn table(runs: &[KernelRun], reference: &[Reference]) -> String {
    let mut t = String::new();
    for run in runs {
        let e = run.emulated();
        let ctx = kind(&run.records, "context")
            .next()
            .cloned()
            .unwrap_or(json!({}));
        let _ = writeln!(
            t,
            "# kernel {} [{}], {}",
            ctx["kernel"].as_str().unwrap_or("?"),
            run.label,
            match run.accel.as_deref() {
                None => "on the host".to_string(),
                Some("tcg") =>
                    "in a QEMU guest under TCG: EMULATED, figures marked ~ are not speeds".into(),
                Some(a) => format!("in a QEMU guest under {a}"),
            }
        );
        let flags: Vec<&str> = ctx["cpu_flags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let _ = writeln!(
            t,
            "# cpu: {} ({} cpus), cipher flags: {}",
            ctx["cpu_model"].as_str().unwrap_or("?"),
            ctx["cpus"],
            if flags.is_empty() {
                "none".into()
            } else {
                flags.join(" ")
            }
        );
        let mit = ctx["mitigations"].as_object();
        let vulnerable: Vec<&String> = mit
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.as_str().is_some_and(|s| s.starts_with("Vulnerable")))
            .map(|(k, _)| k)
            .collect();
        let mitigated = mit
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.as_str().is_some_and(|s| s.starts_with("Mitigation")))
            .count();
        let _ = writeln!(
            t,
            "# mitigations: {mitigated} in force, vulnerable: {} (all lines in --json)",
            if vulnerable.is_empty() {
                "none".to_string()
            } else {
                vulnerable
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        let bk = &ctx["backing"];
        let _ = writeln!(
            t,
            "# backing: {} {} ({} MiB){}; O_DIRECT, native AIO",
            bk["kind"].as_str().unwrap_or("?"),
            bk["path"].as_str().unwrap_or("?"),
            bk["mib"],
            bk["note"]
                .as_str()
                .map_or(String::new(), |n| format!(": {n}"))
        );
        if let Some(p) = &run.problem {
            let _ = writeln!(t, "# PROBLEM: {p}");
        }
        let head = format!(
            "  {:<6} {:<27} {:<20} {:>11} {:>5} {:>18} {:>11} {:>5} {:>18}",
            "sector",
            "flags",
            "workload",
            "write MiB/s",
            "xraw",
            "p50/p99/p99.9 us",
            "read MiB/s",
            "xraw",
            "p50/p99/p99.9 us"
        );
        let find = |pred: &dyn Fn(&Value) -> bool, op: &str| {
            run.records.iter().find(|r| pred(r) && r["op"] == op)
        };
        let _ = writeln!(t, "raw device");
        let _ = writeln!(t, "{head}");
        let workloads: Vec<String> = kind(&run.records, "raw")
            .filter_map(|r| r["workload"].as_str().map(String::from))
            .fold(Vec::new(), |mut v, w| {
                if !v.contains(&w) {
                    v.push(w);
                }
                v
            });
        for w in &workloads {
            let pred = |r: &Value| r["kind"] == "raw" && r["workload"] == w.as_str();
            let (wm, _, wl) = cells(&run.records, find(&pred, "write"), e);
            let (rm, _, rl) = cells(&run.records, find(&pred, "read"), e);
            let _ = writeln!(
                t,
                "  {:<6} {:<27} {:<20} {wm:>11} {:>5} {wl:>18} {rm:>11} {:>5} {rl:>18}",
                "-", "-", w, "", ""
            );
        }
        // Groups in the order they ran: spec, then sector size.
        let mut groups: Vec<(String, u64, u64)> = Vec::new();
        for r in kind(&run.records, "crypt") {
            let g = (
                r["spec"].as_str().unwrap_or("").to_string(),
                r["key_bits"].as_u64().unwrap_or(0),
                r["sector_size"].as_u64().unwrap_or(0),
            );
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        for (spec, bits, ss) in &groups {
            let first = kind(&run.records, "crypt")
                .find(|r| r["spec"] == spec.as_str() && r["sector_size"] == *ss);
            let driver = first
                .and_then(|r| {
                    r["driver"]["driver"]
                        .as_str()
                        .map(|d| format!("{d} (priority {})", r["driver"]["priority"]))
                })
                .unwrap_or_else(|| "not listed in /proc/crypto".into());
            let _ = writeln!(
                t,
                "{spec} ({bits} bits), {ss}-byte sectors, driver {driver}"
            );
            let cipher = kind(&run.records, "cipher")
                .find(|c| c["spec"] == spec.as_str() && c["sector_size"] == *ss);
            if let Some(c) = cipher {
                match (c["encrypt_mib_s"].as_f64(), c["decrypt_mib_s"].as_f64()) {
                    (Some(en), Some(de)) => {
                        let _ = writeln!(
                            t,
                            "  cipher alone ({}, AF_ALG, {ss}-byte requests): {} / {} MiB/s",
                            c["api"].as_str().unwrap_or("?"),
                            fig(en, e),
                            fig(de, e)
                        );
                    }
                    _ => {
                        let _ = writeln!(
                            t,
                            "  cipher alone: not measured: {}",
                            c["error"].as_str().unwrap_or("?")
                        );
                    }
                }
            }
            if let Some(r) = reference
                .iter()
                .find(|r| r.spec == *spec && r.bits as u64 == *bits && r.sector_size as u64 == *ss)
            {
                let _ = writeln!(
                    t,
                    "  reference engine (this host, 1 thread): {:.1} / {:.1} MiB/s",
                    r.encrypt, r.decrypt
                );
            }
            let _ = writeln!(t, "{head}");
            let mut flags: Vec<String> = Vec::new();
            for r in kind(&run.records, "crypt") {
                if r["spec"] == spec.as_str() && r["sector_size"] == *ss {
                    let f = r["flags"].as_str().unwrap_or("").to_string();
                    if !flags.contains(&f) {
                        flags.push(f);
                    }
                }
            }
            for f in &flags {
                for w in &workloads {
                    let pred = |r: &Value| {
                        r["kind"] == "crypt"
                            && r["spec"] == spec.as_str()
                            && r["sector_size"] == *ss
                            && r["flags"] == f.as_str()
                            && r["workload"] == w.as_str()
                    };
                    let (wm, wr, wl) = cells(&run.records, find(&pred, "write"), e);
                    let (rm, rr, rl) = cells(&run.records, find(&pred, "read"), e);
                    let _ = writeln!(
                        t,
                        "  {ss:<6} {f:<27} {w:<20} {wm:>11} {wr:>5} {wl:>18} {rm:>11} {rr:>5} {rl:>18}"
                    );
                }
            }
        }
        t.push('\n');
    }
    t
}

const COLORS: [&str; 8] = [
    "#3b7dd8", "#e08a1e", "#2a9d5c", "#b5473a", "#7b5ea7", "#8c6d31", "#d6616b", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Throughput per flag set and sector size: one panel per workload, a row
/// per kernel, spec, sector size and flag set, bars for write and read, and
/// the raw device's figure as a grey mark.
pub fn svg_throughput(runs: &[KernelRun]) -> String {
    struct Row {
        label: String,
        write: f64,
        read: f64,
        raw: (f64, f64),
        note: Option<&'static str>,
    }
    let mut panels: Vec<(String, Vec<Row>)> = Vec::new();
    for run in runs {
        let mark = if run.emulated() { " (emulated)" } else { "" };
        for r in kind(&run.records, "crypt").filter(|r| r["op"] == "write") {
            let w = r["workload"].as_str().unwrap_or("").to_string();
            let read = kind(&run.records, "crypt")
                .find(|x| {
                    x["op"] == "read"
                        && ["spec", "sector_size", "flags", "workload"]
                            .iter()
                            .all(|k| x[*k] == r[*k])
                })
                .and_then(mib)
                .unwrap_or(0.0);
            let raw_w = raw_for(&run.records, r).and_then(mib).unwrap_or(0.0);
            let raw_r = kind(&run.records, "raw")
                .find(|x| x["workload"] == r["workload"] && x["op"] == "read")
                .and_then(mib)
                .unwrap_or(0.0);
            let row = Row {
                label: format!(
                    "{}{mark} {} {} {}",
                    run.label,
                    r["spec"].as_str().unwrap_or(""),
                    r["sector_size"],
                    r["flags"].as_str().unwrap_or("")
                ),
                write: mib(r).unwrap_or(0.0),
                read,
                raw: (raw_w, raw_r),
                note: if !r["refused"].is_null() {
                    Some("refused by this kernel")
                } else if !r["error"].is_null() {
                    Some("error (see --json)")
                } else {
                    None
                },
            };
            match panels.iter_mut().find(|p| p.0 == w) {
                Some(p) => p.1.push(row),
                None => panels.push((w, vec![row])),
            }
        }
    }
    let (w, label_w, bar_h) = (1200.0, 540.0, 9.0);
    let row_h = 2.0 * bar_h + 6.0;
    let h: f64 = 40.0
        + panels
            .iter()
            .map(|p| 30.0 + p.1.len() as f64 * row_h)
            .sum::<f64>();
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n<text x=\"10\" y=\"20\" font-size=\"14\">dm-crypt throughput per flag set and sector size, MiB/s:</text><rect x=\"560\" y=\"10\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"576\" y=\"20\">write</text><rect x=\"620\" y=\"10\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"636\" y=\"20\">read</text><rect x=\"680\" y=\"10\" width=\"2\" height=\"12\" fill=\"#999\"/><text x=\"686\" y=\"20\">the raw device (ceiling)</text>\n",
        COLORS[0], COLORS[1]
    );
    let mut y = 40.0;
    for (name, rows) in &panels {
        let max = rows
            .iter()
            .map(|r| r.write.max(r.read).max(r.raw.0).max(r.raw.1))
            .fold(1.0, f64::max);
        let scale = (w - label_w - 80.0) / max;
        let _ = writeln!(
            s,
            "<text x=\"10\" y=\"{:.0}\" font-size=\"13\">{}</text>",
            y + 16.0,
            esc(name)
        );
        y += 26.0;
        for r in rows {
            let _ = writeln!(
                s,
                "<text x=\"10\" y=\"{:.0}\">{}</text>",
                y + 13.0,
                esc(&r.label)
            );
            if let Some(n) = r.note {
                let _ = writeln!(
                    s,
                    "<text x=\"{label_w}\" y=\"{:.0}\" fill=\"#b5473a\">{n}</text>",
                    y + 13.0
                );
                y += row_h;
                continue;
            }
            for (j, (v, raw, color)) in
                [(r.write, r.raw.0, COLORS[0]), (r.read, r.raw.1, COLORS[1])]
                    .iter()
                    .enumerate()
            {
                let by = y + j as f64 * bar_h;
                let _ = writeln!(
                    s,
                    "<rect x=\"{label_w}\" y=\"{by:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"/><rect x=\"{:.1}\" y=\"{by:.1}\" width=\"2\" height=\"{bar_h}\" fill=\"#999\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\">{v:.0}</text>",
                    v * scale,
                    bar_h - 1.0,
                    label_w + raw * scale,
                    label_w + v * scale + 4.0,
                    by + bar_h - 1.0
                );
            }
            y += row_h;
        }
        y += 4.0;
    }
    s.push_str("</svg>\n");
    s
}

/// Latency CDFs: one panel per workload and direction, a line per kernel,
/// spec and sector size (flag set `none`, and the raw device), log scale.
pub fn svg_latency(runs: &[KernelRun]) -> String {
    // (label, run index for the dash pattern, points)
    type Series = (String, usize, Vec<(f64, f64)>);
    let mut panels: Vec<(String, Vec<Series>)> = Vec::new();
    let cdf = |r: &Value| -> Vec<(f64, f64)> {
        r["result"]["cdf_us"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?.max(0.01))))
            .collect()
    };
    for (ri, run) in runs.iter().enumerate() {
        let mark = if run.emulated() { " (emulated)" } else { "" };
        for r in run.records.iter().filter(|r| {
            (r["kind"] == "raw" || (r["kind"] == "crypt" && r["flags"] == "none"))
                && !r["result"].is_null()
        }) {
            let panel = format!(
                "{} {}",
                r["workload"].as_str().unwrap_or(""),
                r["op"].as_str().unwrap_or("")
            );
            let label = if r["kind"] == "raw" {
                format!("{}{mark} raw device", run.label)
            } else {
                format!(
                    "{}{mark} {} {}",
                    run.label,
                    r["spec"].as_str().unwrap_or(""),
                    r["sector_size"]
                )
            };
            let series = (label, ri, cdf(r));
            match panels.iter_mut().find(|p| p.0 == panel) {
                Some(p) => p.1.push(series),
                None => panels.push((panel, vec![series])),
            }
        }
    }
    let (pw, ph, left, top) = (460.0, 260.0, 60.0, 50.0);
    let cols = 2usize;
    let rows = panels.len().div_ceil(cols);
    let legend_h = 14.0 * panels.iter().map(|p| p.1.len()).max().unwrap_or(0) as f64;
    let cell_h = ph + 60.0 + legend_h;
    let (w, h) = (cols as f64 * (pw + left + 30.0), top + rows as f64 * cell_h);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n<text x=\"10\" y=\"20\" font-size=\"14\">Latency CDF (x: microseconds, log scale; y: fraction of requests at or below)</text>\n"
    );
    for (i, (name, series)) in panels.iter().enumerate() {
        let ox = left + (i % cols) as f64 * (pw + left + 30.0);
        let oy = top + (i / cols) as f64 * cell_h;
        let (lo, hi) = series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.1))
            .fold((f64::MAX, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = (
            lo.max(0.01).log10().floor(),
            hi.max(0.02)
                .log10()
                .ceil()
                .max(lo.max(0.01).log10().floor() + 1.0),
        );
        let x = |us: f64| ox + (us.max(0.01).log10() - lo) / (hi - lo) * pw;
        let yv = |p: f64| oy + 20.0 + ph - p / 100.0 * ph;
        let _ = writeln!(
            s,
            "<text x=\"{ox:.0}\" y=\"{:.0}\" font-size=\"12\">{}</text>",
            oy + 12.0,
            esc(name)
        );
        let _ = writeln!(
            s,
            "<rect x=\"{ox:.0}\" y=\"{:.0}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#ccc\"/>",
            oy + 20.0
        );
        for p in [0.0, 25.0, 50.0, 75.0, 90.0, 100.0] {
            let _ = writeln!(
                s,
                "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"9\" text-anchor=\"end\">{p}%</text><line x1=\"{ox:.0}\" x2=\"{:.0}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/>",
                ox - 4.0,
                yv(p) + 3.0,
                ox + pw,
                yv(p),
                yv(p)
            );
        }
        let mut d = lo;
        while d <= hi {
            let _ = writeln!(
                s,
                "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"9\">{}</text>",
                x(10f64.powf(d)) - 8.0,
                oy + 34.0 + ph,
                10f64.powf(d)
            );
            d += 1.0;
        }
        for (j, (label, ri, pts)) in series.iter().enumerate() {
            let color = COLORS[j % COLORS.len()];
            // One dash pattern per kernel, so colours may repeat.
            let dash = ["", "6,3", "2,2", "8,2,2,2"][ri % 4];
            let path: Vec<String> = pts
                .iter()
                .map(|(p, us)| format!("{:.1},{:.1}", x(*us), yv(*p)))
                .collect();
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" stroke-dasharray=\"{dash}\" points=\"{}\"/>",
                path.join(" ")
            );
            let ly = oy + ph + 52.0 + j as f64 * 14.0;
            let _ = writeln!(
                s,
                "<line x1=\"{ox:.0}\" x2=\"{:.0}\" y1=\"{:.0}\" y2=\"{:.0}\" stroke=\"{color}\" stroke-width=\"1.5\" stroke-dasharray=\"{dash}\"/><text x=\"{:.0}\" y=\"{ly:.0}\" fill=\"{color}\">{}</text>",
                ox + 24.0,
                ly - 4.0,
                ly - 4.0,
                ox + 30.0,
                esc(label)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kbench::plan::{FlagSet, Plan, SpecKey, Workload};

    fn result(mib: f64) -> Value {
        json!({"mib_s": mib, "iops": 10.0, "ios": 10, "seconds": 1.0,
               "lat_us": {"p50": 1.0, "p99": 2.0, "p99_9": 3.0, "mean": 1.2, "max": 4.0},
               "cdf_us": [[50.0, 1.0], [99.0, 2.0], [100.0, 4.0]]})
    }

    /// Records as the runner emits them for a two-flag, one-workload plan.
    fn records() -> Vec<Value> {
        let mut plan = Plan::with_defaults(vec![SpecKey {
            spec: "aes-xts-plain64".into(),
            bits: 512,
        }]);
        plan.flags = vec![FlagSet::None, FlagSet::HighPriority];
        plan.sector_sizes = vec![4096];
        plan.workloads = vec![Workload::parse("1m-seq:qd=4").unwrap()];
        let mut ctx = crate::kbench::context::machine();
        ctx["kind"] = json!("context");
        ctx["backing"] = json!({"kind": "brd", "path": "/dev/ram0", "mib": 128, "note": null});
        ctx["plan"] = plan.to_json();
        let w = "1m-seq:qd=4:jobs=1";
        let crypt = |flags: &str, op: &str, outcome: (&str, Value)| {
            let mut v = json!({"kind": "crypt", "spec": "aes-xts-plain64", "key_bits": 512, "sector_size": 4096,
                               "flags": flags, "workload": w, "op": op,
                               "driver": {"name": "xts(aes)", "driver": "xts-aes-aesni", "priority": 401}});
            v[outcome.0] = outcome.1;
            v
        };
        vec![
            ctx,
            json!({"kind": "raw", "workload": w, "op": "write", "result": result(1000.0)}),
            json!({"kind": "raw", "workload": w, "op": "read", "result": result(2000.0)}),
            crypt("none", "write", ("result", result(500.0))),
            crypt("none", "read", ("result", result(1500.0))),
            crypt(
                "high_priority",
                "write",
                ("refused", json!("the kernel refused the table (errno 22)")),
            ),
            crypt(
                "high_priority",
                "read",
                ("refused", json!("the kernel refused the table (errno 22)")),
            ),
            json!({"kind": "cipher", "spec": "aes-xts-plain64", "key_bits": 512, "sector_size": 4096,
                   "api": "xts(aes)", "encrypt_mib_s": 900.0, "decrypt_mib_s": 950.0, "driver": null}),
        ]
    }

    fn run(accel: Option<&str>) -> KernelRun {
        KernelRun {
            label: "debian:6.1".into(),
            accel: accel.map(String::from),
            records: records(),
            problem: None,
        }
    }

    fn reference() -> Vec<Reference> {
        vec![Reference {
            spec: "aes-xts-plain64".into(),
            bits: 512,
            sector_size: 4096,
            encrypt: 3000.0,
            decrypt: 3100.0,
        }]
    }

    #[test]
    fn the_report_keeps_its_schema() {
        let v = to_json(&[run(Some("tcg")), run(None)], &reference());
        validate(&v).unwrap();
        let r = &v["runs"][0];
        assert_eq!(r["emulated"], true);
        assert_eq!(r["where"], "guest");
        assert_eq!(v["runs"][1]["emulated"], false);
        assert_eq!(r["missing_points"], 0);
        assert!(
            r["crypt"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["emulated"] == true)
        );
        assert_eq!(r["crypt"][0]["ratio_to_raw"], 0.5);
        assert_eq!(r["crypt"][1]["ratio_to_raw"], 0.75);
        assert!(r["crypt"][2]["ratio_to_raw"].is_null());
        assert_eq!(r["backing"]["kind"], "brd");
        assert_eq!(v["reference"][0]["encrypt_mib_s"], 3000.0);
        // It survives a round trip through text.
        let back: Value = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        validate(&back).unwrap();
    }

    #[test]
    fn the_validator_catches_what_a_consumer_would_trip_on() {
        let good = to_json(&[run(Some("tcg"))], &reference());
        type Break = Box<dyn Fn(&mut Value)>;
        let broken: Vec<(&str, Break)> = vec![
            (
                "schema",
                Box::new(|v| v["schema"] = json!("dmch-kernel-bench/0")),
            ),
            (
                "no emulated mark",
                Box::new(|v| v["runs"][0]["emulated"] = Value::Null),
            ),
            (
                "a point without outcome",
                Box::new(|v| v["runs"][0]["crypt"][0]["result"] = Value::Null),
            ),
            (
                "two outcomes",
                Box::new(|v| v["runs"][0]["crypt"][0]["error"] = json!("x")),
            ),
            (
                "no p99.9",
                Box::new(|v| v["runs"][0]["raw"][0]["result"]["lat_us"]["p99_9"] = Value::Null),
            ),
            (
                "CDF going down",
                Box::new(|v| v["runs"][0]["raw"][0]["result"]["cdf_us"][1][1] = json!(0.5)),
            ),
            (
                "no kernel",
                Box::new(|v| v["runs"][0]["machine"]["kernel"] = Value::Null),
            ),
            (
                "no backing",
                Box::new(|v| v["runs"][0]["backing"] = Value::Null),
            ),
            (
                "a cipher without figures",
                Box::new(|v| v["runs"][0]["cipher"][0]["encrypt_mib_s"] = Value::Null),
            ),
        ];
        for (what, f) in broken {
            let mut v = good.clone();
            f(&mut v);
            assert!(validate(&v).is_err(), "{what} passed the validator");
        }
    }

    #[test]
    fn a_run_that_stopped_early_still_makes_a_valid_report() {
        let dead = KernelRun {
            label: "debian:6.12".into(),
            accel: None,
            records: Vec::new(),
            problem: Some("booting debian:6.12: qemu aborted".into()),
        };
        let guest = KernelRun {
            accel: Some("tcg".into()),
            ..KernelRun {
                label: "g".into(),
                accel: None,
                records: Vec::new(),
                problem: Some("x".into()),
            }
        };
        let v = to_json(&[dead, guest], &[]);
        validate(&v).unwrap();
        assert_eq!(v["runs"][0]["problem"], "booting debian:6.12: qemu aborted");
        let mut bad = v.clone();
        bad["runs"][0]["problem"] = Value::Null;
        assert!(validate(&bad).is_err(), "no problem and no backing passed");
    }

    #[test]
    fn lost_points_are_counted() {
        let mut r = run(Some("tcg"));
        r.records
            .retain(|x| !(x["kind"] == "crypt" && x["op"] == "read"));
        let v = to_json(&[r], &[]);
        assert_eq!(v["runs"][0]["missing_points"], 2);
    }

    #[test]
    fn the_table_marks_every_emulated_figure_and_shows_the_ceiling() {
        let t = table(&[run(Some("tcg"))], &reference());
        assert!(t.contains("EMULATED"), "{t}");
        assert!(
            t.contains("500.0~") && t.contains("1500.0~") && t.contains("1000.0~"),
            "{t}"
        );
        assert!(t.contains("0.50") && t.contains("0.75"), "{t}");
        assert!(t.contains("refused"), "{t}");
        assert!(t.contains("xts-aes-aesni (priority 401)"), "{t}");
        assert!(
            t.contains("cipher alone (xts(aes), AF_ALG, 4096-byte requests): 900.0~ / 950.0~"),
            "{t}"
        );
        assert!(
            t.contains("reference engine (this host, 1 thread): 3000.0 / 3100.0"),
            "{t}"
        );
        assert!(t.contains("backing: brd /dev/ram0"), "{t}");
        let host = table(&[run(None)], &[]);
        assert!(!host.contains('~'), "{host}");
        assert!(host.contains("on the host"), "{host}");
        // Under KVM the figures are speeds: no mark.
        let kvm = table(&[run(Some("kvm"))], &[]);
        assert!(!kvm.contains('~') && kvm.contains("under kvm"), "{kvm}");
        assert_eq!(
            to_json(&[run(Some("kvm"))], &[])["runs"][0]["emulated"],
            false
        );
    }

    #[test]
    fn charts_name_each_series_and_the_emulation() {
        let runs = [
            run(Some("tcg")),
            KernelRun {
                label: "debian:6.12".into(),
                ..run(Some("tcg"))
            },
        ];
        let t = svg_throughput(&runs);
        assert!(t.starts_with("<svg") && t.trim_end().ends_with("</svg>"));
        assert!(t.contains("debian:6.1 (emulated) aes-xts-plain64 4096 none"));
        assert!(t.contains("debian:6.12 (emulated)"));
        assert!(t.contains("refused by this kernel"));
        let l = svg_latency(&runs);
        assert!(l.contains("1m-seq:qd=4:jobs=1 write") && l.contains("raw device"));
        assert_eq!(
            l.matches("<polyline").count(),
            8,
            "raw + none per kernel and direction"
        );
    }
}
