//! System plumbing: the few kernel interfaces dmch drives directly, used by
//! real setups, the oracle, the guest agent and the kernel benchmark alike.
//! Direct ioctls (no libdevmapper, no bindgen) keep one code path for the
//! host and the guest.

pub mod activate;
pub mod afalg;
pub mod aio;
pub mod blockdev;
#[cfg(test)]
mod c_probe;
pub mod dm;
pub mod kmsg;
pub mod loopdev;
pub mod probe;

use std::fs::OpenOptions;

/// A buffer aligned for O_DIRECT: the vector and the offset of the aligned part.
pub(crate) fn aligned(len: usize) -> (Vec<u8>, usize) {
    let raw = vec![0u8; len + 4096];
    let off = raw.as_ptr().align_offset(4096);
    (raw, off)
}

/// Open a block device for O_DIRECT reads or writes.
pub(crate) fn direct(path: &str, write: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

/// Open a block device for O_DIRECT reads and writes.
pub(crate) fn direct_rw(path: &str) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}
