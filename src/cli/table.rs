//! `dmch table`: validate a table line the way the kernel's constructor
//! would (grammar, names, key length, geometry) and print it normalised.

use anyhow::Result;
use clap::Args;
use dmcrypt_harness::engine::SectorCrypt;
use dmcrypt_harness::key::Key;
use dmcrypt_harness::kver::KernelVersion;
use dmcrypt_harness::table::{Rules, Table};
use std::process::ExitCode;

#[derive(Args)]
pub struct TableArgs {
    /// A whole table line, or just the crypt parameters.
    line: String,
    /// Print the key in clear instead of zeros.
    #[arg(long)]
    show_keys: bool,
    /// Read the line as this kernel does (MAJOR.MINOR, e.g. 6.12): numbers
    /// of 2^64 or more wrap up to 6.12 and saturate later. Default: the
    /// newest kernels' rules.
    #[arg(long, value_name = "X.Y")]
    kernel_version: Option<KernelVersion>,
}

pub fn run(a: TableArgs) -> Result<ExitCode> {
    let rules = Rules {
        kernel: a.kernel_version,
        ..Rules::default()
    };
    let (table, p) = Table::parse_line_or_params_as(&a.line, rules)?;
    // Keyring keys cannot be checked here; every other key is keyed for real.
    if !matches!(p.key, Key::Keyring { .. }) && p.options.integrity.is_none() {
        SectorCrypt::new(&p.cipher, &p.key, p.geometry())?;
    }
    let text = match (&table, a.show_keys) {
        (Some(t), true) => t.to_string(),
        (Some(t), false) => t.redacted(),
        (None, true) => p.to_string(),
        (None, false) => p.redacted(),
    };
    if !p.options.read.ignored.is_empty() {
        eprintln!(
            "dmch: warning: the optional parameter count leaves out '{}': the kernel ignores {}",
            p.options.read.ignored.join(" "),
            if p.options.read.ignored.len() == 1 {
                "it"
            } else {
                "them"
            }
        );
    }
    println!("{text}");
    println!(
        "# cipher {} (capi: {})",
        p.cipher,
        p.cipher
            .to_capi()
            .unwrap_or_else(|| "none: keycount > 1".into())
    );
    Ok(ExitCode::SUCCESS)
}
