//! Typed library errors. Every message names what is wrong in one line, so
//! the CLI can print it as-is after its own context.

use thiserror::Error;

/// What the reference refuses, and why: one variant per kind of input.
#[derive(Debug, Error)]
pub enum Error {
    /// The cipher specification does not parse or names something unknown.
    #[error("cipher spec '{spec}': {why}")]
    Spec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// The key does not fit the cipher, or is not valid hex.
    #[error("key: {0}")]
    Key(String),
    /// A dm table line or one of its fields is malformed or out of range.
    #[error("table: {0}")]
    Table(String),
    /// Sector geometry (sector size, offsets, input length) is invalid.
    #[error("{0}")]
    Geometry(String),
    /// The kernel would accept this, but it cannot be reproduced offline.
    #[error("not reproducible offline: {0}")]
    Offline(String),
    /// The kernel accepts this, but its result depends on memory it does
    /// not own: no reference result exists, and the kernel is at fault.
    #[error("the kernel's result is undefined: {0}")]
    Undefined(String),
    /// A vector file is malformed.
    #[error("{file}:{line}: {why}")]
    Vector {
        /// The vector file.
        file: String,
        /// The line the problem is on.
        line: usize,
        /// What is wrong there.
        why: String,
    },
}

impl Error {
    pub(crate) fn spec(spec: &str, why: impl Into<String>) -> Self {
        Error::Spec {
            spec: spec.to_string(),
            why: why.into(),
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
