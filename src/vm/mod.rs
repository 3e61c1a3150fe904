//! The QEMU backend: fetch a stock kernel, build an initramfs whose PID 1 is
//! `dmch` itself (see `guest::agent`), boot it under QEMU and collect the
//! result lines from the serial console.

mod cpio;
mod fetch;

pub use fetch::{
    DEBIAN_LINES, DebianLine, KernelSource, PreparedKernel, any_cached, apt_state, cache_entries,
    debian_mirror, debian_resolutions, prepare,
};

use crate::oracle::klog::{self, FaultKind, KernelFault};
use crate::oracle::{Case, KernelResult};
use crate::protocol::{Line, files};
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Errors of the VM backend, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("{0}")]
    /// A step of preparing or booting failed, in words.
    Setup(String),
    #[error("{what}: {source}")]
    /// A system call failed.
    Io {
        /// The step that failed.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VmError {
    let what = what.into();
    move |source| VmError::Io { what, source }
}

/// Modules the guest needs: dm-crypt and loop, and every crypto module,
/// since the guest has no modprobe to load algorithms on demand.
fn wanted(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split(".ko").next().unwrap_or(base);
    matches!(
        stem,
        "dm-crypt" | "dm-mod" | "loop" | "dm-log-writes" | "dm-flakey"
    ) || path.starts_with("kernel/crypto/")
        || path.starts_with("kernel/arch/x86/crypto/")
        || path.starts_with("kernel/lib/crypto/")
        || path.starts_with("kernel/lib/") && stem.contains("crc")
}

/// Module paths in load order (dependencies first), from modules.dep.
fn module_order(modules_root: &Path) -> Result<Vec<String>, VmError> {
    let dep_file = modules_root.join("modules.dep");
    let text = std::fs::read_to_string(&dep_file).map_err(io(format!(
        "reading {} (run depmod for this kernel)",
        dep_file.display()
    )))?;
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some((m, d)) = line.split_once(':') {
            deps.insert(
                m.to_string(),
                d.split_whitespace().map(String::from).collect(),
            );
        }
    }
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    fn visit(
        m: &str,
        deps: &BTreeMap<String, Vec<String>>,
        seen: &mut HashSet<String>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(m.to_string()) {
            return;
        }
        for d in deps.get(m).into_iter().flatten() {
            visit(d, deps, seen, order);
        }
        order.push(m.to_string());
    }
    for m in deps.keys().filter(|m| wanted(m)) {
        visit(m, &deps, &mut seen, &mut order);
    }
    Ok(order)
}

fn read_module(path: &Path) -> Result<Vec<u8>, VmError> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        Some("xz")
    } else if name.ends_with(".zst") {
        Some("zstd")
    } else if name.ends_with(".gz") {
        Some("gzip")
    } else {
        None
    };
    match tool {
        None => std::fs::read(path).map_err(io(format!("reading {name}"))),
        Some(t) => {
            let out = Command::new(t)
                .arg("-dc")
                .arg(path)
                .output()
                .map_err(io(format!("running {t} -dc (is it installed?)")))?;
            if !out.status.success() {
                return Err(VmError::Setup(format!("{t} could not decompress {name}")));
            }
            Ok(out.stdout)
        }
    }
}

/// Shared libraries of this executable, as `ldd` lists them.
fn libraries(exe: &Path) -> Result<Vec<PathBuf>, VmError> {
    let out = Command::new("ldd")
        .arg(exe)
        .output()
        .map_err(io("running ldd"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            let p = l.split("=>").last()?.trim().split(' ').next()?;
            p.starts_with('/').then(|| PathBuf::from(p))
        })
        .collect())
}

/// Build the initramfs: dmch as /init, its libraries, modules, the cases.
pub fn build_initramfs(kernel: &PreparedKernel, cases: &[Case], out: &Path) -> Result<(), VmError> {
    build_initramfs_with(kernel, cases, false, &[], out)
}

/// As [`build_initramfs`]; with `scenario`, the guest also runs the
/// real-setup scenarios (`guest::scenario`, `guest::luks_scenario`), and
/// `extra` files (path in the initramfs, bytes) go along.
pub fn build_initramfs_with(
    kernel: &PreparedKernel,
    cases: &[Case],
    scenario: bool,
    extra: &[(String, Vec<u8>)],
    out: &Path,
) -> Result<(), VmError> {
    write_initramfs(Some(kernel), cases, scenario, extra, out)
}

/// The smallest initramfs that proves a boot: the agent and its libraries,
/// no modules and no cases (it prints its first line and powers off).
pub fn build_probe_initramfs(out: &Path) -> Result<(), VmError> {
    write_initramfs(None, &[], false, &[], out)
}

fn write_initramfs(
    kernel: Option<&PreparedKernel>,
    cases: &[Case],
    scenario: bool,
    extra: &[(String, Vec<u8>)],
    out: &Path,
) -> Result<(), VmError> {
    let exe = std::env::current_exe().map_err(io("locating dmch"))?;
    let f = std::fs::File::create(out).map_err(io(format!("creating {}", out.display())))?;
    let mut c = cpio::Cpio::new(std::io::BufWriter::new(f));
    let w = |e: std::io::Error| VmError::Io {
        what: "writing the initramfs".into(),
        source: e,
    };
    for d in [
        "dev", "proc", "sys", "tmp", "modules", "lib", "lib64", "usr", "usr/lib",
    ] {
        c.dir(d).map_err(w)?;
    }
    c.char_dev("dev/console", 5, 1).map_err(w)?;
    // The running executable itself, even when a rebuild replaced the file.
    let init = std::fs::read("/proc/self/exe")
        .or_else(|_| std::fs::read(&exe))
        .map_err(io("reading the dmch executable"))?;
    c.file(files::INIT, &init, true).map_err(w)?;
    let mut dirs = HashSet::new();
    for lib in libraries(&exe)? {
        let data = std::fs::read(&lib).map_err(io(format!("reading {}", lib.display())))?;
        let name = lib.to_string_lossy().trim_start_matches('/').to_string();
        let mut acc = String::new();
        for part in name.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            acc = if acc.is_empty() {
                part.to_string()
            } else {
                format!("{acc}/{part}")
            };
            if dirs.insert(acc.clone())
                && !["lib", "lib64", "usr", "usr/lib"].contains(&acc.as_str())
            {
                c.dir(&acc).map_err(w)?;
            }
        }
        c.file(&name, &data, true).map_err(w)?;
    }
    let mut order = String::new();
    let modules = match kernel {
        Some(k) => module_order(&k.modules_root)?
            .into_iter()
            .map(|m| k.modules_root.join(m))
            .collect(),
        None => Vec::new(),
    };
    for (i, m) in modules.iter().enumerate() {
        let data = read_module(m)?;
        let name = files::module(i);
        c.file(&format!("{}/{name}", files::MODULE_DIR), &data, false)
            .map_err(w)?;
        order.push_str(&name);
        order.push('\n');
    }
    c.file(files::MODULE_ORDER, order.as_bytes(), false)
        .map_err(w)?;
    let lines: String = cases.iter().map(|c| c.to_line() + "\n").collect();
    c.file(files::CASES, lines.as_bytes(), false).map_err(w)?;
    if scenario {
        c.file(files::SCENARIO, b"", false).map_err(w)?;
    }
    let mut made = HashSet::new();
    for (path, data) in extra {
        if let Some((d, _)) = path.rsplit_once('/')
            && made.insert(d.to_string())
        {
            c.dir(d).map_err(w)?;
        }
        c.file(path, data, false).map_err(w)?;
    }
    use std::io::Write;
    c.finish().map_err(w)?.flush().map_err(w)?;
    Ok(())
}

/// vCPUs per guest: 1 (guests run side by side, one per core) unless a
/// benchmark asks for more with [`set_guest_cpus`].
static GUEST_CPUS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// Boot the guests of this process with `n` vCPUs (1..=64).
pub fn set_guest_cpus(n: usize) {
    GUEST_CPUS.store(n.clamp(1, 64), std::sync::atomic::Ordering::Relaxed);
}

fn guest_cpus() -> usize {
    GUEST_CPUS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The module `name` (as `brd`) of `kernel`, decompressed, if it has one.
pub fn module_bytes(kernel: &PreparedKernel, name: &str) -> Result<Option<Vec<u8>>, VmError> {
    let deps = std::fs::read_to_string(kernel.modules_root.join("modules.dep"))
        .map_err(io("reading modules.dep"))?;
    for line in deps.lines() {
        let path = line.split(':').next().unwrap_or_default();
        let base = path.rsplit('/').next().unwrap_or(path);
        if base.split(".ko").next() == Some(name) {
            return read_module(&kernel.modules_root.join(path)).map(Some);
        }
    }
    Ok(None)
}

/// The outcome of one guest run.
pub struct GuestRun {
    /// The release the agent reported.
    pub kernel_release: String,
    /// Algorithm names from the guest's /proc/crypto.
    pub algorithms: std::collections::BTreeSet<String>,
    /// What the kernel did with each case, by id.
    pub results: BTreeMap<String, KernelResult>,
    /// Kernel faults logged while a case ran, by case id.
    pub faults: BTreeMap<String, KernelFault>,
    /// Set when the guest stopped (panicked, hung, died) after the agent
    /// started but before it finished.
    pub death: Option<GuestDeath>,
    /// (check, passed, detail) from the setup scenario.
    pub checks: Vec<(String, bool, String)>,
    /// Boot to power-off.
    pub elapsed: Duration,
    /// The accelerator the guest ran under.
    pub accel: Accel,
    /// Set on the run that decided against KVM: the one line to show the
    /// user (`kvm unusable here (qemu: ...); using tcg`).
    pub accel_note: Option<String>,
    /// Kernel benchmark records (JSON), when the guest ran a plan.
    pub bench: Vec<String>,
    /// The whole console, for debugging.
    pub log: String,
}

/// A guest that stopped before it finished: the case in progress (none
/// when it died between cases) and what the console showed.
#[derive(Clone, Debug)]
pub struct GuestDeath {
    /// The case the agent had announced and not finished.
    pub case: Option<String>,
    /// The console's evidence: a panic, a hang or a silent death.
    pub fault: KernelFault,
}

impl GuestRun {
    /// The run, or an error when the guest did not finish: for callers that
    /// cannot go on after a dead guest (scenarios, benchmarks).
    pub fn finished(self) -> Result<GuestRun, VmError> {
        match &self.death {
            None => Ok(self),
            Some(d) => Err(VmError::Setup(format!(
                "the guest stopped before finishing{}: {}",
                d.case
                    .as_ref()
                    .map(|c| format!(" (during case {c})"))
                    .unwrap_or_default(),
                d.fault.summary()
            ))),
        }
    }
}

/// How long a guest may take: in all, to its first line, and per case.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Boot to power-off.
    pub total: Duration,
    /// To the agent's first line (the KVM probe), if bounded.
    pub first_line: Option<Duration>,
    /// From a case's announcement to its result: past it the guest is
    /// declared hung and stopped.
    pub per_case: Duration,
}

impl Limits {
    /// `total` for the whole guest, two minutes per case.
    pub fn new(total: Duration) -> Limits {
        Limits {
            total,
            first_line: None,
            per_case: Duration::from_secs(120),
        }
    }
}

/// The accelerator a guest runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation (used only once a guest proved it works).
    Kvm,
    /// Software emulation.
    Tcg,
}

impl Accel {
    /// `kvm` or `tcg`, as QEMU spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// The verdict on KVM for this process: one probe per run, not per kernel.
/// Guests booted in parallel wait while the first one decides.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KvmVerdict {
    Undecided,
    Deciding,
    Decided(Accel),
}

static VERDICT: std::sync::Mutex<KvmVerdict> = std::sync::Mutex::new(KvmVerdict::Undecided);
static DECIDED: std::sync::Condvar = std::sync::Condvar::new();

fn set_verdict(v: KvmVerdict) {
    *VERDICT.lock().unwrap_or_else(|p| p.into_inner()) = v;
    DECIDED.notify_all();
}

/// The accelerator already chosen, or `None` after taking on the decision
/// (the caller must then decide; [`Deciding`] gives it back if it cannot).
fn verdict_or_decide() -> Option<Accel> {
    let mut v = VERDICT.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        match *v {
            KvmVerdict::Decided(a) => return Some(a),
            KvmVerdict::Deciding => v = DECIDED.wait(v).unwrap_or_else(|p| p.into_inner()),
            KvmVerdict::Undecided => {
                *v = KvmVerdict::Deciding;
                return None;
            }
        }
    }
}

/// Held while this thread decides; undecided again if it gives up.
struct Deciding;

impl Drop for Deciding {
    fn drop(&mut self) {
        let mut v = VERDICT.lock().unwrap_or_else(|p| p.into_inner());
        if *v == KvmVerdict::Deciding {
            *v = KvmVerdict::Undecided;
            DECIDED.notify_all();
        }
    }
}

/// How long a KVM guest may take to print the agent's first line before
/// KVM is declared unusable (`DMCH_KVM_FIRST_LINE_SECS` shortens it for tests).
fn kvm_deadline() -> Duration {
    let secs = std::env::var("DMCH_KVM_FIRST_LINE_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&s| (1..=600).contains(&s))
        .unwrap_or(10);
    Duration::from_secs(secs)
}

/// Why KVM cannot be tried at all, or `None` when /dev/kvm opens
/// (`DMCH_KVM_DEVICE` names another node, for tests).
pub fn kvm_device_problem() -> Option<String> {
    let dev = std::env::var_os("DMCH_KVM_DEVICE")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/dev/kvm".into());
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
    {
        Ok(_) => None,
        Err(e) => Some(format!("{}: {e}", Path::new(&dev).display())),
    }
}

/// Boot the guest and collect its results. KVM is used only once a guest
/// under it has printed the agent's first line; any other outcome (QEMU
/// exits or aborts, prints only firmware, stays silent) makes this process
/// use TCG from then on, with QEMU's own reason in `accel_note`.
/// `DMCH_ACCEL=tcg|kvm` forces one.
pub fn run(kernel: &PreparedKernel, initramfs: &Path, limits: Limits) -> Result<GuestRun, VmError> {
    let forced = match std::env::var("DMCH_ACCEL").ok().as_deref() {
        None | Some("") | Some("auto") => None,
        Some("tcg") => Some(Accel::Tcg),
        Some("kvm") => Some(Accel::Kvm),
        Some(other) => {
            return Err(VmError::Setup(format!(
                "DMCH_ACCEL={other}: expected kvm, tcg or auto"
            )));
        }
    };
    if let Some(accel) = forced {
        return boot_again_if_unborn(kernel, initramfs, accel, limits);
    }
    if let Some(accel) = verdict_or_decide() {
        return boot_again_if_unborn(kernel, initramfs, accel, limits);
    }
    let _deciding = Deciding;
    let why = match kvm_device_problem() {
        Some(why) => why,
        None => match boot(
            kernel,
            initramfs,
            Accel::Kvm,
            Limits {
                first_line: Some(kvm_deadline()),
                ..limits
            },
        ) {
            // The verdict was given when the agent's first line came.
            Ok(run) => return Ok(run),
            // The guest ran under KVM: its failure is the guest's, not KVM's.
            Err(e) if e.reached_agent || e.interrupted => return Err(e.error),
            Err(e) => e.reason,
        },
    };
    let note = Some(format!("kvm unusable here ({why}); using tcg"));
    set_verdict(KvmVerdict::Decided(Accel::Tcg));
    let mut run = boot_again_if_unborn(kernel, initramfs, Accel::Tcg, limits)?;
    run.accel_note = note;
    Ok(run)
}

/// Boot under KVM only until the agent's first line: whether KVM works
/// here, with QEMU's reason when it does not (for `dmch doctor`).
pub fn probe_kvm(kernel: &PreparedKernel, initramfs: &Path) -> Result<(), String> {
    if let Some(why) = kvm_device_problem() {
        return Err(why);
    }
    let limits = Limits {
        first_line: Some(kvm_deadline()),
        ..Limits::new(kvm_deadline())
    };
    match boot_until(kernel, initramfs, Accel::Kvm, limits, true) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.reason),
    }
}

/// Boot once more when a guest died before its agent started: seen once
/// under TCG on a loaded host (5.10, a panic in the kernel's own start),
/// never twice in a row; a kernel that cannot boot fails the second time.
fn boot_again_if_unborn(
    kernel: &PreparedKernel,
    initramfs: &Path,
    accel: Accel,
    limits: Limits,
) -> Result<GuestRun, VmError> {
    match boot(kernel, initramfs, accel, limits) {
        // Only a kernel that started and then died: QEMU refusing the
        // kernel or a missing accelerator fails the same way again.
        Err(e) if e.kernel_started && !e.reached_agent && !e.interrupted => {
            eprintln!(
                "dmch: {}: the guest died before its agent started ({}); booting it once more",
                kernel.label, e.reason
            );
            boot(kernel, initramfs, accel, limits).map_err(|e| e.error)
        }
        r => r.map_err(|e| e.error),
    }
}

/// A failed boot: the error for the user, the short reason for the
/// accelerator verdict, and whether the agent had started.
struct BootError {
    error: VmError,
    reason: String,
    reached_agent: bool,
    interrupted: bool,
    /// The guest kernel printed its banner: QEMU itself worked.
    kernel_started: bool,
}

fn boot(
    kernel: &PreparedKernel,
    initramfs: &Path,
    accel: Accel,
    limits: Limits,
) -> Result<GuestRun, BootError> {
    boot_until(kernel, initramfs, accel, limits, false)
}

/// The last lines of QEMU's stderr, joined: what QEMU says went wrong.
fn stderr_tail(err: &[u8]) -> String {
    let text = String::from_utf8_lossy(err);
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim().trim_start_matches("qemu-system-x86_64: "))
        .filter(|l| !l.is_empty())
        .collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    tail.join(" | ")
}

/// Read a child's pipe to the end on a thread, sending each line.
fn lines_of(
    mut pipe: impl Read + Send + 'static,
    tx: std::sync::mpsc::Sender<String>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pending = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(at) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=at).collect();
                let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(String::from_utf8_lossy(&pending).into_owned());
        }
    })
}

/// Lines of a file QEMU appends to, until `done` is set and all is read.
fn follow(
    mut file: std::fs::File,
    tx: std::sync::mpsc::Sender<String>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pending = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            // Read `done` before the file: once set, one more read sees all.
            let last = done.load(std::sync::atomic::Ordering::Acquire);
            match file.read(&mut buf) {
                Ok(0) if last => break,
                Ok(0) => std::thread::sleep(Duration::from_millis(10)),
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(at) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=at).collect();
                        let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                    }
                }
                Err(_) => break,
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(String::from_utf8_lossy(&pending).into_owned());
        }
    })
}

/// Why a boot stopped.
enum Stop {
    /// QEMU exited by itself.
    Exited(std::process::ExitStatus),
    /// The agent's first line came and that was all that was wanted.
    AgentReached,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// No agent line within the first-line limit.
    NoAgentWithin(Duration),
    /// The whole guest ran past its limit.
    Timeout(Duration),
    /// A case ran past the per-case watchdog.
    Watchdog(String, Duration),
    /// Waiting for QEMU failed.
    Wait(std::io::Error),
}

/// What the host reads off the console while the guest runs.
#[derive(Default)]
struct Console {
    log: String,
    reached: bool,
    release: String,
    algorithms: std::collections::BTreeSet<String>,
    results: BTreeMap<String, KernelResult>,
    faults: BTreeMap<String, KernelFault>,
    checks: Vec<(String, bool, String)>,
    bench: Vec<String>,
    done: bool,
    fatal: Option<String>,
    /// The case announced and not finished, since when, and the console
    /// lines (the kernel's) since its announcement.
    current: Option<(String, Instant, Vec<String>)>,
    /// Console lines since the last result with no case announced: the
    /// protocol comes on its own port, so a case's first kernel lines can
    /// arrive before its announcement.
    between: Vec<String>,
    /// The case the console last showed the agent's mark for, and the
    /// console's lines since: ordered with the kernel's own messages.
    marked: Option<(String, Vec<String>)>,
}

impl Console {
    fn take(&mut self, raw: &str) {
        self.log.push_str(raw);
        let line = raw.trim_end_matches(['\r', '\n']);
        if line
            .as_bytes()
            .windows(crate::protocol::FIRST_LINE_TAG.len())
            .any(|w| w == crate::protocol::FIRST_LINE_TAG)
        {
            self.reached = true;
        }
        match Line::decode(line) {
            Some(Line::Guest(r)) => self.release = r,
            Some(Line::Check {
                name,
                passed,
                detail,
            }) => self.checks.push((name, passed, detail)),
            Some(Line::Algorithms(a)) => self.algorithms = a.into_iter().collect(),
            Some(Line::Done(_)) => self.done = true,
            Some(Line::Fatal(f)) => self.fatal = Some(f),
            Some(Line::Begin(id)) => {
                self.current = Some((id, Instant::now(), std::mem::take(&mut self.between)));
            }
            Some(Line::Klog { id, kind, text }) => {
                let f = self.faults.entry(id).or_insert(KernelFault {
                    kind,
                    lines: Vec::new(),
                });
                f.lines.push(text);
            }
            Some(Line::Result { id, result }) => {
                self.results.insert(id, result);
                self.current = None;
                self.between.clear();
            }
            Some(Line::Bench(j)) => self.bench.push(j),
            Some(Line::Log(_)) => {}
            None if crate::protocol::marked_case(line).is_some() => {
                let id = crate::protocol::marked_case(line).unwrap_or_default();
                self.marked = Some((id.to_string(), Vec::new()));
            }
            None => {
                if let Some((_, lines)) = &mut self.marked
                    && !line.trim().is_empty()
                    && lines.len() < 4 * klog::REPORT_LINES
                {
                    lines.push(line.to_string());
                }
                let lines = match &mut self.current {
                    Some((_, _, lines)) => lines,
                    None => &mut self.between,
                };
                if !line.trim().is_empty() && lines.len() < 4 * klog::REPORT_LINES {
                    lines.push(line.to_string());
                }
            }
        }
    }

    /// The evidence of a guest that stopped during a case (or between
    /// cases): the kernel's report when it printed one.
    fn death(&self, stop: &Stop) -> GuestDeath {
        let (case, mut lines) = match (&self.current, &self.marked) {
            // The console's own order decides when it marked this case.
            (Some((id, ..)), Some((m, lines))) if m == id => (Some(id.clone()), lines.clone()),
            (Some((id, _, lines)), _) => (Some(id.clone()), lines.clone()),
            (None, _) => (None, Vec::new()),
        };
        // The two ports are read apart, so the case's kernel lines may have
        // come before its announcement or its predecessor's result; a guest
        // that died left its report at the end of the console in any case.
        // (A hang is not a death: what the console said last may be an
        // earlier case's, so it is shown but does not name the fault.)
        let hang = matches!(stop, Stop::Watchdog(..));
        let own =
            klog::scan(&lines, None).is_some() || lines.iter().any(|l| l.contains("Kernel panic"));
        if !own && (!hang || lines.is_empty()) {
            lines = self.tail(klog::REPORT_LINES);
        }
        let scanned = klog::scan(&lines, None).filter(|_| own || !hang);
        let panicked = lines.iter().any(|l| l.contains("Kernel panic"));
        let (kind, mut report) = match (scanned, stop) {
            (Some(f), _) => (f.kind, f.lines),
            (None, Stop::Watchdog(..)) => (FaultKind::Hang, lines),
            (None, _) if panicked => (FaultKind::Panic, lines),
            (None, _) => (FaultKind::Died, lines),
        };
        let how = match stop {
            Stop::Watchdog(id, after) => {
                format!(
                    "no result for {id} within {} s: the guest was stopped (watchdog)",
                    after.as_secs()
                )
            }
            Stop::Timeout(d) => format!("the guest did not finish within {} s", d.as_secs()),
            _ if panicked => "the kernel panicked; the guest stopped".into(),
            _ => "the guest stopped before finishing".into(),
        };
        report.truncate(klog::REPORT_LINES - 1);
        if hang && !own {
            // The console's last lines are context, not the fault: the
            // watchdog's line comes first, as the summary.
            report.insert(0, how);
        } else {
            report.push(how);
        }
        GuestDeath {
            case,
            fault: KernelFault {
                kind,
                lines: report,
            },
        }
    }

    fn tail(&self, n: usize) -> Vec<String> {
        let lines: Vec<String> = self
            .log
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty() && Line::decode(l).is_none())
            .map(String::from)
            .collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }
}

fn boot_until(
    kernel: &PreparedKernel,
    initramfs: &Path,
    accel: Accel,
    limits: Limits,
    stop_at_agent: bool,
) -> Result<GuestRun, BootError> {
    use std::os::unix::process::CommandExt;
    let fail = |error: VmError, reason: String, reached_agent: bool| BootError {
        error,
        reason,
        reached_agent,
        interrupted: false,
        kernel_started: false,
    };
    let started = Instant::now();
    // The agent's lines come on the second serial port, into this file:
    // the kernel never writes there.
    let port_path = initramfs.with_extension("port");
    let port = std::fs::File::create(&port_path)
        .and_then(|_| std::fs::File::open(&port_path))
        .map_err(|e| {
            let r = format!("creating {}: {e}", port_path.display());
            fail(VmError::Setup(r.clone()), r, false)
        })?;
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel",
        accel.as_str(),
        "-m",
        "768",
        "-smp",
        &guest_cpus().to_string(),
        "-nographic",
        "-nic",
        "none",
        "-no-reboot",
        "-serial",
        "mon:stdio",
        "-serial",
    ])
    .arg(format!("file:{}", port_path.display()))
    .args(match accel {
        Accel::Kvm => ["-cpu", "host"],
        Accel::Tcg => ["-cpu", "max"],
    })
    .arg("-kernel")
    .arg(&kernel.vmlinuz)
    .arg("-initrd")
    .arg(initramfs)
    // loglevel=5: warnings reach the console too, so a guest that dies
    // leaves the kernel's report behind; an oops panics at once instead of
    // leaving a dead worker for the watchdog. printk.devkmsg=on: the
    // agent's case marks in the kernel log are not rate-limited.
    .args([
        "-append",
        "console=ttyS0 loglevel=5 oops=panic panic=-1 printk.devkmsg=on rdinit=/init",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // SAFETY: prctl is async-signal-safe; it makes QEMU die with dmch, so a
    // killed run leaves no guest behind.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        let r = format!("cannot start qemu-system-x86_64: {e}");
        fail(
            VmError::Setup(format!("{r} (install qemu-system-x86)")),
            r,
            false,
        )
    })?;
    let (tx, rx) = std::sync::mpsc::channel();
    let out = lines_of(child.stdout.take().expect("piped"), tx.clone());
    let port_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let port_reader = follow(port, tx.clone(), port_done.clone());
    let (etx, erx) = std::sync::mpsc::channel();
    let err = lines_of(child.stderr.take().expect("piped"), etx);
    let mut con = Console::default();
    let stop = loop {
        while let Ok(l) = rx.try_recv() {
            con.take(&l);
        }
        match child.try_wait() {
            Ok(Some(st)) => break Stop::Exited(st),
            Ok(None) => {}
            Err(e) => break Stop::Wait(e),
        }
        if stop_at_agent && con.reached {
            break Stop::AgentReached;
        }
        // A KVM guest that reached the agent proves KVM: guests waiting to
        // boot in parallel may go ahead under it.
        if accel == Accel::Kvm && !stop_at_agent && limits.first_line.is_some() && con.reached {
            let mut v = VERDICT.lock().unwrap_or_else(|p| p.into_inner());
            if *v == KvmVerdict::Deciding {
                *v = KvmVerdict::Decided(Accel::Kvm);
                DECIDED.notify_all();
            }
        }
        if crate::interrupt::requested() {
            break Stop::Interrupted;
        }
        if let Some(d) = limits.first_line
            && !con.reached
            && started.elapsed() > d
        {
            break Stop::NoAgentWithin(d);
        }
        if let Some((id, since, _)) = &con.current
            && since.elapsed() > limits.per_case
        {
            break Stop::Watchdog(id.clone(), limits.per_case);
        }
        if started.elapsed() > limits.total {
            break Stop::Timeout(limits.total);
        }
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(50)) {
            con.take(&l);
        }
    };
    if !matches!(stop, Stop::Exited(_)) {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = out.join();
    let _ = err.join();
    port_done.store(true, std::sync::atomic::Ordering::Release);
    let _ = port_reader.join();
    while let Ok(l) = rx.try_recv() {
        con.take(&l);
    }
    let stderr: Vec<u8> = erx.try_iter().collect::<String>().into_bytes();
    let qemu_says = stderr_tail(&stderr);
    let with_stderr = |msg: String| {
        if qemu_says.is_empty() {
            msg
        } else {
            format!("{msg}; qemu stderr: {qemu_says}")
        }
    };
    let console_tail = || con.tail(5).join(" | ");
    let reached = con.reached;
    match &stop {
        Stop::Interrupted => {
            return Err(BootError {
                error: VmError::Setup("interrupted; the guest was stopped".into()),
                reason: "interrupted".into(),
                reached_agent: reached,
                interrupted: true,
                kernel_started: false,
            });
        }
        Stop::Exited(st) if !reached => {
            let how = match (st.code(), std::os::unix::process::ExitStatusExt::signal(st)) {
                (Some(c), _) => format!("qemu exited with status {c}"),
                (None, Some(6)) => "qemu aborted (SIGABRT)".to_string(),
                (None, Some(n)) => format!("qemu was killed by signal {n}"),
                _ => "qemu stopped".to_string(),
            };
            let reason = if qemu_says.is_empty() {
                format!("{how} before the agent started")
            } else {
                format!("qemu: {qemu_says}; {how}")
            };
            return Err(BootError {
                kernel_started: con.log.contains("Linux version"),
                ..fail(
                    VmError::Setup(format!(
                        "the guest never started: {reason}; last console lines: {}",
                        console_tail()
                    )),
                    reason,
                    false,
                )
            });
        }
        Stop::NoAgentWithin(_) | Stop::Timeout(_) | Stop::Wait(_) if !reached => {
            let s = match &stop {
                Stop::NoAgentWithin(d) => format!("no agent line within {} s", d.as_secs()),
                Stop::Timeout(d) => format!("the guest did not finish within {} s", d.as_secs()),
                Stop::Wait(e) => format!("waiting for qemu: {e}"),
                _ => unreachable!("matched above"),
            };
            let reason = with_stderr(if con.log.trim().is_empty() {
                format!("{s}, no output at all")
            } else {
                format!("{s}, only firmware output")
            });
            return Err(fail(
                VmError::Setup(format!("{reason}; last console lines: {}", console_tail())),
                reason,
                false,
            ));
        }
        _ => {}
    }
    if let Some(f) = &con.fatal {
        let r = format!("guest: {f}");
        return Err(fail(VmError::Setup(r.clone()), r, true));
    }
    let death = (!con.done && !matches!(stop, Stop::AgentReached)).then(|| con.death(&stop));
    Ok(GuestRun {
        kernel_release: con.release,
        algorithms: con.algorithms,
        results: con.results,
        faults: con.faults,
        death,
        checks: con.checks,
        elapsed: started.elapsed(),
        accel,
        accel_note: None,
        bench: con.bench,
        log: con.log,
    })
}

/// A private work directory for one guest (initramfs and friends), named
/// `dmch-vm-<pid>-*` in the temporary directory. Interrupted runs unwind and
/// drop it; the leftovers of killed ones (their pid gone) are swept here.
pub fn work_dir() -> Result<tempfile::TempDir, VmError> {
    crate::leftovers::sweep(&std::env::temp_dir(), "dmch-vm-");
    tempfile::Builder::new()
        .prefix(&format!("dmch-vm-{}-", std::process::id()))
        .tempdir()
        .map_err(io("creating a work directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(con: &mut Console, lines: &[&str]) {
        for l in lines {
            con.take(&format!("{l}\r\n"));
        }
    }

    fn begin(id: &str) -> String {
        Line::Begin(id.into()).encode()
    }

    fn rejected(id: &str) -> String {
        Line::Result {
            id: id.into(),
            result: KernelResult::Rejected("errno 22".into()),
        }
        .encode()
    }

    #[test]
    fn kernel_lines_before_the_announcement_are_the_cases() {
        // The protocol port lags the console: the fortify report of c2
        // arrives before c2's announcement.
        let mut con = Console::default();
        feed(&mut con, &[&begin("c1"), &rejected("c1")]);
        feed(
            &mut con,
            &[
                "[ 9.8] memcpy: detected buffer overflow: 16 byte read of buffer size 8",
                "[ 9.8] WARNING: CPU: 0 PID: 1 at lib/string_helpers.c:1036 __fortify_report",
                "[ 9.9] kernel BUG at lib/string_helpers.c:1044!",
            ],
        );
        feed(
            &mut con,
            &[
                &begin("c2"),
                "[ 9.9] Kernel panic - not syncing: Fatal exception",
            ],
        );
        let d = con.death(&Stop::Wait(std::io::Error::other("x")));
        assert_eq!(d.case.as_deref(), Some("c2"));
        assert_eq!(d.fault.kind, FaultKind::Fortify, "{:?}", d.fault.lines);
    }

    #[test]
    fn the_consoles_case_mark_decides_whose_report_it_is() {
        // c1's result and c2's announcement arrive after c2's whole report
        // (longer than the console's tail): the mark puts it with c2.
        let mut con = Console::default();
        feed(&mut con, &[&begin("c1")]);
        feed(&mut con, &["[ 9.0] dmch: case c1", "[ 9.1] dmch: case c2"]);
        feed(
            &mut con,
            &["[ 9.8] memcpy: detected buffer overflow: 16 byte read of buffer size 8"],
        );
        let filler: Vec<String> = (0..60).map(|i| format!("[ 9.9] R{i}: 0")).collect();
        feed(
            &mut con,
            &filler.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        feed(
            &mut con,
            &["[ 9.9] Kernel panic - not syncing: Fatal exception"],
        );
        feed(&mut con, &[&rejected("c1"), &begin("c2")]);
        let d = con.death(&Stop::Wait(std::io::Error::other("x")));
        assert_eq!(d.case.as_deref(), Some("c2"));
        assert_eq!(d.fault.kind, FaultKind::Fortify, "{:?}", d.fault.lines);
        assert!(d.fault.summary().contains("detected buffer overflow"));
    }

    #[test]
    fn a_panic_whose_lines_came_before_the_last_result_is_still_a_panic() {
        let mut con = Console::default();
        feed(&mut con, &[&begin("c1")]);
        feed(
            &mut con,
            &["[ 5.6] Kernel panic - not syncing: sysrq triggered crash"],
        );
        feed(&mut con, &[&rejected("c1"), &begin("c2")]);
        let d = con.death(&Stop::Wait(std::io::Error::other("x")));
        assert_eq!(d.case.as_deref(), Some("c2"));
        assert_eq!(d.fault.kind, FaultKind::Panic, "{:?}", d.fault.lines);
    }

    #[test]
    fn a_hang_is_a_hang_whatever_the_console_said_before() {
        let mut con = Console::default();
        feed(
            &mut con,
            &[&begin("c1"), "[ 5.4] WARNING: CPU: 0 PID: 1 at x.c:1 f"],
        );
        feed(&mut con, &[&rejected("c1"), &begin("c2")]);
        let d = con.death(&Stop::Watchdog("c2".into(), Duration::from_secs(20)));
        assert_eq!(d.case.as_deref(), Some("c2"));
        assert_eq!(d.fault.kind, FaultKind::Hang);
        assert!(
            d.fault.summary().contains("watchdog"),
            "{}",
            d.fault.summary()
        );
        // The console's last lines stay as context.
        assert!(d.fault.lines.iter().any(|l| l.contains("WARNING")));
    }
}
