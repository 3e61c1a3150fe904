//! Known-answer vectors: the plain-text `.vec` format and the runner behind
//! `dmch check`. The format is described in `vectors/README.md`; in short:
//!
//! ```text
//! [file]
//! source: where the data comes from
//!
//! [vector some-id]
//! source: ...            provenance of this vector
//! produced: ...          how the expected values were produced
//! kind: sector | cipher  dm-crypt sectors, or one crypto API request
//! spec: aes-cbc-essiv:sha256      (sector)   algorithm: cbc(aes)  (cipher)
//! key: <hex> | -
//! iv-offset / sector-size / flags / start-sector      (sector)
//! iv: <hex>                                           (cipher)
//! plaintext: <hex> | zeros N | counter N
//! ciphertext: <hex>   or   ciphertext-sha256: <hex>
//! ```
//!
//! Values continue on following lines that start with whitespace (hex is
//! joined without spaces, text with one space).

mod check;
mod format;

pub use check::{
    CaseOutcome, CaseResult, Report, describe_mismatch, run_file, run_files, run_vector,
};
pub use format::{Data, Expected, Kind, Vector, VectorFile, parse};

/// The vector files shipped with this build, embedded at compile time so
/// `dmch check` works from any directory.
pub fn builtin() -> Vec<(&'static str, &'static str)> {
    include!(concat!(env!("OUT_DIR"), "/builtin_vectors.rs"))
}
