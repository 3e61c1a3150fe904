//! Running cases through real kernels: on the host's device-mapper, or in a
//! QEMU guest per kernel; and the real-setup scenario in a guest.

use super::klog::KernelFault;
use super::{Case, KernelResult, Rig, matrix};
use crate::sys::probe;
use crate::vm::{self, KernelSource, PreparedKernel, VmError};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Why a kernel run did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    /// The run was asked for in a way that cannot be done.
    Plan(String),
    #[error("host backend: {0}")]
    /// The host cannot run the cases.
    Host(#[from] probe::Unusable),
    #[error("{what}: {source}")]
    /// A guest could not be prepared or booted.
    Vm {
        /// The step that failed.
        what: String,
        /// Why.
        source: VmError,
    },
    #[error("{what}: {source}")]
    /// A system call failed.
    Io {
        /// The step that failed.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    #[error("interrupted after {0} cases; every mapping and loop device was removed")]
    /// Ctrl-C or SIGTERM, after this many cases.
    Interrupted(usize),
}

fn vm_err(what: impl Into<String>) -> impl FnOnce(VmError) -> RunError {
    let what = what.into();
    move |source| RunError::Vm { what, source }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// Where the cases run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The host when its kernel answers as device-mapper (and no guest
    /// kernel is named), else a QEMU guest.
    Auto,
    /// The host's device-mapper.
    Host,
    /// A QEMU guest per named kernel.
    Vm,
}

/// One kernel's results.
pub struct KernelRun {
    /// The kernel source (`host`, `debian:6.12 (...)`).
    pub label: String,
    /// The kernel release that ran.
    pub release: String,
    /// `host` or `vm (kvm|tcg)`.
    pub backend: String,
    /// How long the cases took.
    pub elapsed: Duration,
    /// What the kernel did with each case, by id.
    pub results: BTreeMap<String, KernelResult>,
    /// Kernel faults while a case ran (logged, or the guest died or hung
    /// in it), by case id.
    pub faults: BTreeMap<String, KernelFault>,
    /// Guests booted again after one died or hung.
    pub restarts: usize,
    /// Algorithms the kernel has, when known (guests report /proc/crypto).
    pub algorithms: Option<BTreeSet<String>>,
}

/// `K/N`: shard K of N, 1-based.
pub fn parse_shard(s: &str) -> Result<(usize, usize), RunError> {
    let bad = || RunError::Plan(format!("--shard {s}: takes K/N with 1 <= K <= N, e.g. 1/4"));
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// The matrix and `regressions` (ids prefixed `regression/`), cut to a
/// shard and to the ids containing any of `only`.
pub fn select(
    shard: Option<(usize, usize)>,
    only: &[String],
    regressions: &[Case],
) -> Result<Vec<Case>, RunError> {
    let mut cases = matrix::cases();
    cases.extend(regressions.iter().map(|r| Case {
        id: format!("regression/{}", r.id),
        ..r.clone()
    }));
    if let Some((k, n)) = shard {
        cases = matrix::shard(cases, k, n);
    }
    if !only.is_empty() {
        cases.retain(|c| only.iter().any(|t| c.id.contains(t.as_str())));
        if cases.is_empty() {
            return Err(RunError::Plan(format!(
                "no case id contains {}",
                only.join(" or ")
            )));
        }
    }
    Ok(cases)
}

/// One rig's results and the faults the kernel logged, by case id.
type RigOutcome = (
    BTreeMap<String, KernelResult>,
    BTreeMap<String, KernelFault>,
);

/// Run `cases` on the host's device-mapper over `jobs` rigs at once (a
/// loop device and a mapping each). Ctrl-C stops after the cases in
/// progress, whose mappings and loop devices are always removed.
pub fn run_host(cases: &[Case], jobs: usize) -> Result<KernelRun, RunError> {
    crate::interrupt::install();
    let ctl = probe::control()?;
    let dir = tempfile::tempdir().map_err(io_err("creating a directory for backing files"))?;
    let started = Instant::now();
    let pid = std::process::id();
    let shards = split(cases, jobs);
    let parts = std::thread::scope(|s| {
        let handles: Vec<_> = shards
            .iter()
            .enumerate()
            .map(|(k, shard)| {
                let (ctl, dir) = (&ctl, dir.path());
                s.spawn(move || -> Result<RigOutcome, RunError> {
                    // Names unique per process and rig, so runs never collide.
                    let mut rig = Rig::new(dir, &format!("dmch-{pid}-{k}"), shard)
                        .map_err(io_err("setting up a loop device"))?;
                    // The host's log is shared with the rest of the
                    // machine: a fault is the case's only as far as
                    // timing says.
                    let mut log = crate::sys::kmsg::KernelLog::open().ok();
                    let mut results = BTreeMap::new();
                    let mut faults = BTreeMap::new();
                    for (i, c) in shard.iter().enumerate() {
                        if crate::interrupt::requested() {
                            // Dropping the rig removes its mapping and loop device.
                            return Err(RunError::Interrupted(i));
                        }
                        let (r, f) = rig.run_logged(ctl, c, log.as_mut(), || {});
                        results.insert(c.id.clone(), r);
                        if let Some(f) = f {
                            faults.insert(c.id.clone(), f);
                        }
                    }
                    rig.close(ctl).map_err(io_err("removing the mapping"))?;
                    Ok((results, faults))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(RunError::Plan("a rig thread panicked".into())))
            })
            .collect::<Vec<_>>()
    });
    let mut results = BTreeMap::new();
    let mut faults = BTreeMap::new();
    for p in parts {
        let (r, f) = p?;
        results.extend(r);
        faults.extend(f);
    }
    Ok(KernelRun {
        label: "host".into(),
        release: probe::release(),
        backend: "host".into(),
        elapsed: started.elapsed(),
        results,
        faults,
        restarts: 0,
        algorithms: None,
    })
}

/// `cases` dealt round robin into at most `jobs` non-empty shards.
fn split(cases: &[Case], jobs: usize) -> Vec<Vec<Case>> {
    let n = jobs.clamp(1, cases.len().max(1));
    let mut shards = vec![Vec::new(); n];
    for (i, c) in cases.iter().enumerate() {
        shards[i % n].push(c.clone());
    }
    shards
}

/// Boot `kernel` with an initramfs for `cases` (and the scenario when
/// asked). `note` hears once that KVM was given up for TCG, and why.
pub fn boot(
    kernel: &PreparedKernel,
    cases: &[Case],
    scenario: bool,
    extra: &[(String, Vec<u8>)],
    timeout: Duration,
    note: &mut dyn FnMut(&str),
) -> Result<vm::GuestRun, RunError> {
    let run = boot_quiet(kernel, cases, scenario, extra, vm::Limits::new(timeout))?
        .finished()
        .map_err(vm_err(format!("booting {}", kernel.label)))?;
    if let Some(n) = &run.accel_note {
        note(n);
    }
    Ok(run)
}

fn boot_quiet(
    kernel: &PreparedKernel,
    cases: &[Case],
    scenario: bool,
    extra: &[(String, Vec<u8>)],
    limits: vm::Limits,
) -> Result<vm::GuestRun, RunError> {
    crate::interrupt::install();
    let dir = vm::work_dir().map_err(vm_err("work directory"))?;
    let initrd = dir.path().join("initrd.cpio");
    let mut extra = extra.to_vec();
    if let Some(h) = test_hooks() {
        extra.push((crate::protocol::files::HOOKS.to_string(), h.into_bytes()));
    }
    vm::build_initramfs_with(kernel, cases, scenario, &extra, &initrd).map_err(vm_err(format!(
        "building the initramfs for {}",
        kernel.label
    )))?;
    // For debugging a guest by hand: keep a copy of its initramfs.
    if let Some(keep) = std::env::var_os("DMCH_KEEP_INITRD") {
        std::fs::copy(&initrd, &keep)
            .map_err(io_err("copying the initramfs to DMCH_KEEP_INITRD"))?;
    }
    vm::run(kernel, &initrd, limits).map_err(vm_err(format!("booting {}", kernel.label)))
}

/// `DMCH_TEST_GUEST_HOOK` (`warn=ID,panic=ID,hang=ID`): misbehaviour the
/// guest acts out, to prove the host survives it; `test-fault` builds only.
fn test_hooks() -> Option<String> {
    if !cfg!(feature = "test-fault") {
        return None;
    }
    std::env::var("DMCH_TEST_GUEST_HOOK")
        .ok()
        .filter(|h| !h.is_empty())
}

/// How many times one shard's guest may die before the run gives up on
/// it: each death costs a boot, and a kernel that dies on every case
/// needs no more proof than this.
const MAX_RESTARTS: usize = 64;

/// How many times cases whose result line was lost run again.
const LOST_RETRIES: usize = 2;

/// Run `cases` in guests booting `kernel` one after the other until every
/// case has a verdict: when a guest dies or hangs in a case, that case is
/// a kernel fault and a fresh guest takes the cases after it.
fn run_shard(
    kernel: &PreparedKernel,
    cases: &[Case],
    limits: vm::Limits,
) -> Result<(vm::GuestRun, usize), RunError> {
    let mut left: Vec<Case> = cases.to_vec();
    let mut merged: Option<vm::GuestRun> = None;
    let mut restarts = 0;
    let mut lost_again = 0;
    loop {
        let mut run = boot_quiet(kernel, &left, false, &[], limits)?;
        let death = run.death.take();
        let done: std::collections::HashSet<String> = run.results.keys().cloned().collect();
        let m = match &mut merged {
            Some(m) => {
                m.results.append(&mut run.results);
                m.faults.append(&mut run.faults);
                m.algorithms.append(&mut run.algorithms);
                m.elapsed += run.elapsed;
                m
            }
            None => merged.insert(run),
        };
        let Some(death) = death else {
            // The kernel writes to the same console as the agent, at any
            // byte: a result line it cuts is lost, not wrong (every field
            // is checked on decoding). Such cases run again in a fresh
            // guest, twice at most; a case still without a result fails
            // as "no result from the kernel side".
            left.retain(|c| !m.results.contains_key(&c.id) && !m.faults.contains_key(&c.id));
            if left.is_empty() || lost_again == LOST_RETRIES {
                return Ok((merged.expect("set above"), restarts));
            }
            lost_again += 1;
            eprintln!(
                "dmch: {}: {} result lines lost on the console ({}); running them again",
                kernel.label,
                left.len(),
                left.iter()
                    .map(|c| c.id.as_str())
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            continue;
        };
        let before = left.len();
        left.retain(|c| !done.contains(&c.id));
        match &death.case {
            Some(id) => {
                m.faults.insert(id.clone(), death.fault.clone());
                left.retain(|c| &c.id != id);
            }
            // Died between cases without progress: nothing to blame, and
            // booting again would die the same way.
            None if left.len() == before => {
                return Err(RunError::Vm {
                    what: format!("booting {}", kernel.label),
                    source: VmError::Setup(format!(
                        "the guest stopped before its first case: {}",
                        death.fault.summary()
                    )),
                });
            }
            None => {}
        }
        if left.is_empty() {
            return Ok((merged.expect("set above"), restarts));
        }
        restarts += 1;
        if restarts > MAX_RESTARTS {
            return Err(RunError::Plan(format!(
                "{}: the guest died {restarts} times; {} cases never ran",
                kernel.label,
                left.len()
            )));
        }
    }
}

/// Run `cases` in `jobs` guests booting `kernel` at once (one vCPU each),
/// the cases dealt round robin between them.
pub fn run_vm(
    kernel: &PreparedKernel,
    cases: &[Case],
    limits: vm::Limits,
    jobs: usize,
    note: &mut dyn FnMut(&str),
) -> Result<KernelRun, RunError> {
    let shards = split(cases, jobs);
    let runs = std::thread::scope(|s| {
        let handles: Vec<_> = shards
            .iter()
            .map(|shard| s.spawn(move || run_shard(kernel, shard, limits)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(RunError::Plan("a guest thread panicked".into())))
            })
            .collect::<Vec<_>>()
    });
    let mut merged: Option<KernelRun> = None;
    for run in runs {
        let (run, restarts) = run?;
        if let Some(n) = &run.accel_note {
            note(n);
        }
        let m = merged.get_or_insert_with(|| KernelRun {
            label: kernel.label.clone(),
            release: run.kernel_release.clone(),
            backend: format!("vm ({})", run.accel.as_str()),
            elapsed: Duration::ZERO,
            results: BTreeMap::new(),
            faults: BTreeMap::new(),
            restarts: 0,
            algorithms: Some(kernel.crypto_templates().into_iter().collect()),
        });
        m.restarts += restarts;
        m.results.extend(run.results);
        m.faults.extend(run.faults);
        if let Some(a) = &mut m.algorithms {
            a.extend(run.algorithms);
        }
        // Guest time: the longest guest, boot to power-off (a guest that
        // waited for the KVM verdict does not count the wait).
        m.elapsed = m.elapsed.max(run.elapsed);
    }
    let mut m = merged.ok_or_else(|| RunError::Plan("no cases to run".into()))?;
    if jobs > 1 {
        m.backend = format!("{}, {} guests", m.backend, shards.len());
    }
    Ok(m)
}

/// Prepare (fetch) a kernel, naming it in the error.
pub fn prepare(source: &KernelSource) -> Result<PreparedKernel, RunError> {
    vm::prepare(source).map_err(vm_err(format!("preparing kernel {source}")))
}

/// One kernel cases run on: the host's, or a prepared guest kernel.
pub enum Target {
    /// The host's device-mapper.
    Host,
    /// A guest booting this kernel.
    Guest(PreparedKernel),
}

impl Target {
    /// Run `cases` on this kernel, over `jobs` rigs or guests at once.
    pub fn run(
        &self,
        cases: &[Case],
        limits: vm::Limits,
        jobs: usize,
        note: &mut dyn FnMut(&str),
    ) -> Result<KernelRun, RunError> {
        match self {
            Target::Host => run_host(cases, jobs),
            Target::Guest(k) => run_vm(k, cases, limits, jobs, note),
        }
    }
}

/// The kernels `backend` and `sources` name: the host, or a guest per
/// source (fetched here).
pub fn targets(backend: Backend, sources: &[KernelSource]) -> Result<Vec<Target>, RunError> {
    let host = probe::host_dm();
    let backend = match backend {
        Backend::Auto if sources.is_empty() && host.is_ok() => Backend::Host,
        Backend::Auto => Backend::Vm,
        b => b,
    };
    if backend == Backend::Host {
        host?;
        return Ok(vec![Target::Host]);
    }
    if sources.is_empty() {
        return Err(RunError::Plan(format!(
            "the host has no usable device-mapper ({}); name a guest kernel, e.g. --kernel debian:6.12",
            host.err().map(|e| e.0).unwrap_or_default()
        )));
    }
    sources
        .iter()
        .map(|s| prepare(s).map(Target::Guest))
        .collect()
}

/// Run `cases` where `backend` says: the host, or a guest per source.
pub fn run(
    backend: Backend,
    sources: &[KernelSource],
    cases: &[Case],
    limits: vm::Limits,
    jobs: usize,
    note: &mut dyn FnMut(&str),
) -> Result<Vec<KernelRun>, RunError> {
    targets(backend, sources)?
        .iter()
        .map(|t| t.run(cases, limits, jobs, note))
        .collect()
}

/// The test-only fault selected by `DMCH_TEST_FAULT` (with the
/// `test-fault` feature only; see [`super::Fault`]).
pub fn fault_from_env() -> Result<super::Fault, RunError> {
    super::Fault::from_env().map_err(RunError::Plan)
}
