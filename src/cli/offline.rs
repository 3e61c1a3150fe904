//! `dmch encrypt|decrypt`: whole target sectors from INPUT to OUTPUT.
//!
//! What OUTPUT is decides how it is written (`dmcrypt_harness::output`):
//! regular files are replaced only on success, devices written in place,
//! pipes streamed. A regular input going to a positioned output is cut into
//! pieces that each thread reads, transforms and writes at their offsets;
//! everything else is streamed in 8 MiB chunks.

use anyhow::{Context, Result, bail};
use clap::Args;
use dmcrypt_harness::cipher::Direction;
use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::interrupt;
use dmcrypt_harness::key::Key;
use dmcrypt_harness::output::Output;
use dmcrypt_harness::redact;
use dmcrypt_harness::spec::CipherSpec;
use dmcrypt_harness::table::Table;
use dmcrypt_harness::transform::{Input, transform};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyFormat {
    Raw,
    Hex,
}

/// More threads than this is a typo, not a machine.
const MAX_THREADS: usize = 1024;

#[derive(Args)]
#[command(
    after_help = "OUTPUT and errors: a regular file is replaced only when the whole run succeeded \
(its mode and owner kept; on any error or Ctrl-C it is untouched). A block device is written in place \
after its size is checked; a FIFO, character device or - (stdout) is streamed. Errors found before the \
first sector (spec, key, sizes of a regular input) write nothing anywhere; an error later in a stream \
ends it where it happened. A symlink is followed, never replaced."
)]
pub struct OfflineArgs {
    /// Cipher spec, e.g. aes-xts-plain64 or capi:cbc(aes)-essiv:sha256.
    #[arg(
        long,
        value_name = "SPEC",
        required_unless_present = "table",
        conflicts_with = "table"
    )]
    cipher: Option<String>,
    /// Key in hex (as in the table's key field). Visible to other users in
    /// the process list: prefer --key-file.
    #[arg(long, value_name = "HEX", conflicts_with_all = ["table", "key_file"])]
    key: Option<String>,
    /// Read the key from FILE, or - for standard input (raw bytes, the
    /// whole file; or hex text with --key-format hex).
    #[arg(long, value_name = "FILE|-", conflicts_with = "table")]
    key_file: Option<PathBuf>,
    /// How --key-file holds the key.
    #[arg(long, value_enum, default_value = "raw", requires = "key_file")]
    key_format: KeyFormat,
    /// The table's iv_offset, in 512-byte sectors.
    #[arg(long, value_name = "N", default_value_t = 0, conflicts_with = "table")]
    iv_offset: u64,
    /// Encryption sector size in bytes: 512, 1024, 2048 or 4096.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 512,
        conflicts_with = "table"
    )]
    sector_size: u32,
    /// Count IV sectors in sector_size units instead of 512 bytes.
    #[arg(long, conflicts_with = "table")]
    iv_large_sectors: bool,
    /// A whole table line, or just the crypt parameters (device and offset ignored).
    #[arg(long, value_name = "LINE")]
    table: Option<String>,
    /// Read --table as this kernel does (MAJOR.MINOR, e.g. 6.12): numbers
    /// of 2^64 or more wrap up to 6.12 and saturate later. Default: the
    /// newest kernels' rules.
    #[arg(long, value_name = "X.Y", requires = "table")]
    kernel_version: Option<dmcrypt_harness::kver::KernelVersion>,
    /// Target sector (512-byte units) of the first input byte.
    #[arg(long, value_name = "N", default_value_t = 0)]
    start_sector: u64,
    /// Threads (0 = all cores).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// Input file, or - for stdin.
    input: PathBuf,
    /// Output file, or - for stdout.
    output: PathBuf,
}

/// Key material from --key-file (`-`: standard input).
fn key_from_file(a: &OfflineArgs, path: &Path) -> Result<Key> {
    let hex = a.key_format == KeyFormat::Hex;
    if is_std(path) {
        return Ok(Key::read(&mut io::stdin().lock(), hex)?);
    }
    let shown = redact::for_terminal(&path.display().to_string());
    let mut f = File::open(path).with_context(|| format!("cannot open key file {shown}"))?;
    Key::read(&mut f, hex).with_context(|| format!("key file {shown}"))
}

/// The engine, and whether its key came from the command line.
fn engine(a: &OfflineArgs) -> Result<(SectorCrypt, bool)> {
    if let Some(line) = &a.table {
        let rules = dmcrypt_harness::table::Rules {
            kernel: a.kernel_version,
            ..Default::default()
        };
        let (_, p) = Table::parse_line_or_params_as(line, rules)?;
        if p.options.integrity.is_some() {
            bail!(
                "the table uses integrity metadata (integrity:...), which has no offline sector transform"
            );
        }
        let argv = !p.key.is_empty();
        return Ok((SectorCrypt::new(&p.cipher, &p.key, p.geometry())?, argv));
    }
    let spec = CipherSpec::parse(a.cipher.as_deref().unwrap_or_default())?;
    let key = match (&a.key, &a.key_file) {
        (Some(k), _) => Key::parse(k)?,
        (None, Some(f)) => key_from_file(a, f)?,
        (None, None) => bail!("give the key with --key-file FILE|- (or --key HEX)"),
    };
    let geometry = Geometry {
        sector_size: a.sector_size,
        iv_offset: a.iv_offset,
        iv_large_sectors: a.iv_large_sectors,
    };
    let argv = a.key.is_some() && !key.is_empty();
    Ok((SectorCrypt::new(&spec, &key, geometry)?, argv))
}

fn warn_argv_key() {
    eprintln!(
        "dmch: warning: a key on the command line is visible to other users (ps, /proc) and may stay in shell history; prefer --key-file FILE|-"
    );
}

fn is_std(p: &Path) -> bool {
    p.as_os_str() == "-"
}

pub fn run(a: OfflineArgs, dir: Direction) -> Result<ExitCode> {
    if a.threads > MAX_THREADS {
        bail!("--threads {} is over {MAX_THREADS}", a.threads);
    }
    if is_std(&a.input) && a.key_file.as_deref().is_some_and(is_std) {
        bail!("the key and the input cannot both come from standard input");
    }
    let (engine, key_in_argv) = engine(&a)?;
    engine.check_extent(a.start_sector, 0)?;
    interrupt::install();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .context("starting worker threads")?;
    let input = Input::open(&a.input, u64::from(engine.geometry().sector_size))?;
    let mut out = Output::open(&a.output, input.known_len())?;
    // Said once everything was accepted, so a refused run prints one line.
    if key_in_argv {
        warn_argv_key();
    }
    transform(&engine, input, &mut out, a.start_sector, dir, &pool)?;
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}
