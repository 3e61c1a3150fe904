//! Linux native AIO (io_setup/io_submit/io_getevents) on an O_DIRECT
//! block device: a queue of `depth` requests in flight from one thread, as
//! fio's libaio engine drives a disk. Raw system calls, so there is no C
//! library to install on a runner or in the guest.

// The AIO system calls take pointers to iocbs and buffers the kernel uses
// until completion; the queue owns both and never moves them.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

const IOCB_CMD_PREAD: u16 = 0;
const IOCB_CMD_PWRITE: u16 = 1;

/// `struct iocb` of linux/aio_abi.h (x86_64, little endian).
#[repr(C)]
#[derive(Default)]
struct Iocb {
    data: u64,
    key: u32,
    rw_flags: i32,
    opcode: u16,
    reqprio: i16,
    fildes: u32,
    buf: u64,
    nbytes: u64,
    offset: i64,
    reserved2: u64,
    flags: u32,
    resfd: u32,
}

/// `struct io_event`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// One completed request: its slot, how long it took, bytes moved.
pub struct Done {
    /// The slot that is free again.
    pub slot: usize,
    /// Submit to completion, in nanoseconds.
    pub ns: u64,
}

/// `depth` request slots, each with its own aligned `block`-byte buffer.
pub struct Queue {
    ctx: libc::c_ulong,
    fd: OwnedFd,
    block: usize,
    // Never resized: the kernel holds these addresses while in flight.
    iocbs: Vec<Iocb>,
    buffers: Vec<u8>,
    buf_off: usize,
    started: Vec<Option<Instant>>,
    events: Vec<IoEvent>,
}

impl Queue {
    /// A queue on `fd` (opened with O_DIRECT) for `depth` requests of
    /// `block` bytes (a multiple of 4096). Write buffers hold `fill`.
    pub fn new(fd: OwnedFd, depth: usize, block: usize, fill: u8) -> io::Result<Queue> {
        if depth == 0 || block == 0 || !block.is_multiple_of(4096) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "queue depth and a block of whole 4 KiB pages",
            ));
        }
        let mut ctx: libc::c_ulong = 0;
        // SAFETY: io_setup writes the new context id into `ctx`.
        check(unsafe { libc::syscall(libc::SYS_io_setup, depth as libc::c_long, &mut ctx) })?;
        let (mut raw, off) = super::aligned(depth * block);
        for (i, b) in raw[off..off + depth * block].iter_mut().enumerate() {
            *b = fill ^ (i as u8).wrapping_mul(131);
        }
        Ok(Queue {
            ctx,
            fd,
            block,
            iocbs: (0..depth).map(|_| Iocb::default()).collect(),
            buffers: raw,
            buf_off: off,
            started: vec![None; depth],
            events: vec![IoEvent::default(); depth],
        })
    }

    /// The number of slots.
    pub fn depth(&self) -> usize {
        self.iocbs.len()
    }

    /// Start a read or write of slot `slot`'s buffer at byte `offset`.
    pub fn submit(&mut self, slot: usize, write: bool, offset: u64) -> io::Result<()> {
        if self.started[slot].is_some() {
            return Err(io::Error::other("slot already in flight"));
        }
        let buf = self.buffers[self.buf_off + slot * self.block..].as_mut_ptr();
        let cb = &mut self.iocbs[slot];
        *cb = Iocb {
            data: slot as u64,
            opcode: if write {
                IOCB_CMD_PWRITE
            } else {
                IOCB_CMD_PREAD
            },
            fildes: self.fd.as_raw_fd() as u32,
            buf: buf as u64,
            nbytes: self.block as u64,
            offset: offset as i64,
            ..Iocb::default()
        };
        let mut list = [cb as *mut Iocb];
        self.started[slot] = Some(Instant::now());
        // SAFETY: the iocb and its buffer live in this queue, unmoved, until
        // the completion is reaped or the context is destroyed (Drop).
        let r =
            check(unsafe { libc::syscall(libc::SYS_io_submit, self.ctx, 1, list.as_mut_ptr()) });
        match r {
            Ok(1) => Ok(()),
            Ok(_) => {
                self.started[slot] = None;
                Err(io::Error::other("io_submit took no request"))
            }
            Err(e) => {
                self.started[slot] = None;
                Err(e)
            }
        }
    }

    /// Wait for at least `min` completions; a failed request is an error
    /// (a short transfer too: a block device moves whole requests).
    pub fn reap(&mut self, min: usize, out: &mut Vec<Done>) -> io::Result<()> {
        out.clear();
        let max = self.events.len();
        // SAFETY: the kernel writes at most `max` events into the vector.
        let n = check(unsafe {
            libc::syscall(
                libc::SYS_io_getevents,
                self.ctx,
                min as libc::c_long,
                max as libc::c_long,
                self.events.as_mut_ptr(),
                std::ptr::null_mut::<libc::timespec>(),
            )
        })? as usize;
        let now = Instant::now();
        for ev in &self.events[..n] {
            let slot = ev.data as usize;
            let start = self
                .started
                .get_mut(slot)
                .and_then(Option::take)
                .ok_or_else(|| io::Error::other("completion for an idle slot"))?;
            if ev.res < 0 {
                return Err(io::Error::from_raw_os_error(-ev.res as i32));
            }
            if ev.res as usize != self.block {
                return Err(io::Error::other(format!(
                    "short transfer: {} of {} bytes",
                    ev.res, self.block
                )));
            }
            out.push(Done {
                slot,
                ns: now.duration_since(start).as_nanos() as u64,
            });
        }
        Ok(())
    }

    /// How many requests are in flight.
    pub fn in_flight(&self) -> usize {
        self.started.iter().filter(|s| s.is_some()).count()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // io_destroy cancels or waits for every request in flight, so the
        // buffers are free to go after it.
        // SAFETY: the context was made by io_setup and is destroyed once.
        unsafe {
            libc::syscall(libc::SYS_io_destroy, self.ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iocb_and_event_have_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<Iocb>(), 64);
        assert_eq!(std::mem::offset_of!(Iocb, opcode), 16);
        assert_eq!(std::mem::offset_of!(Iocb, fildes), 20);
        assert_eq!(std::mem::offset_of!(Iocb, buf), 24);
        assert_eq!(std::mem::offset_of!(Iocb, offset), 40);
        assert_eq!(std::mem::size_of::<IoEvent>(), 32);
    }

    /// A regular file on a filesystem with O_DIRECT proves the calls move
    /// data (no block device or root needed).
    #[test]
    fn writes_then_reads_back_through_the_queue() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir_in(".").unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path);
        let f = match f {
            Ok(f) => f,
            Err(e) => {
                println!("SKIPPED aio round trip: O_DIRECT refused here: {e}");
                return;
            }
        };
        let mut q = Queue::new(f.into(), 4, 4096, 0x5a).unwrap();
        let mut done = Vec::new();
        for s in 0..4 {
            q.submit(s, true, (s as u64) * 8192).unwrap();
        }
        assert!(q.submit(0, true, 0).is_err(), "a busy slot was reused");
        let mut n = 0;
        while n < 4 {
            q.reap(1, &mut done).unwrap();
            n += done.len();
        }
        assert_eq!(q.in_flight(), 0);
        let data = std::fs::read(&path).unwrap();
        for s in 0..4usize {
            let at = s * 8192;
            let want: Vec<u8> = (0..4096)
                .map(|i| 0x5a ^ ((s * 4096 + i) as u8).wrapping_mul(131))
                .collect();
            assert_eq!(&data[at..at + 4096], &want[..], "slot {s}");
            assert!(data[at + 4096..at + 8192].iter().all(|&b| b == 0));
        }
        // Reads complete too, and a read past the end is a short transfer.
        q.submit(1, false, 0).unwrap();
        q.reap(1, &mut done).unwrap();
        assert_eq!(done.len(), 1);
        q.submit(2, false, (1 << 20) - 2048).unwrap();
        assert!(q.reap(1, &mut done).is_err());
    }
}
