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
    pub const OPEN_COUNT: usize = 24;
    pub const FLAGS: usize = 28;
    pub const EVENT_NR: usize = 32;
    pub const DEV: usize = 40;
    pub const NAME: usize = 48;
    pub const UUID: usize = 176;
    /// struct dm_name_list, from its own start.
    pub const NAMES_DEV: usize = 0;
    pub const NAMES_NEXT: usize = 8;
    pub const NAMES_NAME: usize = 12;
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
const DM_LIST_DEVICES: u64 = dm_iowr(2);
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
const DM_ACTIVE_PRESENT_FLAG: u32 = 1 << 5;
const DM_INACTIVE_PRESENT_FLAG: u32 = 1 << 6;
const DM_BUFFER_FULL_FLAG: u32 = 1 << 8;
const DM_NOFLUSH_FLAG: u32 = 1 << 11;
const DM_UUID_LEN: usize = 129;
/// Ask the kernel to wipe the buffers holding the table (keys) after use.
const DM_SECURE_DATA_FLAG: u32 = 1 << 15;

/// An open device-mapper control node.
pub struct Control(File);

/// One target of a live table: start, length, type, parameters.
pub type TableTarget = (u64, u64, String, zeroize::Zeroizing<String>);

/// One target of a table to load.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// First sector in the mapped device.
    pub start: u64,
    /// Length in 512-byte sectors.
    pub len: u64,
    /// Target type: crypt, linear, zero, error, ...
    pub kind: &'a str,
    /// Everything after the type.
    pub params: &'a str,
}

/// What DM_DEV_STATUS reports of a device.
#[derive(Clone, Debug)]
pub struct Info {
    /// The device.
    pub mapping: Mapping,
    /// I/O is held.
    pub suspended: bool,
    /// The device is read-only.
    pub read_only: bool,
    /// A live table is present.
    pub live_table: bool,
    /// An inactive (loaded, not yet resumed) table is present.
    pub inactive_table: bool,
    /// How many holders have it open.
    pub open_count: i32,
    /// The event counter.
    pub event_nr: u32,
    /// Targets in the live table.
    pub target_count: u32,
    /// The UUID, empty when none was set.
    pub uuid: String,
}

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
    /// A mapping from the device number the kernel reports.
    fn new(name: &str, dev: u64) -> Self {
        Mapping {
            name: name.to_string(),
            // new_encode_dev: minor = (dev & 0xff) | ((dev >> 12) & 0xfff00)
            minor: ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32,
            dev,
        }
    }

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
        self.create_with_uuid(name, None)
    }

    /// As [`Control::create`], with a device-mapper UUID (cryptsetup's
    /// `CRYPT-LUKS2-<uuid>-<name>` tells tools what the mapping is).
    pub fn create_with_uuid(&self, name: &str, uuid: Option<&str>) -> io::Result<Mapping> {
        check_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut buf = vec![0u8; DM_IOCTL_SIZE];
        header(&mut buf, name, 0);
        if let Some(u) = uuid {
            if u.len() >= DM_UUID_LEN || u.contains('\0') {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("device-mapper UUID of {} bytes is too long", u.len()),
                ));
            }
            put(&mut buf, at::UUID, u.as_bytes());
        }
        self.ioctl(DM_DEV_CREATE, &mut buf)?;
        Ok(Mapping::new(name, get_u64(&buf, at::DEV)))
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
        let t = Target {
            start,
            len,
            kind: target,
            params,
        };
        self.load_targets(m, &[t], read_only)
    }

    /// Load a table of `targets` into the mapping's inactive slot.
    pub fn load_targets(
        &self,
        m: &Mapping,
        targets: &[Target<'_>],
        read_only: bool,
    ) -> io::Result<()> {
        // Each spec is followed by its NUL-terminated parameters, padded to 8;
        // `next` counts from the start of one spec to the next.
        let sizes: Vec<usize> = targets
            .iter()
            .map(|t| (DM_TARGET_SPEC_SIZE + t.params.len() + 1).next_multiple_of(8))
            .collect();
        let total = DM_IOCTL_SIZE + sizes.iter().sum::<usize>();
        let mut buf = zeroize::Zeroizing::new(vec![0u8; total]);
        let flags = DM_SECURE_DATA_FLAG | if read_only { DM_READONLY_FLAG } else { 0 };
        header(&mut buf, &m.name, flags);
        put(
            &mut buf,
            at::TARGET_COUNT,
            &(targets.len() as u32).to_ne_bytes(),
        );
        let mut pos = DM_IOCTL_SIZE;
        for (t, size) in targets.iter().zip(&sizes) {
            let ty = t.kind.as_bytes();
            if ty.is_empty() || ty.len() >= DM_MAX_TYPE_NAME {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("target type '{}' is not one device-mapper takes", t.kind),
                ));
            }
            put(
                &mut buf,
                pos + at::SPEC_SECTOR_START,
                &t.start.to_ne_bytes(),
            );
            put(&mut buf, pos + at::SPEC_LENGTH, &t.len.to_ne_bytes());
            put(&mut buf, pos + at::SPEC_NEXT, &(*size as u32).to_ne_bytes());
            put(&mut buf, pos + at::SPEC_TARGET_TYPE, ty);
            put(&mut buf, pos + DM_TARGET_SPEC_SIZE, t.params.as_bytes());
            pos += size;
        }
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
        self.suspend_with(m, false)
    }

    /// Suspend; with `noflush`, queued I/O stays queued instead of being
    /// flushed first (dmsetup --noflush).
    pub fn suspend_with(&self, m: &Mapping, noflush: bool) -> io::Result<()> {
        let mut buf = vec![0u8; DM_IOCTL_SIZE];
        let flags = DM_SUSPEND_FLAG | if noflush { DM_NOFLUSH_FLAG } else { 0 };
        header(&mut buf, &m.name, flags);
        self.ioctl(DM_DEV_SUSPEND, &mut buf)
    }

    /// What DM_DEV_STATUS says of a device, or `None` when there is none.
    pub fn info(&self, name: &str) -> io::Result<Option<Info>> {
        let mut buf = vec![0u8; DM_IOCTL_SIZE];
        header(&mut buf, name, 0);
        match self.ioctl(DM_DEV_STATUS, &mut buf) {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
            Err(e) => Err(e),
            Ok(()) => {
                let flags = get_u32(&buf, at::FLAGS);
                let dev = get_u64(&buf, at::DEV);
                let uuid_end = buf[at::UUID..at::UUID + DM_UUID_LEN]
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(DM_UUID_LEN);
                Ok(Some(Info {
                    mapping: Mapping::new(name, dev),
                    suspended: flags & DM_SUSPEND_FLAG != 0,
                    read_only: flags & DM_READONLY_FLAG != 0,
                    live_table: flags & DM_ACTIVE_PRESENT_FLAG != 0,
                    inactive_table: flags & DM_INACTIVE_PRESENT_FLAG != 0,
                    open_count: get_u32(&buf, at::OPEN_COUNT) as i32,
                    event_nr: get_u32(&buf, at::EVENT_NR),
                    target_count: get_u32(&buf, at::TARGET_COUNT),
                    uuid: String::from_utf8_lossy(&buf[at::UUID..at::UUID + uuid_end]).into_owned(),
                }))
            }
        }
    }

    /// Every mapping: (name, major, minor), sorted by name.
    pub fn list(&self) -> io::Result<Vec<(String, u32, u32)>> {
        let mut size = 16384;
        loop {
            let mut buf = vec![0u8; size];
            header(&mut buf, "", 0);
            self.ioctl(DM_LIST_DEVICES, &mut buf)?;
            if get_u32(&buf, at::FLAGS) & DM_BUFFER_FULL_FLAG != 0 && size < 1 << 24 {
                size *= 4;
                continue;
            }
            let end = (get_u32(&buf, at::DATA_SIZE) as usize).min(buf.len());
            let mut pos = get_u32(&buf, at::DATA_START) as usize;
            let mut out = Vec::new();
            // dev == 0 in the first entry: no devices.
            while pos + at::NAMES_NAME < end && get_u64(&buf, pos + at::NAMES_DEV) != 0 {
                let dev = get_u64(&buf, pos + at::NAMES_DEV);
                let name_at = pos + at::NAMES_NAME;
                let name_end = buf[name_at..end]
                    .iter()
                    .position(|&b| b == 0)
                    .map_or(end, |e| name_at + e);
                let name = String::from_utf8_lossy(&buf[name_at..name_end]).into_owned();
                let m = Mapping::new(&name, dev);
                out.push((name, m.major_minor().0, m.minor));
                let next = get_u32(&buf, pos + at::NAMES_NEXT) as usize;
                if next == 0 {
                    break;
                }
                pos += next;
            }
            out.sort();
            return Ok(out);
        }
    }

    /// Look up an existing device by name: the mapping and whether it is
    /// read-only.
    pub fn find(&self, name: &str) -> io::Result<Option<(Mapping, bool)>> {
        Ok(self.info(name)?.map(|i| (i.mapping, i.read_only)))
    }

    /// The live table: (start, length, target type, parameters) per target.
    /// The parameters hold the key as the kernel shows it: callers hide it.
    pub fn table(&self, m: &Mapping) -> io::Result<Vec<TableTarget>> {
        self.table_status(m, DM_STATUS_TABLE_FLAG)
    }

    /// The live table's status: (start, length, target type, status) per
    /// target, as `dmsetup status` prints it.
    pub fn status(&self, m: &Mapping) -> io::Result<Vec<TableTarget>> {
        self.table_status(m, 0)
    }

    fn table_status(&self, m: &Mapping, flag: u32) -> io::Result<Vec<TableTarget>> {
        let mut buf = zeroize::Zeroizing::new(vec![0u8; 65536]);
        header(&mut buf, &m.name, flag | DM_SECURE_DATA_FLAG);
        self.ioctl(DM_TABLE_STATUS, &mut buf)?;
        let count = get_u32(&buf, at::TARGET_COUNT) as usize;
        let data_start = get_u32(&buf, at::DATA_START) as usize;
        let mut pos = data_start;
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
            // In a status result `next` counts from the start of the data.
            if next == 0 || data_start + next <= pos {
                break;
            }
            pos = data_start + next;
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
  printf("%u %u %u %u %lu\n", DM_ACTIVE_PRESENT_FLAG, DM_INACTIVE_PRESENT_FLAG, DM_BUFFER_FULL_FLAG,
    DM_NOFLUSH_FLAG, (unsigned long)DM_LIST_DEVICES);
  printf("%zu %zu %zu %zu\n", offsetof(struct dm_ioctl, open_count), offsetof(struct dm_ioctl, event_nr),
    offsetof(struct dm_ioctl, uuid), (size_t)DM_UUID_LEN);
  printf("%zu %zu %zu\n", offsetof(struct dm_name_list, dev), offsetof(struct dm_name_list, next),
    offsetof(struct dm_name_list, name));
  return 0;
}
"#;
        let Some(out) = crate::sys::c_probe::run("dm-ioctl", program) else {
            return;
        };
        let want = format!(
            "{DM_IOCTL_SIZE} {} {} {} {} {} {} {DM_NAME_LEN}\n{DM_TARGET_SPEC_SIZE} {} {} {} {} {DM_MAX_TYPE_NAME}\n{} {} {}\n{DM_VERSION} {DM_DEV_CREATE} {DM_TABLE_LOAD} {DM_LIST_VERSIONS}\n{DM_READONLY_FLAG} {DM_SUSPEND_FLAG} {DM_STATUS_TABLE_FLAG} {DM_SECURE_DATA_FLAG}\n{DM_ACTIVE_PRESENT_FLAG} {DM_INACTIVE_PRESENT_FLAG} {DM_BUFFER_FULL_FLAG} {DM_NOFLUSH_FLAG} {DM_LIST_DEVICES}\n{} {} {} {DM_UUID_LEN}\n{} {} {}\n",
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
            at::OPEN_COUNT,
            at::EVENT_NR,
            at::UUID,
            at::NAMES_DEV,
            at::NAMES_NEXT,
            at::NAMES_NAME,
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
