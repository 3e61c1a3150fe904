//! Running a plan: each workload on the bare backing device (the ceiling),
//! then per spec, sector size and flag set one mapping over it with every
//! workload written and read through it, and the spec's cipher alone via
//! AF_ALG. Results go out one JSON record at a time (the guest prints each
//! as it comes, so a lost guest still leaves what it measured).

use super::backing::Backing;
use super::context;
use super::plan::{FlagSet, Op, Pattern, Plan, Point, Workload};
use super::stats::{CDF_POINTS, Histogram};
use crate::key::Key;
use crate::spec::CipherSpec;
use crate::sys::activate::{ActivateError, Scoped};
use crate::sys::aio::{Done, Queue};
use crate::sys::{afalg, dm};
use crate::table::{CryptParams, Table};
use serde_json::{Value, json};
use std::io;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// What one workload measured.
#[derive(Clone, Default)]
pub struct Measured {
    /// Bytes moved.
    pub bytes: u64,
    /// Requests completed.
    pub ios: u64,
    /// First submit to last completion.
    pub secs: f64,
    /// Per-request latency.
    pub hist: Histogram,
}

impl Measured {
    /// MiB/s.
    pub fn mib_s(&self) -> f64 {
        self.bytes as f64 / self.secs.max(1e-9) / (1 << 20) as f64
    }

    /// The result fields of a record: throughput, IOPS, latency
    /// percentiles and the CDF points, in microseconds.
    pub fn to_json(&self) -> Value {
        let us = |ns: u64| (ns as f64 / 1000.0 * 100.0).round() / 100.0;
        json!({
            "mib_s": (self.mib_s() * 100.0).round() / 100.0,
            "iops": (self.ios as f64 / self.secs.max(1e-9)).round(),
            "ios": self.ios,
            "seconds": (self.secs * 1000.0).round() / 1000.0,
            "lat_us": {
                "p50": us(self.hist.percentile(50.0)),
                "p99": us(self.hist.percentile(99.0)),
                "p99_9": us(self.hist.percentile(99.9)),
                "mean": us(self.hist.mean() as u64),
                "max": us(self.hist.max()),
            },
            "cdf_us": CDF_POINTS.iter().map(|&p| json!([p, us(self.hist.percentile(p))])).collect::<Vec<_>>(),
        })
    }
}

/// A small PRNG for random offsets (xorshift64*: no dependency, and the
/// same offsets on every machine for a seed).
struct Offsets(u64);

impl Offsets {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Run workload `w` in direction `op` on block device `dev` of `bytes`
/// bytes for about `secs` seconds (at least one request per slot).
pub fn workload(dev: &str, bytes: u64, w: &Workload, op: Op, secs: f64) -> io::Result<Measured> {
    w.check()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let block = w.block as u64;
    if w.footprint() > bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("workload {w} does not fit {bytes} bytes"),
        ));
    }
    let share = bytes / w.jobs as u64 / block * block;
    let until = Duration::from_secs_f64(secs);
    let write = op == Op::Write;
    let start = Instant::now();
    let results: Vec<io::Result<(Histogram, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..w.jobs)
            .map(|j| {
                s.spawn(move || -> io::Result<(Histogram, u64)> {
                    let f = crate::sys::direct_rw(dev)?;
                    let mut q = Queue::new(f.into(), w.depth as usize, w.block as usize, j as u8)?;
                    let mut rng = Offsets(0x9e37_79b9_7f4a_7c15 ^ (j as u64 + 1));
                    let base = j as u64 * share;
                    let mut cursor = 0u64;
                    let mut next = |rng: &mut Offsets| match w.pattern {
                        Pattern::Random => rng.next(bytes / block) * block,
                        Pattern::Sequential => {
                            let at = base + cursor;
                            cursor = (cursor + block) % share;
                            at
                        }
                    };
                    let mut hist = Histogram::default();
                    let mut ios = 0u64;
                    for slot in 0..q.depth() {
                        q.submit(slot, write, next(&mut rng))?;
                    }
                    let mut done: Vec<Done> = Vec::new();
                    while q.in_flight() > 0 {
                        q.reap(1, &mut done)?;
                        let more = start.elapsed() < until && !crate::interrupt::requested();
                        for d in &done {
                            hist.record(d.ns);
                            ios += 1;
                            if more {
                                q.submit(d.slot, write, next(&mut rng))?;
                            }
                        }
                    }
                    Ok((hist, ios))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a job panicked")))
            })
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let mut m = Measured {
        secs,
        ..Measured::default()
    };
    for r in results {
        let (h, n) = r?;
        m.hist.merge(&h);
        m.ios += n;
    }
    m.bytes = m.ios * block;
    Ok(m)
}

/// The key of a benchmark mapping (and of the reference beside it):
/// fixed bytes, no secret is at stake.
pub fn bench_key(bits: usize) -> Zeroizing<Vec<u8>> {
    Zeroizing::new((0..bits / 8).map(|i| (i * 37 + 11) as u8).collect())
}

fn point_json(p: &Point, plan: &Plan) -> Value {
    let mut v = json!({
        "workload": p.workload.to_string(),
        "op": p.op.name(),
    });
    if let Some((si, f, ss)) = p.crypt {
        v["spec"] = json!(plan.specs[si].spec);
        v["key_bits"] = json!(plan.specs[si].bits);
        v["sector_size"] = json!(ss);
        v["flags"] = json!(f.name());
    }
    v
}

/// Run `plan` over `backing`, handing each record to `emit`: the context
/// first, then one per point (`kind` raw or crypt) and one per spec and
/// sector size for the cipher alone (`kind` cipher). A mapping the kernel
/// refuses (high_priority before 6.10) gives its points a `refused` reason.
/// An interrupt (`crate::interrupt`) ends the run after the current point.
pub fn run(plan: &Plan, ctl: &dm::Control, backing: &Backing, emit: &mut dyn FnMut(Value)) {
    let mut ctx = context::machine();
    ctx["kind"] = json!("context");
    ctx["backing"] = backing.to_json();
    ctx["plan"] = plan.to_json();
    emit(ctx);
    let points = plan.points();
    let name = format!("dmch-kbench-{}", std::process::id());
    let mut i = 0;
    // Ctrl-C stops between points: the mapping in use is removed on the
    // way out, and what was measured is reported.
    while i < points.len() && !crate::interrupt::requested() {
        let p = &points[i];
        // The points of one mapping run together.
        let group = points[i..]
            .iter()
            .take_while(|q| q.crypt == p.crypt)
            .count();
        let pts = &points[i..i + group];
        i += group;
        let Some((si, f, ss)) = p.crypt else {
            for q in pts {
                let mut v = point_json(q, plan);
                v["kind"] = json!("raw");
                match workload(
                    &backing.path,
                    backing.bytes,
                    &q.workload,
                    q.op,
                    plan.seconds,
                ) {
                    Ok(m) => v["result"] = m.to_json(),
                    Err(e) => v["error"] = json!(e.to_string()),
                }
                emit(v);
            }
            continue;
        };
        let sk = &plan.specs[si];
        let key = bench_key(sk.bits);
        let mapped = map(ctl, &name, backing, &sk.spec, &key, f, ss);
        let driver = CipherSpec::parse(&sk.spec)
            .ok()
            .and_then(|s| driver_json(&context::api_name(&s)));
        for q in pts {
            let mut v = point_json(q, plan);
            v["kind"] = json!("crypt");
            v["driver"] = driver.clone().unwrap_or(Value::Null);
            match &mapped {
                Err(Refusal::Refused(why)) => v["refused"] = json!(why),
                Err(Refusal::Error(why)) => v["error"] = json!(why),
                Ok(m) => {
                    let node = m.mapping().node();
                    match workload(&node, backing.bytes, &q.workload, q.op, plan.seconds) {
                        Ok(r) => v["result"] = r.to_json(),
                        Err(e) => v["error"] = json!(e.to_string()),
                    }
                }
            }
            emit(v);
        }
        drop(mapped);
        // The cipher alone once per spec and sector size: with the first
        // flag set of that pair.
        if f == plan.flags[0] {
            emit(cipher_alone(plan, si, ss, &key));
        }
    }
}

enum Refusal {
    /// The kernel refused the table (EINVAL and kin): a fact about it.
    Refused(String),
    /// Something else went wrong.
    Error(String),
}

fn map<'a>(
    ctl: &'a dm::Control,
    name: &str,
    backing: &Backing,
    spec: &str,
    key: &[u8],
    f: FlagSet,
    ss: u32,
) -> Result<Scoped<'a>, Refusal> {
    let s = CipherSpec::parse(spec).map_err(|e| Refusal::Error(e.to_string()))?;
    let mut options = f.options();
    options.sector_size = (ss != 512).then_some(ss);
    let params =
        CryptParams::new(s, Key::from_bytes(key), backing.path.clone()).with_options(options);
    let table =
        Table::new(0, backing.bytes / 512, params).map_err(|e| Refusal::Error(e.to_string()))?;
    let text = Zeroizing::new(table.params.to_string());
    Scoped::activate(ctl, name, backing.bytes / 512, "crypt", &text, false).map_err(|e| match e {
        ActivateError::Refused(e) => Refusal::Refused(format!(
            "the kernel refused the table ({})",
            e.raw_os_error()
                .map_or(e.to_string(), |n| format!("errno {n}"))
        )),
        other => Refusal::Error(other.to_string()),
    })
}

fn driver_json(api: &str) -> Option<Value> {
    let text = std::fs::read_to_string("/proc/crypto").ok()?;
    let d = context::chosen(&context::parse_proc_crypto(&text), api)?;
    Some(json!({"name": d.name, "driver": d.driver, "priority": d.priority}))
}

/// The data transform through AF_ALG, one sector per call.
fn cipher_alone(plan: &Plan, si: usize, ss: u32, key: &[u8]) -> Value {
    let sk = &plan.specs[si];
    let mut v = json!({"kind": "cipher", "spec": sk.spec, "key_bits": sk.bits, "sector_size": ss});
    let Ok(s) = CipherSpec::parse(&sk.spec) else {
        v["error"] = json!("unparsable spec");
        return v;
    };
    // ESSIV's extra encryption of the IV is left out: this is the cipher.
    let api = s.api_name();
    let text = std::fs::read_to_string("/proc/crypto").unwrap_or_default();
    let ivlen = context::chosen(&context::parse_proc_crypto(&text), &api).map_or(16, |d| d.ivsize);
    // A keycount splits the key between instances; one instance's share.
    let per = key.len() / s.keycount.max(1) as usize;
    v["api"] = json!(api);
    match afalg::measure(&api, &key[..per], ivlen, ss as usize, plan.seconds) {
        Ok((e, d)) => {
            v["encrypt_mib_s"] = json!((e * 100.0).round() / 100.0);
            v["decrypt_mib_s"] = json!((d * 100.0).round() / 100.0);
        }
        Err(e) => v["error"] = json!(format!("AF_ALG {api}: {e}")),
    }
    // The driver as the crypto API lists it once AF_ALG allocated it.
    v["driver"] = driver_json(&api).unwrap_or(Value::Null);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_and_random_workloads_move_whole_requests_on_a_file() {
        // O_DIRECT on a regular file takes the same path a block device does.
        let dir = tempfile::tempdir_in(".").unwrap();
        let path = dir.path().join("dev");
        std::fs::write(&path, vec![0u8; 4 << 20]).unwrap();
        let p = path.to_str().unwrap();
        for w in ["4k-rand:qd=8:jobs=2", "128k-seq:qd=2", "1m-seq"] {
            let w = Workload::parse(w).unwrap();
            for op in [Op::Write, Op::Read] {
                let m = match workload(p, 4 << 20, &w, op, 0.02) {
                    Ok(m) => m,
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        println!("SKIPPED workload on a file: O_DIRECT refused here: {e}");
                        return;
                    }
                    Err(e) => panic!("{w} {op:?}: {e}"),
                };
                assert!(m.ios >= (w.depth * w.jobs) as u64, "{w}: {} ios", m.ios);
                assert_eq!(m.bytes, m.ios * w.block as u64);
                assert_eq!(m.hist.count(), m.ios);
                assert!(m.mib_s() > 0.0);
                let j = m.to_json();
                assert!(
                    j["lat_us"]["p99_9"].as_f64().unwrap() >= j["lat_us"]["p50"].as_f64().unwrap()
                );
            }
        }
        // A workload larger than the device is refused, nothing written.
        let w = Workload::parse("1m-seq:qd=4").unwrap();
        assert!(workload(p, 4 << 20, &w, Op::Write, 0.01).is_err());
    }

    #[test]
    fn random_offsets_stay_inside_and_repeat_per_seed() {
        let mut a = Offsets(5);
        let mut b = Offsets(5);
        for _ in 0..1000 {
            let x = a.next(17);
            assert!(x < 17);
            assert_eq!(x, b.next(17));
        }
    }
}
