//! Block-device facts from the kernel.

// System calls live here: block-device ioctls.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// BLKGETSIZE64 on x86_64 (_IOR(0x12, 114, size_t)).
const BLKGETSIZE64: u64 = 0x8008_1272;

/// BLKRAGET (_IO(0x12, 99)): the read-ahead in 512-byte sectors.
const BLKRAGET: u64 = 0x1263;

/// The read-ahead of an open block device, in 512-byte sectors.
pub fn read_ahead(f: &File) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut sectors: libc::c_long = 0;
    // SAFETY: BLKRAGET writes one long into `sectors`, which outlives the call.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), BLKRAGET as _, &mut sectors) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sectors as u64)
}

/// The size of an open block device in bytes.
pub fn size(f: &File) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut bytes: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 into `bytes`, which outlives the call.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), BLKGETSIZE64 as _, &mut bytes) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ioctl_number_matches_the_kernel_header() {
        // _IOR(0x12, 114, size_t): read, 8-byte argument, type 0x12, nr 114.
        assert_eq!(
            super::BLKGETSIZE64,
            (2 << 30) | (8 << 16) | (0x12 << 8) | 114
        );
    }
}
