//! The kernel log as evidence: which lines mean the kernel went wrong while
//! a case ran, whatever the ciphertext says. The same scan runs in the
//! guest agent (over /dev/kmsg), on the host backend, and over the console
//! of a guest that died.

/// What kind of kernel fault a report shows, in order of how early the
/// scan recognises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// A FORTIFY_SOURCE report (`detected buffer overflow`).
    Fortify,
    /// `kernel BUG at` or `BUG:`.
    Bug,
    /// KASAN, UBSAN or KFENCE.
    Sanitizer,
    /// A general protection fault or an Oops.
    Oops,
    /// The stack protector fired.
    StackProtector,
    /// An RCU stall, a soft lockup or a hung task.
    Stall,
    /// A lockdep report.
    Lockdep,
    /// `WARNING:` (a WARN_ON).
    Warning,
    /// The taint flags changed.
    Taint,
    /// The kernel panicked (the guest stopped).
    Panic,
    /// The case did not finish within the watchdog.
    Hang,
    /// The guest stopped during the case without a panic message.
    Died,
    /// The reference knows the kernel's result is undefined here (it reads
    /// memory it does not own), even when nothing was logged.
    Undefined,
}

impl FaultKind {
    /// The name in reports and in the known-faults file.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Fortify => "fortify",
            FaultKind::Bug => "bug",
            FaultKind::Sanitizer => "sanitizer",
            FaultKind::Oops => "oops",
            FaultKind::StackProtector => "stack-protector",
            FaultKind::Stall => "stall",
            FaultKind::Lockdep => "lockdep",
            FaultKind::Warning => "warning",
            FaultKind::Taint => "taint",
            FaultKind::Panic => "panic",
            FaultKind::Hang => "hang",
            FaultKind::Died => "died",
            FaultKind::Undefined => "undefined",
        }
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<FaultKind> {
        ALL_KINDS.iter().copied().find(|k| k.name() == name)
    }
}

/// Every kind, for parsing.
pub const ALL_KINDS: &[FaultKind] = &[
    FaultKind::Fortify,
    FaultKind::Bug,
    FaultKind::Sanitizer,
    FaultKind::Oops,
    FaultKind::StackProtector,
    FaultKind::Stall,
    FaultKind::Lockdep,
    FaultKind::Warning,
    FaultKind::Taint,
    FaultKind::Panic,
    FaultKind::Hang,
    FaultKind::Died,
    FaultKind::Undefined,
];

/// The text that marks each kind, as the kernel prints it.
const MARKS: &[(&str, FaultKind)] = &[
    ("detected buffer overflow", FaultKind::Fortify),
    ("kernel BUG at", FaultKind::Bug),
    ("BUG: KASAN:", FaultKind::Sanitizer),
    ("BUG: KFENCE:", FaultKind::Sanitizer),
    ("KASAN:", FaultKind::Sanitizer),
    ("UBSAN:", FaultKind::Sanitizer),
    ("KFENCE:", FaultKind::Sanitizer),
    ("BUG:", FaultKind::Bug),
    ("general protection fault", FaultKind::Oops),
    ("Oops:", FaultKind::Oops),
    ("Oops ", FaultKind::Oops),
    ("stack-protector", FaultKind::StackProtector),
    ("rcu_preempt detected stall", FaultKind::Stall),
    ("rcu_sched detected stall", FaultKind::Stall),
    ("rcu: INFO:", FaultKind::Stall),
    ("self-detected stall", FaultKind::Stall),
    ("soft lockup", FaultKind::Stall),
    ("blocked for more than", FaultKind::Stall),
    ("possible circular locking dependency", FaultKind::Lockdep),
    ("possible recursive locking", FaultKind::Lockdep),
    ("inconsistent lock state", FaultKind::Lockdep),
    ("suspicious RCU usage", FaultKind::Lockdep),
    ("WARNING:", FaultKind::Warning),
    ("Kernel panic - not syncing", FaultKind::Panic),
];

/// How many lines of a report travel: enough for the message, the
/// registers and the call trace.
pub const REPORT_LINES: usize = 40;

/// A kernel fault seen while a case ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelFault {
    /// The most telling kind in the report.
    pub kind: FaultKind,
    /// The report: the first marked line and what follows, at most
    /// [`REPORT_LINES`].
    pub lines: Vec<String>,
}

impl KernelFault {
    /// The line that names the fault (the first marked one).
    pub fn headline(&self) -> &str {
        // A hang's report starts with the watchdog's line; what follows is
        // the console's context, whatever it marks.
        if self.kind == FaultKind::Hang {
            return self.lines.first().map_or("", |s| s.as_str());
        }
        self.lines
            .iter()
            .find(|l| kind_of(l).is_some())
            .or(self.lines.first())
            .map_or("", |s| s.as_str())
    }

    /// One line: kind and headline.
    pub fn summary(&self) -> String {
        format!("kernel fault ({}): {}", self.kind.name(), self.headline())
    }
}

/// Every mark as one extended regular expression (`grep -E`), for scripts
/// that watch a kernel log without dmch.
pub fn shell_pattern() -> String {
    MARKS
        .iter()
        .map(|(m, _)| {
            m.chars()
                .map(|c| {
                    if "\\.[]()*+?{}|^$".contains(c) {
                        format!("\\{c}")
                    } else {
                        c.to_string()
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// The kind a log line marks, if any.
pub fn kind_of(line: &str) -> Option<FaultKind> {
    MARKS
        .iter()
        .find(|(m, _)| line.contains(m))
        .map(|(_, k)| *k)
}

/// Scan log lines for a fault: the earliest-ranked kind among the marked
/// lines, and the report from a few lines before the first marked one.
/// `taint` is the taint mask before and after, when known.
pub fn scan(lines: &[String], taint: Option<(u64, u64)>) -> Option<KernelFault> {
    let first = lines.iter().position(|l| kind_of(l).is_some());
    let kind = lines.iter().filter_map(|l| kind_of(l)).min();
    match (first, kind) {
        (Some(i), Some(kind)) => {
            // The "cut here" line and the message before a WARNING belong to it.
            let from = i.saturating_sub(2);
            Some(KernelFault {
                kind,
                lines: lines[from..].iter().take(REPORT_LINES).cloned().collect(),
            })
        }
        _ => match taint {
            Some((a, b)) if a != b => Some(KernelFault {
                kind: FaultKind::Taint,
                lines: std::iter::once(format!("taint changed: {a} -> {b}"))
                    .chain(lines.iter().rev().take(REPORT_LINES - 1).rev().cloned())
                    .collect(),
            }),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_fortify_report_of_7_2_is_a_fortify_fault() {
        let log = v(&[
            "device-mapper: crypt: some info",
            "------------[ cut here ]------------",
            "memcpy: detected buffer overflow: 16 byte read of buffer size 8",
            "WARNING: CPU: 0 PID: 1 at lib/string_helpers.c:1035 __fortify_report+0x45/0x50",
            "kernel BUG at lib/string_helpers.c:1043!",
        ]);
        let f = scan(&log, None).unwrap();
        assert_eq!(f.kind, FaultKind::Fortify);
        assert_eq!(f.lines[0], "device-mapper: crypt: some info");
        assert!(f.headline().contains("detected buffer overflow"));
    }

    #[test]
    fn every_mark_is_seen_and_plain_errors_are_not_faults() {
        for (m, k) in MARKS {
            let f = scan(&v(&[&format!("x {m} y")]), None).unwrap();
            assert!(f.kind <= *k, "{m}");
        }
        let refused = v(&[
            "device-mapper: table: 254:0: crypt: Error allocating crypto tfm (-ENOENT)",
            "device-mapper: ioctl: error adding target to table",
        ]);
        assert_eq!(scan(&refused, None), None);
        assert_eq!(scan(&refused, Some((0, 0))), None);
        assert_eq!(
            scan(&refused, Some((0, 512))).unwrap().kind,
            FaultKind::Taint
        );
    }

    #[test]
    fn reports_are_bounded() {
        let mut log = v(&["WARNING: at x"]);
        log.extend((0..500).map(|i| format!("trace {i}")));
        assert_eq!(scan(&log, None).unwrap().lines.len(), REPORT_LINES);
        for k in ALL_KINDS {
            assert_eq!(FaultKind::parse(k.name()), Some(*k));
        }
    }
}
