//! The verdict on a case: the kernel's result against the reference's.

use super::{Case, Fault, KernelResult, excerpts};
use crate::hash::sha256;

/// The verdict on one case, comparing kernel and reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The kernel and the reference agree in both directions.
    Pass,
    /// Both refused the table.
    RejectedAsExpected,
    /// The kernel lacks an algorithm the case needs (not built in it).
    Unavailable(String),
    /// They disagree: why, with the first differing sector when there is one.
    Fail(String),
}

/// Compare a kernel result with the reference. `available` lists the
/// algorithms the kernel has (from /proc/crypto), when known: a refusal for
/// lack of one of them is reported as unavailable, not as a mismatch.
pub fn compare(
    case: &Case,
    kernel: &KernelResult,
    available: Option<&std::collections::BTreeSet<String>>,
    fault: Fault,
) -> Verdict {
    let reference = case.reference_with(fault);
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
        (KernelResult::Error(e), _) => Verdict::Fail(format!("kernel side failed: {e}")),
        (KernelResult::Rejected(_), Err(_)) => Verdict::RejectedAsExpected,
        (KernelResult::Rejected(e), Ok(_)) => Verdict::Fail(format!(
            "kernel rejected the table ({e}), the reference accepts it"
        )),
        (KernelResult::Data { .. }, Err(why)) => Verdict::Fail(format!(
            "kernel accepted the table, the reference refuses it: {why}"
        )),
        (
            KernelResult::Data {
                ct_sha256,
                pt_sha256,
                excerpts: ex,
            },
            Ok(ours),
        ) => {
            if sha256(&ours) != *ct_sha256 {
                let mine = excerpts(&ours, case.sector_size as usize);
                let at = mine.iter().zip(ex).position(|(a, b)| a != b);
                return Verdict::Fail(match at {
                    Some(s) => format!(
                        "ciphertext differs from sector {s} (of {} bytes): kernel {} reference {}",
                        case.sector_size,
                        hex::encode(ex[s]),
                        hex::encode(mine[s])
                    ),
                    None => "ciphertext differs (first 16 bytes of every sector agree)".into(),
                });
            }
            // What a read should give is what the reference reads from that
            // ciphertext: the plaintext, except where the kernel itself does
            // not round-trip (lmk over a chain mode other than cbc).
            let expected = case.reference_readback(&ours, fault);
            if sha256(&expected) != *pt_sha256 {
                return Verdict::Fail(
                    if expected == case.plaintext() {
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
