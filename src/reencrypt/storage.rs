//! Where a conversion reads and writes: the device (or image) and its
//! journal, as positioned reads and writes plus a barrier. The conversion
//! only ever relies on what [`Storage::sync`] made durable, which is what
//! lets a test put a layer here that forgets every unsynced write.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Positioned I/O with a durability barrier.
pub trait Storage: Send + Sync {
    /// Fill `buf` from byte `offset`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Write all of `buf` at byte `offset`.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Make every write so far durable (fdatasync, a FLUSH on a device).
    fn sync(&self) -> io::Result<()>;
}

impl Storage for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.read_exact_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write_all_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.sync_data()
    }
}

impl<S: Storage + ?Sized> Storage for &S {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        (**self).write_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        (**self).sync()
    }
}

/// A window of another storage from byte `base` (a journal kept in room
/// on the device itself).
pub struct Region<S> {
    /// The storage the window is in.
    pub inner: S,
    /// Where the window starts.
    pub base: u64,
}

impl<S: Storage> Storage for Region<S> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_at(buf, self.base + offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_at(buf, self.base + offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
}

/// Test-only faults on the way to the disk, chosen by environment variables
/// so a test can break a real `dmch reencrypt` process:
/// `DMCH_TEST_CRASH_AFTER_WRITES=N` writes the first part of write N (a
/// torn write) and then SIGKILLs the process; `DMCH_TEST_FAIL_WRITE=N:ERR`
/// and `DMCH_TEST_FAIL_READ=N:ERR` fail write or read N with `ERR` (`eio`
/// or `enospc`). Writes and reads are counted over the device and the
/// journal together, from 1. Without the `test-fault` feature nothing is
/// read from the environment and every call goes straight through.
pub struct Faulty<S> {
    inner: S,
    #[cfg(feature = "test-fault")]
    plan: &'static FaultPlan,
}

#[cfg(feature = "test-fault")]
struct FaultPlan {
    writes: std::sync::atomic::AtomicU64,
    reads: std::sync::atomic::AtomicU64,
    crash_at: Option<u64>,
    fail_write: Option<(u64, i32)>,
    fail_read: Option<(u64, i32)>,
}

#[cfg(feature = "test-fault")]
fn fault_plan() -> &'static FaultPlan {
    static PLAN: std::sync::OnceLock<FaultPlan> = std::sync::OnceLock::new();
    PLAN.get_or_init(|| {
        let at = |var: &str| -> Option<(u64, i32)> {
            let v = std::env::var(var).ok()?;
            let (n, e) = v.split_once(':').unwrap_or((&v, "eio"));
            let errno = if e == "enospc" {
                libc::ENOSPC
            } else {
                libc::EIO
            };
            Some((n.parse().ok()?, errno))
        };
        FaultPlan {
            writes: 0.into(),
            reads: 0.into(),
            crash_at: std::env::var("DMCH_TEST_CRASH_AFTER_WRITES")
                .ok()
                .and_then(|v| v.parse().ok()),
            fail_write: at("DMCH_TEST_FAIL_WRITE"),
            fail_read: at("DMCH_TEST_FAIL_READ"),
        }
    })
}

impl<S> Faulty<S> {
    /// `inner`, with the faults the environment asks for (test builds).
    pub fn new(inner: S) -> Self {
        Faulty {
            inner,
            #[cfg(feature = "test-fault")]
            plan: fault_plan(),
        }
    }
}

impl<S: Storage> Storage for Faulty<S> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        #[cfg(feature = "test-fault")]
        {
            use std::sync::atomic::Ordering;
            let n = self.plan.reads.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some((at, errno)) = self.plan.fail_read
                && n == at
            {
                return Err(io::Error::from_raw_os_error(errno));
            }
        }
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(feature = "test-fault")]
        {
            use std::sync::atomic::Ordering;
            let n = self.plan.writes.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some((at, errno)) = self.plan.fail_write
                && n == at
            {
                return Err(io::Error::from_raw_os_error(errno));
            }
            if self.plan.crash_at == Some(n) {
                // Torn: a prefix of whole 512-byte units (possibly none)
                // reaches the file, then the process dies.
                let units = buf.len() / 512;
                let keep = (n as usize * 7919) % (units + 1) * 512;
                let _ = self.inner.write_at(&buf[..keep], offset);
                crate::reencrypt::storage::die();
            }
        }
        self.inner.write_at(buf, offset)
    }

    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
}

#[cfg(feature = "test-fault")]
#[allow(unsafe_code)] // kill(2) on ourselves: the crash a test asked for
fn die() -> ! {
    // SAFETY: kill and getpid take no pointers.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}
