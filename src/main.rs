//! `dmch`: the command-line face of dmcrypt-harness. Each command group lives
//! in its own module under `cli/`; this file only parses and dispatches.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // As PID 1 of a guest built by the VM backend, dmch is the test agent.
    if std::process::id() == 1 {
        dmcrypt_harness::kernel::guest::run_as_init();
    }
    // The cryptsetup-style setup syntax has its own parser (-h is --hash there).
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if cli::setup::wants(&raw) {
        return match cli::setup::run(&raw) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("dmch: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // One line: the context chain joined with ': '.
            eprintln!("dmch: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
