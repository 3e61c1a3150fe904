//! Ctrl-C and SIGTERM as a request to stop: long runs (kernel cases, guest
//! boots, file transforms) poll [`requested`] and unwind normally, so their
//! mappings, loop devices, temporary files and QEMU children are removed.

// Installing a signal handler is a system call.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Catch SIGINT and SIGTERM from now on (idempotent).
pub fn install() {
    // Without SA_RESTART: a read blocked on a quiet pipe returns EINTR, so
    // the run notices the request instead of waiting for more input.
    // SAFETY: the handler only stores to an atomic, which is signal-safe;
    // the sigaction struct is zeroed and filled before use.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
}

/// Whether a stop was asked for since [`install`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
