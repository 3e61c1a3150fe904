//! The real kernel as oracle: cases and the matrix, the runner that pushes
//! a case through a live dm-crypt mapping, and the comparison with the
//! reference engine.
//!
//! A case is encrypted by writing its plaintext through a mapping over a
//! loop device with O_DIRECT and reading the backing file (never through the
//! loop device's page cache); it is read back through the same mapping with
//! O_DIRECT. Only digests and per-sector excerpts leave the kernel side,
//! which keeps the serial console of a guest fast.
//!
//! The data is half the verdict: [`klog`] scans the kernel's log around
//! each case for faults (a WARNING, BUG, sanitizer report, panic or hang
//! makes the case a kernel fault), [`known`] holds the faults expected on
//! which kernels, and [`reproducer`] writes a shell script per finding.

mod case;
mod compare;
pub mod fuzz;
pub mod kernel_vectors;
pub mod klog;
pub mod known;
pub mod matrix;
pub mod regressions;
mod report;
pub mod reproducer;
mod result;
mod rig;
pub mod run;
pub mod shrink;

pub use crate::fault::Fault;
pub(crate) use case::excerpts;
pub use case::{Case, Expected, Pattern, Refusal, Step};
pub use compare::{Mismatch, Verdict, compare, judge};
pub use report::{Evaluation, Finding, evaluate};
pub use result::KernelResult;
pub use rig::Rig;
