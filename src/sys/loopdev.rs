//! Loop devices over the kernel's ioctls (linux/loop.h): attach a backing
//! file to a free loop device, detach it again.

// System calls live here: loop-device ioctls.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

const LOOP_SET_FD: u64 = 0x4C00;
const LOOP_CLR_FD: u64 = 0x4C01;
const LOOP_CTL_GET_FREE: u64 = 0x4C82;
const LOOP_SET_STATUS64: u64 = 0x4C04;
const LOOP_GET_STATUS64: u64 = 0x4C05;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// sizeof(struct loop_info64) and the offset of its lo_flags
/// (include/uapi/linux/loop.h); checked against the header in `tests`.
const LOOP_INFO64_SIZE: usize = 232;
const LO_FLAGS_AT: usize = 52;

/// An attached loop device.
pub struct LoopDevice {
    /// Its node, /dev/loopN.
    pub path: String,
    file: File,
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The number of the next free loop device (LOOP_CTL_GET_FREE), which
/// creates it if needed: proof that loop devices work here.
pub fn next_free() -> io::Result<i32> {
    let ctl = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    // SAFETY: a plain ioctl on a descriptor we own.
    check(unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE as _) })
}

impl LoopDevice {
    /// Attach `backing` to the first free loop device.
    pub fn attach(backing: &File) -> io::Result<Self> {
        let ctl = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")?;
        // Another process can take the same free device between GET_FREE and
        // SET_FD (EBUSY): ask again, as losetup does.
        let mut tries = 0;
        loop {
            // SAFETY: plain ioctls on descriptors we own.
            let n = check(unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE as _) })?;
            let path = format!("/dev/loop{n}");
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            match check(unsafe {
                libc::ioctl(file.as_raw_fd(), LOOP_SET_FD as _, backing.as_raw_fd())
            }) {
                Ok(_) => return Ok(LoopDevice { path, file }),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Attach with autoclear: the kernel detaches the loop device when its
    /// last user (the mapping) closes it, so `remove` needs no loop step.
    pub fn attach_autoclear(backing: &File) -> io::Result<Self> {
        let lo = Self::attach(backing)?;
        let mut info = [0u8; LOOP_INFO64_SIZE];
        // SAFETY: LOOP_GET_STATUS64/SET_STATUS64 read/write a loop_info64.
        let got = unsafe {
            libc::ioctl(
                lo.file.as_raw_fd(),
                LOOP_GET_STATUS64 as _,
                info.as_mut_ptr(),
            )
        };
        if got < 0 {
            let e = io::Error::last_os_error();
            let _ = lo.detach();
            return Err(e);
        }
        let at = LO_FLAGS_AT;
        let flags =
            u32::from_ne_bytes(info[at..at + 4].try_into().expect("4 bytes")) | LO_FLAGS_AUTOCLEAR;
        info[at..at + 4].copy_from_slice(&flags.to_ne_bytes());
        let set =
            unsafe { libc::ioctl(lo.file.as_raw_fd(), LOOP_SET_STATUS64 as _, info.as_ptr()) };
        if set < 0 {
            let e = io::Error::last_os_error();
            let _ = lo.detach();
            return Err(e);
        }
        Ok(lo)
    }

    /// Detach the backing file.
    pub fn detach(self) -> io::Result<()> {
        // SAFETY: as above.
        check(unsafe { libc::ioctl(self.file.as_raw_fd(), LOOP_CLR_FD as _) })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers above against <linux/loop.h> (see `sys::c_probe`).
    #[test]
    fn layout_and_ioctl_numbers_match_the_c_header() {
        let program = r#"
#include <stdio.h>
#include <stddef.h>
#include <linux/loop.h>
int main(void) {
  printf("%zu %zu %d\n", sizeof(struct loop_info64), offsetof(struct loop_info64, lo_flags), LO_FLAGS_AUTOCLEAR);
  printf("%d %d %d %d %d\n", LOOP_SET_FD, LOOP_CLR_FD, LOOP_CTL_GET_FREE, LOOP_SET_STATUS64, LOOP_GET_STATUS64);
  return 0;
}
"#;
        let Some(out) = crate::sys::c_probe::run("loop", program) else {
            return;
        };
        assert_eq!(
            out,
            format!(
                "{LOOP_INFO64_SIZE} {LO_FLAGS_AT} {LO_FLAGS_AUTOCLEAR}\n{LOOP_SET_FD} {LOOP_CLR_FD} {LOOP_CTL_GET_FREE} {LOOP_SET_STATUS64} {LOOP_GET_STATUS64}\n"
            )
        );
    }
}
