//! Test-only misbehaviour of the guest, to prove the host survives it: a
//! panic, a hang or a logged WARNING at a chosen case. The host writes the
//! hooks file only when `DMCH_TEST_GUEST_HOOK` asks (and only builds with
//! the `test-fault` feature honour it), as `warn=ID,panic=ID,hang=ID`.

use crate::protocol::files;
use std::path::Path;

/// What to do before which case.
#[derive(Default)]
pub struct Hooks(Vec<(String, String)>);

/// Read the hooks file the host put in the initramfs, if any.
pub fn read(root: &Path) -> Hooks {
    let text = std::fs::read_to_string(root.join(files::HOOKS)).unwrap_or_default();
    Hooks(parse(&text))
}

/// `warn=ID,panic=ID,hang=ID` as (action, case id) pairs.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.trim()
        .split(',')
        .filter_map(|w| w.split_once('='))
        .filter(|(a, _)| matches!(*a, "warn" | "panic" | "hang"))
        .map(|(a, id)| (a.to_string(), id.to_string()))
        .collect()
}

impl Hooks {
    /// Misbehave as asked before case `id` (nothing without `test-fault`).
    pub fn before(&self, id: &str) {
        if !cfg!(feature = "test-fault") {
            return;
        }
        for (action, at) in &self.0 {
            if at != id {
                continue;
            }
            match action.as_str() {
                // Logged by the kernel as if a WARN_ON had fired.
                "warn" => {
                    let _ = crate::sys::kmsg::KernelLog::inject(
                        4,
                        "WARNING: CPU: 0 PID: 1 at drivers/md/dm-crypt.c:1 dmch_test_hook",
                    );
                }
                // A real kernel panic (sysrq c), as a BUG in init would give.
                "panic" => {
                    let _ = std::fs::write("/proc/sysrq-trigger", "c");
                }
                "hang" => loop {
                    std::thread::park();
                },
                _ => {}
            }
        }
    }
}
