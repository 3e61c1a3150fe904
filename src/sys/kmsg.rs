//! The kernel log, read record by record from /dev/kmsg: what the kernel
//! said while one case ran, and its taint mask before and after.

use std::io::Read;

/// A reader positioned at the end of the log: [`KernelLog::take`] returns
/// what was logged since the last call.
pub struct KernelLog {
    file: std::fs::File,
}

/// At most this many records are kept per call: a flood (a warning per
/// sector) must not grow without bound.
const MAX_RECORDS: usize = 400;

impl KernelLog {
    /// Open /dev/kmsg, skipping everything already logged.
    pub fn open() -> std::io::Result<KernelLog> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        use std::io::Seek;
        let mut f = file;
        f.seek(std::io::SeekFrom::End(0))?;
        Ok(KernelLog { file: f })
    }

    /// The messages logged since the last call, oldest first (continuation
    /// lines of a record are left out: they are key=value metadata).
    pub fn take(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if out.len() < MAX_RECORDS
                        && let Some(m) = message(&buf[..n])
                    {
                        out.push(m);
                    }
                }
                // Overwritten records: the next read resumes after them.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        out
    }

    /// Write a line into the kernel log (what `printk` would show), at
    /// `level` (0 emergency .. 7 debug).
    pub fn inject(level: u8, text: &str) -> std::io::Result<()> {
        std::fs::write("/dev/kmsg", format!("<{}>{text}\n", level.min(7)))
    }
}

/// The message of one /dev/kmsg record: `PRIO,SEQ,USEC,FLAGS;TEXT`.
fn message(record: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(record);
    let first = text.lines().next()?;
    let (_, msg) = first.split_once(';')?;
    Some(msg.to_string())
}

/// The kernel's taint mask (/proc/sys/kernel/tainted), when readable.
pub fn taint() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/kernel/tainted")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn records_give_their_message() {
        assert_eq!(
            super::message(b"4,1201,5123456,-;WARNING: CPU: 0 PID: 1 at x\n SUBSYSTEM=y\n"),
            Some("WARNING: CPU: 0 PID: 1 at x".into())
        );
        assert_eq!(super::message(b"garbage"), None);
    }
}
