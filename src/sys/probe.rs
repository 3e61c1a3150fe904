//! Can this host drive the dm-crypt target itself? Asked of the kernel, not
//! of the file system: a `/dev/mapper/control` node can outlive (or predate)
//! device-mapper, since packages such as dmsetup and udev rules create it in
//! containers and on kernels without it. Every command that may use the
//! host's device-mapper asks here first.

// geteuid is a system call.
#![allow(unsafe_code)]

use super::dm::{self, Control, Version};
use std::fmt;

/// The host's device-mapper, as the kernel reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostDm {
    /// Interface version from DM_VERSION.
    pub version: Version,
    /// The crypt target's version when it is registered already.
    pub crypt: Option<Version>,
    /// Where the kernel will find dm-crypt when a crypt table is loaded and
    /// the target is not registered yet (it loads the module on demand).
    pub crypt_module: Option<String>,
}

impl HostDm {
    /// "device-mapper 4.48.0, crypt 1.27.0" or "... crypt loadable (...)".
    pub fn describe(&self) -> String {
        let v = |v: &Version| format!("{}.{}.{}", v[0], v[1], v[2]);
        match (&self.crypt, &self.crypt_module) {
            (Some(c), _) => format!("device-mapper {}, crypt target {}", v(&self.version), v(c)),
            (None, Some(m)) => format!(
                "device-mapper {}, crypt target loadable ({m})",
                v(&self.version)
            ),
            (None, None) => format!("device-mapper {}", v(&self.version)),
        }
    }
}

/// Why the host's device-mapper cannot be used, in one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unusable(pub String);

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unusable {}

/// Probe the host: the control node must open, answer DM_VERSION, and the
/// crypt target must be registered or loadable. Root is implied: the
/// device-mapper ioctls need CAP_SYS_ADMIN, and the probe runs them.
pub fn host_dm() -> Result<HostDm, Unusable> {
    let path = dm::control_path();
    let p = path.display();
    let ctl = Control::open().map_err(|e| {
        Unusable(match e.raw_os_error() {
            Some(libc::ENOENT) => format!("{p} does not exist (no device-mapper in this kernel)"),
            Some(libc::EACCES | libc::EPERM) => {
                format!("{p} cannot be opened: {e} (device-mapper needs root)")
            }
            Some(libc::ENODEV | libc::ENXIO) => {
                format!("{p} is a stale node: the kernel has no device-mapper behind it ({e})")
            }
            _ => format!("{p} cannot be opened: {e}"),
        })
    })?;
    let version = ctl.version().map_err(|e| {
        Unusable(format!(
            "{p} opens but does not answer the DM_VERSION ioctl ({e}): not a device-mapper control node"
        ))
    })?;
    if version[0] != 4 {
        return Err(Unusable(format!(
            "device-mapper interface {}.{}.{} is not version 4",
            version[0], version[1], version[2]
        )));
    }
    let crypt = ctl
        .targets()
        .map_err(|e| Unusable(format!("DM_LIST_VERSIONS failed: {e}")))?
        .into_iter()
        .find(|(n, _)| n == "crypt")
        .map(|(_, v)| v);
    let crypt_module = if crypt.is_none() {
        Some(crypt_module().ok_or_else(|| {
            Unusable(format!(
                "device-mapper {}.{}.{} answers, but the crypt target is neither registered nor a module of kernel {}",
                version[0],
                version[1],
                version[2],
                release()
            ))
        })?)
    } else {
        None
    };
    Ok(HostDm {
        version,
        crypt,
        crypt_module,
    })
}

/// The control handle for a real setup, or why the host cannot give one.
pub fn control() -> Result<Control, Unusable> {
    host_dm()?;
    Control::open().map_err(|e| Unusable(format!("{}: {e}", dm::control_path().display())))
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The running kernel's release (uname -r).
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// dm-crypt as a module of the running kernel, from modules.dep.
fn crypt_module() -> Option<String> {
    let root = format!("/lib/modules/{}", release());
    let dep = std::fs::read_to_string(format!("{root}/modules.dep")).unwrap_or_default();
    dep.lines()
        .filter_map(|l| l.split(':').next())
        .find(|m| {
            let base = m.rsplit('/').next().unwrap_or(m);
            base.starts_with("dm-crypt.ko")
        })
        .map(|m| format!("{root}/{m}"))
}

/// Loop devices: the control node answers LOOP_CTL_GET_FREE.
pub fn loop_devices() -> Result<String, Unusable> {
    super::loopdev::next_free()
        .map(|n| format!("usable (next free: /dev/loop{n})"))
        .map_err(|e| Unusable(format!("/dev/loop-control: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn describe_names_versions() {
        let h = super::HostDm {
            version: [4, 48, 0],
            crypt: Some([1, 27, 0]),
            crypt_module: None,
        };
        assert_eq!(h.describe(), "device-mapper 4.48.0, crypt target 1.27.0");
    }
}
