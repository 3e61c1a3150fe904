//! `dmch encrypt|decrypt`: whole target sectors from INPUT to OUTPUT.
//!
//! Output goes to a temporary file beside OUTPUT that replaces it only on
//! success (or to a buffer for stdout), so nothing is written on any error.
//! A regular input file going to a file is cut into pieces that each thread
//! reads, transforms and writes at their offsets: reads, page allocation and
//! the cipher then all run on every core. Pipes are streamed in chunks.

use anyhow::{Context, Result, bail};
use clap::Args;
use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::key::Key;
use dmcrypt_harness::spec::CipherSpec;
use dmcrypt_harness::table::Table;
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct OfflineArgs {
    /// Cipher spec, e.g. aes-xts-plain64 or capi:cbc(aes)-essiv:sha256.
    #[arg(
        long,
        value_name = "SPEC",
        required_unless_present = "table",
        conflicts_with = "table"
    )]
    cipher: Option<String>,
    /// Key in hex (as in the table's key field).
    #[arg(
        long,
        value_name = "HEX",
        required_unless_present = "table",
        conflicts_with = "table"
    )]
    key: Option<String>,
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

fn engine(a: &OfflineArgs) -> Result<SectorCrypt> {
    if let Some(line) = &a.table {
        let (_, p) = Table::parse_line_or_params(line)?;
        if p.options.integrity.is_some() {
            bail!(
                "the table uses integrity metadata (integrity:...), which has no offline sector transform"
            );
        }
        return Ok(SectorCrypt::new(&p.cipher, &p.key, p.geometry())?);
    }
    let spec = CipherSpec::parse(a.cipher.as_deref().unwrap_or_default())?;
    let key_text = a.key.as_deref().unwrap_or_default();
    let key = Key::parse(key_text)?;
    let geometry = Geometry {
        sector_size: a.sector_size,
        iv_offset: a.iv_offset,
        iv_large_sectors: a.iv_large_sectors,
    };
    Ok(SectorCrypt::new(&spec, &key, geometry)?)
}

fn is_std(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// Where output goes until the run has succeeded.
enum Sink {
    Stdout(Vec<u8>),
    File(tempfile::NamedTempFile, PathBuf),
}

impl Sink {
    fn new(path: &Path) -> Result<Self> {
        if is_std(path) {
            return Ok(Sink::Stdout(Vec::new()));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".dmch-")
            .tempfile_in(&dir)
            .with_context(|| format!("cannot create output in {}", dir.display()))?;
        Ok(Sink::File(tmp, path.to_path_buf()))
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        match self {
            Sink::Stdout(v) => v.extend_from_slice(b),
            Sink::File(f, p) => f
                .write_all(b)
                .with_context(|| format!("writing {}", p.display()))?,
        }
        Ok(())
    }

    fn commit(self) -> Result<()> {
        match self {
            Sink::Stdout(v) => {
                let mut out = io::stdout().lock();
                out.write_all(&v).context("writing stdout")?;
                out.flush().context("writing stdout")?;
            }
            Sink::File(f, p) => {
                f.as_file().sync_all().context("syncing output")?;
                f.persist(&p)
                    .with_context(|| format!("replacing {}", p.display()))?;
            }
        }
        Ok(())
    }
}

/// Fill `buf` as far as the reader allows; returns the bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub fn run(a: OfflineArgs, encrypt: bool) -> Result<ExitCode> {
    let engine = engine(&a)?;
    let ss = engine.geometry().sector_size as u64;
    engine.check_extent(a.start_sector, 0)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .context("starting worker threads")?;
    let mut input: Box<dyn Read> = if is_std(&a.input) {
        Box::new(io::stdin().lock())
    } else {
        let f = File::open(&a.input)
            .with_context(|| format!("cannot open input {}", a.input.display()))?;
        let meta = f
            .metadata()
            .with_context(|| format!("cannot stat input {}", a.input.display()))?;
        if meta.is_file() {
            let len = meta.len();
            if len % ss != 0 {
                bail!(
                    "input {} is {len} bytes, not a whole number of {ss}-byte sectors",
                    a.input.display()
                );
            }
            if !is_std(&a.output) {
                let sink = Sink::new(&a.output)?;
                let Sink::File(tmp, _) = &sink else {
                    unreachable!("a path that is not - gives a file sink")
                };
                pool.install(|| {
                    positioned(&engine, &f, len, tmp.as_file(), a.start_sector, encrypt)
                })?;
                sink.commit()?;
                return Ok(ExitCode::SUCCESS);
            }
        }
        Box::new(f)
    };
    let mut sink = Sink::new(&a.output)?;
    // 8 MiB per round keeps every core busy and memory flat.
    let mut buf = vec![0u8; 8 << 20];
    let mut sector = a.start_sector;
    let mut total: u64 = 0;
    loop {
        let n = read_full(&mut *input, &mut buf).context("reading input")?;
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
        pool.install(|| {
            if encrypt {
                engine.encrypt(sector, chunk)
            } else {
                engine.decrypt(sector, chunk)
            }
        })?;
        sink.write(chunk)?;
        total += n as u64;
        sector = sector.wrapping_add(n as u64 / 512);
    }
    sink.commit()?;
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
    out.set_len(len).context("sizing output")?;
    (0..len.div_ceil(PIECE)).into_par_iter().try_for_each_init(
        || vec![0u8; PIECE as usize],
        |buf, i| -> Result<()> {
            let off = i * PIECE;
            let buf = &mut buf[..(len - off).min(PIECE) as usize];
            input
                .read_exact_at(buf, off)
                .with_context(|| format!("reading input at byte {off} (did it shrink?)"))?;
            let sector = start_sector.wrapping_add(off / 512);
            if encrypt {
                engine.encrypt(sector, buf)?;
            } else {
                engine.decrypt(sector, buf)?;
            }
            out.write_all_at(buf, off).context("writing output")?;
            Ok(())
        },
    )
}
