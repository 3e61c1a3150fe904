//! The host <-> guest protocol, written once for both ends: the files the
//! host puts in the initramfs for the agent, and the lines the agent prints
//! on their own serial port (the console when the guest has none) for the
//! host. Every line starts with `DMCH-` and its fields are tab-separated;
//! kernel messages may share a console line, so a reader starts at the tag
//! and checks every field.

use crate::oracle::KernelResult;
use crate::oracle::klog::FaultKind;

/// Initramfs paths (relative to its root) the host writes and the agent reads.
pub mod files {
    /// The agent itself: dmch as PID 1.
    pub const INIT: &str = "init";
    /// Module file names in load order, one per line.
    pub const MODULE_ORDER: &str = "modules/order";
    /// Where the modules are.
    pub const MODULE_DIR: &str = "modules";
    /// Cases, one `Case::to_line` per line.
    pub const CASES: &str = "cases";
    /// A kernel benchmark plan (`kbench::plan::Plan::to_json`): the agent
    /// runs it before any case.
    pub const BENCH_PLAN: &str = "bench/plan.json";
    /// The brd module of the guest's kernel, loaded with the plan's size.
    pub const BENCH_BRD: &str = "bench/brd.ko";
    /// Test-only misbehaviour (`guest::hooks`), when asked for.
    pub const HOOKS: &str = "hooks";
    /// Present when the agent should also run the real-setup scenario.
    pub const SCENARIO: &str = "scenario";
    /// LUKS images made on the host (by cryptsetup), `NAME.img` with its
    /// passphrase in `NAME.pass`, for the LUKS scenario.
    pub const LUKS_DIR: &str = "luks";

    /// The name of the `i`-th module in load order.
    pub fn module(i: usize) -> String {
        format!("{i:04}.ko")
    }
}

/// One console line from the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// The first line: the agent runs, on this kernel release.
    Guest(String),
    /// Free text for whoever reads the console.
    Log(String),
    /// The algorithm names of the guest's /proc/crypto.
    Algorithms(Vec<String>),
    /// A check of the real-setup scenario.
    Check {
        name: String,
        passed: bool,
        detail: String,
    },
    /// The agent starts this case: if the guest dies or hangs now, the
    /// case is the one in progress.
    Begin(String),
    /// What the kernel did with one case.
    Result { id: String, result: KernelResult },
    /// One line of a kernel fault report logged while the case ran (they
    /// come before the case's result, in order).
    Klog {
        id: String,
        kind: FaultKind,
        text: String,
    },
    /// One record of the kernel benchmark (`kbench::run`), as JSON.
    Bench(String),
    /// The agent cannot go on.
    Fatal(String),
    /// The last line: this many cases were run.
    Done(usize),
}

/// The tag the host waits for: the agent has started.
pub const FIRST_LINE_TAG: &[u8] = b"DMCH-GUEST";

/// The guest's device for protocol lines: the second serial port, which
/// the kernel never writes to. On the console the kernel's messages (printed
/// asynchronously since 7.x) cut the agent's lines at any byte.
pub const PORT: &str = "/dev/ttyS1";

/// What the agent writes into the kernel log as a case starts. The console
/// prints it in order with the kernel's own messages, so the host knows
/// which case a report on the console belongs to, however far the
/// protocol's port lags behind.
pub const CASE_MARK: &str = "dmch: case ";

/// The case a console line marks as starting, if it is the agent's mark.
pub fn marked_case(console: &str) -> Option<&str> {
    let at = console.find(CASE_MARK)?;
    Some(console[at + CASE_MARK.len()..].trim_end_matches(['\r', '\n']))
}

static SINK: std::sync::OnceLock<std::sync::Mutex<std::fs::File>> = std::sync::OnceLock::new();

/// Print every later line on `port` instead of stdout.
pub fn send_to(port: std::fs::File) {
    let _ = SINK.set(std::sync::Mutex::new(port));
}

/// Wait until the serial port has sent what was written to it.
fn drain(port: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: tcdrain takes an open descriptor, borrowed for the call.
    #[allow(unsafe_code)]
    let r = unsafe { libc::tcdrain(port.as_raw_fd()) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Tabs and newlines would split a field: free text is flattened.
fn flat(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

impl Line {
    /// The console form (without the newline).
    pub fn encode(&self) -> String {
        match self {
            Line::Guest(r) => format!("DMCH-GUEST\t{}", flat(r)),
            Line::Log(t) => format!("DMCH-LOG\t{}", flat(t)),
            Line::Algorithms(a) => format!("DMCH-ALGS\t{}", a.join(",")),
            Line::Check {
                name,
                passed,
                detail,
            } => format!(
                "DMCH-CHECK\t{}\t{}\t{}",
                flat(name),
                if *passed { "PASS" } else { "FAIL" },
                flat(detail)
            ),
            Line::Begin(id) => format!("DMCH-CASE\t{}", flat(id)),
            Line::Klog { id, kind, text } => {
                format!("DMCH-KLOG\t{}\t{}\t{}", flat(id), kind.name(), flat(text))
            }
            Line::Result { id, result } => match result {
                KernelResult::Rejected(e) => format!("DMCH-RESULT\t{id}\tREJECT\t{}", flat(e)),
                KernelResult::Error(e) => format!("DMCH-RESULT\t{id}\tERROR\t{}", flat(e)),
                KernelResult::Data {
                    ct_sha256,
                    pt_sha256,
                    excerpts,
                } => {
                    let ex: Vec<String> = excerpts.iter().map(hex::encode).collect();
                    format!(
                        "DMCH-RESULT\t{id}\tOK\t{}\t{}\t{}",
                        hex::encode(ct_sha256),
                        hex::encode(pt_sha256),
                        ex.join(",")
                    )
                }
            },
            Line::Bench(j) => format!("DMCH-BENCH\t{}", flat(j)),
            Line::Fatal(t) => format!("DMCH-FATAL\t{}", flat(t)),
            Line::Done(n) => format!("DMCH-DONE\t{n}"),
        }
    }

    /// Print this line on the console (the agent's side).
    /// Send the line to the host: on the protocol's own serial port when
    /// the agent opened one ([`send_to`]), else on stdout (the console).
    pub fn print(&self) {
        let mut line = self.encode();
        line.push('\n');
        match SINK.get() {
            Some(port) => {
                use std::io::Write;
                let mut port = port.lock().unwrap_or_else(|p| p.into_inner());
                // One write per line, drained before going on: a guest
                // that panics next must not take an announced case with it.
                let _ = port.write_all(line.as_bytes());
                let _ = drain(&port);
            }
            None => print!("{line}"),
        }
    }

    /// Read a console line: `None` for anything that is not ours, or is
    /// damaged (a line cut by a kernel message is lost, not misread).
    pub fn decode(console: &str) -> Option<Line> {
        let line = console.trim_end_matches(['\r', '\n']);
        let line = &line[line.find("DMCH-")?..];
        let (tag, rest) = line.split_once('\t').unwrap_or((line, ""));
        Some(match tag {
            "DMCH-GUEST" => Line::Guest(rest.into()),
            "DMCH-LOG" => Line::Log(rest.into()),
            "DMCH-ALGS" => Line::Algorithms(
                rest.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            ),
            "DMCH-CHECK" => {
                let f: Vec<&str> = rest.splitn(3, '\t').collect();
                if f.len() != 3 || !matches!(f[1], "PASS" | "FAIL") {
                    return None;
                }
                Line::Check {
                    name: f[0].into(),
                    passed: f[1] == "PASS",
                    detail: f[2].into(),
                }
            }
            "DMCH-CASE" if !rest.is_empty() => Line::Begin(rest.into()),
            "DMCH-KLOG" => {
                let f: Vec<&str> = rest.splitn(3, '\t').collect();
                if f.len() != 3 {
                    return None;
                }
                Line::Klog {
                    id: f[0].into(),
                    kind: FaultKind::parse(f[1])?,
                    text: f[2].into(),
                }
            }
            "DMCH-RESULT" => {
                let f: Vec<&str> = rest.split('\t').collect();
                if f.len() < 3 {
                    return None;
                }
                let result = match f[1] {
                    "REJECT" if f.len() == 3 => KernelResult::Rejected(f[2].into()),
                    "ERROR" if f.len() == 3 => KernelResult::Error(f[2].into()),
                    "OK" if f.len() == 5 => {
                        let h =
                            |s: &str| -> Option<[u8; 32]> { hex::decode(s).ok()?.try_into().ok() };
                        let excerpts = f[4]
                            .split(',')
                            .filter(|s| !s.is_empty())
                            .map(|s| hex::decode(s).ok()?.try_into().ok())
                            .collect::<Option<Vec<[u8; 16]>>>()?;
                        KernelResult::Data {
                            ct_sha256: h(f[2])?,
                            pt_sha256: h(f[3])?,
                            excerpts,
                        }
                    }
                    _ => return None,
                };
                Line::Result {
                    id: f[0].into(),
                    result,
                }
            }
            // A record cut by a kernel message is not JSON any more: lost.
            "DMCH-BENCH" if serde_json::from_str::<serde_json::Value>(rest).is_ok() => {
                Line::Bench(rest.into())
            }
            "DMCH-FATAL" => Line::Fatal(rest.into()),
            "DMCH-DONE" => Line::Done(rest.trim().parse().ok()?),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Line> {
        vec![
            Line::Guest("6.12.117+deb12-cloud-amd64".into()),
            Line::Log("modules loaded, 0 failed".into()),
            Line::Algorithms(vec!["aes".into(), "cbc(aes)".into(), "xts(aes)".into()]),
            Line::Check {
                name: "create on a file".into(),
                passed: true,
                detail: "ok".into(),
            },
            Line::Check {
                name: "reload".into(),
                passed: false,
                detail: "exit 1: no mapping".into(),
            },
            Line::Result {
                id: "aes-cbc-plain/k16/s512/iv0/o0".into(),
                result: KernelResult::Rejected("errno 22".into()),
            },
            Line::Result {
                id: "x".into(),
                result: KernelResult::Error("loop: EBUSY".into()),
            },
            Line::Result {
                id: "aes-xts-plain64/k64/s4096L/iv8/o0".into(),
                result: KernelResult::Data {
                    ct_sha256: [0xab; 32],
                    pt_sha256: [0x01; 32],
                    excerpts: vec![[7; 16], [9; 16]],
                },
            },
            Line::Bench(r#"{"kind":"raw","op":"read","result":{"mib_s":1.5}}"#.into()),
            Line::Fatal("no device-mapper control".into()),
            Line::Begin("des:64-cbc-lmk/k520/s512/iv0/o0".into()),
            Line::Klog {
                id: "des:64-cbc-lmk/k520/s512/iv0/o0".into(),
                kind: FaultKind::Fortify,
                text: "memcpy: detected buffer overflow: 16 byte read of buffer size 8".into(),
            },
            Line::Done(691),
        ]
    }

    #[test]
    fn every_line_survives_the_console() {
        for l in every_kind() {
            assert_eq!(Line::decode(&l.encode()), Some(l.clone()), "{}", l.encode());
            // A kernel message in front, and a CR from the serial line.
            let noisy = format!("[    3.1] loop0: detected{}\r\n", l.encode());
            assert_eq!(Line::decode(&noisy), Some(l));
        }
    }

    #[test]
    fn free_text_cannot_split_fields() {
        let l = Line::Check {
            name: "a\tb".into(),
            passed: true,
            detail: "x\ny".into(),
        };
        assert_eq!(
            Line::decode(&l.encode()),
            Some(Line::Check {
                name: "a b".into(),
                passed: true,
                detail: "x y".into(),
            })
        );
    }

    #[test]
    fn damaged_lines_are_not_misread() {
        for bad in [
            "plain console text",
            "DMCH-RESULT\tid\tOK\tnothex",
            "DMCH-RESULT\tid",
            "DMCH-CHECK\tname\tMAYBE\tdetail",
            "DMCH-DONE\tmany",
            "DMCH-UNKNOWN\tx",
            "DMCH-KLOG\tid\tnot-a-kind\ttext",
            "DMCH-CASE",
        ] {
            assert_eq!(Line::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_first_line_carries_the_tag_the_host_waits_for() {
        assert!(
            Line::Guest("r".into())
                .encode()
                .as_bytes()
                .starts_with(FIRST_LINE_TAG)
        );
    }
}
