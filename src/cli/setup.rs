//! Real setups in the original cryptsetup's syntax,
//! `dmch [OPTIONS] create|remove|reload|resize|status <name> [<device>]`,
//! today's `open --type plain <device> <name>` / `close <name>`, and
//! `derive-key`. The options are declared once (`SetupOpts`) and stand
//! before or after the action (`super::reorder` moves leading ones after
//! it); `-h` is the hash here, as in cryptsetup, and `-?`/`--help` is help.
//! The work is `dmcrypt_harness::plain`'s; this file prompts and prints.

use super::setup_opts::SetupOpts;
use anyhow::{Result, bail};
use clap::Subcommand;
use dmcrypt_harness::plain;
use dmcrypt_harness::sys::dm::Control;
use std::process::ExitCode;
use zeroize::Zeroizing;

/// The setup actions, each taking every setup option.
#[derive(Subcommand)]
pub enum SetupCommand {
    /// Map DEVICE (a block device or a regular file) as /dev/mapper/NAME.
    #[command(disable_help_flag = true)]
    Create {
        #[command(flatten)]
        o: SetupOpts,
        name: String,
        device: String,
    },
    /// Today's spelling of create: open --type plain DEVICE NAME.
    #[command(disable_help_flag = true)]
    Open {
        #[command(flatten)]
        o: SetupOpts,
        device: String,
        name: String,
    },
    /// Remove the mapping (and its loop device).
    #[command(disable_help_flag = true)]
    Remove {
        #[command(flatten)]
        o: SetupOpts,
        name: String,
    },
    /// Today's spelling of remove.
    #[command(disable_help_flag = true)]
    Close {
        #[command(flatten)]
        o: SetupOpts,
        name: String,
    },
    /// Load a new table (new options and key) into a live mapping.
    #[command(disable_help_flag = true)]
    Reload {
        #[command(flatten)]
        o: SetupOpts,
        name: String,
        device: Option<String>,
    },
    /// Resize a live mapping to -b sectors, or to its device.
    #[command(disable_help_flag = true)]
    Resize {
        #[command(flatten)]
        o: SetupOpts,
        name: String,
    },
    /// Show a mapping (never its key).
    #[command(disable_help_flag = true)]
    Status {
        #[command(flatten)]
        o: SetupOpts,
        name: String,
    },
    /// Print the key create would load (the one command that prints a key).
    #[command(disable_help_flag = true)]
    DeriveKey {
        #[command(flatten)]
        o: SetupOpts,
    },
}

/// The device-mapper control handle, or one line saying what the host lacks.
fn host_control() -> Result<Control> {
    Ok(dmcrypt_harness::sys::probe::control().map_err(plain::SetupError::from)?)
}

fn create(o: &SetupOpts, name: &str, device: &str) -> Result<()> {
    let p = o.plain();
    let ctl = if o.dry_run {
        None
    } else {
        Some(host_control()?)
    };
    plain::check_new_name(ctl.as_ref(), name)?;
    dmcrypt_harness::spec::CipherSpec::parse(p.cipher())?;
    let key = o.key()?;
    let sectors = plain::device_sectors(std::path::Path::new(device))?;
    let table = plain::plan(&p, &key, device, sectors)?;
    for w in p.warnings()? {
        eprintln!("dmch: warning: {w}");
    }
    match ctl {
        None => println!("{}", table.redacted()),
        Some(ctl) => {
            plain::create(&ctl, name, table, p.read_only)?;
        }
    }
    Ok(())
}

/// `open --type luks|luks1|luks2 DEVICE NAME`: the table cryptsetup loads
/// for the volume (cipher, volume key, iv_tweak as iv_offset, data offset,
/// sector size, persistent flags), under cryptsetup's device-mapper UUID.
fn luks_open(o: &SetupOpts, kind: &str, device: &str, name: &str) -> Result<()> {
    let ctl = if o.dry_run {
        None
    } else {
        Some(host_control()?)
    };
    plain::check_new_name(ctl.as_ref(), name)?;
    let image = dmcrypt_harness::luks::Image::open(std::path::Path::new(device), false)?;
    let v = image.header.version();
    match (kind, v) {
        ("luks1", 2) | ("luks2", 1) => bail!("{device} is LUKS{v}, not {kind}"),
        _ => {}
    }
    let limits = dmcrypt_harness::keyderive::Limits {
        offset: o.keyfile_offset,
        size: o.keyfile_size,
    };
    let pass = super::luks_keys::from(
        o.key_file.as_deref(),
        limits,
        &format!("Enter passphrase for {device}: "),
        false,
    )?;
    let (_, vk) = image.unlock(&pass, o.key_slot, 4 << 20)?;
    let seg = image.segment()?;
    let params = image.table_params(&vk, device)?;
    let table = dmcrypt_harness::table::Table::new(0, seg.size / 512, params)?;
    let uuid = format!(
        "CRYPT-LUKS{v}-{}-{name}",
        image.header.uuid().replace('-', "")
    );
    match ctl {
        None => println!("{}", table.redacted()),
        Some(ctl) => {
            plain::create_with_uuid(&ctl, name, Some(&uuid), table, o.readonly)?;
        }
    }
    Ok(())
}

fn status(name: &str) -> Result<()> {
    let s = plain::status(&host_control()?, name)?;
    println!("/dev/mapper/{name} is active.");
    println!("  type:        {}", s.kind);
    if let Some(u) = &s.volume_uuid {
        println!("  uuid:        {u}");
    }
    println!("  cipher:      {}", s.cipher);
    println!("  keysize:     {} bits", s.key_bits);
    println!("  device:      {}", s.device);
    if let Some(f) = &s.loop_file {
        println!("  loop:        {f}");
    }
    println!("  sector size: {}", s.sector_size);
    println!("  offset:      {} sectors", s.offset);
    println!("  skip:        {} sectors", s.skip);
    println!("  size:        {} sectors", s.size);
    let mode = if s.read_only {
        "readonly"
    } else {
        "read/write"
    };
    println!("  mode:        {mode}");
    if !s.flags.is_empty() {
        println!("  flags:       {}", s.flags.join(" "));
    }
    Ok(())
}

pub fn run(cmd: SetupCommand) -> Result<ExitCode> {
    match cmd {
        SetupCommand::Create { o, name, device } => create(&o, &name, &device)?,
        SetupCommand::Open { o, device, name } => match o.kind.as_deref() {
            Some("plain") => create(&o, &name, &device)?,
            Some(t @ ("luks" | "luks1" | "luks2")) => luks_open(&o, t, &device, &name)?,
            Some(t) => bail!("open --type {t}: plain, luks, luks1 or luks2"),
            None => bail!("open needs --type plain|luks|luks1|luks2"),
        },
        SetupCommand::Remove { name, .. } | SetupCommand::Close { name, .. } => {
            plain::remove(&host_control()?, &name)?
        }
        SetupCommand::Status { name, .. } => status(&name)?,
        SetupCommand::Reload { o, name, device } => {
            let ctl = host_control()?;
            let key = o.key()?;
            plain::reload(&ctl, &name, &o.plain(), &key, device.as_deref())?
        }
        SetupCommand::Resize { o, name } => plain::resize(&host_control()?, &name, o.size)?,
        SetupCommand::DeriveKey { o } => {
            let key = o.key()?;
            let hexkey = Zeroizing::new(hex::encode(&key[..]));
            println!("{}", *hexkey);
        }
    }
    Ok(ExitCode::SUCCESS)
}
