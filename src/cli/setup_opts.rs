//! The options of the setup actions, declared once, and how they become
//! the library's `PlainOptions` and a volume key (prompting is ours,
//! deriving the library's).

use anyhow::{Result, anyhow, bail};
use clap::{ArgAction, Args};
use dmcrypt_harness::keyderive::Limits;
use dmcrypt_harness::plain::{self, KeyInput, PlainOptions};
use dmcrypt_harness::table::Options;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// The options every setup action takes, wherever they stand.
#[derive(Args, Clone, Default)]
pub struct SetupOpts {
    /// Cipher spec (default aes-xts-plain64; --legacy: aes = aes-cbc-plain).
    #[arg(short = 'c', long, value_name = "CIPHER")]
    cipher: Option<String>,
    /// Passphrase hash: plain, plain:N, HASH or HASH:N (default sha256; --legacy: ripemd160).
    #[arg(short = 'h', long, value_name = "HASH")]
    hash: Option<String>,
    /// Ask for the passphrase twice.
    #[arg(short = 'y', long = "verify-passphrase")]
    verify: bool,
    /// Key file, used raw (- reads stdin, hashed); /dev/urandom for swap.
    /// For LUKS: the passphrase file, every byte of it.
    #[arg(short = 'd', long = "key-file", value_name = "FILE|-")]
    pub key_file: Option<PathBuf>,
    /// Key size in bits (default 256).
    #[arg(short = 's', long = "key-size", value_name = "BITS")]
    key_bits: Option<usize>,
    /// Size of the mapping in sectors (default: the device after the offset).
    #[arg(short = 'b', long, value_name = "SECTORS")]
    pub size: Option<u64>,
    /// Device offset in sectors.
    #[arg(short = 'o', long, value_name = "SECTORS", default_value_t = 0)]
    offset: u64,
    /// Skipped sectors: the IV offset.
    #[arg(short = 'p', long, value_name = "SECTORS", default_value_t = 0)]
    skip: u64,
    /// Map read-only.
    #[arg(short = 'r', long)]
    pub readonly: bool,
    /// Encryption sector size in bytes (512..4096).
    #[arg(long, value_name = "BYTES")]
    sector_size: Option<u32>,
    /// Count IVs in sector-size units.
    #[arg(long)]
    iv_large_sectors: bool,
    #[arg(long)]
    allow_discards: bool,
    #[arg(long = "perf-same_cpu_crypt")]
    same_cpu_crypt: bool,
    #[arg(long = "perf-submit_from_crypt_cpus")]
    submit_from_crypt_cpus: bool,
    #[arg(long = "perf-no_read_workqueue")]
    no_read_workqueue: bool,
    #[arg(long = "perf-no_write_workqueue")]
    no_write_workqueue: bool,
    #[arg(long = "perf-high_priority")]
    high_priority: bool,
    /// Read at most this many bytes of key material (0: no limit).
    #[arg(short = 'l', long, value_name = "BYTES", default_value_t = 0)]
    pub keyfile_size: usize,
    /// Skip this many bytes of key material first.
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub keyfile_offset: u64,
    /// The seed's defaults: aes (= aes-cbc-plain), ripemd160.
    #[arg(long)]
    legacy: bool,
    /// Print the table (key hidden) and touch nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Mapping type for open: plain, luks (either version), luks1, luks2.
    #[arg(short = 'M', long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// open --type luks: try only this key slot.
    #[arg(short = 'S', long = "key-slot", value_name = "N")]
    pub key_slot: Option<u32>,
    /// Print help (-h is the hash here).
    #[arg(short = '?', long = "help", action = ArgAction::Help)]
    help: Option<bool>,
}

impl SetupOpts {
    pub fn plain(&self) -> PlainOptions {
        PlainOptions {
            cipher: self.cipher.clone(),
            hash: self.hash.clone(),
            key_bits: self.key_bits,
            size: self.size,
            offset: self.offset,
            skip: self.skip,
            read_only: self.readonly,
            sector_size: self.sector_size,
            iv_large_sectors: self.iv_large_sectors,
            legacy: self.legacy,
            flags: Options {
                allow_discards: self.allow_discards,
                same_cpu_crypt: self.same_cpu_crypt,
                submit_from_crypt_cpus: self.submit_from_crypt_cpus,
                no_read_workqueue: self.no_read_workqueue,
                no_write_workqueue: self.no_write_workqueue,
                high_priority: self.high_priority,
                ..Default::default()
            },
        }
    }

    /// The volume key: prompting is ours, deriving the library's.
    pub fn key(&self) -> Result<Zeroizing<Vec<u8>>> {
        let p = self.plain();
        p.key_size()?;
        let limits = Limits {
            offset: self.keyfile_offset,
            size: self.keyfile_size,
        };
        let stdin = std::io::stdin();
        let input = match self.key_file.as_deref() {
            Some(f) if f.as_os_str() == "-" => {
                return Ok(plain::volume_key(
                    &p,
                    KeyInput::KeyFileStdin(&mut stdin.lock()),
                    limits,
                )?);
            }
            Some(f) => return Ok(plain::volume_key(&p, KeyInput::KeyFile(f), limits)?),
            None if !stdin.is_terminal() => {
                return Ok(plain::volume_key(
                    &p,
                    KeyInput::Piped(&mut stdin.lock()),
                    limits,
                )?);
            }
            None => read_passphrase("Enter passphrase: ")?,
        };
        if self.verify && read_passphrase("Verify passphrase: ")? != input {
            bail!("passphrases do not match");
        }
        Ok(plain::volume_key(&p, KeyInput::Typed(&input), limits)?)
    }
}

/// Read a passphrase from the terminal without echo.
#[allow(unsafe_code)] // termios calls
pub(super) fn read_passphrase(prompt: &str) -> Result<Zeroizing<Vec<u8>>> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    // SAFETY: termios calls on fd 0 with a zeroed struct, restored below.
    let old = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        libc::tcgetattr(0, &mut t);
        let old = t;
        t.c_lflag &= !libc::ECHO;
        libc::tcsetattr(0, libc::TCSANOW, &t);
        old
    };
    let mut line = Zeroizing::new(String::new());
    let r = std::io::stdin().read_line(&mut line);
    // SAFETY: restores the saved terminal state.
    unsafe {
        libc::tcsetattr(0, libc::TCSANOW, &old);
    }
    eprintln!();
    r.map_err(|e| anyhow!("reading the passphrase: {e}"))?;
    Ok(Zeroizing::new(
        line.trim_end_matches(['\n', '\r']).as_bytes().to_vec(),
    ))
}
