//! The kernel benchmark (`dmch bench --kernel`): what a real dm-crypt
//! volume does, not what the cipher alone does. A [`plan`] expands into a
//! matrix of flag sets, sector sizes, workloads and directions; [`run`]
//! measures each point through a live mapping over a [`backing`] device
//! that does not measure itself (brd), with the bare device as the ceiling
//! and the cipher alone (AF_ALG) beside it; [`context`] records what the
//! figures depend on; [`stats`] gives latency percentiles; [`report`]
//! turns the records into JSON, a table and charts.

pub mod backing;
pub mod context;
pub mod plan;
pub mod report;
pub mod run;
pub mod stats;

/// Where a guest finds the plan in its initramfs.
pub const GUEST_PLAN: &str = crate::protocol::files::BENCH_PLAN;
/// Where a guest finds its kernel's brd module.
pub const GUEST_BRD: &str = crate::protocol::files::BENCH_BRD;
