//! The host-side runner of cases: one backing file on one loop device
//! shared by all cases of a run, one mapping per case.

use super::{Case, KernelResult, excerpts};
use crate::hash::sha256;
use crate::sys::activate::{ActivateError, activate, deactivate};
use crate::sys::{aligned, direct, dm, loopdev};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// A backing file on one loop device, shared by all cases of a run: loop
/// setup is the dearest part of a case under emulation.
pub struct Rig {
    backing: std::fs::File,
    path: std::path::PathBuf,
    lo: Option<loopdev::LoopDevice>,
}

impl Rig {
    /// A zeroed backing file in `dir`, large enough for every case.
    pub fn new(dir: &Path, name: &str, cases: &[Case]) -> std::io::Result<Rig> {
        let size = cases
            .iter()
            .map(|c| c.offset * 512 + c.len as u64)
            .max()
            .unwrap_or(4096);
        let path = dir.join(format!("{name}.img"));
        let backing = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        backing.set_len(size)?;
        let lo = loopdev::LoopDevice::attach(&backing)?;
        Ok(Rig {
            backing,
            path,
            lo: Some(lo),
        })
    }

    /// Push one case through the kernel under mapping name `name`.
    pub fn run(&self, ctl: &dm::Control, case: &Case, name: &str) -> KernelResult {
        match self.try_case(ctl, case, name) {
            Ok(r) => r,
            Err(e) => KernelResult::Error(e.to_string().replace('\t', " ")),
        }
    }

    fn try_case(
        &self,
        ctl: &dm::Control,
        case: &Case,
        name: &str,
    ) -> std::io::Result<KernelResult> {
        let lo = self.lo.as_ref().expect("attached until drop");
        let params = zeroize::Zeroizing::new(case.params(&lo.path));
        let sectors = case.len as u64 / 512;
        let m = match activate(ctl, name, sectors, "crypt", &params, false) {
            Ok(m) => m,
            Err(ActivateError::Refused(e)) => {
                return Ok(KernelResult::Rejected(
                    e.raw_os_error()
                        .map_or(e.to_string(), |n| format!("errno {n}")),
                ));
            }
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        };
        // O_DIRECT both ways: the write reaches the backing file, and the
        // read decrypts from it instead of returning cached plaintext.
        let io = (|| -> std::io::Result<(Vec<u8>, Vec<u8>)> {
            let (mut raw, off) = aligned(case.len);
            raw[off..off + case.len].copy_from_slice(&case.plaintext());
            let mut f = direct(&m.node(), true)?;
            f.write_all(&raw[off..off + case.len])?;
            f.sync_all()?;
            drop(f);
            let mut ct = vec![0u8; case.len];
            let mut b = &self.backing;
            b.seek(SeekFrom::Start(case.offset * 512))?;
            b.read_exact(&mut ct)?;
            raw[off..off + case.len].fill(0);
            direct(&m.node(), false)?.read_exact(&mut raw[off..off + case.len])?;
            Ok((ct, raw[off..off + case.len].to_vec()))
        })();
        deactivate(ctl, &m)?;
        let (ct, pt) = io?;
        Ok(KernelResult::Data {
            ct_sha256: sha256(&ct),
            pt_sha256: sha256(&pt),
            excerpts: excerpts(&ct, case.sector_size as usize),
        })
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(lo) = self.lo.take() {
            let _ = lo.detach();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
