//! `dmch dmsetup ...`: the seed's first way to set up dm-crypt, in
//! dmsetup's spelling and output formats, with every crypt line checked by
//! the reference first. The work is `dmcrypt_harness::dmsetup`'s.

use anyhow::{Context, Result};
use clap::Subcommand;
use dmcrypt_harness::dmsetup;
use dmcrypt_harness::plain::SetupError;
use dmcrypt_harness::sys::dm::Control;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DmsetupCommand {
    /// Create NAME from a table (TABLE_FILE, or standard input).
    Create {
        name: String,
        table_file: Option<PathBuf>,
        /// Make the device read-only.
        #[arg(long)]
        readonly: bool,
        /// Then check the first and last sectors against the reference.
        #[arg(long)]
        verify: bool,
    },
    /// Load a table into NAME's inactive slot (live after resume).
    Reload {
        name: String,
        table_file: Option<PathBuf>,
        #[arg(long)]
        readonly: bool,
    },
    /// Hold I/O on NAME.
    Suspend {
        name: String,
        /// Keep queued I/O queued instead of flushing it first.
        #[arg(long)]
        noflush: bool,
    },
    /// Make a loaded table live, or let held I/O go on.
    Resume {
        name: String,
        /// Then check the first and last sectors against the reference.
        #[arg(long)]
        verify: bool,
    },
    /// Remove NAME.
    Remove {
        name: String,
        /// Ask again for up to a second while the device is busy.
        #[arg(long)]
        retry: bool,
    },
    /// The live table of NAME (every device without NAME); keys as zeros.
    Table {
        name: Option<String>,
        /// Show crypt keys.
        #[arg(long)]
        showkeys: bool,
    },
    /// The status of NAME's targets (every device without NAME).
    Status { name: Option<String> },
    /// Device facts of NAME (every device without NAME).
    Info { name: Option<String> },
    /// Every device with its major:minor.
    Ls,
}

fn control() -> Result<Control> {
    Ok(dmcrypt_harness::sys::probe::control().map_err(SetupError::from)?)
}

/// The table from TABLE_FILE or standard input, parsed and checked.
fn lines(file: &Option<PathBuf>) -> Result<Vec<dmsetup::Line>> {
    let text = match file {
        Some(f) => {
            let shown = dmcrypt_harness::redact::for_terminal(&f.display().to_string());
            let mut r = std::fs::File::open(f).with_context(|| format!("cannot open {shown}"))?;
            dmsetup::read_table(&mut r)?
        }
        None => dmsetup::read_table(&mut std::io::stdin().lock())?,
    };
    Ok(dmsetup::parse(&text)?)
}

/// Print `f(name)` for NAME, or for every device with dmsetup's `name: ` prefix.
fn each(
    ctl: &Control,
    name: &Option<String>,
    f: impl Fn(&Control, &str) -> Result<Vec<String>, SetupError>,
) -> Result<()> {
    match name {
        Some(n) => f(ctl, n)?.iter().for_each(|l| println!("{l}")),
        None => {
            let all = dmsetup::names(ctl)?;
            if all.is_empty() {
                println!("No devices found");
            }
            for n in all {
                for l in f(ctl, &n)? {
                    println!("{n}: {l}");
                }
            }
        }
    }
    Ok(())
}

pub fn run(cmd: DmsetupCommand) -> Result<ExitCode> {
    match cmd {
        DmsetupCommand::Create {
            name,
            table_file,
            readonly,
            verify,
        } => {
            let t = lines(&table_file)?;
            let ctl = control()?;
            dmsetup::create(&ctl, &name, &t, readonly)?;
            if verify {
                println!("{}", dmsetup::verify(&ctl, &name)?);
            }
        }
        DmsetupCommand::Reload {
            name,
            table_file,
            readonly,
        } => {
            let t = lines(&table_file)?;
            dmsetup::reload(&control()?, &name, &t, readonly)?
        }
        DmsetupCommand::Suspend { name, noflush } => dmsetup::suspend(&control()?, &name, noflush)?,
        DmsetupCommand::Resume { name, verify } => {
            let ctl = control()?;
            dmsetup::resume(&ctl, &name)?;
            if verify {
                println!("{}", dmsetup::verify(&ctl, &name)?);
            }
        }
        DmsetupCommand::Remove { name, retry } => dmsetup::remove(&control()?, &name, retry)?,
        DmsetupCommand::Table { name, showkeys } => {
            each(&control()?, &name, |c, n| dmsetup::table(c, n, showkeys))?
        }
        DmsetupCommand::Status { name } => each(&control()?, &name, dmsetup::status)?,
        DmsetupCommand::Info { name } => {
            let ctl = control()?;
            let names = match name {
                Some(n) => vec![n],
                None => dmsetup::names(&ctl)?,
            };
            if names.is_empty() {
                println!("No devices found");
            }
            for (i, n) in names.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print!("{}", dmsetup::info(&ctl, n)?);
            }
        }
        DmsetupCommand::Ls => {
            for l in dmsetup::ls(&control()?)? {
                println!("{l}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
