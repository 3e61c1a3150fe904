//! Loop devices over the kernel's ioctls (linux/loop.h): attach a backing
//! file to a free loop device, detach it again.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

const LOOP_SET_FD: u64 = 0x4C00;
const LOOP_CLR_FD: u64 = 0x4C01;
const LOOP_CTL_GET_FREE: u64 = 0x4C82;

pub struct LoopDevice {
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

impl LoopDevice {
    /// Attach `backing` to the first free loop device.
    pub fn attach(backing: &File) -> io::Result<Self> {
        let ctl = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")?;
        // SAFETY: plain ioctls on descriptors we own.
        let n = check(unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE as _) })?;
        let path = format!("/dev/loop{n}");
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        check(unsafe { libc::ioctl(file.as_raw_fd(), LOOP_SET_FD as _, backing.as_raw_fd()) })?;
        Ok(LoopDevice { path, file })
    }

    pub fn detach(self) -> io::Result<()> {
        // SAFETY: as above.
        check(unsafe { libc::ioctl(self.file.as_raw_fd(), LOOP_CLR_FD as _) })?;
        Ok(())
    }
}
