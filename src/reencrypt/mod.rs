//! In-place conversion of a device or image from one set of table
//! parameters to another (`dmch reencrypt`), or from plaintext
//! (`--encrypt`) or to it (`--decrypt`), that any interruption leaves
//! resumable: the seed's dmconvert, made crash-safe by a journal.
//!
//! [`plan`] is what is done, [`journal`] the on-disk state, [`convert`] the
//! zone loop and its recovery over any [`storage::Storage`]; this file
//! opens devices and journals (a file beside the image, or room on the
//! device) and runs a conversion from its start or from its journal.

pub mod convert;
pub mod journal;
pub mod plan;
pub mod storage;

pub use convert::{Engines, Progress};
pub use plan::{Mode, Plan, Side, ZONE_DEFAULT, ZONE_MAX};

use convert::{Converter, fingerprint};
use journal::{Found, Journal};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use storage::{Faulty, Region, Storage};

/// Why a conversion did not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReencryptError {
    #[error("{0}")]
    /// The options, the device or the plan cannot be used.
    Invalid(String),
    #[error(transparent)]
    /// The reference refuses a side's spec or key.
    Reference(#[from] crate::Error),
    #[error(
        "the start of the data, read with the old parameters, holds no known signature (file system, swap, LUKS, partition table): a wrong key, cipher or offset would destroy the data; give --force if it really holds none"
    )]
    /// The old side did not give recognisable data.
    NoSignature,
    #[error("{0}")]
    /// The journal is missing, corrupt, or of other keys or another plan.
    Journal(String),
    #[error("{what}: {source}")]
    /// A read, write or sync failed.
    Io {
        /// The step that failed.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    #[error("interrupted")]
    /// Ctrl-C or SIGTERM between zones.
    Interrupted {
        /// Bytes final.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    #[error(
        "{cause}; stopped with {done} of {total} bytes converted: the journal {journal} keeps the state, and dmch reencrypt --resume finishes the conversion"
    )]
    /// Stopped after the journal was made: resumable.
    Stopped {
        /// What stopped it.
        cause: Box<ReencryptError>,
        /// Bytes final (at least).
        done: u64,
        /// Bytes in all.
        total: u64,
        /// Where the journal is.
        journal: String,
    },
}

type Result<T> = std::result::Result<T, ReencryptError>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ReencryptError {
    let what = what.into();
    move |source| ReencryptError::Io { what, source }
}

/// A device or image opened for conversion: exclusively (a block device
/// with O_EXCL, so not while mounted or mapped; a file with a lock, so not
/// by two conversions at once).
pub struct Device {
    file: File,
    path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Whether it is a block device.
    pub block: bool,
}

impl Device {
    /// Open `path` for reading and writing, or only reading (`--dry-run`).
    pub fn open(path: &Path, write: bool) -> Result<Device> {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let shown = crate::redact::for_terminal(&path.display().to_string());
        let meta = std::fs::metadata(path).map_err(|e| {
            ReencryptError::Invalid(if e.kind() == std::io::ErrorKind::NotFound {
                format!("{shown} does not exist")
            } else {
                format!("cannot stat {shown}: {e}")
            })
        })?;
        let block = meta.file_type().is_block_device();
        if !block && !meta.is_file() {
            return Err(ReencryptError::Invalid(format!(
                "{shown} is neither a block device nor a regular file"
            )));
        }
        let mut o = OpenOptions::new();
        o.read(true).write(write);
        if block && write {
            o.custom_flags(libc::O_EXCL);
        }
        let file = o.open(path).map_err(|e| {
            ReencryptError::Invalid(if e.raw_os_error() == Some(libc::EBUSY) {
                format!("{shown} is in use (mounted, mapped or held by another program)")
            } else {
                format!("cannot open {shown}: {e}")
            })
        })?;
        let bytes = if block {
            crate::sys::blockdev::size(&file).map_err(io(format!("reading the size of {shown}")))?
        } else {
            if write {
                lock(&file).map_err(|_| {
                    ReencryptError::Invalid(format!(
                        "{shown} is locked by another conversion (or another program)"
                    ))
                })?;
            }
            meta.len()
        };
        Ok(Device {
            file,
            path: path.to_path_buf(),
            bytes,
            block,
        })
    }

    fn shown(&self) -> String {
        crate::redact::for_terminal(&self.path.display().to_string())
    }
}

#[allow(unsafe_code)] // flock(2)
fn lock(f: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an open descriptor takes no pointers.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Where the journal is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalPlace {
    /// A file of its own (made whole before the first write, removed when
    /// the conversion is complete).
    File(PathBuf),
    /// Room on the device itself from this byte, outside the data (wiped
    /// when the conversion is complete).
    Device(u64),
}

impl JournalPlace {
    /// The default: `IMAGE.dmch-journal` beside an image; a block device
    /// must be told (`/dev` is no place for it).
    pub fn default_for(dev: &Device) -> Result<JournalPlace> {
        if dev.block {
            return Err(ReencryptError::Invalid(format!(
                "{} is a block device: give the journal a place, --journal FILE (on another device) or --journal-on-device SECTOR (room outside the data)",
                dev.shown()
            )));
        }
        let mut p = dev.path.clone().into_os_string();
        p.push(".dmch-journal");
        Ok(JournalPlace::File(p.into()))
    }

    /// As the user would name it.
    pub fn describe(&self, dev: &Device) -> String {
        match self {
            JournalPlace::File(p) => crate::redact::for_terminal(&p.display().to_string()),
            JournalPlace::Device(b) => format!("{} at sector {}", dev.shown(), b / 512),
        }
    }
}

/// What a finished run did.
#[derive(Clone, Debug)]
pub struct Report {
    /// Bytes that were already final when this run began.
    pub resumed_at: u64,
    /// Whether an interrupted zone was written again from the journal.
    pub rewrote_zone: bool,
    /// Bytes this run converted.
    pub bytes: u64,
    /// Time this run took.
    pub elapsed: Duration,
}

/// What the start of the data holds when read with the old side: the
/// name of its signature, if any.
pub fn probe(plan: &Plan, engines: &Engines, dev: &Device) -> Result<Option<&'static str>> {
    let ss = plan.old.as_ref().map_or(512, |s| u64::from(s.sector_size));
    let n = (crate::signature::PROBE_LEN as u64).min(plan.length) / ss * ss;
    let mut b = zeroize::Zeroizing::new(vec![0u8; n as usize]);
    dev.file
        .read_at(&mut b, plan.start())
        .map_err(io(format!("reading the start of {}", dev.shown())))?;
    if let Some(e) = &engines.old {
        e.decrypt(0, &mut b)?;
    }
    Ok(crate::signature::identify(&b))
}

/// The journal region of `place` on `dev`, checked to be outside the data.
fn region(dev: &Device, plan: &Plan, at: u64) -> Result<u64> {
    let len = journal::size_for(plan.zone);
    let (ds, de) = (plan.start(), plan.start() + plan.length);
    if !at.is_multiple_of(512) || at.checked_add(len).is_none_or(|e| e > dev.bytes) {
        return Err(ReencryptError::Invalid(format!(
            "the journal needs {len} bytes at sector {}; {} has {} bytes",
            at / 512,
            dev.shown(),
            dev.bytes
        )));
    }
    if at < de && ds < at + len {
        return Err(ReencryptError::Invalid(format!(
            "the journal (sectors {}..{}) overlaps the data (sectors {}..{})",
            at / 512,
            (at + len) / 512,
            ds / 512,
            de / 512
        )));
    }
    Ok(at)
}

fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing directory {}", dir.display())))
}

fn open_journal_file(p: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).open(p)
}

/// Start converting: refuse a journal in place already, decrypt the start
/// with the old side and refuse if it holds no signature (unless
/// `force`), make the journal whole, then convert.
pub fn start(
    dev: &Device,
    plan: &Plan,
    keys: (&[u8], &[u8]),
    place: &JournalPlace,
    force: bool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Report> {
    plan.check(dev.bytes)?;
    let engines = Engines::new(plan, keys.0, keys.1)?;
    if let JournalPlace::Device(at) = place {
        region(dev, plan, *at)?;
    }
    if !force && probe(plan, &engines, dev)?.is_none() {
        return Err(ReencryptError::NoSignature);
    }
    let fp = fingerprint(&plan.to_text()?, keys.0, keys.1);
    let first = Converter::<File, File>::first_header(plan, fp)?;
    let shown = place.describe(dev);
    match place {
        JournalPlace::File(p) => {
            if same_file(p, &dev.path) {
                return Err(ReencryptError::Invalid(
                    "the journal cannot be the device itself".into(),
                ));
            }
            if p.exists() {
                return Err(ReencryptError::Journal(format!(
                    "the journal {shown} exists: a conversion is under way (--resume finishes it)"
                )));
            }
            create_journal_file(p, plan, &first)?;
            let j = open_journal_file(p).map_err(io(format!("opening the journal {shown}")))?;
            run(dev, plan, &engines, Faulty::new(j), first, place, progress)
        }
        JournalPlace::Device(at) => {
            let j = Journal::new(
                Region {
                    inner: &dev.file,
                    base: *at,
                },
                plan.zone,
            );
            match j.latest().map_err(io("reading the journal region"))? {
                Found::Nothing => {}
                Found::Valid(_) => {
                    return Err(ReencryptError::Journal(format!(
                        "a journal is at {shown} already: a conversion is under way (--resume finishes it)"
                    )));
                }
                Found::Damaged => {
                    return Err(ReencryptError::Journal(format!(
                        "a damaged journal is at {shown}: a conversion may be under way; nothing was written (zero that room by hand only if none is)"
                    )));
                }
            }
            // Only the header slots need to be known: the areas are checked
            // against the sums in the headers.
            let st = Region {
                inner: &dev.file,
                base: *at,
            };
            let w = |b: &[u8], o| st.write_at(b, o);
            w(&vec![0u8; journal::SLOT as usize], 0)
                .and_then(|_| w(&first.encode(), journal::SLOT))
                .and_then(|_| st.sync())
                .map_err(io(format!("writing the journal at {shown}")))?;
            let st = Faulty::new(Region {
                inner: &dev.file,
                base: *at,
            });
            run(dev, plan, &engines, st, first, place, progress)
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// A journal file made whole (every byte allocated, so a full disk shows
/// now, not mid-way) under a temporary name, synced, then renamed: the
/// name exists only with a valid first header behind it.
fn create_journal_file(p: &Path, plan: &Plan, first: &journal::Header) -> Result<()> {
    let shown = crate::redact::for_terminal(&p.display().to_string());
    let mut tmp = p.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let made = (|| -> std::io::Result<()> {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let zeros = vec![0u8; 1 << 20];
        let total = journal::size_for(plan.zone);
        let mut at = 0;
        while at < total {
            let n = (total - at).min(zeros.len() as u64) as usize;
            std::os::unix::fs::FileExt::write_all_at(&f, &zeros[..n], at)?;
            at += n as u64;
        }
        std::os::unix::fs::FileExt::write_all_at(&f, &first.encode(), journal::SLOT)?;
        f.sync_all()?;
        std::fs::rename(&tmp, p)
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        return Err(ReencryptError::Io {
            what: format!("making the journal {shown}"),
            source: e,
        });
    }
    sync_dir(p)
}

/// The plan a journal holds (so a resume can ask for the right keys).
pub fn pending(dev: &Device, place: &JournalPlace) -> Result<Plan> {
    let (head, _) = latest(dev, place)?;
    Plan::from_text(&head.plan).map_err(|e| {
        ReencryptError::Journal(format!(
            "the journal {} is corrupt: {e}",
            place.describe(dev)
        ))
    })
}

/// The newest header of the journal at `place`, and the zone size it was made for.
fn latest(dev: &Device, place: &JournalPlace) -> Result<(journal::Header, u64)> {
    let shown = place.describe(dev);
    let corrupt = || {
        ReencryptError::Journal(format!(
            "the journal {shown} is damaged (no header whose checksum holds); nothing was written"
        ))
    };
    let none = || {
        ReencryptError::Journal(format!(
            "no journal {shown}: no conversion of {} is under way (a journal is removed when its conversion completes)",
            dev.shown()
        ))
    };
    let found = match place {
        JournalPlace::File(p) => {
            let f = match File::open(p) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(none()),
                Err(e) => return Err(io(format!("opening the journal {shown}"))(e)),
            };
            // The zone size is in the header's plan; headers come first.
            Journal::new(&f, 0).latest()
        }
        JournalPlace::Device(at) => Journal::new(
            Region {
                inner: &dev.file,
                base: *at,
            },
            0,
        )
        .latest(),
    }
    .map_err(io(format!("reading the journal {shown}")))?;
    let head = match found {
        Found::Valid(h) => h,
        Found::Damaged => return Err(corrupt()),
        // A journal file always has a header: made whole before its name.
        Found::Nothing if matches!(place, JournalPlace::File(_)) => return Err(corrupt()),
        Found::Nothing => return Err(none()),
    };
    let zone = Plan::from_text(&head.plan).map_err(|_| corrupt())?.zone;
    Ok((head, zone))
}

/// Finish the conversion the journal at `place` describes, with the keys
/// it was started with: the interrupted zone is put right, then the rest.
pub fn resume(
    dev: &Device,
    place: &JournalPlace,
    keys: (&[u8], &[u8]),
    progress: &mut dyn FnMut(&Progress),
) -> Result<Report> {
    let (head, _) = latest(dev, place)?;
    let shown = place.describe(dev);
    let plan = Plan::from_text(&head.plan)
        .map_err(|e| ReencryptError::Journal(format!("the journal {shown} is corrupt: {e}")))?;
    plan.check(dev.bytes).map_err(|e| {
        ReencryptError::Journal(format!(
            "the journal {shown} does not fit {}: {e}",
            dev.shown()
        ))
    })?;
    if fingerprint(&head.plan, keys.0, keys.1) != head.fingerprint {
        return Err(ReencryptError::Journal(format!(
            "the keys given are not the ones the conversion in {shown} began with; nothing was written"
        )));
    }
    let engines = Engines::new(&plan, keys.0, keys.1)?;
    match place {
        JournalPlace::File(p) => {
            let j = open_journal_file(p).map_err(io(format!("opening the journal {shown}")))?;
            run(dev, &plan, &engines, Faulty::new(j), head, place, progress)
        }
        JournalPlace::Device(at) => {
            region(dev, &plan, *at)?;
            let st = Faulty::new(Region {
                inner: &dev.file,
                base: *at,
            });
            run(dev, &plan, &engines, st, head, place, progress)
        }
    }
}

fn run<J: Storage>(
    dev: &Device,
    plan: &Plan,
    engines: &Engines,
    journal: J,
    head: journal::Header,
    place: &JournalPlace,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Report> {
    let t0 = Instant::now();
    let mut c = Converter::new(plan, engines, Faulty::new(&dev.file), journal, head)?;
    let resumed_at = c.progress();
    let stopped = |e: ReencryptError, done: u64| ReencryptError::Stopped {
        cause: Box::new(e),
        done,
        total: plan.length,
        journal: place.describe(dev),
    };
    let rewrote_zone = c.recover().map_err(|e| stopped(e, resumed_at))?;
    let from = c.progress();
    if let Err(e) = c.run(progress) {
        let done = match &e {
            ReencryptError::Interrupted { done, .. } => *done,
            _ => c.progress(),
        };
        return Err(stopped(e, done));
    }
    match place {
        JournalPlace::File(p) => {
            std::fs::remove_file(p).map_err(io(format!(
                "the conversion is complete, but removing the journal {} failed",
                place.describe(dev)
            )))?;
            sync_dir(p)?;
        }
        JournalPlace::Device(_) => c.wipe_journal()?,
    }
    Ok(Report {
        resumed_at,
        rewrote_zone,
        bytes: plan.length - from,
        elapsed: t0.elapsed(),
    })
}
