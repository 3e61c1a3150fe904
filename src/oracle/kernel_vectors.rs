//! Kernel runs become `.vec` files (`dmch vectors generate`), in the format
//! [`crate::vectors`] reads: the oracle writes what the vectors layer checks.

use crate::oracle::run::KernelRun;
use crate::oracle::{Case, KernelResult};

/// Long hex values continue on indented lines of 64 digits (vectors/README.md).
fn wrap_hex(h: &str) -> String {
    let parts: Vec<&str> = h
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("hex is ASCII"))
        .collect();
    parts.join("\n  ")
}

/// `kernel-<major>.<minor>.vec` for a kernel release.
pub fn kernel_file_name(release: &str) -> String {
    let series = release.split('.').take(2).collect::<Vec<_>>().join(".");
    format!("kernel-{series}.vec")
}

/// The vector file of one kernel run, produced on `date`: every case the
/// kernel encrypted and read back to its plaintext. Returns the text and
/// the number of vectors.
pub fn kernel_vectors(run: &KernelRun, cases: &[Case], date: &str) -> (String, usize) {
    let mut out = format!(
        "# Ciphertexts produced by the Linux {} dm-crypt target\n# Written by `dmch vectors generate`; format: vectors/README.md\n\n[file]\nsource: Linux {} ({}), dm-crypt target, {}\nretrieved: {date}\nsemantics: each plaintext was written through a crypt mapping over a loop device with O_DIRECT and the ciphertext read from the backing file; the same mapping read it back to the plaintext with O_DIRECT. Digests are of the whole ciphertext.\n\n",
        run.release, run.release, run.label, run.backend
    );
    let mut n = 0;
    for c in cases {
        let Some(KernelResult::Data {
            ct_sha256,
            pt_sha256,
            ..
        }) = run.results.get(&c.id)
        else {
            continue;
        };
        // The .vec format holds one counter write through one table.
        if !c.steps.is_empty() || c.data != crate::oracle::Pattern::Counter {
            continue;
        }
        if *pt_sha256 != crate::hash::sha256(&c.plaintext()) {
            continue;
        }
        // A fault of the kernel is no vector: neither what it did while
        // logging one, nor an undefined result.
        if run.faults.contains_key(&c.id)
            || matches!(c.reference(), Err(crate::oracle::Refusal::Undefined(_)))
        {
            continue;
        }
        n += 1;
        out.push_str(&format!(
            "[vector {}]\nsource: Linux {} dm-crypt, case {}\nproduced: kernel-produced on {date} ({}); read back by the kernel\nkind: sector\nspec: {}\nkey: {}\niv-offset: {}\nsector-size: {}\n{}start-sector: 0\nplaintext: counter {}\nciphertext-sha256: {}\n\n",
            c.id,
            run.release,
            c.id,
            run.backend,
            c.cipher,
            wrap_hex(&c.key_hex),
            c.iv_offset,
            c.sector_size,
            if c.iv_large_sectors {
                "flags: iv_large_sectors\n"
            } else {
                ""
            },
            c.len,
            hex::encode(ct_sha256)
        ));
    }
    (out.trim_end().to_string() + "\n", n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::matrix;

    /// What the writer writes, the reader reads back, and the reference
    /// passes (the kernel's digests here are the reference's own).
    #[test]
    fn written_vectors_read_back_and_pass() {
        let cases: Vec<Case> = matrix::cases().into_iter().take(40).collect();
        let mut results = std::collections::BTreeMap::new();
        for c in &cases {
            if let Ok(x) = c.reference() {
                results.insert(
                    c.id.clone(),
                    KernelResult::Data {
                        ct_sha256: crate::hash::sha256(&x.backing),
                        pt_sha256: crate::hash::sha256(&c.plaintext()),
                        excerpts: Vec::new(),
                    },
                );
            }
        }
        let run = KernelRun {
            faults: Default::default(),
            restarts: 0,
            label: "test".into(),
            release: "6.12.0-test".into(),
            backend: "none".into(),
            elapsed: std::time::Duration::ZERO,
            results,
            algorithms: None,
        };
        let (text, n) = kernel_vectors(&run, &cases, "2026-11-28");
        assert!(n > 20, "{n}");
        assert_eq!(kernel_file_name(&run.release), "kernel-6.12.vec");
        let file = crate::vectors::parse("kernel-6.12.vec", &text).unwrap();
        assert_eq!(file.vectors.len(), n);
        let report = crate::vectors::run_files(&[file]);
        assert_eq!(report.failed(), 0);
    }
}
