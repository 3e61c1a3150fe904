//! Whole target sectors from an input to an output through the engine
//! (`dmch encrypt|decrypt`). A regular input going to an output that takes
//! offsets is cut into pieces that each thread reads, transforms and writes
//! at their offsets, so reads, page allocation and the cipher all run on
//! every core; anything else is streamed in 8 MiB chunks. A stop request
//! (Ctrl-C, SIGTERM) ends the run between pieces; the caller's `Output`
//! then leaves OUTPUT as it was.

use crate::cipher::Direction;
use crate::engine::SectorCrypt;
use crate::output::Output;
use crate::redact::for_terminal;
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Why a transform stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("{0}")]
    /// The input is not whole sectors, or not an input.
    Input(String),
    #[error("{what}: {source}")]
    /// A read or write failed.
    Io {
        /// The step that failed.
        what: String,
        /// Why.
        source: io::Error,
    },
    #[error(transparent)]
    /// The engine refused the sectors.
    Engine(#[from] crate::Error),
    #[error("interrupted; nothing was put in place of OUTPUT (a stream ends where it was)")]
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

type Result<T> = std::result::Result<T, TransformError>;

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> TransformError {
    let what = what.into();
    move |source| TransformError::Io { what, source }
}

fn stop_if_asked() -> Result<()> {
    if crate::interrupt::requested() {
        return Err(TransformError::Interrupted);
    }
    Ok(())
}

/// Where sectors come from.
pub enum Input {
    /// A regular file of whole sectors, and its length.
    Regular(File, u64),
    /// Standard input, a FIFO, a device: read as it comes.
    Stream(Box<dyn Read>),
}

impl Input {
    /// Open `path` (`-` = standard input) for sectors of `sector_size` bytes;
    /// a regular file's size is checked now, before anything is written.
    pub fn open(path: &Path, sector_size: u64) -> Result<Input> {
        if path.as_os_str() == "-" {
            return Ok(Input::Stream(Box::new(io::stdin().lock())));
        }
        let shown = for_terminal(&path.display().to_string());
        let f = File::open(path).map_err(io_err(format!("cannot open input {shown}")))?;
        let meta = f
            .metadata()
            .map_err(io_err(format!("cannot stat input {shown}")))?;
        if meta.is_dir() {
            return Err(TransformError::Input(format!(
                "input {shown} is a directory"
            )));
        }
        if !meta.is_file() {
            return Ok(Input::Stream(Box::new(f)));
        }
        let len = meta.len();
        if !len.is_multiple_of(sector_size) {
            return Err(TransformError::Input(format!(
                "input {shown} is {len} bytes, not a whole number of {sector_size}-byte sectors"
            )));
        }
        Ok(Input::Regular(f, len))
    }

    /// The length, when known in advance.
    pub fn known_len(&self) -> Option<u64> {
        match self {
            Input::Regular(_, n) => Some(*n),
            Input::Stream(_) => None,
        }
    }
}

/// Fill `buf` as far as the reader allows; returns the bytes read. A stop
/// request interrupts a blocked read (the signal handler has no SA_RESTART).
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => stop_if_asked()?,
            Err(e) => return Err(io_err("reading input")(e)),
        }
    }
    Ok(n)
}

/// Run everything `input` holds through the engine in direction `dir`
/// into `out`, the first
/// byte being target sector `start_sector`, on `pool`. The caller commits
/// `out` when this succeeds.
pub fn transform(
    engine: &SectorCrypt,
    input: Input,
    out: &mut Output,
    start_sector: u64,
    dir: Direction,
    pool: &rayon::ThreadPool,
) -> Result<()> {
    let ss = u64::from(engine.geometry().sector_size);
    let (mut reader, stream): (Box<dyn Read>, bool) = match input {
        Input::Regular(f, len) if out.positioned().is_some() => {
            let target = out.positioned().expect("checked");
            pool.install(|| positioned(engine, &f, len, target, start_sector, dir))?;
            out.wrote(len);
            return Ok(());
        }
        Input::Regular(f, _) => (Box::new(f), false),
        Input::Stream(r) => (r, true),
    };
    // 8 MiB per round keeps every core busy and memory flat.
    let mut buf = vec![0u8; 8 << 20];
    let mut sector = start_sector;
    let mut total: u64 = 0;
    loop {
        stop_if_asked()?;
        let n = read_full(&mut *reader, &mut buf)?;
        if n == 0 {
            break;
        }
        if !(n as u64).is_multiple_of(ss) {
            return Err(TransformError::Input(format!(
                "input is {} bytes, not a whole number of {ss}-byte sectors",
                total + n as u64
            )));
        }
        let chunk = &mut buf[..n];
        pool.install(|| engine.crypt(sector, chunk, dir))?;
        out.write(chunk).map_err(io_err("output"))?;
        total += n as u64;
        sector = sector.wrapping_add(n as u64 / 512);
    }
    // A closed standard input reads as empty (the runtime puts /dev/null
    // there): an empty stream is refused rather than written as an empty
    // OUTPUT.
    if total == 0 && stream {
        return Err(TransformError::Input(
            "the input stream gave no data (closed or empty); OUTPUT left as it was".into(),
        ));
    }
    Ok(())
}

/// Transform `len` bytes of `input` into `out` at the same offsets, a piece
/// per task, on the current thread pool.
fn positioned(
    engine: &SectorCrypt,
    input: &File,
    len: u64,
    out: &File,
    start_sector: u64,
    dir: Direction,
) -> Result<()> {
    region(engine, (input, 0), len, (out, 0), start_sector, dir)
}

/// Transform `len` bytes of `input` from byte `in_at` into `out` at byte
/// `out_at` (a volume's data behind its header), pieces on every core of
/// `pool`; the first byte is target sector `start_sector`.
#[allow(clippy::too_many_arguments)]
pub fn transform_region(
    engine: &SectorCrypt,
    input: &File,
    in_at: u64,
    len: u64,
    out: &File,
    out_at: u64,
    start_sector: u64,
    dir: Direction,
    pool: &rayon::ThreadPool,
) -> Result<()> {
    let ss = u64::from(engine.geometry().sector_size);
    if !len.is_multiple_of(ss) {
        return Err(TransformError::Input(format!(
            "{len} bytes are not a whole number of {ss}-byte sectors"
        )));
    }
    pool.install(|| {
        region(
            engine,
            (input, in_at),
            len,
            (out, out_at),
            start_sector,
            dir,
        )
    })
}

fn region(
    engine: &SectorCrypt,
    (input, in_at): (&File, u64),
    len: u64,
    (out, out_at): (&File, u64),
    start_sector: u64,
    dir: Direction,
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
                .read_exact_at(buf, in_at + off)
                .map_err(io_err(format!(
                    "reading input at byte {} (did it shrink?)",
                    in_at + off
                )))?;
            stop_if_asked()?;
            let sector = start_sector.wrapping_add(off / 512);
            engine.crypt(sector, buf, dir)?;
            out.write_all_at(buf, out_at + off)
                .map_err(io_err("writing output"))?;
            Ok(())
        },
    )
}
