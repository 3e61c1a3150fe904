//! Code that runs only inside a guest: the agent (dmch as PID 1), the
//! real-setup scenarios it can run (plain and dmsetup-style, LUKS,
//! reencrypt) and the kernel benchmark. It talks to the host only through
//! `protocol`.

pub mod agent;
mod bench;
pub mod hooks;
mod luks_scenario;
mod reencrypt_scenario;
mod scenario;

/// Where the guest finds LUKS images shipped by the host.
pub const LUKS_DIR: &str = crate::protocol::files::LUKS_DIR;
