//! The QEMU backend: fetch a stock kernel, build an initramfs whose PID 1 is
//! `dmch` itself (see `kernel::guest`), boot it under QEMU and collect the
//! result lines from the serial console.

pub mod cpio;
mod fetch;

pub use fetch::{KernelSource, PreparedKernel, prepare};

use crate::kernel::{Case, KernelResult};
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Errors of the VM backend, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("{0}")]
    Setup(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
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
    matches!(stem, "dm-crypt" | "dm-mod" | "loop")
        || path.starts_with("kernel/crypto/")
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
    build_initramfs_with(kernel, cases, false, out)
}

/// As [`build_initramfs`]; with `scenario`, the guest also runs the
/// real-setup scenario (`kernel::scenario`).
pub fn build_initramfs_with(
    kernel: &PreparedKernel,
    cases: &[Case],
    scenario: bool,
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
    let init = std::fs::read(&exe).map_err(io("reading the dmch executable"))?;
    c.file("init", &init, true).map_err(w)?;
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
    for (i, m) in module_order(&kernel.modules_root)?.iter().enumerate() {
        let data = read_module(&kernel.modules_root.join(m))?;
        let name = format!("{i:04}.ko");
        c.file(&format!("modules/{name}"), &data, false)
            .map_err(w)?;
        order.push_str(&name);
        order.push('\n');
    }
    c.file("modules/order", order.as_bytes(), false)
        .map_err(w)?;
    let lines: String = cases.iter().map(|c| c.to_line() + "\n").collect();
    c.file("cases", lines.as_bytes(), false).map_err(w)?;
    if scenario {
        c.file("scenario", b"", false).map_err(w)?;
    }
    use std::io::Write;
    c.finish().map_err(w)?.flush().map_err(w)?;
    Ok(())
}

/// The outcome of one guest run.
pub struct GuestRun {
    pub kernel_release: String,
    /// Algorithm names from the guest's /proc/crypto.
    pub algorithms: std::collections::BTreeSet<String>,
    pub results: BTreeMap<String, KernelResult>,
    /// (check, passed, detail) from the setup scenario.
    pub checks: Vec<(String, bool, String)>,
    pub elapsed: Duration,
    pub accel: &'static str,
    pub log: String,
}

/// Boot the guest and collect its results. KVM is tried first when
/// /dev/kvm opens; if the guest prints nothing within a few seconds (nested
/// hosts can hang in the firmware), it is stopped and TCG is used instead.
/// `DMCH_ACCEL=tcg|kvm` forces one.
pub fn run(
    kernel: &PreparedKernel,
    initramfs: &Path,
    timeout: Duration,
) -> Result<GuestRun, VmError> {
    let forced = std::env::var("DMCH_ACCEL").ok();
    let kvm_possible = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    match forced.as_deref() {
        Some("tcg") => boot(kernel, initramfs, "tcg", timeout, None),
        Some("kvm") => boot(kernel, initramfs, "kvm", timeout, None),
        _ if kvm_possible => {
            match boot(
                kernel,
                initramfs,
                "kvm",
                timeout,
                Some(Duration::from_secs(10)),
            ) {
                Err(BootError::Silent) => boot(kernel, initramfs, "tcg", timeout, None),
                r => r,
            }
        }
        _ => boot(kernel, initramfs, "tcg", timeout, None),
    }
    .map_err(|e| match e {
        BootError::Silent => VmError::Setup("the guest printed nothing".into()),
        BootError::Vm(v) => v,
    })
}

enum BootError {
    /// Nothing on the console before the first-output deadline.
    Silent,
    Vm(VmError),
}

impl From<VmError> for BootError {
    fn from(v: VmError) -> Self {
        BootError::Vm(v)
    }
}

fn boot(
    kernel: &PreparedKernel,
    initramfs: &Path,
    accel: &'static str,
    timeout: Duration,
    first_output: Option<Duration>,
) -> Result<GuestRun, BootError> {
    let started = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            accel,
            "-m",
            "768",
            "-nographic",
            "-nic",
            "none",
            "-no-reboot",
        ])
        .args(if accel == "kvm" {
            ["-cpu", "host"]
        } else {
            ["-cpu", "max"]
        })
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", "console=ttyS0 quiet panic=-1 rdinit=/init"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io("starting qemu-system-x86_64 (install qemu-system-x86)"))?;
    let mut out = child.stdout.take().unwrap();
    let got_output = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = got_output.clone();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            s.extend_from_slice(&buf[..n]);
            // Firmware may print; only the agent's first line proves the boot.
            if s.windows(10).any(|w| w == b"DMCH-GUEST") {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        s
    });
    loop {
        if child.try_wait().map_err(io("waiting for qemu"))?.is_some() {
            break;
        }
        let silent = !got_output.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(d) = first_output
            && silent
            && started.elapsed() > d
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BootError::Silent);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(VmError::Setup(format!(
                "the guest did not finish within {} s",
                timeout.as_secs()
            ))
            .into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    let mut results = BTreeMap::new();
    let mut release = String::new();
    let mut algorithms = std::collections::BTreeSet::new();
    let mut checks = Vec::new();
    let mut done = false;
    for line in log.lines() {
        // Kernel messages can share a console line with ours: start at our tag.
        let line = line.trim_end_matches('\r');
        let line = line.find("DMCH-").map_or(line, |i| &line[i..]);
        if let Some(r) = line.strip_prefix("DMCH-GUEST\t") {
            release = r.to_string();
        } else if let Some(c) = line.strip_prefix("DMCH-CHECK\t") {
            let f: Vec<&str> = c.splitn(3, '\t').collect();
            if f.len() == 3 {
                checks.push((f[0].to_string(), f[1] == "PASS", f[2].to_string()));
            }
        } else if let Some(a) = line.strip_prefix("DMCH-ALGS\t") {
            algorithms = a.split(',').map(String::from).collect();
        } else if line.starts_with("DMCH-DONE") {
            done = true;
        } else if let Some(f) = line.strip_prefix("DMCH-FATAL\t") {
            return Err(VmError::Setup(format!("guest: {f}")).into());
        } else if let Some((id, r)) = KernelResult::from_line(line) {
            results.insert(id, r);
        }
    }
    if !done {
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        return Err(VmError::Setup(format!(
            "the guest stopped before finishing; last console lines: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ))
        .into());
    }
    Ok(GuestRun {
        kernel_release: release,
        algorithms,
        results,
        checks,
        elapsed: started.elapsed(),
        accel,
        log,
    })
}
