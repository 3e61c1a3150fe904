//! The guest agent: `dmch` as PID 1 of a QEMU guest. It mounts the kernel
//! filesystems, loads the modules listed by the host (dependencies first),
//! runs every case through the real dm-crypt target, prints one result line
//! per case on the console and powers the machine off. No shell, no dmsetup.

// PID 1's system calls: mount, finit_module, uname, reboot.
#![allow(unsafe_code)]

use crate::oracle::{Case, Rig};
use crate::protocol::{Line, files};
use crate::sys::dm;
use std::ffi::CString;
use std::io::Write;
use std::path::Path;

fn mount(src: &str, target: &str, fstype: &str) {
    let (s, t, f) = (
        CString::new(src).unwrap(),
        CString::new(target).unwrap(),
        CString::new(fstype).unwrap(),
    );
    let _ = std::fs::create_dir_all(target);
    // SAFETY: valid NUL-terminated strings; no data argument.
    let r = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), 0, std::ptr::null()) };
    if r != 0 {
        Line::Log(format!(
            "mount {target}: {}",
            std::io::Error::last_os_error()
        ))
        .print();
    }
}

/// Load a module file with `params` (`rd_nr=1 rd_size=65536`).
pub(super) fn load_module(path: &Path, params: &str) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    use std::os::fd::AsRawFd;
    // SAFETY: finit_module with an open module file and a NUL-terminated
    // parameter string.
    let params = CString::new(params).map_err(|e| e.to_string())?;
    let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e.to_string());
        }
    }
    Ok(())
}

fn power_off() -> ! {
    let _ = std::io::stdout().flush();
    // SAFETY: sync and reboot(2) take no pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    loop {
        std::thread::park();
    }
}

fn kernel_release() -> String {
    // SAFETY: uname fills a zeroed utsname; release is NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return String::new();
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// Send protocol lines on their own serial port, raw, when the guest has
/// one; otherwise they share the console with the kernel.
fn open_protocol_port() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(port) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(crate::protocol::PORT)
    else {
        return;
    };
    // SAFETY: termios is plain data, filled by tcgetattr on an open fd.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(port.as_raw_fd(), &mut t) != 0 {
            return; // no UART behind the node
        }
        libc::cfmakeraw(&mut t);
        libc::tcsetattr(port.as_raw_fd(), libc::TCSANOW, &t);
    }
    crate::protocol::send_to(port);
}

/// Entry point when running as PID 1.
pub fn run_as_init() -> ! {
    mount("proc", "/proc", "proc");
    mount("sysfs", "/sys", "sysfs");
    mount("devtmpfs", "/dev", "devtmpfs");
    open_protocol_port();
    Line::Guest(kernel_release()).print();
    let root = Path::new("/");
    let order = std::fs::read_to_string(root.join(files::MODULE_ORDER)).unwrap_or_default();
    let mut failed = 0;
    for m in order.lines().filter(|l| !l.is_empty()) {
        if let Err(e) = load_module(&root.join(files::MODULE_DIR).join(m), "") {
            failed += 1;
            Line::Log(format!("module {m}: {e}")).print();
        }
    }
    Line::Log(format!("modules loaded, {failed} failed")).print();
    // Which algorithms this kernel has, so the host can tell "not built"
    // from "refused".
    let crypto = std::fs::read_to_string("/proc/crypto").unwrap_or_default();
    let mut names: Vec<&str> = crypto
        .lines()
        .filter(|l| l.starts_with("name"))
        .filter_map(|l| l.split(':').nth(1))
        .map(str::trim)
        .collect();
    names.sort();
    names.dedup();
    Line::Algorithms(names.iter().map(|n| n.to_string()).collect()).print();
    super::bench::run(root);
    if root.join(files::SCENARIO).exists() {
        super::scenario::run();
        super::luks_scenario::run(&root.join(files::LUKS_DIR));
        super::reencrypt_scenario::run();
    }
    let cases: Vec<Case> = std::fs::read_to_string(root.join(files::CASES))
        .unwrap_or_default()
        .lines()
        .filter_map(Case::from_line)
        .collect();
    match dm::Control::open() {
        Err(e) => Line::Fatal(format!("no device-mapper control: {e}")).print(),
        Ok(ctl) => {
            let dir = Path::new("/tmp");
            let _ = std::fs::create_dir_all(dir);
            match Rig::new(dir, "dmch", &cases) {
                Err(e) => Line::Fatal(format!("loop device setup: {e}")).print(),
                Ok(mut rig) => {
                    let mut log = crate::sys::kmsg::KernelLog::open()
                        .map_err(|e| {
                            Line::Log(format!(
                                "no kernel log (/dev/kmsg: {e}): faults are not watched"
                            ))
                            .print()
                        })
                        .ok();
                    let hooks = super::hooks::read(root);
                    for c in &cases {
                        // Announced first: if the kernel takes the guest
                        // down now, the host knows which case did it.
                        Line::Begin(c.id.clone()).print();
                        let _ = std::io::stdout().flush();
                        // The same on the console, in order with the kernel's lines.
                        let _ = crate::sys::kmsg::KernelLog::inject(
                            4,
                            &format!("{}{}", crate::protocol::CASE_MARK, c.id),
                        );
                        // Inside the case's log window: what a hook logs is the case's.
                        let (result, fault) =
                            rig.run_logged(&ctl, c, log.as_mut(), || hooks.before(&c.id));
                        if let Some(f) = fault {
                            for text in f.lines {
                                Line::Klog {
                                    id: c.id.clone(),
                                    kind: f.kind,
                                    text,
                                }
                                .print();
                            }
                        }
                        Line::Result {
                            id: c.id.clone(),
                            result,
                        }
                        .print();
                    }
                    if let Err(e) = rig.close(&ctl) {
                        Line::Log(format!("removing the mapping: {e}")).print();
                    }
                }
            }
        }
    }
    Line::Done(cases.len()).print();
    power_off()
}
