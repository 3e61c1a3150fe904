//! What a kernel benchmark measures: the specs, the dm-crypt flag sets,
//! the sector sizes, the workloads (request size, pattern, queue depth,
//! jobs) and both directions, expanded into the points of the matrix.

use serde_json::{Value, json};
use std::fmt;

/// The dm-crypt performance flags a run is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlagSet {
    /// No optional parameter: the kcryptd workqueues for both directions.
    None,
    /// `no_read_workqueue` (5.9): reads decrypted in the completion context.
    NoReadWorkqueue,
    /// `no_write_workqueue` (5.9): writes encrypted without the workqueue.
    NoWriteWorkqueue,
    /// Both of the above.
    NoWorkqueues,
    /// `same_cpu_crypt`: encrypt on the submitting CPU.
    SameCpuCrypt,
    /// `submit_from_crypt_cpus`: write from the crypt threads.
    SubmitFromCryptCpus,
    /// `high_priority` (6.10): the workqueues at high priority.
    HighPriority,
}

impl FlagSet {
    /// Every flag set, in table order.
    pub const ALL: [FlagSet; 7] = [
        FlagSet::None,
        FlagSet::NoReadWorkqueue,
        FlagSet::NoWriteWorkqueue,
        FlagSet::NoWorkqueues,
        FlagSet::SameCpuCrypt,
        FlagSet::SubmitFromCryptCpus,
        FlagSet::HighPriority,
    ];

    /// The name used on the command line, in JSON and in tables.
    pub fn name(self) -> &'static str {
        match self {
            FlagSet::None => "none",
            FlagSet::NoReadWorkqueue => "no_read_workqueue",
            FlagSet::NoWriteWorkqueue => "no_write_workqueue",
            FlagSet::NoWorkqueues => "no_read+no_write_workqueue",
            FlagSet::SameCpuCrypt => "same_cpu_crypt",
            FlagSet::SubmitFromCryptCpus => "submit_from_crypt_cpus",
            FlagSet::HighPriority => "high_priority",
        }
    }

    /// The table options this set turns on.
    pub fn options(self) -> crate::table::Options {
        let mut o = crate::table::Options::default();
        match self {
            FlagSet::None => {}
            FlagSet::NoReadWorkqueue => o.no_read_workqueue = true,
            FlagSet::NoWriteWorkqueue => o.no_write_workqueue = true,
            FlagSet::NoWorkqueues => {
                o.no_read_workqueue = true;
                o.no_write_workqueue = true;
            }
            FlagSet::SameCpuCrypt => o.same_cpu_crypt = true,
            FlagSet::SubmitFromCryptCpus => o.submit_from_crypt_cpus = true,
            FlagSet::HighPriority => o.high_priority = true,
        }
        o
    }

    /// By name; `both` also names the two workqueue flags together.
    pub fn parse(s: &str) -> Option<FlagSet> {
        if s == "both" || s == "no_workqueue" {
            return Some(FlagSet::NoWorkqueues);
        }
        FlagSet::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// Sequential or random offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// Each job walks its own share of the device in order.
    Sequential,
    /// Uniform random block-aligned offsets over the whole device.
    Random,
}

/// One workload: request size, pattern, requests in flight per job, jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Workload {
    /// Bytes per request (a multiple of 4096).
    pub block: u32,
    /// Offsets.
    pub pattern: Pattern,
    /// Requests in flight per job (native AIO).
    pub depth: u32,
    /// Threads, each with its own queue.
    pub jobs: u32,
}

/// Largest request, queue depth and job count a plan may name.
pub const MAX_BLOCK: u32 = 16 << 20;
/// Most requests in flight per job.
pub const MAX_DEPTH: u32 = 256;
/// Most jobs.
pub const MAX_JOBS: u32 = 64;

impl Workload {
    /// The defaults: latency (4 KiB random, one in flight), IOPS (4 KiB
    /// random, 32 in flight) and streaming (128 KiB and 1 MiB sequential).
    pub fn defaults() -> Vec<Workload> {
        let w = |block, pattern, depth| Workload {
            block,
            pattern,
            depth,
            jobs: 1,
        };
        vec![
            w(4096, Pattern::Random, 1),
            w(4096, Pattern::Random, 32),
            w(128 << 10, Pattern::Sequential, 8),
            w(1 << 20, Pattern::Sequential, 4),
        ]
    }

    /// `4k-rand:qd=32:jobs=2`, `128k-seq`, `1m-seq:qd=4` (qd and jobs 1
    /// when not given).
    pub fn parse(s: &str) -> Result<Workload, String> {
        let mut parts = s.split(':');
        let head = parts.next().unwrap_or_default();
        let (size, pat) = head
            .split_once('-')
            .ok_or_else(|| format!("workload {s}: write SIZE-seq|rand[:qd=N][:jobs=N]"))?;
        let pattern = match pat {
            "seq" => Pattern::Sequential,
            "rand" => Pattern::Random,
            p => return Err(format!("workload {s}: {p} is neither seq nor rand")),
        };
        let (num, unit) = size.split_at(
            size.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(size.len()),
        );
        let n: u64 = num
            .parse()
            .map_err(|_| format!("workload {s}: {size} is not a size such as 4k or 1m"))?;
        let mul = match unit {
            "" => 1,
            "k" | "K" => 1 << 10,
            "m" | "M" => 1 << 20,
            u => return Err(format!("workload {s}: unit {u} (use k or m)")),
        };
        let block = n
            .checked_mul(mul)
            .filter(|&b| b <= MAX_BLOCK as u64)
            .ok_or_else(|| format!("workload {s}: requests are at most {} MiB", MAX_BLOCK >> 20))?
            as u32;
        let mut w = Workload {
            block,
            pattern,
            depth: 1,
            jobs: 1,
        };
        for p in parts {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("workload {s}: {p} is not qd=N or jobs=N"))?;
            let v: u32 = v
                .parse()
                .map_err(|_| format!("workload {s}: {v} is not a number"))?;
            match k {
                "qd" => w.depth = v,
                "jobs" => w.jobs = v,
                _ => return Err(format!("workload {s}: unknown setting {k}")),
            }
        }
        w.check().map_err(|e| format!("workload {s}: {e}"))?;
        Ok(w)
    }

    /// The bounds every workload keeps.
    pub fn check(&self) -> Result<(), String> {
        if self.block == 0 || !self.block.is_multiple_of(4096) || self.block > MAX_BLOCK {
            return Err(format!(
                "a request of {} bytes is not a multiple of 4096 up to {} MiB",
                self.block,
                MAX_BLOCK >> 20
            ));
        }
        if !(1..=MAX_DEPTH).contains(&self.depth) {
            return Err(format!("queue depth {} is not 1..={MAX_DEPTH}", self.depth));
        }
        if !(1..=MAX_JOBS).contains(&self.jobs) {
            return Err(format!("jobs {} is not 1..={MAX_JOBS}", self.jobs));
        }
        Ok(())
    }

    /// Bytes the workload needs the device to hold (every job's requests in
    /// flight, twice over for sequential wrap-around).
    pub fn footprint(&self) -> u64 {
        self.block as u64 * self.depth as u64 * self.jobs as u64 * 2
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = if self.block.is_multiple_of(1 << 20) {
            format!("{}m", self.block >> 20)
        } else {
            format!("{}k", self.block >> 10)
        };
        let pat = match self.pattern {
            Pattern::Sequential => "seq",
            Pattern::Random => "rand",
        };
        write!(f, "{size}-{pat}:qd={}:jobs={}", self.depth, self.jobs)
    }
}

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Writes (encryption).
    Write,
    /// Reads (decryption).
    Read,
}

impl Op {
    /// `read` or `write`.
    pub fn name(self) -> &'static str {
        match self {
            Op::Write => "write",
            Op::Read => "read",
        }
    }
}

/// A spec with its key size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecKey {
    /// Cipher spec, as in a table.
    pub spec: String,
    /// Key bits.
    pub bits: usize,
}

/// The whole benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Specs to map.
    pub specs: Vec<SpecKey>,
    /// Flag sets per spec.
    pub flags: Vec<FlagSet>,
    /// Sector sizes per spec.
    pub sector_sizes: Vec<u32>,
    /// Workloads per mapping.
    pub workloads: Vec<Workload>,
    /// Seconds per measured point.
    pub seconds: f64,
    /// Size of the backing device in MiB.
    pub device_mib: u32,
}

/// The largest backing device (it lives in RAM, in a guest of 768 MiB).
pub const MAX_DEVICE_MIB: u32 = 512;

/// One point of the matrix. `crypt: None` is the bare backing device.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Index into `Plan::specs`, flags and sector size; `None` for the raw device.
    pub crypt: Option<(usize, FlagSet, u32)>,
    /// The workload.
    pub workload: Workload,
    /// The direction.
    pub op: Op,
}

impl Plan {
    /// The default matrix for `specs`: every flag set, 512 and 4096-byte
    /// sectors, the default workloads.
    pub fn with_defaults(specs: Vec<SpecKey>) -> Plan {
        Plan {
            specs,
            flags: FlagSet::ALL.to_vec(),
            sector_sizes: vec![512, 4096],
            workloads: Workload::defaults(),
            seconds: 1.0,
            device_mib: 128,
        }
    }

    /// The rules a plan keeps before anything is mapped.
    pub fn check(&self) -> Result<(), String> {
        if self.specs.is_empty() || self.flags.is_empty() || self.workloads.is_empty() {
            return Err("the plan names no spec, flag set or workload".into());
        }
        if self.sector_sizes.is_empty() {
            return Err("the plan names no sector size".into());
        }
        for &ss in &self.sector_sizes {
            if !(512..=4096).contains(&ss) || !ss.is_power_of_two() {
                return Err(format!(
                    "sector size {ss} is not a power of two in 512..=4096"
                ));
            }
        }
        if !(self.seconds.is_finite() && self.seconds > 0.0 && self.seconds <= 600.0) {
            return Err(format!(
                "{} seconds per point is not in (0, 600]",
                self.seconds
            ));
        }
        if !(1..=MAX_DEVICE_MIB).contains(&self.device_mib) {
            return Err(format!(
                "a device of {} MiB is not 1..={MAX_DEVICE_MIB}",
                self.device_mib
            ));
        }
        let bytes = (self.device_mib as u64) << 20;
        for w in &self.workloads {
            w.check()?;
            if w.footprint() > bytes {
                return Err(format!(
                    "workload {w} needs {} MiB in flight; the device has {} MiB",
                    w.footprint().div_ceil(1 << 20),
                    self.device_mib
                ));
            }
        }
        for s in &self.specs {
            crate::spec::CipherSpec::parse(&s.spec).map_err(|e| e.to_string())?;
            if s.bits == 0 || !s.bits.is_multiple_of(8) || s.bits / 8 > crate::key::MAX_KEY_BYTES {
                return Err(format!("{}: a {}-bit key", s.spec, s.bits));
            }
        }
        Ok(())
    }

    /// Every point, in the order they run: the raw device's workloads
    /// first, then per spec, sector size and flag set each workload written
    /// and then read (reads find data the writes left).
    pub fn points(&self) -> Vec<Point> {
        let mut v = Vec::new();
        let both = |v: &mut Vec<Point>, crypt, w: &Workload| {
            for op in [Op::Write, Op::Read] {
                v.push(Point {
                    crypt,
                    workload: *w,
                    op,
                });
            }
        };
        for w in &self.workloads {
            both(&mut v, None, w);
        }
        for si in 0..self.specs.len() {
            for &ss in &self.sector_sizes {
                for &f in &self.flags {
                    for w in &self.workloads {
                        both(&mut v, Some((si, f, ss)), w);
                    }
                }
            }
        }
        v
    }

    /// The plan as JSON (it travels to the guest in the initramfs).
    pub fn to_json(&self) -> Value {
        json!({
            "specs": self.specs.iter().map(|s| json!({"spec": s.spec, "key_bits": s.bits})).collect::<Vec<_>>(),
            "flags": self.flags.iter().map(|f| f.name()).collect::<Vec<_>>(),
            "sector_sizes": self.sector_sizes,
            "workloads": self.workloads.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
            "seconds": self.seconds,
            "device_mib": self.device_mib,
        })
    }

    /// Read [`Plan::to_json`]'s form back, checked.
    pub fn from_json(v: &Value) -> Result<Plan, String> {
        let arr = |k: &str| {
            v[k].as_array()
                .ok_or_else(|| format!("plan: {k} is not a list"))
        };
        let specs = arr("specs")?
            .iter()
            .map(|s| {
                Ok(SpecKey {
                    spec: s["spec"]
                        .as_str()
                        .ok_or("plan: a spec without text")?
                        .into(),
                    bits: s["key_bits"]
                        .as_u64()
                        .ok_or("plan: a spec without key_bits")? as usize,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let flags = arr("flags")?
            .iter()
            .map(|f| {
                f.as_str()
                    .and_then(FlagSet::parse)
                    .ok_or_else(|| format!("plan: unknown flag set {f}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let sector_sizes = arr("sector_sizes")?
            .iter()
            .map(|s| {
                s.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("plan: sector size {s}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let workloads = arr("workloads")?
            .iter()
            .map(|w| Workload::parse(w.as_str().unwrap_or_default()))
            .collect::<Result<Vec<_>, String>>()?;
        let p = Plan {
            specs,
            flags,
            sector_sizes,
            workloads,
            seconds: v["seconds"].as_f64().ok_or("plan: no seconds")?,
            device_mib: v["device_mib"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("plan: no device_mib")?,
        };
        p.check()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aes() -> SpecKey {
        SpecKey {
            spec: "aes-xts-plain64".into(),
            bits: 512,
        }
    }

    #[test]
    fn the_default_matrix_has_every_combination_once() {
        let p = Plan::with_defaults(vec![
            aes(),
            SpecKey {
                spec: "serpent-xts-plain64".into(),
                bits: 512,
            },
        ]);
        p.check().unwrap();
        let pts = p.points();
        // raw: 4 workloads x 2; crypt: 2 specs x 2 sizes x 7 flags x 4 x 2.
        assert_eq!(pts.len(), 8 + 2 * 2 * 7 * 4 * 2);
        let mut seen = std::collections::HashSet::new();
        for pt in &pts {
            let key = (
                pt.crypt.map(|(s, f, ss)| (s, f.name(), ss)),
                pt.workload.to_string(),
                pt.op,
            );
            assert!(seen.insert(key), "{pt:?} twice");
        }
        // Raw first; each write comes right before its read.
        assert!(pts[..8].iter().all(|p| p.crypt.is_none()));
        assert!(pts[8..].iter().all(|p| p.crypt.is_some()));
        for pair in pts.chunks(2) {
            assert_eq!((pair[0].op, pair[1].op), (Op::Write, Op::Read));
            assert_eq!(pair[0].crypt, pair[1].crypt);
            assert_eq!(pair[0].workload, pair[1].workload);
        }
        for f in FlagSet::ALL {
            assert!(pts.iter().any(|p| p.crypt.map(|c| c.1) == Some(f)), "{f:?}");
        }
    }

    #[test]
    fn flag_sets_become_the_table_options_they_name() {
        for f in FlagSet::ALL {
            let words = f.options().to_args();
            let text = words.join(" ");
            match f {
                FlagSet::None => assert!(words.is_empty()),
                FlagSet::NoWorkqueues => {
                    assert!(
                        text.contains("no_read_workqueue") && text.contains("no_write_workqueue")
                    )
                }
                _ => assert!(text.contains(f.name()), "{f:?}: {text}"),
            }
            assert_eq!(FlagSet::parse(f.name()), Some(f));
        }
        assert_eq!(FlagSet::parse("both"), Some(FlagSet::NoWorkqueues));
        assert_eq!(FlagSet::parse("fast"), None);
    }

    #[test]
    fn workloads_parse_print_and_refuse() {
        let w = Workload::parse("4k-rand:qd=32").unwrap();
        assert_eq!(
            w,
            Workload {
                block: 4096,
                pattern: Pattern::Random,
                depth: 32,
                jobs: 1
            }
        );
        assert_eq!(w.to_string(), "4k-rand:qd=32:jobs=1");
        for w in Workload::defaults() {
            assert_eq!(Workload::parse(&w.to_string()).unwrap(), w);
        }
        assert_eq!(Workload::parse("1m-seq:jobs=2").unwrap().jobs, 2);
        for bad in [
            "4k",
            "4k-zigzag",
            "3k-seq",
            "0k-seq",
            "32m-seq",
            "4k-seq:qd=0",
            "4k-seq:qd=257",
            "4k-seq:jobs=65",
            "4k-seq:depth=2",
            "4k-seq:qd",
            "99999999999999999999k-seq",
            "4g-seq",
        ] {
            assert!(Workload::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn plans_refuse_what_cannot_run() {
        let ok = Plan::with_defaults(vec![aes()]);
        ok.check().unwrap();
        let mut p = ok.clone();
        p.sector_sizes = vec![1024, 8192];
        assert!(p.check().unwrap_err().contains("8192"));
        let mut p = ok.clone();
        p.device_mib = 4;
        p.workloads = vec![Workload::parse("1m-seq:qd=4").unwrap()];
        assert!(p.check().unwrap_err().contains("in flight"));
        let mut p = ok.clone();
        p.device_mib = 100_000;
        assert!(p.check().is_err());
        let mut p = ok.clone();
        p.specs[0].spec = "aes-xts-plain64 bad".into();
        assert!(p.check().is_err());
        let mut p = ok.clone();
        p.seconds = f64::NAN;
        assert!(p.check().is_err());
        let mut p = ok;
        p.flags.clear();
        assert!(p.check().is_err());
    }

    #[test]
    fn a_plan_travels_as_json_unchanged() {
        let mut p = Plan::with_defaults(vec![aes()]);
        p.flags = vec![FlagSet::None, FlagSet::NoWorkqueues];
        p.seconds = 0.25;
        let back = Plan::from_json(&p.to_json()).unwrap();
        assert_eq!(back, p);
        let mut v = p.to_json();
        v["flags"] = json!(["turbo"]);
        assert!(Plan::from_json(&v).unwrap_err().contains("turbo"));
        let mut v = p.to_json();
        v["device_mib"] = json!(1u64 << 40);
        assert!(Plan::from_json(&v).is_err());
    }
}
