//! Passphrases and KDF choices for `dmch luks`: where a passphrase comes
//! from (a key file, standard input, the terminal) by cryptsetup's rules,
//! and the options that choose a new key slot's KDF.

use anyhow::{Context, Result, bail};
use clap::Args;
use dmcrypt_harness::keyderive::{self, Limits, Material};
use dmcrypt_harness::luks::manage::KdfChoice;
use std::io::{IsTerminal, Seek};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// How the passphrase of an existing key slot is given.
#[derive(Args, Clone, Default)]
pub struct KeyOpts {
    /// Read the passphrase from FILE, every byte of it (- for standard
    /// input); without it, the terminal asks (or a pipe gives one line).
    #[arg(short = 'd', long = "key-file", value_name = "FILE|-")]
    pub key_file: Option<PathBuf>,
    /// Skip this many bytes of the key file first.
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub keyfile_offset: u64,
    /// Read at most this many bytes of the key file (0: up to 8 MiB).
    #[arg(short = 'l', long, value_name = "BYTES", default_value_t = 0)]
    pub keyfile_size: usize,
    /// Try only this key slot.
    #[arg(short = 'S', long = "key-slot", value_name = "N")]
    pub key_slot: Option<u32>,
    /// Refuse key slots whose Argon2 wants more memory than this, in KiB.
    #[arg(long, value_name = "KIB", default_value_t = 4 << 20)]
    pub pbkdf_memory_limit: u32,
}

impl KeyOpts {
    fn limits(&self) -> Limits {
        Limits {
            offset: self.keyfile_offset,
            size: self.keyfile_size,
        }
    }

    /// The passphrase, from the key file, a pipe or the terminal.
    pub fn passphrase(&self, prompt: &str) -> Result<Zeroizing<Vec<u8>>> {
        from(self.key_file.as_deref(), self.limits(), prompt, false)
    }
}

/// A passphrase from `file` (`-`: stdin), else one line of a piped stdin,
/// else the terminal (twice when `verify`).
pub fn from(
    file: Option<&Path>,
    limits: Limits,
    prompt: &str,
    verify: bool,
) -> Result<Zeroizing<Vec<u8>>> {
    let stdin = std::io::stdin();
    let pass = match file {
        Some(f) if f.as_os_str() == "-" => {
            keyderive::read_material(Material::KeyFile, &mut stdin.lock(), limits)?
        }
        Some(f) => {
            let shown = dmcrypt_harness::redact::for_terminal(&f.display().to_string());
            let mut file =
                std::fs::File::open(f).with_context(|| format!("cannot open key file {shown}"))?;
            // A real file is sought, not read through.
            file.seek(std::io::SeekFrom::Start(limits.offset))
                .with_context(|| format!("key file {shown}"))?;
            let limits = Limits {
                offset: 0,
                ..limits
            };
            keyderive::read_material(Material::KeyFile, &mut file, limits)
                .with_context(|| format!("key file {shown}"))?
        }
        None if !stdin.is_terminal() => {
            keyderive::read_material(Material::Passphrase, &mut stdin.lock(), limits)?
        }
        None => {
            let p = super::setup_opts::read_passphrase(prompt)?;
            if p.len() > keyderive::TERMINAL_PASSPHRASE_MAX {
                bail!(
                    "the passphrase is over {} bytes",
                    keyderive::TERMINAL_PASSPHRASE_MAX
                );
            }
            if verify && *super::setup_opts::read_passphrase("Verify passphrase: ")? != *p {
                bail!("passphrases do not match");
            }
            p
        }
    };
    if pass.is_empty() {
        bail!("the passphrase is empty");
    }
    Ok(pass)
}

/// How a new key slot derives its key.
#[derive(Args, Clone)]
pub struct KdfOpts {
    /// pbkdf2, argon2i or argon2id (default: argon2id for LUKS2, pbkdf2 for LUKS1).
    #[arg(long, value_name = "KDF")]
    pbkdf: Option<String>,
    /// PBKDF2's hash (and LUKS1's header hash).
    #[arg(long, value_name = "HASH", default_value = "sha256")]
    pub hash: String,
    /// Time one unlock should take, in milliseconds (costs found by timing).
    #[arg(short = 'i', long, value_name = "MS", default_value_t = 2000)]
    iter_time: u32,
    /// PBKDF2 iterations or Argon2 time cost, without timing.
    #[arg(long, value_name = "N")]
    pbkdf_force_iterations: Option<u32>,
    /// Argon2 memory, KiB (default: 1 GiB, or half the memory).
    #[arg(long, value_name = "KIB")]
    pbkdf_memory: Option<u32>,
    /// Argon2 lanes (default: up to 4, one a core).
    #[arg(long, value_name = "N")]
    pbkdf_parallel: Option<u32>,
}

impl KdfOpts {
    /// The choice for a volume of LUKS `version`.
    pub fn choice(&self, version: u8) -> KdfChoice {
        let d = KdfChoice::default_for(version);
        KdfChoice {
            kind: self.pbkdf.clone().unwrap_or(d.kind),
            hash: self.hash.clone(),
            iter_time_ms: self.iter_time,
            force_iterations: self.pbkdf_force_iterations,
            memory_kib: self.pbkdf_memory,
            parallel: self.pbkdf_parallel,
        }
    }
}
