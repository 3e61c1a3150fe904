//! Ctrl-C and SIGTERM as a request to stop: long runs (kernel cases, guest
//! boots, file transforms) poll [`requested`] and unwind normally, so their
//! mappings, loop devices, temporary files and QEMU children are removed.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Catch SIGINT and SIGTERM from now on (idempotent).
pub fn install() {
    // SAFETY: the handler only stores to an atomic, which is signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Whether a stop was asked for since [`install`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
