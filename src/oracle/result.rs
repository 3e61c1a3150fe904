//! What the kernel did with a case.

/// What the kernel did with a case, reduced to digests and excerpts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelResult {
    /// The table was refused (errno as text).
    Rejected(String),
    /// The table loaded and data went through it.
    Data {
        /// SHA-256 of the ciphertext the mapping wrote.
        ct_sha256: [u8; 32],
        /// SHA-256 of what a fresh mapping read back over that ciphertext.
        pt_sha256: [u8; 32],
        /// The first 16 bytes of each sector of the ciphertext.
        excerpts: Vec<[u8; 16]>,
    },
    /// Something other than the table failed (I/O, loop setup).
    Error(String),
}
