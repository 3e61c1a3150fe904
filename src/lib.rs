//! dmcrypt-harness: a userspace reference of the Linux dm-crypt target's
//! sector transform, bit-exact with the kernel, and the tools around it.
//!
//! Data flows one way. Text becomes typed: [`spec`] (cipher specs) and
//! [`table`] (crypt table lines, [`key`] fields). The reference runs on
//! them: [`cipher`] (block ciphers, SIMD backends behind [`cpu`] tokens),
//! [`mode`] (chaining modes), [`iv`] (IV generators, one per file, the
//! kernel's hooks) and [`engine`] ([`engine::SectorCrypt`], sector numbering
//! and key instances). Known answers are in [`vectors`]. Around that:
//! [`transform`] and [`output`] (offline encryption of files and devices),
//! [`keyderive`], [`kdf`] and [`plain`] (cryptsetup plain mode, real setups), [`sys`]
//! (device-mapper, loop and block-device ioctls, the one activation path),
//! [`oracle`] (the real kernel as oracle: cases, matrix, comparison, runs,
//! reports; the kernel log as evidence of faults, the known faults, and
//! shell reproducers), [`kver`] (kernel versions, where a rule changes),
//! [`vm`] (QEMU guests, host side), [`guest`] (the agent inside)
//! and [`protocol`] (what passes between them), [`doctor`] (what a machine
//! offers).
//!
//! The modules form layers (foundation, text, reference, sectors and
//! system, volumes and formats, oracle and guests; ARCHITECTURE.md), and a
//! module uses only its own layer and earlier ones (`tests/layers.rs`).
//!
//! `unsafe` is denied everywhere but where SIMD intrinsics or system calls
//! live; each of those modules says so at its top.

#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "dmcrypt-harness targets x86_64 Linux: its SIMD backends, ioctl numbers and QEMU guests are x86_64's"
);

pub mod cipher;
pub mod cpu;
pub mod dmsetup;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod fault;
pub mod guest;
pub mod hash;
pub mod interrupt;
pub(crate) mod iv;
pub mod kbench;
pub mod kdf;
pub mod key;
pub mod keyderive;
pub mod kver;
pub(crate) mod leftovers;
pub mod luks;
pub mod mode;
pub mod oracle;
pub mod output;
pub mod plain;
pub(crate) mod protocol;
pub mod redact;
pub mod reencrypt;
pub mod signature;
pub mod spec;
pub mod sys;
pub mod table;
pub mod throughput;
pub mod transform;
pub mod vectors;
pub mod vm;
pub use error::{Error, Result};
