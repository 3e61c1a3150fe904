//! The runner of cases on a live kernel: one backing file on one loop
//! device shared by all cases of a run, and one mapping whose table each
//! case replaces (suspend, load, resume), the same few ioctls on the host
//! and in a guest.

use super::case::{Case, Step};
use super::klog::{self, KernelFault};
use super::{KernelResult, excerpts};
use crate::hash::sha256;
use crate::sys::activate::{ReplaceError, deactivate, replace_table};
use crate::sys::kmsg::{self, KernelLog};
use crate::sys::{aligned, direct, dm, loopdev};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A backing file on one loop device and one mapping, shared by all cases
/// of a run: loop setup and device creation are the dearest part of a
/// case under emulation.
pub struct Rig {
    backing: std::fs::File,
    path: std::path::PathBuf,
    lo: Option<loopdev::LoopDevice>,
    /// The mapping cases run through, made on the first case; whether it
    /// has a live table.
    mapping: Option<(dm::Mapping, bool)>,
    name: String,
}

impl Rig {
    /// A zeroed backing file in `dir`, large enough for every case, on a
    /// loop device; the mapping will be called `name`.
    pub fn new(dir: &Path, name: &str, cases: &[Case]) -> std::io::Result<Rig> {
        let path = dir.join(format!("{name}.img"));
        let backing = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        backing.set_len(Case::backing_size(cases))?;
        let lo = loopdev::LoopDevice::attach(&backing)?;
        Ok(Rig {
            backing,
            path,
            lo: Some(lo),
            mapping: None,
            name: name.to_string(),
        })
    }

    /// Push one case through the kernel.
    pub fn run(&mut self, ctl: &dm::Control, case: &Case) -> KernelResult {
        match self.try_case(ctl, case) {
            Ok(r) => r,
            Err(e) => KernelResult::Error(e.to_string().replace('\t', " ")),
        }
    }

    /// Push one case through the kernel with the kernel log watched: what
    /// it did, and the fault it logged meanwhile (a WARNING, a BUG, a
    /// changed taint), if any. Without a log (no /dev/kmsg) only the result.
    /// `at_start` runs inside the case's log window, first.
    pub fn run_logged(
        &mut self,
        ctl: &dm::Control,
        case: &Case,
        log: Option<&mut KernelLog>,
        at_start: impl FnOnce(),
    ) -> (KernelResult, Option<KernelFault>) {
        let Some(log) = log else {
            at_start();
            return (self.run(ctl, case), None);
        };
        // Whatever came before this case is not its doing.
        let _ = log.take();
        let before = kmsg::taint();
        at_start();
        let result = self.run(ctl, case);
        let lines = log.take();
        let taint = before.zip(kmsg::taint());
        (result, klog::scan(&lines, taint))
    }

    /// Load `params` as the mapping's table: `Some(why)` when the kernel
    /// refused it (the previous table, if any, stays live).
    fn load(
        &mut self,
        ctl: &dm::Control,
        len: u64,
        params: &str,
    ) -> std::io::Result<Option<String>> {
        if self.mapping.is_none() {
            self.mapping = Some((ctl.create(&self.name)?, false));
        }
        let (m, live) = self.mapping.as_mut().expect("made above");
        let refused = if *live {
            match replace_table(ctl, m, len, "crypt", params, false) {
                Ok(()) => None,
                Err(ReplaceError::Refused(e)) => Some(e),
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
        } else {
            // A table may load and be refused at resume; then it is gone.
            match ctl
                .load(m, 0, len, "crypt", params, false)
                .and_then(|_| ctl.resume(m))
            {
                Ok(()) => {
                    *live = true;
                    None
                }
                Err(e) => Some(e),
            }
        };
        Ok(refused.map(|e| {
            e.raw_os_error()
                .map_or(e.to_string(), |n| format!("errno {n}"))
        }))
    }

    fn try_case(&mut self, ctl: &dm::Control, case: &Case) -> std::io::Result<KernelResult> {
        let dev = self.lo.as_ref().expect("attached until drop").path.clone();
        let sectors = case.len as u64 / 512;
        let (lo, hi) = case.span();
        if !case.steps.is_empty() {
            // A reload reads what earlier cases left: start from zeros.
            self.backing
                .write_all_at(&vec![0u8; (hi - lo) as usize], lo)?;
        }
        let params = zeroize::Zeroizing::new(case.params(&dev));
        if let Some(e) = self.load(ctl, sectors, &params)? {
            return Ok(KernelResult::Rejected(e));
        }
        let node = self.mapping.as_ref().expect("loaded").0.node();
        let ss = case.sector_size as usize;
        // O_DIRECT both ways: writes reach the backing file, and the read
        // decrypts from it instead of returning cached plaintext.
        let write = |at: usize, data: &[u8]| -> std::io::Result<()> {
            let (mut raw, off) = aligned(data.len());
            raw[off..off + data.len()].copy_from_slice(data);
            let f = direct(&node, true)?;
            f.write_all_at(&raw[off..off + data.len()], at as u64)?;
            f.sync_all()
        };
        write(0, &case.plaintext())?;
        for (i, s) in case.steps.iter().enumerate() {
            match s {
                Step::Reload { iv_offset, offset } => {
                    let p = zeroize::Zeroizing::new(case.params_at(&dev, *iv_offset, *offset));
                    if let Some(e) = self.load(ctl, sectors, &p)? {
                        return Ok(KernelResult::Rejected(format!(
                            "step {} (reload): {e}",
                            i + 1
                        )));
                    }
                }
                Step::Write { unit, units, data } => {
                    write(*unit as usize * ss, &data.bytes(*units as usize * ss))?
                }
            }
        }
        let mut ct = vec![0u8; (hi - lo) as usize];
        self.backing.read_exact_at(&mut ct, lo)?;
        let (mut raw, off) = aligned(case.len);
        direct(&node, false)?.read_exact_at(&mut raw[off..off + case.len], 0)?;
        Ok(KernelResult::Data {
            ct_sha256: sha256(&ct),
            pt_sha256: sha256(&raw[off..off + case.len]),
            excerpts: excerpts(&ct, ss),
        })
    }

    /// Remove the mapping and detach the loop device; errors are reported
    /// (dropping the rig does the same, silently).
    pub fn close(mut self, ctl: &dm::Control) -> std::io::Result<()> {
        if let Some((m, _)) = self.mapping.take() {
            deactivate(ctl, &m)?;
        }
        Ok(())
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some((m, _)) = self.mapping.take()
            && let Ok(ctl) = dm::Control::open()
        {
            let _ = deactivate(&ctl, &m);
        }
        if let Some(lo) = self.lo.take() {
            let _ = lo.detach();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
