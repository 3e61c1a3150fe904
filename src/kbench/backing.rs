//! The device under the mapping. A benchmark of dm-crypt must not measure
//! its backing store, so the kernel's RAM disk (brd) comes first; a loop
//! device over a tmpfs file is the fallback, and every run says which one
//! it had and why.

use crate::sys::loopdev::LoopDevice;
use serde_json::{Value, json};
use std::path::Path;

/// Which kind of device it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `/dev/ram0` from the brd module.
    Brd,
    /// A loop device over a file in tmpfs (its own copy costs show).
    Loop,
}

/// Loads brd with the given parameters, or says why not; gives back how to
/// unload it (None: leave it).
pub type BrdLoader<'a> = &'a dyn Fn(&str) -> Result<Option<Box<dyn FnOnce()>>, String>;

/// A backing device for the run's lifetime.
pub struct Backing {
    /// What it is.
    pub kind: Kind,
    /// Its node.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Why the fallback, when it is one.
    pub note: Option<String>,
    unload: Option<Box<dyn FnOnce()>>,
    _loop: Option<(LoopDevice, std::fs::File)>,
}

/// The size of a block device node in bytes.
fn block_size(path: &str) -> Option<u64> {
    let name = Path::new(path).file_name()?.to_str()?;
    let s = std::fs::read_to_string(format!("/sys/class/block/{name}/size")).ok()?;
    s.trim().parse::<u64>().ok().map(|n| n * 512)
}

impl Backing {
    /// `mib` MiB of brd through `load`, else a loop device on tmpfs.
    pub fn prepare(mib: u32, load: BrdLoader) -> std::io::Result<Backing> {
        let bytes = (mib as u64) << 20;
        let why = match Self::brd(mib, load) {
            Ok(b) => return Ok(b),
            Err(why) => why,
        };
        let dir = if Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let file = tempfile::tempfile_in(dir)?;
        file.set_len(bytes)?;
        let lo = LoopDevice::attach_autoclear(&file)?;
        Ok(Backing {
            kind: Kind::Loop,
            path: lo.path.clone(),
            bytes,
            note: Some(format!(
                "brd unavailable ({why}); the loop device's copies are measured too"
            )),
            unload: None,
            _loop: Some((lo, file)),
        })
    }

    fn brd(mib: u32, load: BrdLoader) -> Result<Backing, String> {
        if Path::new("/sys/module/brd").exists() {
            // Someone's RAM disks: not ours to overwrite or unload.
            return Err("brd is loaded already, its disks may hold data".into());
        }
        let unload = load(&format!(
            "rd_nr=1 rd_size={} max_part=0",
            (mib as u64) << 10
        ))?;
        let path = "/dev/ram0".to_string();
        let mut size = None;
        // devtmpfs makes the node as the disk appears.
        for _ in 0..100 {
            size = block_size(&path).filter(|_| Path::new(&path).exists());
            if size.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        match size {
            Some(s) if s == (mib as u64) << 20 => Ok(Backing {
                kind: Kind::Brd,
                path,
                bytes: s,
                note: None,
                unload,
                _loop: None,
            }),
            other => {
                if let Some(u) = unload {
                    u();
                }
                Err(match other {
                    None => "brd loaded but /dev/ram0 did not appear".into(),
                    Some(s) => format!("/dev/ram0 has {s} bytes, not {mib} MiB"),
                })
            }
        }
    }

    /// The device as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "kind": match self.kind { Kind::Brd => "brd", Kind::Loop => "loop-on-tmpfs" },
            "path": self.path,
            "mib": self.bytes >> 20,
            "note": self.note,
        })
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        if let Some(u) = self.unload.take() {
            u();
        }
    }
}

/// The host's loader: `modprobe brd` (root), with `modprobe -r` to undo.
pub fn host_loader(params: &str) -> Result<Option<Box<dyn FnOnce()>>, String> {
    let mut cmd = std::process::Command::new("modprobe");
    cmd.arg("brd").args(params.split_whitespace());
    match cmd.output() {
        Err(e) => Err(format!("modprobe: {e}")),
        Ok(o) if !o.status.success() => Err(format!(
            "modprobe brd: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => Ok(Some(Box::new(|| {
            let _ = std::process::Command::new("modprobe")
                .args(["-r", "brd"])
                .output();
        }))),
    }
}
