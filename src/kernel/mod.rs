//! The real kernel as oracle: cases, the runner that pushes a case through
//! a live dm-crypt mapping, and the comparison with the reference engine.
//!
//! A case is encrypted by writing its plaintext through a fresh mapping over
//! a loop device and reading the backing file (never through the loop
//! device's page cache); it is decrypted by a second, fresh mapping over the
//! ciphertext. Only digests and per-sector excerpts leave the kernel side,
//! which keeps the serial console of a guest fast.

pub mod bench;
pub mod dm;
pub mod guest;
pub mod loopdev;
pub mod matrix;
pub mod probe;
pub mod scenario;

use crate::engine::SectorCrypt;
use crate::hash::sha256;
use crate::spec::CipherSpec;
use crate::table::Table;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// One kernel case: a crypt table and the data pushed through it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub id: String,
    pub cipher: String,
    pub key_hex: String,
    pub iv_offset: u64,
    pub sector_size: u32,
    pub iv_large_sectors: bool,
    /// Device offset (512-byte sectors) of the mapping on its backing file.
    pub offset: u64,
    /// Bytes of data, a whole number of sectors.
    pub len: usize,
}

impl Case {
    /// The crypt parameters for a table on `device`.
    pub fn params(&self, device: &str) -> String {
        let mut opts = Vec::new();
        if self.sector_size != 512 {
            opts.push(format!("sector_size:{}", self.sector_size));
        }
        if self.iv_large_sectors {
            opts.push("iv_large_sectors".to_string());
        }
        let mut p = format!(
            "{} {} {} {device} {}",
            self.cipher, self.key_hex, self.iv_offset, self.offset
        );
        if !opts.is_empty() {
            p.push_str(&format!(" {} {}", opts.len(), opts.join(" ")));
        }
        p
    }

    /// The plaintext: byte i is i mod 256 (the vector format's `counter N`).
    pub fn plaintext(&self) -> Vec<u8> {
        (0..self.len).map(|i| i as u8).collect()
    }

    /// One line for the guest's case file.
    pub fn to_line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.id,
            self.cipher,
            self.key_hex,
            self.iv_offset,
            self.sector_size,
            self.iv_large_sectors as u8,
            self.offset,
            self.len
        )
    }

    pub fn from_line(line: &str) -> Option<Case> {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 8 {
            return None;
        }
        Some(Case {
            id: f[0].into(),
            cipher: f[1].into(),
            key_hex: f[2].into(),
            iv_offset: f[3].parse().ok()?,
            sector_size: f[4].parse().ok()?,
            iv_large_sectors: f[5] == "1",
            offset: f[6].parse().ok()?,
            len: f[7].parse().ok()?,
        })
    }

    /// What the reference makes of this case: `Err` when it refuses it.
    pub fn reference(&self) -> Result<Vec<u8>, String> {
        self.reference_with(Fault::None)
    }

    /// The reference, optionally broken on purpose (see [`Fault`]).
    pub fn reference_with(&self, fault: Fault) -> Result<Vec<u8>, String> {
        // The table rules first (lengths, alignment), as the kernel's constructor.
        let line = format!("0 {} crypt {}", self.len / 512, self.params("/dev/null"));
        let t = Table::parse(&line).map_err(|e| e.to_string())?;
        let mut e = SectorCrypt::new(&t.params.cipher, &t.params.key, t.params.geometry())
            .map_err(|e| e.to_string())?;
        if fault == Fault::ByteswapIv {
            e = e.inject_fault_byteswap_iv();
        }
        let mut d = self.plaintext();
        e.encrypt(0, &mut d).map_err(|e| e.to_string())?;
        Ok(d)
    }
}

impl Case {
    /// What the reference reads back from `ciphertext` under this case's
    /// table (the plaintext when the table round-trips).
    pub fn reference_readback(&self, ciphertext: &[u8], fault: Fault) -> Vec<u8> {
        let line = format!("0 {} crypt {}", self.len / 512, self.params("/dev/null"));
        let mut d = ciphertext.to_vec();
        let read = Table::parse(&line).ok().and_then(|t| {
            let mut e =
                SectorCrypt::new(&t.params.cipher, &t.params.key, t.params.geometry()).ok()?;
            if fault == Fault::ByteswapIv {
                e = e.inject_fault_byteswap_iv();
            }
            e.decrypt(0, &mut d).ok()
        });
        if read.is_none() {
            d.clear();
        }
        d
    }
}

/// What the kernel did with a case, reduced to digests and excerpts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelResult {
    /// The table was refused (errno as text).
    Rejected(String),
    Data {
        /// SHA-256 of the ciphertext the mapping wrote.
        ct_sha256: [u8; 32],
        /// SHA-256 of what a fresh mapping read back over that ciphertext.
        pt_sha256: [u8; 32],
        /// The first 16 bytes of each sector of the ciphertext.
        excerpts: Vec<[u8; 16]>,
    },
    /// Something other than the table failed (I/O, loop setup).
    Error(String),
}

impl KernelResult {
    pub fn to_line(&self, id: &str) -> String {
        match self {
            KernelResult::Rejected(e) => format!("DMCH-RESULT\t{id}\tREJECT\t{e}"),
            KernelResult::Error(e) => format!("DMCH-RESULT\t{id}\tERROR\t{e}"),
            KernelResult::Data {
                ct_sha256,
                pt_sha256,
                excerpts,
            } => {
                let ex: Vec<String> = excerpts.iter().map(hex::encode).collect();
                format!(
                    "DMCH-RESULT\t{id}\tOK\t{}\t{}\t{}",
                    hex::encode(ct_sha256),
                    hex::encode(pt_sha256),
                    ex.join(",")
                )
            }
        }
    }

    pub fn from_line(line: &str) -> Option<(String, KernelResult)> {
        let f: Vec<&str> = line.trim_end().split('\t').collect();
        if f.first() != Some(&"DMCH-RESULT") || f.len() < 4 {
            return None;
        }
        let id = f[1].to_string();
        let r = match f[2] {
            "REJECT" => KernelResult::Rejected(f[3].into()),
            "ERROR" => KernelResult::Error(f[3].into()),
            "OK" if f.len() == 6 => {
                let h = |s: &str| -> Option<[u8; 32]> { hex::decode(s).ok()?.try_into().ok() };
                let excerpts = f[5]
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| hex::decode(s).ok()?.try_into().ok())
                    .collect::<Option<Vec<[u8; 16]>>>()?;
                KernelResult::Data {
                    ct_sha256: h(f[3])?,
                    pt_sha256: h(f[4])?,
                    excerpts,
                }
            }
            _ => return None,
        };
        Some((id, r))
    }
}

fn excerpts(data: &[u8], sector_size: usize) -> Vec<[u8; 16]> {
    data.chunks(sector_size)
        .map(|s| s[..16].try_into().unwrap())
        .collect()
}

/// A backing file on one loop device, shared by all cases of a run: loop
/// setup is the dearest part of a case under emulation.
pub struct Rig {
    backing: std::fs::File,
    path: std::path::PathBuf,
    lo: Option<loopdev::LoopDevice>,
}

/// A buffer aligned for O_DIRECT.
fn aligned(len: usize) -> (Vec<u8>, usize) {
    let raw = vec![0u8; len + 4096];
    let off = raw.as_ptr().align_offset(4096);
    (raw, off)
}

fn direct(path: &str, write: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_DIRECT)
        .open(path)
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
        let params = case.params(&lo.path);
        let sectors = case.len as u64 / 512;
        let m = ctl.create(name)?;
        if let Err(e) = ctl
            .load(&m, 0, sectors, "crypt", &params, false)
            .and_then(|_| ctl.resume(&m))
        {
            let _ = ctl.remove(&m);
            return Ok(KernelResult::Rejected(
                e.raw_os_error()
                    .map_or(e.to_string(), |n| format!("errno {n}")),
            ));
        }
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
        ctl.remove(&m)?;
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

/// Test-only: a deliberately broken reference, to prove the kernel check
/// catches it (selected with DMCH_TEST_FAULT=byteswap-iv).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Every IV byte-reversed: plain64 written big-endian.
    ByteswapIv,
}

/// The verdict on one case, comparing kernel and reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Both refused the table.
    RejectedAsExpected,
    /// The kernel lacks an algorithm the case needs (not built in it).
    Unavailable(String),
    Fail(String),
}

impl Case {
    /// Crypto API base algorithms the case needs: block and stream ciphers,
    /// and the ESSIV hash.
    pub fn algorithms(&self) -> Vec<String> {
        let Ok(spec) = CipherSpec::parse(&self.cipher) else {
            return Vec::new();
        };
        let mut v: Vec<String> = spec
            .cipher
            .split(',')
            .map(|c| c.trim_end_matches("-generic").to_string())
            .collect();
        if spec.effective_ivmode() == Some("essiv")
            && let Some(h) = &spec.ivopts
        {
            v.push(h.clone());
        }
        // The mode's template module (crypto/<chain>.ko), built in or not.
        v.push(format!("template:{}", spec.chain));
        v
    }
}

/// Compare a kernel result with the reference. `available` lists the
/// algorithms the kernel has (from /proc/crypto), when known: a refusal for
/// lack of one of them is reported as unavailable, not as a mismatch.
pub fn compare(
    case: &Case,
    kernel: &KernelResult,
    available: Option<&std::collections::BTreeSet<String>>,
    fault: Fault,
) -> Verdict {
    let reference = case.reference_with(fault);
    if let (KernelResult::Rejected(_), Ok(_), Some(have)) = (kernel, &reference, available) {
        let missing: Vec<String> = case
            .algorithms()
            .into_iter()
            .filter(|a| !have.contains(a))
            .collect();
        if !missing.is_empty() {
            return Verdict::Unavailable(format!("not in this kernel: {}", missing.join(", ")));
        }
    }
    match (kernel, reference) {
        (KernelResult::Error(e), _) => Verdict::Fail(format!("kernel side failed: {e}")),
        (KernelResult::Rejected(_), Err(_)) => Verdict::RejectedAsExpected,
        (KernelResult::Rejected(e), Ok(_)) => Verdict::Fail(format!(
            "kernel rejected the table ({e}), the reference accepts it"
        )),
        (KernelResult::Data { .. }, Err(why)) => Verdict::Fail(format!(
            "kernel accepted the table, the reference refuses it: {why}"
        )),
        (
            KernelResult::Data {
                ct_sha256,
                pt_sha256,
                excerpts: ex,
            },
            Ok(ours),
        ) => {
            if sha256(&ours) != *ct_sha256 {
                let mine = excerpts(&ours, case.sector_size as usize);
                let at = mine.iter().zip(ex).position(|(a, b)| a != b);
                return Verdict::Fail(match at {
                    Some(s) => format!(
                        "ciphertext differs from sector {s} (of {} bytes): kernel {} reference {}",
                        case.sector_size,
                        hex::encode(ex[s]),
                        hex::encode(mine[s])
                    ),
                    None => "ciphertext differs (first 16 bytes of every sector agree)".into(),
                });
            }
            // What a read should give is what the reference reads from that
            // ciphertext: the plaintext, except where the kernel itself does
            // not round-trip (lmk over a chain mode other than cbc).
            let expected = case.reference_readback(&ours, fault);
            if sha256(&expected) != *pt_sha256 {
                return Verdict::Fail(
                    if expected == case.plaintext() {
                        "the kernel did not decrypt its own ciphertext back"
                    } else {
                        "the kernel read back other bytes than the reference reads from the same ciphertext"
                    }
                    .into(),
                );
            }
            Verdict::Pass
        }
    }
}
