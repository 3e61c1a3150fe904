//! A minimal device-mapper client over the kernel's ioctl interface
//! (include/uapi/linux/dm-ioctl.h): create, load a one-target table, resume,
//! remove. Direct ioctls keep the guest agent free of libdevmapper.

// System calls live here: device-mapper ioctls.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

/// Byte offsets of `struct dm_ioctl` and `struct dm_target_spec`
/// (include/uapi/linux/dm-ioctl.h), written once; `tests` compares them
/// with the C header where a compiler and the header are present.
mod at {
    pub const VERSION: usize = 0;
    pub const DATA_SIZE: usize = 12;
    pub const DATA_START: usize = 16;
    pub const TARGET_COUNT: usize = 20;
    pub const FLAGS: usize = 28;
    pub const DEV: usize = 40;
    pub const NAME: usize = 48;
    /// struct dm_target_spec, from its own start.
    pub const SPEC_SECTOR_START: usize = 0;
    pub const SPEC_LENGTH: usize = 8;
    pub const SPEC_NEXT: usize = 20;
    pub const SPEC_TARGET_TYPE: usize = 24;
    /// struct dm_target_versions, from its own start.
    pub const VERSIONS_NEXT: usize = 0;
    pub const VERSIONS_VERSION: usize = 4;
    pub const VERSIONS_NAME: usize = 16;
}

const DM_IOCTL_SIZE: usize = 312;
const DM_TARGET_SPEC_SIZE: usize = 40;
const DM_NAME_LEN: usize = 128;
const DM_MAX_TYPE_NAME: usize = 16;

fn get_u32(buf: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes"))
}

fn get_u64(buf: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(buf[off..off + 8].try_into().expect("8 bytes"))
}

fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    buf[off..off + bytes.len()].copy_from_slice(bytes);
}

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

/// An open device-mapper control node.
pub struct Control(File);

/// One target of a live table: start, length, type, parameters.
pub type TableTarget = (u64, u64, String, zeroize::Zeroizing<String>);

/// A created mapping; its minor number names /dev/dm-N.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The mapping's name.
    pub name: String,
    /// The minor number (of /dev/dm-N).
    pub minor: u32,
    /// Device number as the kernel encodes it (new_encode_dev).
    pub dev: u64,
}

impl Mapping {
    /// The /dev/dm-N node.
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
    for (i, v) in [4u32, 0, 0].iter().enumerate() {
        put(buf, at::VERSION + 4 * i, &v.to_ne_bytes());
    }
    let size = buf.len() as u32;
    put(buf, at::DATA_SIZE, &size.to_ne_bytes());
    put(buf, at::DATA_START, &(DM_IOCTL_SIZE as u32).to_ne_bytes());
    put(buf, at::FLAGS, &flags.to_ne_bytes());
    // check_name keeps names whole; this cut is only a last guard.
    let n = name.len().min(DM_NAME_LEN - 1);
    put(buf, at::NAME, &name.as_bytes()[..n]);
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
    /// Open the control node ([`control_path`]).
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
        Ok(read_version(&buf[at::VERSION..at::VERSION + 12]))
    }

    /// DM_LIST_VERSIONS: the targets registered now (modules not yet
    /// loaded are absent), with their versions.
    pub fn targets(&self) -> io::Result<Vec<(String, Version)>> {
        let mut buf = vec![0u8; 16384];
        header(&mut buf, "", 0);
        self.ioctl(DM_LIST_VERSIONS, &mut buf)?;
        let start = get_u32(&buf, at::DATA_START) as usize;
        let size = (get_u32(&buf, at::DATA_SIZE) as usize).min(buf.len());
        let mut out = Vec::new();
        let mut pos = start;
        // struct dm_target_versions { u32 next; u32 version[3]; char name[]; }
        while pos + at::VERSIONS_NAME < size {
            let next = get_u32(&buf, pos + at::VERSIONS_NEXT) as usize;
            let name_at = pos + at::VERSIONS_NAME;
            let name_end = buf[name_at..size]
                .iter()
                .position(|&b| b == 0)
                .map_or(size, |e| name_at + e);
            let name = String::from_utf8_lossy(&buf[name_at..name_end]).into_owned();
            let v = pos + at::VERSIONS_VERSION;
            out.push((name, read_version(&buf[v..v + 12])));
            if next == 0 {
                break;
            }
            pos += next;
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

    /// Create an empty mapping called `name` (checked by [`check_name`]).
    pub fn create(&self, name: &str) -> io::Result<Mapping> {
        check_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut buf = vec![0u8; DM_IOCTL_SIZE];
        header(&mut buf, name, 0);
        self.ioctl(DM_DEV_CREATE, &mut buf)?;
        let dev = get_u64(&buf, at::DEV);
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
        put(&mut buf, at::TARGET_COUNT, &1u32.to_ne_bytes());
        let t = DM_IOCTL_SIZE;
        put(&mut buf, t + at::SPEC_SECTOR_START, &start.to_ne_bytes());
        put(&mut buf, t + at::SPEC_LENGTH, &len.to_ne_bytes());
        let ty = target.as_bytes();
        if ty.len() >= DM_MAX_TYPE_NAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("target type '{target}' is longer than device-mapper takes"),
            ));
        }
        put(&mut buf, t + at::SPEC_TARGET_TYPE, ty);
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
                let dev = get_u64(&buf, at::DEV);
                let flags = get_u32(&buf, at::FLAGS);
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
        let count = get_u32(&buf, at::TARGET_COUNT) as usize;
        let mut pos = get_u32(&buf, at::DATA_START) as usize;
        let mut out = Vec::new();
        for _ in 0..count {
            if pos + DM_TARGET_SPEC_SIZE > buf.len() {
                break;
            }
            let start = get_u64(&buf, pos + at::SPEC_SECTOR_START);
            let len = get_u64(&buf, pos + at::SPEC_LENGTH);
            let next = get_u32(&buf, pos + at::SPEC_NEXT) as usize;
            let ty_at = pos + at::SPEC_TARGET_TYPE;
            let ty_end = buf[ty_at..ty_at + DM_MAX_TYPE_NAME]
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(DM_MAX_TYPE_NAME);
            let ty = String::from_utf8_lossy(&buf[ty_at..ty_at + ty_end]).into_owned();
            let p = pos + DM_TARGET_SPEC_SIZE;
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
            pos += next;
        }
        Ok(out)
    }

    /// Remove the mapping (see `activate::deactivate` for the EBUSY retry).
    pub fn remove(&self, m: &Mapping) -> io::Result<()> {
        let mut buf = vec![0u8; DM_IOCTL_SIZE];
        header(&mut buf, &m.name, 0);
        self.ioctl(DM_DEV_REMOVE, &mut buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout above against <linux/dm-ioctl.h>, compiled here when a C
    /// compiler and the kernel headers are present (Debian: linux-libc-dev,
    /// which build-essential brings); otherwise it says why it did not run.
    #[test]
    fn struct_layouts_match_the_c_header() {
        let program = r#"
#include <stdio.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <linux/dm-ioctl.h>
int main(void) {
  printf("%zu %zu %zu %zu %zu %zu %zu %zu\n", sizeof(struct dm_ioctl),
    offsetof(struct dm_ioctl, data_size), offsetof(struct dm_ioctl, data_start),
    offsetof(struct dm_ioctl, target_count), offsetof(struct dm_ioctl, flags),
    offsetof(struct dm_ioctl, dev), offsetof(struct dm_ioctl, name), (size_t)DM_NAME_LEN);
  printf("%zu %zu %zu %zu %zu %zu\n", sizeof(struct dm_target_spec),
    offsetof(struct dm_target_spec, sector_start), offsetof(struct dm_target_spec, length),
    offsetof(struct dm_target_spec, next), offsetof(struct dm_target_spec, target_type),
    (size_t)DM_MAX_TYPE_NAME);
  printf("%zu %zu %zu\n", offsetof(struct dm_target_versions, next),
    offsetof(struct dm_target_versions, version), offsetof(struct dm_target_versions, name));
  printf("%lu %lu %lu %lu\n", (unsigned long)DM_VERSION, (unsigned long)DM_DEV_CREATE,
    (unsigned long)DM_TABLE_LOAD, (unsigned long)DM_LIST_VERSIONS);
  printf("%u %u %u %u\n", DM_READONLY_FLAG, DM_SUSPEND_FLAG, DM_STATUS_TABLE_FLAG, DM_SECURE_DATA_FLAG);
  return 0;
}
"#;
        let Some(out) = crate::sys::c_probe::run("dm-ioctl", program) else {
            return;
        };
        let want = format!(
            "{DM_IOCTL_SIZE} {} {} {} {} {} {} {DM_NAME_LEN}\n{DM_TARGET_SPEC_SIZE} {} {} {} {} {DM_MAX_TYPE_NAME}\n{} {} {}\n{DM_VERSION} {DM_DEV_CREATE} {DM_TABLE_LOAD} {DM_LIST_VERSIONS}\n{DM_READONLY_FLAG} {DM_SUSPEND_FLAG} {DM_STATUS_TABLE_FLAG} {DM_SECURE_DATA_FLAG}\n",
            at::DATA_SIZE,
            at::DATA_START,
            at::TARGET_COUNT,
            at::FLAGS,
            at::DEV,
            at::NAME,
            at::SPEC_SECTOR_START,
            at::SPEC_LENGTH,
            at::SPEC_NEXT,
            at::SPEC_TARGET_TYPE,
            at::VERSIONS_NEXT,
            at::VERSIONS_VERSION,
            at::VERSIONS_NAME,
        );
        assert_eq!(out, want);
    }

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
