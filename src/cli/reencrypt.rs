//! `dmch reencrypt DEVICE|IMAGE`: convert every sector in place from the
//! old table parameters to the new ones (`--encrypt`: from plaintext,
//! `--decrypt`: to it), journalled so that any interruption is finished by
//! `--resume`. The work is `dmcrypt_harness::reencrypt`'s; this file turns
//! options into a plan and keys, and prints the plan and the progress.

use super::setup_opts::read_passphrase;
use anyhow::{Result, bail};
use clap::{ArgAction, Args};
use dmcrypt_harness::keyderive::Limits;
use dmcrypt_harness::plain::{self, KeyInput, PlainOptions};
use dmcrypt_harness::reencrypt::{self, Device, JournalPlace, Mode, Plan, Progress, Side};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const AFTER_HELP: &str = "Keys: each encrypted side's key comes from its key file (-d, --old-key-file; raw, \
exactly the key size; - reads standard input, hashed), else a passphrase hashed with -h/--old-hash as in plain \
mode: asked at the terminal (old first), or read from piped standard input, the old one on the first line and \
the new one on the second. Before anything is written, the start of the data is decrypted with the old \
parameters and must hold a known signature (a file system, swap, LUKS, a partition table) unless --force. \
The journal (default IMAGE.dmch-journal) records each zone before it is rewritten; after any interruption \
(Ctrl-C, a kill, a crash, a full disk, an I/O error) dmch reencrypt --resume IMAGE finishes the conversion, \
asking only for the keys. It never holds plaintext, and is removed once the conversion is complete and synced.";

#[derive(Args)]
#[command(disable_help_flag = true, after_help = AFTER_HELP)]
pub struct ReencryptArgs {
    /// The old cipher spec, e.g. aes-cbc-plain (--legacy: aes).
    #[arg(long, value_name = "CIPHER")]
    old_cipher: Option<String>,
    /// The old passphrase hash (default sha256; --legacy: ripemd160).
    #[arg(long, value_name = "HASH")]
    old_hash: Option<String>,
    /// The old key file (raw; - reads standard input, hashed).
    #[arg(long, value_name = "FILE|-")]
    old_key_file: Option<PathBuf>,
    /// The old key size in bits (default 256).
    #[arg(long, value_name = "BITS")]
    old_key_size: Option<usize>,
    /// The old encryption sector size in bytes (default 512).
    #[arg(long, value_name = "BYTES")]
    old_sector_size: Option<u32>,
    /// The old skip: the old table's iv_offset, in sectors.
    #[arg(long, value_name = "SECTORS", default_value_t = 0)]
    old_skip: u64,
    /// The old table counted IVs in sector-size units.
    #[arg(long)]
    old_iv_large_sectors: bool,
    /// Skip this many bytes of the old key material first.
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    old_keyfile_offset: u64,
    /// Read at most this many bytes of the old key material (0: no limit).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    old_keyfile_size: usize,
    /// The seed's defaults for the old side: aes (= aes-cbc-plain), ripemd160.
    #[arg(long)]
    legacy: bool,

    /// The new cipher spec (default aes-xts-plain64).
    #[arg(short = 'c', long, value_name = "CIPHER")]
    cipher: Option<String>,
    /// The new passphrase hash (default sha256).
    #[arg(short = 'h', long, value_name = "HASH")]
    hash: Option<String>,
    /// The new key file (raw; - reads standard input, hashed).
    #[arg(short = 'd', long = "key-file", value_name = "FILE|-")]
    key_file: Option<PathBuf>,
    /// The new key size in bits (default 256).
    #[arg(short = 's', long = "key-size", value_name = "BITS")]
    key_bits: Option<usize>,
    /// The new encryption sector size in bytes (default 512).
    #[arg(long, value_name = "BYTES")]
    sector_size: Option<u32>,
    /// The new skip: the new table's iv_offset, in sectors.
    #[arg(short = 'p', long, value_name = "SECTORS", default_value_t = 0)]
    skip: u64,
    /// The new table counts IVs in sector-size units.
    #[arg(long)]
    iv_large_sectors: bool,
    /// Skip this many bytes of the new key material first.
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    keyfile_offset: u64,
    /// Read at most this many bytes of the new key material (0: no limit).
    #[arg(short = 'l', long, value_name = "BYTES", default_value_t = 0)]
    keyfile_size: usize,
    /// Ask for the new passphrase twice.
    #[arg(short = 'y', long = "verify-passphrase")]
    verify: bool,

    /// Where the data starts, in sectors (the same for both sides).
    #[arg(short = 'o', long, value_name = "SECTORS", default_value_t = 0)]
    offset: u64,
    /// Sectors of data (default: the device after the offset).
    #[arg(short = 'b', long, value_name = "SECTORS")]
    size: Option<u64>,
    /// Encrypt a plaintext image in place (no old side).
    #[arg(long, conflicts_with_all = ["decrypt", "old_cipher", "old_key_file", "legacy"])]
    encrypt: bool,
    /// Decrypt in place (no new side).
    #[arg(long, conflicts_with_all = ["cipher", "key_file", "key_bits"])]
    decrypt: bool,

    /// The journal file (default IMAGE.dmch-journal; a block device needs
    /// this or --journal-on-device).
    #[arg(long, value_name = "FILE", conflicts_with = "journal_on_device")]
    journal: Option<PathBuf>,
    /// Keep the journal on the device itself from this sector: room outside
    /// the data, 8 KiB plus two zones.
    #[arg(long, value_name = "SECTOR")]
    journal_on_device: Option<u64>,
    /// Bytes converted per journalled step: N, NK or NM (default 4M).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    zone_size: Option<u64>,
    /// Threads (0 = all cores).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// Finish the conversion the journal records (asks only for the keys).
    #[arg(long, conflicts_with_all = [
        "old_cipher", "old_hash", "old_key_size", "old_sector_size", "old_skip",
        "old_iv_large_sectors", "old_keyfile_offset", "old_keyfile_size", "legacy",
        "cipher", "hash", "key_bits", "sector_size", "skip", "iv_large_sectors",
        "keyfile_offset", "keyfile_size", "offset", "size", "encrypt", "decrypt",
        "zone_size", "force", "dry_run",
    ])]
    resume: bool,
    /// Convert even if the old side shows no known signature.
    #[arg(long)]
    force: bool,
    /// Print the plan and what the old side holds; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Seconds between progress lines when stderr is not a terminal.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    progress_interval: u64,
    /// Print help (-h is the hash here).
    #[arg(short = '?', long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// The device or image to convert.
    device: PathBuf,
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{s}' is not a size (N, NK or NM)"))
}

/// More threads than this is a typo, not a machine.
const MAX_THREADS: usize = 1024;

impl ReencryptArgs {
    fn mode(&self) -> Mode {
        match (self.encrypt, self.decrypt) {
            (true, _) => Mode::Encrypt,
            (_, true) => Mode::Decrypt,
            _ => Mode::Reencrypt,
        }
    }

    fn old_side(&self) -> Result<Option<Side>> {
        if self.encrypt {
            return Ok(None);
        }
        let cipher = match (&self.old_cipher, self.legacy) {
            (Some(c), _) => c.clone(),
            (None, true) => "aes".into(),
            (None, false) => bail!(
                "give the old cipher (--old-cipher SPEC, or --legacy for the seed's aes), or --encrypt for a plaintext image"
            ),
        };
        let hash = match (&self.old_hash, self.legacy) {
            (Some(h), _) => h.clone(),
            (None, true) => "ripemd160".into(),
            (None, false) => "sha256".into(),
        };
        Ok(Some(side(
            cipher,
            hash,
            self.old_key_size,
            self.old_sector_size,
            self.old_skip,
            self.old_iv_large_sectors,
            (self.old_keyfile_offset, self.old_keyfile_size),
        )?))
    }

    fn new_side(&self) -> Result<Option<Side>> {
        if self.decrypt {
            return Ok(None);
        }
        Ok(Some(side(
            self.cipher.clone().unwrap_or("aes-xts-plain64".into()),
            self.hash.clone().unwrap_or("sha256".into()),
            self.key_bits,
            self.sector_size,
            self.skip,
            self.iv_large_sectors,
            (self.keyfile_offset, self.keyfile_size),
        )?))
    }

    fn place(&self, dev: &Device) -> Result<JournalPlace> {
        Ok(match (&self.journal, self.journal_on_device) {
            (Some(f), _) => JournalPlace::File(f.clone()),
            (None, Some(s)) => JournalPlace::Device(
                s.checked_mul(512)
                    .ok_or_else(|| anyhow::anyhow!("--journal-on-device {s} is out of range"))?,
            ),
            (None, None) => JournalPlace::default_for(dev)?,
        })
    }
}

fn side(
    cipher: String,
    hash: String,
    key_bits: Option<usize>,
    sector_size: Option<u32>,
    iv_offset: u64,
    iv_large_sectors: bool,
    (keyfile_offset, keyfile_size): (u64, usize),
) -> Result<Side> {
    let key_bits = key_bits.unwrap_or(256);
    plain_options(&cipher, &hash, key_bits).key_size()?;
    dmcrypt_harness::keyderive::HashSpec::parse(&hash)?;
    Ok(Side {
        cipher,
        hash,
        key_bits,
        sector_size: sector_size.unwrap_or(512),
        iv_offset,
        iv_large_sectors,
        keyfile_offset,
        keyfile_size,
    })
}

fn plain_options(cipher: &str, hash: &str, key_bits: usize) -> PlainOptions {
    PlainOptions {
        cipher: Some(cipher.into()),
        hash: Some(hash.into()),
        key_bits: Some(key_bits),
        ..Default::default()
    }
}

/// One side's key: its key file, else a passphrase (terminal or one line
/// of piped standard input).
fn key_for(s: &Side, file: Option<&Path>, prompt: &str, verify: bool) -> Result<KeyBytes> {
    let p = plain_options(&s.cipher, &s.hash, s.key_bits);
    let limits = Limits {
        offset: s.keyfile_offset,
        size: s.keyfile_size,
    };
    let stdin = std::io::stdin();
    let key = match file {
        Some(f) if f.as_os_str() == "-" => {
            plain::volume_key(&p, KeyInput::KeyFileStdin(&mut stdin.lock()), limits)?
        }
        Some(f) => plain::volume_key(&p, KeyInput::KeyFile(f), limits)?,
        None if !stdin.is_terminal() => {
            plain::volume_key(&p, KeyInput::Piped(&mut stdin.lock()), limits)?
        }
        None => {
            let pass = read_passphrase(prompt)?;
            if verify && read_passphrase("Verify the new passphrase: ")? != pass {
                bail!("passphrases do not match");
            }
            plain::volume_key(&p, KeyInput::Typed(&pass), limits)?
        }
    };
    Ok(key)
}

/// The keys of both sides (empty for a plaintext side), old first.
/// A key, wiped when dropped.
type KeyBytes = Zeroizing<Vec<u8>>;

fn keys(a: &ReencryptArgs, plan: &Plan) -> Result<(KeyBytes, KeyBytes)> {
    let std_in = |p: &Option<PathBuf>| p.as_deref().is_some_and(|p| p.as_os_str() == "-");
    if std_in(&a.old_key_file) && std_in(&a.key_file) {
        bail!("the old and the new key cannot both come from standard input");
    }
    let old = match &plan.old {
        Some(s) => key_for(
            s,
            a.old_key_file.as_deref(),
            "Enter the old passphrase: ",
            false,
        )?,
        None => Zeroizing::new(Vec::new()),
    };
    let new = match &plan.new {
        Some(s) => key_for(
            s,
            a.key_file.as_deref(),
            "Enter the new passphrase: ",
            a.verify,
        )?,
        None => Zeroizing::new(Vec::new()),
    };
    Ok((old, new))
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn describe(s: &Option<Side>) -> String {
    match s {
        None => "plaintext".into(),
        Some(s) => format!(
            "{}, {}-bit key (hash {}), {}-byte sectors, skip {}{}",
            s.cipher,
            s.key_bits,
            s.hash,
            s.sector_size,
            s.iv_offset,
            if s.iv_large_sectors {
                ", iv_large_sectors"
            } else {
                ""
            }
        ),
    }
}

/// Progress on a terminal (one rewritten line) or as periodic lines.
struct Meter {
    tty: bool,
    every: Duration,
    last: Option<Instant>,
}

impl Meter {
    fn show(&mut self, p: &Progress) {
        let now = Instant::now();
        let final_one = p.done == p.total;
        let due = self.last.is_none_or(|t| {
            now - t
                >= if self.tty {
                    Duration::from_millis(200)
                } else {
                    self.every
                }
        });
        if !due && !final_one {
            return;
        }
        self.last = Some(now);
        let secs = p.elapsed.as_secs_f64().max(1e-9);
        let rate = mib(p.this_run) / secs;
        let left = (p.total - p.done) as f64 / (p.this_run as f64 / secs).max(1.0);
        let pct = 100.0 * p.done as f64 / p.total as f64;
        let line = format!(
            "{pct:5.1}% {:.1}/{:.1} MiB, {rate:.0} MiB/s, ETA {}",
            mib(p.done),
            mib(p.total),
            eta(left)
        );
        if self.tty {
            let width = 30;
            let filled = (pct / 100.0 * width as f64) as usize;
            eprint!(
                "\r[{}{}] {line}\x1b[K",
                "#".repeat(filled),
                "-".repeat(width - filled)
            );
            if final_one {
                eprintln!();
            }
        } else {
            eprintln!("dmch reencrypt: {line}");
        }
        let _ = std::io::stderr().flush();
    }
}

fn eta(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

pub fn run(a: ReencryptArgs) -> Result<ExitCode> {
    if a.threads > MAX_THREADS {
        bail!("--threads {} is over {MAX_THREADS}", a.threads);
    }
    let dev = Device::open(&a.device, !a.dry_run)?;
    let place = a.place(&dev)?;
    let plan = if a.resume {
        reencrypt::pending(&dev, &place)?
    } else {
        Plan::new(
            a.mode(),
            a.old_side()?,
            a.new_side()?,
            a.offset,
            a.size,
            a.zone_size,
            dev.bytes,
        )?
    };
    if let Some(s) = &plan.new {
        for w in plain_options(&s.cipher, &s.hash, s.key_bits).warnings()? {
            eprintln!("dmch: warning: the new side: {w}");
        }
    }
    let (old_key, new_key) = keys(&a, &plan)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()?;
    let shown = dmcrypt_harness::redact::for_terminal(&a.device.display().to_string());
    if a.dry_run {
        let engines = reencrypt::Engines::new(&plan, &old_key, &new_key)?;
        let found = pool.install(|| reencrypt::probe(&plan, &engines, &dev))?;
        println!(
            "plan: {:?} {shown} in place: {} bytes ({:.1} MiB) from sector {}, {} zones of {} KiB",
            plan.mode,
            plan.length,
            mib(plan.length),
            plan.offset,
            plan.length.div_ceil(plan.zone),
            plan.zone >> 10
        );
        println!("  old:     {}", describe(&plan.old));
        println!("  new:     {}", describe(&plan.new));
        println!(
            "  journal: {} ({} KiB)",
            place.describe(&dev),
            reencrypt::journal::size_for(plan.zone) >> 10
        );
        match found {
            Some(sig) => println!("  the old side holds: {sig}"),
            None => println!(
                "  the old side holds no known signature: the conversion would be refused without --force"
            ),
        }
        println!("dry run: nothing was written");
        return Ok(ExitCode::SUCCESS);
    }
    dmcrypt_harness::interrupt::install();
    let mut meter = Meter {
        tty: std::io::stderr().is_terminal(),
        every: Duration::from_secs(a.progress_interval.max(1)),
        last: None,
    };
    let mut show = |p: &Progress| meter.show(p);
    let keys = (&old_key[..], &new_key[..]);
    let r = pool.install(|| {
        if a.resume {
            reencrypt::resume(&dev, &place, keys, &mut show)
        } else {
            reencrypt::start(&dev, &plan, keys, &place, a.force, &mut show)
        }
    })?;
    if a.resume {
        eprintln!(
            "dmch reencrypt: resumed at {:.1} MiB{}",
            mib(r.resumed_at),
            if r.rewrote_zone {
                " (the interrupted zone written again from the journal)"
            } else {
                ""
            }
        );
    }
    let secs = r.elapsed.as_secs_f64();
    println!(
        "{shown}: converted {:.1} MiB in {secs:.2} s ({:.0} MiB/s); complete, journal removed",
        mib(r.bytes),
        mib(r.bytes) / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
