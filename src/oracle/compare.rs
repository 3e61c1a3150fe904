//! The verdict on a case: the kernel's result against the reference's.

use super::klog::{FaultKind, KernelFault};
use super::{Case, Fault, KernelResult, Refusal, excerpts};
use crate::hash::sha256;
use crate::table::Rules;

/// The verdict on one case, comparing kernel and reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The kernel and the reference agree in both directions.
    Pass,
    /// Both refused the table.
    RejectedAsExpected,
    /// The kernel lacks an algorithm the case needs (not built in it).
    Unavailable(String),
    /// They disagree: how, and why in words, with the first differing
    /// sector when there is one.
    Fail(Mismatch, String),
    /// The kernel went wrong while the case ran (logged a WARNING or a BUG,
    /// died, hung), or ran a table whose result is undefined: a fault of
    /// the kernel's whatever the ciphertext.
    KernelFault(KernelFault),
    /// A kernel fault the known-faults list expects on this kernel (it does
    /// not fail the run): the fault, and the list's note.
    KnownKernelFault(KernelFault, String),
}

/// How the kernel and the reference disagree: the shrinker keeps a case
/// failing the same way while it makes it smaller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mismatch {
    /// The kernel side failed for another reason (I/O, no result).
    KernelSide,
    /// The kernel refused a table the reference accepts.
    KernelRefused,
    /// The kernel accepted a table the reference refuses.
    ReferenceRefused,
    /// The ciphertexts differ.
    Ciphertext,
    /// The reads back differ.
    ReadBack,
    /// The kernel faulted (the shrinker keeps the fault, not the data).
    Fault,
}

impl Verdict {
    /// The mismatch, for a failure.
    pub fn mismatch(&self) -> Option<Mismatch> {
        match self {
            Verdict::Fail(m, _) => Some(*m),
            Verdict::KernelFault(_) => Some(Mismatch::Fault),
            _ => None,
        }
    }

    /// Whether this verdict fails a run.
    pub fn fails(&self) -> bool {
        matches!(self, Verdict::Fail(..) | Verdict::KernelFault(_))
    }

    /// The reason in one line, for failures and faults.
    pub fn reason(&self) -> Option<String> {
        match self {
            Verdict::Fail(_, w) => Some(w.clone()),
            Verdict::KernelFault(f) => Some(f.summary()),
            Verdict::KnownKernelFault(f, note) => Some(format!("{} (known: {note})", f.summary())),
            _ => None,
        }
    }
}

/// The verdict on a case from everything the kernel side gave: its result
/// (none when the guest died in the case) and the fault it logged.
/// A logged fault decides, whatever the data; so does a table whose result
/// the reference knows to be undefined, when the kernel runs it.
pub fn judge(
    case: &Case,
    kernel: Option<&KernelResult>,
    logged: Option<&KernelFault>,
    available: Option<&std::collections::BTreeSet<String>>,
    fault: Fault,
    rules: Rules,
) -> Verdict {
    if let Some(f) = logged {
        return Verdict::KernelFault(f.clone());
    }
    let Some(kernel) = kernel else {
        return Verdict::Fail(
            Mismatch::KernelSide,
            "no result from the kernel side".into(),
        );
    };
    compare(case, kernel, available, fault, rules)
}

/// Compare a kernel result with the reference, the table read as the
/// kernel of `rules` reads it. `available` lists the
/// algorithms the kernel has (from /proc/crypto), when known: a refusal for
/// lack of one of them is reported as unavailable, not as a mismatch.
pub fn compare(
    case: &Case,
    kernel: &KernelResult,
    available: Option<&std::collections::BTreeSet<String>>,
    fault: Fault,
    rules: Rules,
) -> Verdict {
    let reference = case.model_as(fault, rules);
    if let (KernelResult::Rejected(_), Ok(_), Some(have)) = (kernel, &reference, available) {
        let missing: Vec<String> = case
            .algorithms()
            .into_iter()
            .filter(|a| !have.contains(a))
            .collect();
        if !missing.is_empty() {
            return Verdict::Unavailable(format!("not in this kernel: {}", missing.join(", ")));
        }
    }
    match (kernel, reference) {
        (KernelResult::Error(e), _) => {
            Verdict::Fail(Mismatch::KernelSide, format!("kernel side failed: {e}"))
        }
        // A kernel that refuses an undefined table is right.
        (KernelResult::Rejected(_), Err(_)) => Verdict::RejectedAsExpected,
        (KernelResult::Rejected(e), Ok(_)) => Verdict::Fail(
            Mismatch::KernelRefused,
            format!("kernel rejected the table ({e}), the reference accepts it"),
        ),
        (KernelResult::Data { .. }, Err(Refusal::Undefined(why))) => {
            Verdict::KernelFault(KernelFault {
                kind: FaultKind::Undefined,
                lines: vec![format!(
                    "the kernel ran a table whose result is undefined: {why}"
                )],
            })
        }
        (KernelResult::Data { .. }, Err(Refusal::Refused(why))) => Verdict::Fail(
            Mismatch::ReferenceRefused,
            format!("kernel accepted the table, the reference refuses it: {why}"),
        ),
        (
            KernelResult::Data {
                ct_sha256,
                pt_sha256,
                excerpts: ex,
            },
            Ok(ours),
        ) => {
            if sha256(&ours.backing) != *ct_sha256 {
                let mine = excerpts(&ours.backing, case.sector_size as usize);
                let at = mine.iter().zip(ex).position(|(a, b)| a != b);
                return Verdict::Fail(
                    Mismatch::Ciphertext,
                    match at {
                        Some(s) => format!(
                            "ciphertext differs from sector {s} (of {} bytes): kernel {} reference {}",
                            case.sector_size,
                            hex::encode(ex[s]),
                            hex::encode(mine[s])
                        ),
                        None => {
                            "ciphertext differs (the first 16 bytes of every sector reported agree)"
                                .into()
                        }
                    },
                );
            }
            // What a read should give is what the reference reads from that
            // ciphertext: the plaintext, except where the kernel itself does
            // not round-trip (lmk over a chain mode other than cbc).
            if sha256(&ours.read) != *pt_sha256 {
                return Verdict::Fail(
                    Mismatch::ReadBack,
                    if case.steps.is_empty() && ours.read == case.plaintext() {
                        "the kernel did not decrypt its own ciphertext back"
                    } else {
                        "the kernel read back other bytes than the reference reads from the same ciphertext"
                    }
                    .into(),
                );
            }
            Verdict::Pass
        }
    }
}
