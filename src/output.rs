//! Where a transform's output goes, decided by what OUTPUT is:
//!
//! - a regular file (or a new path): written to a hidden temporary file
//!   beside it (`.dmch-partial-<pid>-*`, given the old file's mode and
//!   owner) that replaces it only when the run succeeded: on any error or
//!   interruption the old file is untouched;
//! - a block device: written in place at its offsets, after its size was
//!   checked, and synced at the end; nothing is written when the input is
//!   refused before the first sector (spec, key, sizes);
//! - a FIFO, a character device or standard output: streamed as produced;
//!   an error after the first chunk ends the stream where it happened;
//! - a symlink is followed (a dangling one refused), never replaced; a
//!   directory is refused.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What kind of output it turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file, replaced when the run succeeded.
    Replace,
    /// A block device, written in place.
    BlockDevice,
    /// A FIFO, character device or standard output, streamed.
    Stream,
}

/// An open OUTPUT; [`Output::commit`] when the run succeeded.
pub struct Output {
    kind: Kind,
    shown: String,
    file: Option<File>,
    tmp: Option<tempfile::NamedTempFile>,
    target: PathBuf,
    /// Bytes a block device holds (writes past it are refused).
    capacity: Option<u64>,
    written: u64,
}

/// The prefix of temporary outputs, followed by the writer's pid.
const PARTIAL: &str = ".dmch-partial-";

fn err(what: String) -> io::Error {
    io::Error::other(what)
}

/// Remove the temporary outputs of runs that were killed (their pid is
/// gone) in `dir`; returns what was removed, for the user to hear of it.
pub fn sweep_partials(dir: &Path) -> Vec<PathBuf> {
    crate::leftovers::sweep(dir, PARTIAL)
}

impl Output {
    /// Open `path` (`-` = standard output) for a run that will write
    /// `len` bytes when that is known in advance.
    pub fn open(path: &Path, len: Option<u64>) -> io::Result<Output> {
        let shown = crate::redact::for_terminal(&path.display().to_string());
        if path.as_os_str() == "-" {
            return Ok(Output {
                kind: Kind::Stream,
                shown: "standard output".into(),
                file: None,
                tmp: None,
                target: path.into(),
                capacity: None,
                written: 0,
            });
        }
        let target = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|e| {
                err(format!(
                    "output {shown} is a symlink whose target cannot be resolved ({e}); refused"
                ))
            })?,
            _ => path.to_path_buf(),
        };
        let meta = match std::fs::metadata(&target) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(err(format!("cannot stat output {shown}: {e}"))),
        };
        let ft = meta.as_ref().map(|m| m.file_type());
        if ft.is_some_and(|t| t.is_dir()) {
            return Err(err(format!("output {shown} is a directory")));
        }
        if ft.is_some_and(|t| t.is_block_device()) {
            let f = OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(|e| err(format!("cannot open output device {shown}: {e}")))?;
            let size = crate::sys::blockdev::size(&f)
                .map_err(|e| err(format!("cannot read the size of {shown}: {e}")))?;
            if let Some(n) = len
                && n > size
            {
                return Err(err(format!(
                    "output device {shown} holds {size} bytes, the input is {n}"
                )));
            }
            return Ok(Output {
                kind: Kind::BlockDevice,
                shown,
                file: Some(f),
                tmp: None,
                target,
                capacity: Some(size),
                written: 0,
            });
        }
        if ft.is_some_and(|t| t.is_fifo() || t.is_char_device() || t.is_socket()) {
            let f = OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(|e| err(format!("cannot open output {shown}: {e}")))?;
            return Ok(Output {
                kind: Kind::Stream,
                shown,
                file: Some(f),
                tmp: None,
                target,
                capacity: None,
                written: 0,
            });
        }
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        for gone in sweep_partials(&dir) {
            eprintln!(
                "dmch: removed {}, the partial output of a run that was killed",
                crate::redact::for_terminal(&gone.display().to_string())
            );
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{PARTIAL}{}-", std::process::id()))
            .tempfile_in(&dir)
            .map_err(|e| {
                err(format!(
                    "cannot create output in {}: {e}",
                    crate::redact::for_terminal(&dir.display().to_string())
                ))
            })?;
        if let Some(m) = &meta {
            // The replacement keeps what the old file was: mode and owner.
            let f = tmp.as_file();
            f.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))
                .map_err(|e| err(format!("cannot set the mode of the new {shown}: {e}")))?;
            // EPERM (not root, another owner) leaves the file ours, as
            // any editor's save would.
            let _ = std::os::unix::fs::fchown(f, Some(m.uid()), Some(m.gid()));
            if m.nlink() > 1 {
                eprintln!(
                    "dmch: warning: {shown} has {} hard links; it is replaced, so the other names keep the old content",
                    m.nlink()
                );
            }
        }
        if let Some(n) = len {
            tmp.as_file()
                .set_len(n)
                .map_err(|e| err(format!("sizing output {shown}: {e}")))?;
        }
        Ok(Output {
            kind: Kind::Replace,
            shown,
            file: None,
            tmp: Some(tmp),
            target,
            capacity: None,
            written: 0,
        })
    }

    /// What kind of output this turned out to be.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The file to write at offsets, when the output allows it.
    pub fn positioned(&self) -> Option<&File> {
        match self.kind {
            Kind::Replace => self.tmp.as_ref().map(|t| t.as_file()),
            Kind::BlockDevice => self.file.as_ref(),
            Kind::Stream => None,
        }
    }

    /// Write `b` at `offset` of a positioned output.
    pub fn write_at(&self, b: &[u8], offset: u64) -> io::Result<()> {
        if let Some(cap) = self.capacity
            && offset + b.len() as u64 > cap
        {
            return Err(err(format!(
                "output device {} ends at byte {cap}; the input goes on",
                self.shown
            )));
        }
        let f = self
            .positioned()
            .ok_or_else(|| err("a stream has no offsets".into()))?;
        f.write_all_at(b, offset)
            .map_err(|e| err(format!("writing {}: {e}", self.shown)))
    }

    /// Append `b` (streams), or write it at the next offset.
    pub fn write(&mut self, b: &[u8]) -> io::Result<()> {
        if self.kind == Kind::Stream {
            let r = match &mut self.file {
                Some(f) => f.write_all(b),
                None => io::stdout().lock().write_all(b),
            };
            r.map_err(|e| err(format!("writing {}: {e}", self.shown)))?;
        } else {
            self.write_at(b, self.written)?;
        }
        self.written += b.len() as u64;
        Ok(())
    }

    /// The run succeeded: make the output durable and, for a regular file,
    /// put it in place.
    pub fn commit(self) -> io::Result<()> {
        let shown = self.shown;
        let e = |what: &str| {
            let shown = shown.clone();
            let what = what.to_string();
            move |x: io::Error| err(format!("{what} {shown}: {x}"))
        };
        match self.kind {
            Kind::Replace => {
                let tmp = self.tmp.expect("a replacement has its temporary file");
                if tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0) != self.written
                    && self.written > 0
                {
                    tmp.as_file().set_len(self.written).map_err(e("sizing"))?;
                }
                tmp.as_file().sync_all().map_err(e("syncing"))?;
                tmp.persist(&self.target)
                    .map_err(|p| err(format!("replacing {shown}: {}", p.error)))?;
            }
            Kind::BlockDevice => {
                if let Some(f) = &self.file {
                    f.sync_all().map_err(e("syncing"))?;
                }
            }
            Kind::Stream => match self.file {
                Some(mut f) => f.flush().map_err(e("writing"))?,
                None => io::stdout().lock().flush().map_err(e("writing"))?,
            },
        }
        Ok(())
    }

    /// Record that `n` bytes were written at offsets (positioned runs).
    pub fn wrote(&mut self, n: u64) {
        self.written = self.written.max(n);
    }
}
