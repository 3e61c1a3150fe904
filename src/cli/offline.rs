//! `dmch encrypt|decrypt`: whole target sectors from INPUT to OUTPUT.
//!
//! What OUTPUT is decides how it is written (`dmcrypt_harness::output`):
//! regular files are replaced only on success, devices written in place,
//! pipes streamed. A regular input going to a positioned output is cut into
//! pieces that each thread reads, transforms and writes at their offsets;
//! everything else is streamed in 8 MiB chunks.

use anyhow::{Context, Result, bail};
use clap::Args;
use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::interrupt;
use dmcrypt_harness::key::{Key, MAX_KEY_BYTES};
use dmcrypt_harness::output::Output;
use dmcrypt_harness::redact;
use dmcrypt_harness::spec::CipherSpec;
use dmcrypt_harness::table::Table;
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

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

/// Key material from --key-file: raw bytes, or hex text with --key-format hex.
fn key_from_file(a: &OfflineArgs, path: &Path) -> Result<Key> {
    let mut data = Zeroizing::new(Vec::new());
    let cap = (MAX_KEY_BYTES * 2 + 2) as u64;
    let shown = redact::for_terminal(&path.display().to_string());
    if is_std(path) {
        io::stdin()
            .lock()
            .take(cap + 1)
            .read_to_end(&mut data)
            .context("reading the key from standard input")?;
    } else {
        File::open(path)
            .with_context(|| format!("cannot open key file {shown}"))?
            .take(cap + 1)
            .read_to_end(&mut data)
            .with_context(|| format!("reading key file {shown}"))?;
    }
    if data.len() as u64 > cap {
        bail!("key file {shown} is larger than any key ({MAX_KEY_BYTES} bytes at most)");
    }
    if a.key_format == KeyFormat::Hex {
        let text = std::str::from_utf8(&data)
            .ok()
            .map(|t| t.trim_end_matches(['\n', '\r']))
            .context("the key file is not hex text")?;
        return Ok(Key::parse(text)?);
    }
    if data.len() > MAX_KEY_BYTES {
        bail!(
            "key file {shown} holds {} bytes; keys are at most {MAX_KEY_BYTES}",
            data.len()
        );
    }
    Ok(Key::from_bytes(&data))
}

/// The engine, and whether its key came from the command line.
fn engine(a: &OfflineArgs) -> Result<(SectorCrypt, bool)> {
    if let Some(line) = &a.table {
        let (_, p) = Table::parse_line_or_params(line)?;
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

/// Fill `buf` as far as the reader allows; returns the bytes read. A stop
/// request (Ctrl-C, SIGTERM) interrupts a blocked read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => stop_if_asked()?,
            Err(e) => return Err(e).context("reading input"),
        }
    }
    Ok(n)
}

fn stop_if_asked() -> Result<()> {
    if interrupt::requested() {
        bail!("interrupted; nothing was put in place of OUTPUT (a stream ends where it was)");
    }
    Ok(())
}

pub fn run(a: OfflineArgs, encrypt: bool) -> Result<ExitCode> {
    if a.threads > MAX_THREADS {
        bail!("--threads {} is over {MAX_THREADS}", a.threads);
    }
    if is_std(&a.input) && a.key_file.as_deref().is_some_and(is_std) {
        bail!("the key and the input cannot both come from standard input");
    }
    let (engine, key_in_argv) = engine(&a)?;
    let ss = engine.geometry().sector_size as u64;
    engine.check_extent(a.start_sector, 0)?;
    interrupt::install();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .context("starting worker threads")?;
    let shown_in = redact::for_terminal(&a.input.display().to_string());
    let (mut input, regular_len): (Box<dyn Read>, Option<(File, u64)>) = if is_std(&a.input) {
        (Box::new(io::stdin().lock()), None)
    } else {
        let f = File::open(&a.input).with_context(|| format!("cannot open input {shown_in}"))?;
        let meta = f
            .metadata()
            .with_context(|| format!("cannot stat input {shown_in}"))?;
        if meta.is_dir() {
            bail!("input {shown_in} is a directory");
        }
        if meta.is_file() {
            let len = meta.len();
            if len % ss != 0 {
                bail!("input {shown_in} is {len} bytes, not a whole number of {ss}-byte sectors");
            }
            (Box::new(io::empty()), Some((f, len)))
        } else {
            (Box::new(f), None)
        }
    };
    let mut out = Output::open(&a.output, regular_len.as_ref().map(|r| r.1))?;
    // Said once everything was accepted, so a refused run prints one line.
    if key_in_argv {
        warn_argv_key();
    }
    if let Some((f, len)) = &regular_len
        && out.positioned().is_some()
    {
        let target = out.positioned().expect("checked");
        pool.install(|| positioned(&engine, f, *len, target, a.start_sector, encrypt))?;
        out.wrote(*len);
        out.commit()?;
        return Ok(ExitCode::SUCCESS);
    }
    let stream_input = regular_len.is_none();
    if let Some((f, _)) = regular_len {
        input = Box::new(f);
    }
    // 8 MiB per round keeps every core busy and memory flat.
    let mut buf = vec![0u8; 8 << 20];
    let mut sector = a.start_sector;
    let mut total: u64 = 0;
    loop {
        stop_if_asked()?;
        let n = read_full(&mut *input, &mut buf)?;
        if n == 0 {
            break;
        }
        if !(n as u64).is_multiple_of(ss) {
            bail!(
                "input is {} bytes, not a whole number of {ss}-byte sectors",
                total + n as u64
            );
        }
        let chunk = &mut buf[..n];
        pool.install(|| engine.crypt(sector, chunk, encrypt))?;
        out.write(chunk)?;
        total += n as u64;
        sector = sector.wrapping_add(n as u64 / 512);
    }
    // A closed standard input reads as empty (the runtime puts /dev/null
    // there): an empty stream is refused rather than written as an empty
    // OUTPUT.
    if total == 0 && stream_input {
        bail!("the input stream gave no data (closed or empty); OUTPUT left as it was");
    }
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}

/// Transform `len` bytes of `input` into `out` at the same offsets, a piece
/// per task, on the current thread pool.
fn positioned(
    engine: &SectorCrypt,
    input: &File,
    len: u64,
    out: &File,
    start_sector: u64,
    encrypt: bool,
) -> Result<()> {
    // Large enough that each task streams, small enough to spread 1 GiB
    // over many tasks; a multiple of every sector size.
    const PIECE: u64 = 4 << 20;
    (0..len.div_ceil(PIECE)).into_par_iter().try_for_each_init(
        || vec![0u8; PIECE as usize],
        |buf, i| -> Result<()> {
            let off = i * PIECE;
            let buf = &mut buf[..(len - off).min(PIECE) as usize];
            input
                .read_exact_at(buf, off)
                .with_context(|| format!("reading input at byte {off} (did it shrink?)"))?;
            stop_if_asked()?;
            let sector = start_sector.wrapping_add(off / 512);
            engine.crypt(sector, buf, encrypt)?;
            out.write_all_at(buf, off).context("writing output")?;
            Ok(())
        },
    )
}
