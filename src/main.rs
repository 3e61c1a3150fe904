//! `dmch`: the command-line face of dmcrypt-harness. The grammar is in
//! `cli/`; this file parses, dispatches and prints the one error line.

#![deny(unsafe_code)]

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // As PID 1 of a guest built by the VM backend, dmch is the test agent.
    if std::process::id() == 1 {
        dmcrypt_harness::guest::agent::run_as_init();
    }
    quiet_pipes_and_panics();
    // Arguments are OS strings: a non-UTF-8 path must neither panic nor be
    // echoed (it may sit next to a key on the same line).
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let args = match cli::reorder(args) {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    let argv = std::iter::once("dmch".into()).chain(args.iter().cloned());
    match cli::Cli::try_parse_from(argv) {
        Ok(c) => match cli::run(c) {
            Ok(code) => code,
            // One line: the context chain joined with ': ', each cause once.
            Err(e) => fail(&cli::error_line(&e)),
        },
        Err(e) => match cli::one_line(&e, &args) {
            Some(line) => fail(&line),
            None => {
                let _ = e.print();
                ExitCode::SUCCESS
            }
        },
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!(
        "dmch: error: {}",
        dmcrypt_harness::redact::for_terminal(msg)
    );
    ExitCode::FAILURE
}

/// A closed pipe (`dmch check | head -1`) ends the run quietly, as for any
/// Unix filter; a panic prints where, never its message (which could hold
/// key material), unless DMCH_DEBUG is set.
#[allow(unsafe_code)] // signal(2)
fn quiet_pipes_and_panics() {
    // SAFETY: restoring the default disposition of SIGPIPE has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        // println! to a full disk or a closed descriptor: an output error, not a bug.
        if let Some(why) = msg.strip_prefix("failed printing to stdout: ") {
            eprintln!("dmch: error: writing to standard output: {why}");
            std::process::exit(1);
        } else if std::env::var_os("DMCH_DEBUG").is_some() {
            eprintln!("dmch: internal error at {at}: {msg}");
        } else {
            eprintln!(
                "dmch: internal error at {at} (a bug; DMCH_DEBUG=1 shows its message, which may hold secrets)"
            );
        }
    }));
}
