//! The QEMU backend: fetch a stock kernel, build an initramfs whose PID 1 is
//! `dmch` itself (see `guest::agent`), boot it under QEMU and collect the
//! result lines from the serial console.

mod cpio;
mod fetch;

pub use fetch::{KernelSource, PreparedKernel, any_cached, apt_state, cache_entries, prepare};

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
pub fn run(
    kernel: &PreparedKernel,
    initramfs: &Path,
    timeout: Duration,
) -> Result<GuestRun, VmError> {
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
        return boot(kernel, initramfs, accel, timeout, None).map_err(|e| e.error);
    }
    if let Some(accel) = verdict_or_decide() {
        return boot(kernel, initramfs, accel, timeout, None).map_err(|e| e.error);
    }
    let _deciding = Deciding;
    let why = match kvm_device_problem() {
        Some(why) => why,
        None => match boot(kernel, initramfs, Accel::Kvm, timeout, Some(kvm_deadline())) {
            // The verdict was given when the agent's first line came.
            Ok(run) => return Ok(run),
            // The guest ran under KVM: its failure is the guest's, not KVM's.
            Err(e) if e.reached_agent || e.interrupted => return Err(e.error),
            Err(e) => e.reason,
        },
    };
    let note = Some(format!("kvm unusable here ({why}); using tcg"));
    set_verdict(KvmVerdict::Decided(Accel::Tcg));
    let mut run = boot(kernel, initramfs, Accel::Tcg, timeout, None).map_err(|e| e.error)?;
    run.accel_note = note;
    Ok(run)
}

/// Boot under KVM only until the agent's first line: whether KVM works
/// here, with QEMU's reason when it does not (for `dmch doctor`).
pub fn probe_kvm(kernel: &PreparedKernel, initramfs: &Path) -> Result<(), String> {
    if let Some(why) = kvm_device_problem() {
        return Err(why);
    }
    match boot_until(
        kernel,
        initramfs,
        Accel::Kvm,
        kvm_deadline(),
        Some(kvm_deadline()),
        true,
    ) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.reason),
    }
}

/// A failed boot: the error for the user, the short reason for the
/// accelerator verdict, and whether the agent had started.
struct BootError {
    error: VmError,
    reason: String,
    reached_agent: bool,
    interrupted: bool,
}

fn boot(
    kernel: &PreparedKernel,
    initramfs: &Path,
    accel: Accel,
    timeout: Duration,
    first_output: Option<Duration>,
) -> Result<GuestRun, BootError> {
    boot_until(kernel, initramfs, accel, timeout, first_output, false)
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

/// Read a child's pipe to the end on a thread, flagging when `marker` shows.
fn drain(
    mut pipe: impl Read + Send + 'static,
    marker: Option<(&'static [u8], std::sync::Arc<std::sync::atomic::AtomicBool>)>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            s.extend_from_slice(&buf[..n]);
            if let Some((m, flag)) = &marker
                && s.windows(m.len()).any(|w| w == *m)
            {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        s
    })
}

fn boot_until(
    kernel: &PreparedKernel,
    initramfs: &Path,
    accel: Accel,
    timeout: Duration,
    first_output: Option<Duration>,
    stop_at_agent: bool,
) -> Result<GuestRun, BootError> {
    use std::os::unix::process::CommandExt;
    let fail = |error: VmError, reason: String, reached_agent: bool| BootError {
        error,
        reason,
        reached_agent,
        interrupted: false,
    };
    let started = Instant::now();
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
    ])
    .args(match accel {
        Accel::Kvm => ["-cpu", "host"],
        Accel::Tcg => ["-cpu", "max"],
    })
    .arg("-kernel")
    .arg(&kernel.vmlinuz)
    .arg("-initrd")
    .arg(initramfs)
    .args(["-append", "console=ttyS0 quiet panic=-1 rdinit=/init"])
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
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Firmware may print; only the agent's first line proves the boot.
    let out = drain(
        child.stdout.take().expect("piped"),
        Some((crate::protocol::FIRST_LINE_TAG, reached.clone())),
    );
    let err = drain(child.stderr.take().expect("piped"), None);
    let reached_agent = || reached.load(std::sync::atomic::Ordering::Relaxed);
    let mut stopped: Option<String> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(e) => {
                stopped = Some(format!("waiting for qemu: {e}"));
                break None;
            }
        }
        if stop_at_agent && reached_agent() {
            stopped = Some(String::new());
            break None;
        }
        // A KVM guest that reached the agent proves KVM: guests waiting to
        // boot in parallel may go ahead under it.
        if accel == Accel::Kvm && !stop_at_agent && first_output.is_some() && reached_agent() {
            let mut v = VERDICT.lock().unwrap_or_else(|p| p.into_inner());
            if *v == KvmVerdict::Deciding {
                *v = KvmVerdict::Decided(Accel::Kvm);
                DECIDED.notify_all();
            }
        }
        if crate::interrupt::requested() {
            stopped = Some("interrupted".into());
            break None;
        }
        if let Some(d) = first_output
            && !reached_agent()
            && started.elapsed() > d
        {
            stopped = Some(format!("no agent line within {} s", d.as_secs()));
            break None;
        }
        if started.elapsed() > timeout {
            stopped = Some(format!(
                "the guest did not finish within {} s",
                timeout.as_secs()
            ));
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let qemu_says = stderr_tail(&err.join().unwrap_or_default());
    let with_stderr = |msg: String| {
        if qemu_says.is_empty() {
            msg
        } else {
            format!("{msg}; qemu stderr: {qemu_says}")
        }
    };
    let console_tail = || {
        let tail: Vec<&str> = log
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(5)
            .collect();
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    };
    match (&stopped, status) {
        (Some(s), _) if s.is_empty() => {
            return Ok(GuestRun {
                kernel_release: String::new(),
                algorithms: Default::default(),
                results: BTreeMap::new(),
                checks: Vec::new(),
                elapsed: started.elapsed(),
                accel,
                accel_note: None,
                bench: Vec::new(),
                log,
            });
        }
        (Some(s), _) if s == "interrupted" => {
            return Err(BootError {
                error: VmError::Setup("interrupted; the guest was stopped".into()),
                reason: s.clone(),
                reached_agent: reached_agent(),
                interrupted: true,
            });
        }
        (Some(s), _) => {
            let firmware_only = !reached_agent() && !log.trim().is_empty();
            let reason = with_stderr(if firmware_only {
                format!("{s}, only firmware output")
            } else if !reached_agent() {
                format!("{s}, no output at all")
            } else {
                s.clone()
            });
            return Err(fail(
                VmError::Setup(format!("{reason}; last console lines: {}", console_tail())),
                reason,
                reached_agent(),
            ));
        }
        (None, Some(st)) if !reached_agent() => {
            let how = match (
                st.code(),
                std::os::unix::process::ExitStatusExt::signal(&st),
            ) {
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
            return Err(fail(
                VmError::Setup(format!(
                    "the guest never started: {reason}; last console lines: {}",
                    console_tail()
                )),
                reason,
                false,
            ));
        }
        _ => {}
    }
    let mut results = BTreeMap::new();
    let mut release = String::new();
    let mut algorithms = std::collections::BTreeSet::new();
    let mut checks = Vec::new();
    let mut done = false;
    let mut bench = Vec::new();
    for line in log.lines() {
        match Line::decode(line) {
            Some(Line::Guest(r)) => release = r,
            Some(Line::Check {
                name,
                passed,
                detail,
            }) => checks.push((name, passed, detail)),
            Some(Line::Algorithms(a)) => algorithms = a.into_iter().collect(),
            Some(Line::Done(_)) => done = true,
            Some(Line::Fatal(f)) => {
                let r = format!("guest: {f}");
                return Err(fail(VmError::Setup(r.clone()), r, true));
            }
            Some(Line::Result { id, result }) => {
                results.insert(id, result);
            }
            Some(Line::Bench(j)) => bench.push(j),
            Some(Line::Log(_)) | None => {}
        }
    }
    if !done {
        let reason = with_stderr("the guest stopped before finishing".into());
        return Err(fail(
            VmError::Setup(format!("{reason}; last console lines: {}", console_tail())),
            reason,
            true,
        ));
    }
    Ok(GuestRun {
        kernel_release: release,
        algorithms,
        results,
        checks,
        elapsed: started.elapsed(),
        accel,
        accel_note: None,
        bench,
        log,
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
