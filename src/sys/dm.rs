//! A minimal device-mapper client over the kernel's ioctl interface
//! (include/uapi/linux/dm-ioctl.h): create, load a one-target table, resume,
//! remove. Direct ioctls keep the guest agent free of libdevmapper.

// System calls live here: device-mapper ioctls.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

const DM_IOCTL_SIZE: usize = 312;
const DM_TARGET_SPEC_SIZE: usize = 40;
const DM_NAME_LEN: usize = 128;

/// _IOWR(0xfd, nr, struct dm_ioctl)
const fn dm_iowr(nr: u64) -> u64 {
    (3 << 30) | ((DM_IOCTL_SIZE as u64) << 16) | (0xfd << 8) | nr
}
const DM_VERSION: u64 = dm_iowr(0);
const DM_DEV_CREATE: u64 = dm_iowr(3);
const DM_DEV_REMOVE: u64 = dm_iowr(4);
const DM_DEV_SUSPEND: u64 = dm_iowr(6);
const DM_DEV_STATUS: u64 = dm_iowr(7);
const DM_TABLE_LOAD: u64 = dm_iowr(9);
const DM_TABLE_STATUS: u64 = dm_iowr(12);
const DM_LIST_VERSIONS: u64 = dm_iowr(13);

const DM_READONLY_FLAG: u32 = 1 << 0;
const DM_SUSPEND_FLAG: u32 = 1 << 1;
const DM_STATUS_TABLE_FLAG: u32 = 1 << 4;
/// Ask the kernel to wipe the buffers holding the table (keys) after use.
const DM_SECURE_DATA_FLAG: u32 = 1 << 15;

pub struct Control(File);

/// One target of a live table: start, length, type, parameters.
pub type TableTarget = (u64, u64, String, zeroize::Zeroizing<String>);

/// A created mapping; its minor number names /dev/dm-N.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub name: String,
    pub minor: u32,
    /// Device number as the kernel encodes it (new_encode_dev).
    pub dev: u64,
}

impl Mapping {
    pub fn node(&self) -> String {
        format!("/dev/dm-{}", self.minor)
    }

    /// (major, minor) for mknod.
    pub fn major_minor(&self) -> (u32, u32) {
        (((self.dev & 0xfff00) >> 8) as u32, self.minor)
    }
}

/// A mapping name the kernel takes whole: 1 to 127 bytes (DM_NAME_LEN
/// holds the NUL), no '/', not "." or "..". The ioctl header would cut a
/// longer one silently.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(format!(
            "mapping name '{}' is empty, '.', '..' or has a '/'",
            name.escape_debug()
        ));
    }
    if name.len() >= DM_NAME_LEN {
        return Err(format!(
            "mapping name is {} bytes; device-mapper takes at most {}",
            name.len(),
            DM_NAME_LEN - 1
        ));
    }
    Ok(())
}

fn header(buf: &mut [u8], name: &str, flags: u32) {
    // Interface version 4.0.0: any 4.x kernel accepts it.
    buf[0..4].copy_from_slice(&4u32.to_ne_bytes());
    buf[4..8].copy_from_slice(&0u32.to_ne_bytes());
    buf[8..12].copy_from_slice(&0u32.to_ne_bytes());
    let size = buf.len() as u32;
    buf[12..16].copy_from_slice(&size.to_ne_bytes());
    buf[16..20].copy_from_slice(&(DM_IOCTL_SIZE as u32).to_ne_bytes());
    buf[28..32].copy_from_slice(&flags.to_ne_bytes());
    let n = name.len().min(DM_NAME_LEN - 1);
    buf[48..48 + n].copy_from_slice(&name.as_bytes()[..n]);
}

/// The control node to open: `/dev/mapper/control`, or the path in
/// `DMCH_DM_CONTROL` (tests point it at stand-ins: a regular file, a node
/// with no driver behind it).
pub fn control_path() -> std::path::PathBuf {
    std::env::var_os("DMCH_DM_CONTROL")
        .filter(|p| !p.is_empty())
        .map_or_else(|| "/dev/mapper/control".into(), Into::into)
}

/// A kernel version triple, as device-mapper reports its own and its targets'.
pub type Version = [u32; 3];

fn read_version(b: &[u8]) -> Version {
    let w = |i: usize| u32::from_ne_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
    [w(0), w(1), w(2)]
}

/// Without udev, make /dev/mapper/<name> for a new mapping ourselves (a
/// node that exists is left alone).
pub fn make_node(m: &Mapping) {
    let p = std::path::Path::new("/dev/mapper").join(&m.name);
    if p.exists() {
        return;
    }
    let _ = std::fs::create_dir_all("/dev/mapper");
    let (maj, min) = m.major_minor();
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: mknod with a valid NUL-terminated path.
    unsafe {
        libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(maj, min));
    }
}

impl Control {
    pub fn open() -> io::Result<Self> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(control_path())
            .map(Control)
    }

    /// DM_VERSION: the interface version of the kernel's device-mapper. A
    /// control node left behind by a package, on a kernel without
    /// device-mapper, opens (or not) but never answers this.
    pub fn version(&self) -> io::Result<Version> {
        let mut buf = vec![0u8; DM_IOCTL_SIZE];
        header(&mut buf, "", 0);
        self.ioctl(DM_VERSION, &mut buf)?;
        Ok(read_version(&buf[0..12]))
    }

    /// DM_LIST_VERSIONS: the targets registered now (modules not yet
    /// loaded are absent), with their versions.
    pub fn targets(&self) -> io::Result<Vec<(String, Version)>> {
        let mut buf = vec![0u8; 16384];
        header(&mut buf, "", 0);
        self.ioctl(DM_LIST_VERSIONS, &mut buf)?;
        let start = u32::from_ne_bytes(buf[16..20].try_into().unwrap()) as usize;
        let size = (u32::from_ne_bytes(buf[12..16].try_into().unwrap()) as usize).min(buf.len());
        let mut out = Vec::new();
        let mut at = start;
        // struct dm_target_versions { u32 next; u32 version[3]; char name[]; }
        while at + 16 < size {
            let next = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
            let name_end = buf[at + 16..size]
                .iter()
                .position(|&b| b == 0)
                .map_or(size, |e| at + 16 + e);
            let name = String::from_utf8_lossy(&buf[at + 16..name_end]).into_owned();
            out.push((name, read_version(&buf[at + 4..at + 16])));
            if next == 0 {
                break;
            }
            at += next;
        }
        Ok(out)
    }

    fn ioctl(&self, req: u64, buf: &mut [u8]) -> io::Result<()> {
        // SAFETY: buf is a properly sized dm_ioctl buffer owned by us.
        let r = unsafe { libc::ioctl(self.0.as_raw_fd(), req as _, buf.as_mut_ptr()) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub fn create(&self, name: &str) -> io::Result<Mapping> {
        check_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut buf = vec![0u8; DM_IOCTL_SIZE];
        header(&mut buf, name, 0);
        self.ioctl(DM_DEV_CREATE, &mut buf)?;
        let dev = u64::from_ne_bytes(buf[40..48].try_into().unwrap());
        // new_encode_dev: minor = (dev & 0xff) | ((dev >> 12) & 0xfff00)
        let minor = ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32;
        Ok(Mapping {
            name: name.to_string(),
            minor,
            dev,
        })
    }

    /// Load a one-target table (`params` is everything after the target type).
    pub fn load(
        &self,
        m: &Mapping,
        start: u64,
        len: u64,
        target: &str,
        params: &str,
        read_only: bool,
    ) -> io::Result<()> {
        let plen = params.len() + 1;
        let total = (DM_IOCTL_SIZE + DM_TARGET_SPEC_SIZE + plen).next_multiple_of(8);
        let mut buf = zeroize::Zeroizing::new(vec![0u8; total]);
        let flags = DM_SECURE_DATA_FLAG | if read_only { DM_READONLY_FLAG } else { 0 };
        header(&mut buf, &m.name, flags);
        buf[20..24].copy_from_slice(&1u32.to_ne_bytes()); // target_count
        let t = DM_IOCTL_SIZE;
        buf[t..t + 8].copy_from_slice(&start.to_ne_bytes());
        buf[t + 8..t + 16].copy_from_slice(&len.to_ne_bytes());
        let ty = target.as_bytes();
        buf[t + 24..t + 24 + ty.len()].copy_from_slice(ty);
        let p = t + DM_TARGET_SPEC_SIZE;
        buf[p..p + params.len()].copy_from_slice(params.as_bytes());
        self.ioctl(DM_TABLE_LOAD, &mut buf)
    }

    /// Resume: makes the loaded table live.
    pub fn resume(&self, m: &Mapping) -> io::Result<()> {
        let mut buf = vec![0u8; DM_IOCTL_SIZE];
        header(&mut buf, &m.name, DM_SECURE_DATA_FLAG);
        self.ioctl(DM_DEV_SUSPEND, &mut buf)
    }

    /// Suspend the device (before loading a new table into a live one).
    pub fn suspend(&self, m: &Mapping) -> io::Result<()> {
        let mut buf = vec![0u8; DM_IOCTL_SIZE];
        header(&mut buf, &m.name, DM_SUSPEND_FLAG);
        self.ioctl(DM_DEV_SUSPEND, &mut buf)
    }

    /// Look up an existing device by name.
    pub fn find(&self, name: &str) -> io::Result<Option<(Mapping, bool)>> {
        let mut buf = vec![0u8; DM_IOCTL_SIZE];
        header(&mut buf, name, 0);
        match self.ioctl(DM_DEV_STATUS, &mut buf) {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
            Err(e) => Err(e),
            Ok(()) => {
                let dev = u64::from_ne_bytes(buf[40..48].try_into().unwrap());
                let flags = u32::from_ne_bytes(buf[28..32].try_into().unwrap());
                let minor = ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32;
                Ok(Some((
                    Mapping {
                        name: name.to_string(),
                        minor,
                        dev,
                    },
                    flags & DM_READONLY_FLAG != 0,
                )))
            }
        }
    }

    /// The live table: (start, length, target type, parameters) per target.
    /// The parameters hold the key as the kernel shows it: callers hide it.
    pub fn table(&self, m: &Mapping) -> io::Result<Vec<TableTarget>> {
        let mut buf = zeroize::Zeroizing::new(vec![0u8; 16384]);
        header(
            &mut buf,
            &m.name,
            DM_STATUS_TABLE_FLAG | DM_SECURE_DATA_FLAG,
        );
        self.ioctl(DM_TABLE_STATUS, &mut buf)?;
        let count = u32::from_ne_bytes(buf[20..24].try_into().unwrap()) as usize;
        let mut at = u32::from_ne_bytes(buf[16..20].try_into().unwrap()) as usize;
        let mut out = Vec::new();
        for _ in 0..count {
            let start = u64::from_ne_bytes(buf[at..at + 8].try_into().unwrap());
            let len = u64::from_ne_bytes(buf[at + 8..at + 16].try_into().unwrap());
            let next = u32::from_ne_bytes(buf[at + 20..at + 24].try_into().unwrap()) as usize;
            let ty_end = buf[at + 24..at + 40]
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(16);
            let ty = String::from_utf8_lossy(&buf[at + 24..at + 24 + ty_end]).into_owned();
            let p = at + DM_TARGET_SPEC_SIZE;
            let p_end = buf[p..]
                .iter()
                .position(|&b| b == 0)
                .map_or(buf.len(), |e| p + e);
            let params =
                zeroize::Zeroizing::new(String::from_utf8_lossy(&buf[p..p_end]).into_owned());
            out.push((start, len, ty, params));
            if next == 0 {
                break;
            }
            at += next;
        }
        Ok(out)
    }

    pub fn remove(&self, m: &Mapping) -> io::Result<()> {
        let mut buf = vec![0u8; DM_IOCTL_SIZE];
        header(&mut buf, &m.name, 0);
        self.ioctl(DM_DEV_REMOVE, &mut buf)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ioctl_numbers_match_the_kernel_header() {
        // Values of DM_DEV_CREATE etc. on x86_64 as printed by a C program
        // including <linux/dm-ioctl.h>.
        assert_eq!(super::DM_DEV_CREATE, 0xc138_fd03);
        assert_eq!(super::DM_DEV_REMOVE, 0xc138_fd04);
        assert_eq!(super::DM_DEV_SUSPEND, 0xc138_fd06);
        assert_eq!(super::DM_TABLE_LOAD, 0xc138_fd09);
        assert_eq!(super::DM_VERSION, 0xc138_fd00);
        assert_eq!(super::DM_LIST_VERSIONS, 0xc138_fd0d);
    }
}
