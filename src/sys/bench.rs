//! Throughput of the real dm-crypt target, for `dmch bench --kernel`.
//!
//! A mapping over a loop device whose backing file lives in tmpfs (so the
//! disk is not what is measured), written and then read with O_DIRECT so
//! every byte passes through the cipher and none comes from a page cache.
//! The backing file is unlinked from the start and the loop device has
//! autoclear set: nothing outlives the measurement, whatever fails.

use super::activate::{ActivateError, Scoped};
use super::{aligned, direct, dm, loopdev};
use crate::key::Key;
use crate::spec::CipherSpec;
use crate::table::{CryptParams, Table};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Size of the mapped device: several passes of the 1 MiB I/O unit per
/// measurement, little memory in tmpfs.
const DEVICE: u64 = 16 << 20;
const IO: usize = 1 << 20;

/// MiB/s through the target in each direction.
pub struct Throughput {
    /// MiB/s written through the target.
    pub encrypt: f64,
    /// MiB/s read through the target.
    pub decrypt: f64,
}

/// Where the backing file goes: tmpfs when there is one.
fn scratch_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Measure `cipher` with `key` at `sector_size` for about `secs` seconds
/// per direction. Errors name the step that failed; a table the kernel
/// refuses comes back as `InvalidInput` with its errno.
pub fn measure(
    ctl: &dm::Control,
    cipher: &str,
    key: &[u8],
    sector_size: u32,
    secs: f64,
) -> io::Result<Throughput> {
    let backing = tempfile::tempfile_in(scratch_dir())?;
    backing.set_len(DEVICE)?;
    let lo = loopdev::LoopDevice::attach_autoclear(&backing)?;
    let name = format!("dmch-bench-{}", std::process::id());
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    let spec = CipherSpec::parse(cipher).map_err(|e| invalid(e.to_string()))?;
    let params = CryptParams::new(spec, Key::from_bytes(key), lo.path.clone())
        .with_sector_size((sector_size != 512).then_some(sector_size));
    let table = Table::new(0, DEVICE / 512, params).map_err(|e| invalid(e.to_string()))?;
    let text = Zeroizing::new(table.params.to_string());
    let mapped =
        Scoped::activate(ctl, &name, DEVICE / 512, "crypt", &text, false).map_err(|e| {
            invalid(match e {
                ActivateError::Refused(e) => format!(
                    "the kernel refused the table ({})",
                    e.raw_os_error()
                        .map_or(e.to_string(), |n| format!("errno {n}"))
                ),
                other => other.to_string(),
            })
        })?;
    let m = mapped.mapping();
    let (mut raw, off) = aligned(IO);
    let buf = &mut raw[off..off + IO];
    buf.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = (i * 131) as u8);
    let until = Duration::from_secs_f64(secs);
    let run = |write: bool, buf: &mut [u8]| -> io::Result<f64> {
        let mut f = direct(&m.node(), write)?;
        let start = Instant::now();
        let mut bytes = 0u64;
        // At least one whole pass, so reads decrypt what was written.
        while bytes < DEVICE || start.elapsed() < until {
            if bytes.is_multiple_of(DEVICE) {
                f.seek(SeekFrom::Start(0))?;
            }
            if write {
                f.write_all(buf)?;
            } else {
                f.read_exact(buf)?;
            }
            bytes += IO as u64;
        }
        if write {
            f.sync_all()?;
        }
        Ok(bytes as f64 / start.elapsed().as_secs_f64() / (1 << 20) as f64)
    };
    let encrypt = run(true, buf)?;
    let decrypt = run(false, buf)?;
    drop(mapped);
    // Autoclear detaches the loop device once this last handle closes.
    drop(lo);
    Ok(Throughput { encrypt, decrypt })
}
