//! The one grammar of every command (clap), and dispatch. Each command
//! group has its own file; the work is the library's.

mod args;
mod bench;
mod check;
mod dmsetup;
mod doctor;
mod fuzz;
mod kbench;
mod kernel;
mod luks;
mod luks_keys;
mod offline;
mod reencrypt;
mod setup;
mod setup_opts;
mod table;
mod verdicts;

pub use args::{error_line, one_line, reorder};
use clap::{Parser, Subcommand};
use dmcrypt_harness::cipher::Direction;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "dmch",
    version,
    about = "dm-crypt reference, known vectors and kernel oracle",
    long_about = "dmch implements the Linux dm-crypt sector transform in userspace, checks it against \
                  known vectors (dmch check), and encrypts or decrypts images offline exactly as the \
                  kernel target would.",
    after_help = "The setup actions (create, open, remove, close, reload, resize, status, derive-key) \
                  take their options before or after the action, as cryptsetup 0.1 did; there -h is \
                  the hash and -?/--help is help: dmch help create, dmch create --help."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify the reference against every known vector (the main job).
    Check(check::CheckArgs),
    /// Encrypt whole sectors offline, as the dm-crypt target writes them.
    Encrypt(offline::OfflineArgs),
    /// Decrypt whole sectors offline, as the dm-crypt target reads them.
    Decrypt(offline::OfflineArgs),
    /// Validate a dm table line (or crypt parameters) and print it normalised.
    Table(table::TableArgs),
    /// Throughput of the reference engine per spec (cryptsetup benchmark style).
    Bench(bench::BenchArgs),
    /// What this machine offers (CPU, device-mapper, loop, QEMU/KVM, kernels)
    /// and which path each job will take here.
    Doctor(doctor::DoctorArgs),
    /// dmsetup's commands and formats, every crypt line checked by the
    /// reference before the kernel sees it.
    #[command(subcommand)]
    Dmsetup(dmsetup::DmsetupCommand),
    /// The real kernel as oracle.
    #[command(subcommand)]
    Kernel(KernelCommand),
    /// LUKS1 and LUKS2 volumes offline: dump, decrypt, encrypt, format,
    /// add-key, remove-key, change-key, kill-slot.
    #[command(subcommand)]
    Luks(luks::LuksCommand),
    /// Convert a device or image in place to new table parameters (or
    /// from plaintext, or to it), journalled and resumable.
    Reencrypt(reencrypt::ReencryptArgs),
    /// Known-answer vectors.
    #[command(subcommand)]
    Vectors(VectorsCommand),
    #[command(flatten)]
    Setup(setup::SetupCommand),
}

#[derive(Subcommand)]
enum KernelCommand {
    /// Run the case matrix through a real kernel and compare with the reference.
    Check(kernel::CheckArgs),
    /// Seeded random cases (and tables to refuse) through the kernel and
    /// the reference.
    Fuzz(fuzz::FuzzArgs),
    /// Run the real-setup scenario (create/remove/reload/resize/status) in a guest.
    Setups(kernel::ScenarioArgs),
}

#[derive(Subcommand)]
enum VectorsCommand {
    /// Write kernel-produced vectors into vectors/.
    Generate(kernel::GenerateArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // A bad tier would silently mean "portable" deep in the engine.
    dmcrypt_harness::cpu::tier_from_env().map_err(anyhow::Error::msg)?;
    match cli.command {
        Command::Check(a) => check::run(a),
        Command::Encrypt(a) => offline::run(a, Direction::Encrypt),
        Command::Decrypt(a) => offline::run(a, Direction::Decrypt),
        Command::Table(a) => table::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Dmsetup(c) => dmsetup::run(c),
        Command::Luks(c) => luks::run(c),
        Command::Reencrypt(a) => reencrypt::run(a),
        Command::Kernel(KernelCommand::Check(a)) => kernel::check(a),
        Command::Kernel(KernelCommand::Setups(a)) => kernel::setups(a),
        Command::Kernel(KernelCommand::Fuzz(a)) => fuzz::run(a),
        Command::Vectors(VectorsCommand::Generate(a)) => kernel::generate(a),
        Command::Setup(c) => setup::run(c),
    }
}
