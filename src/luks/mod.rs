//! LUKS1 and LUKS2, the on-disk formats dm-crypt serves: headers read and
//! checked as cryptsetup checks them, key slots unlocked (PBKDF2 or
//! Argon2, the anti-forensic splitter, the digest), the data segment's
//! table, and offline creation and key management in cryptsetup's layout.
//!
//! Data flows as elsewhere: bytes -> [`Header`] (checked) -> a key slot's
//! key -> the volume key -> the engine for the data segment -> the CLI.

pub mod af;
pub mod dump;
/// The KDFs live in the text layer (vectors check them too).
pub use crate::kdf;
pub mod luks1;
pub mod luks2;
pub mod manage;
pub mod metadata;

use crate::engine::{Geometry, SectorCrypt};
use crate::iv::Direction;
use crate::key::Key;
use crate::spec::CipherSpec;
use crate::table::{CryptParams, Options};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use zeroize::Zeroizing;

/// Why a LUKS operation stopped; nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum LuksError {
    /// No LUKS magic.
    #[error("not a LUKS volume (no LUKS header at byte 0)")]
    NotLuks,
    /// The image ends before what its header describes.
    #[error("truncated image: {0}")]
    Truncated(String),
    /// A header or its metadata breaks a rule.
    #[error("invalid LUKS header: {0}")]
    Invalid(String),
    /// No key slot opened.
    #[error("no key slot opens with this passphrase")]
    WrongPassphrase,
    /// A key slot cannot be used or changed as asked.
    #[error("{0}")]
    Slot(String),
    /// Refused on purpose (an existing header or file system, a requirement).
    #[error("{0}")]
    Refused(String),
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LuksError {
    let what = what.into();
    move |source| LuksError::Io { what, source }
}

/// A LUKS header of either version.
#[derive(Clone, Debug)]
pub enum Header {
    /// LUKS1.
    V1(luks1::Header),
    /// LUKS2 (the copy that won).
    V2(Box<luks2::Header>),
}

/// The data segment: everything the dm-crypt table and the engine need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The dm-crypt cipher spec.
    pub cipher: String,
    /// Volume key bytes.
    pub key_bytes: usize,
    /// Start of the data, bytes.
    pub offset: u64,
    /// Length of the data, bytes (dynamic sizes resolved to the image end).
    pub size: u64,
    /// iv_offset of the table (LUKS2 iv_tweak), 512-byte sectors.
    pub iv_offset: u64,
    /// Encryption sector size, bytes.
    pub sector_size: u32,
    /// Persistent activation flags (LUKS2 config flags).
    pub flags: Options,
}

/// A key slot, as `dump` and the key commands see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    /// Slot number.
    pub id: u32,
    /// Whether it holds a key.
    pub active: bool,
    /// Its KDF and costs (active slots).
    pub kdf: Option<kdf::Kdf>,
    /// LUKS2 priority (0 ignore, 1 normal, 2 high).
    pub priority: u32,
}

/// An opened image: its file, its length and its checked header.
pub struct Image {
    /// The file or block device.
    pub file: File,
    /// Its length in bytes.
    pub len: u64,
    /// The header.
    pub header: Header,
    shown: String,
}

/// The length of a regular file or block device.
pub fn length_of(f: &File, shown: &str) -> Result<u64, LuksError> {
    use std::os::unix::fs::FileTypeExt;
    let m = f.metadata().map_err(io(format!("reading {shown}")))?;
    if m.file_type().is_block_device() {
        crate::sys::blockdev::size(f).map_err(io(format!("reading the size of {shown}")))
    } else if m.is_file() {
        Ok(m.len())
    } else {
        Err(LuksError::Refused(format!(
            "{shown} is neither a regular file nor a block device"
        )))
    }
}

impl Header {
    /// Read and check the header of an image of `len` bytes.
    pub fn read(f: &File, len: u64) -> Result<Header, LuksError> {
        let mut first = [0u8; 8];
        if len < 8 {
            return Err(LuksError::Truncated(format!("{len} bytes")));
        }
        f.read_exact_at(&mut first, 0)
            .map_err(io("reading the header"))?;
        let read = |at: u64, n: usize| -> std::io::Result<Vec<u8>> {
            let mut b = vec![0u8; n];
            f.read_exact_at(&mut b, at)?;
            Ok(b)
        };
        if luks1::Header::detect(&first) {
            let n = (luks1::HEADER_LEN as u64).min(len) as usize;
            let b = read(0, n).map_err(io("reading the header"))?;
            return Ok(Header::V1(luks1::Header::parse(&b, len)?));
        }
        if first[..6] == luks2::MAGIC_1ST {
            return Ok(Header::V2(Box::new(luks2::Header::read(read, len)?)));
        }
        // A primary header wiped or damaged beyond its magic: LUKS2's
        // secondary copy may still be there.
        luks2::Header::read(read, len)
            .map(|h| Header::V2(Box::new(h)))
            .map_err(|_| LuksError::NotLuks)
    }

    /// 1 or 2.
    pub fn version(&self) -> u8 {
        match self {
            Header::V1(_) => 1,
            Header::V2(_) => 2,
        }
    }

    /// The volume's UUID.
    pub fn uuid(&self) -> &str {
        match self {
            Header::V1(h) => &h.uuid,
            Header::V2(h) => &h.bin.uuid,
        }
    }

    /// The data segment of an image of `len` bytes.
    pub fn segment(&self, len: u64) -> Result<Segment, LuksError> {
        let bad = |m: String| LuksError::Invalid(m);
        let s = match self {
            Header::V1(h) => {
                let offset = u64::from(h.payload_offset) * 512;
                Segment {
                    cipher: h.cipher(),
                    key_bytes: h.key_bytes as usize,
                    offset,
                    size: len.saturating_sub(offset),
                    iv_offset: 0,
                    sector_size: 512,
                    flags: Options::default(),
                }
            }
            Header::V2(h) => {
                let m = &h.meta;
                let seg = m.data_segment().map_err(bad)?;
                let digest = m.digest_of_segment(&seg.id).map_err(bad)?;
                let key_bytes = m
                    .keyslots
                    .iter()
                    .find(|k| digest.keyslots.iter().any(|d| *d == k.id.to_string()))
                    .map(|k| k.key_size as usize)
                    .ok_or_else(|| bad("no key slot holds the volume key".into()))?;
                let size = match seg.size {
                    Some(n) => n,
                    None => len.saturating_sub(seg.offset),
                };
                let mut flags = Options::default();
                for f in &m.flags {
                    match f.as_str() {
                        "allow-discards" => flags.allow_discards = true,
                        "same-cpu-crypt" => flags.same_cpu_crypt = true,
                        "submit-from-crypt-cpus" => flags.submit_from_crypt_cpus = true,
                        "no-read-workqueue" => flags.no_read_workqueue = true,
                        "no-write-workqueue" => flags.no_write_workqueue = true,
                        "high_priority" => flags.high_priority = true,
                        // cryptsetup ignores flags it does not know.
                        _ => {}
                    }
                }
                if seg.sector_size > 4096 || !seg.sector_size.is_power_of_two() {
                    return Err(bad(format!(
                        "segment {} has a sector size of {}, which dm-crypt does not take",
                        seg.id, seg.sector_size
                    )));
                }
                Segment {
                    cipher: seg.encryption.clone(),
                    key_bytes,
                    offset: seg.offset,
                    size,
                    iv_offset: seg.iv_tweak,
                    sector_size: seg.sector_size,
                    flags,
                }
            }
        };
        if s.offset > len {
            return Err(LuksError::Truncated(format!(
                "the data starts at byte {}, the image has {len}",
                s.offset
            )));
        }
        if s.offset + s.size > len {
            return Err(LuksError::Truncated(format!(
                "the data segment ends at byte {}, the image has {len}",
                s.offset + s.size
            )));
        }
        Ok(s)
    }

    /// Every key slot, in number order (LUKS1: eight; LUKS2: those present).
    pub fn slots(&self) -> Vec<SlotInfo> {
        match self {
            Header::V1(h) => h
                .slots
                .iter()
                .enumerate()
                .map(|(i, s)| SlotInfo {
                    id: i as u32,
                    active: s.active(),
                    kdf: s.active().then(|| kdf::Kdf::Pbkdf2 {
                        hash: h.hash.clone(),
                        iterations: s.iterations,
                    }),
                    priority: 1,
                })
                .collect(),
            Header::V2(h) => h
                .meta
                .keyslots
                .iter()
                .map(|k| SlotInfo {
                    id: k.id,
                    active: true,
                    kdf: Some(k.kdf.clone()),
                    priority: k.priority,
                })
                .collect(),
        }
    }

    /// Whether `vk` is the volume key (the header's digest of it).
    pub fn check_volume_key(&self, vk: &[u8]) -> Result<bool, LuksError> {
        let bad = |m: String| LuksError::Invalid(m);
        Ok(match self {
            Header::V1(h) => {
                if vk.len() != h.key_bytes as usize {
                    return Ok(false);
                }
                let mut d = [0u8; 20];
                kdf::hash(&h.hash).map_err(bad)?.pbkdf2(
                    vk,
                    &h.mk_digest_salt,
                    h.mk_digest_iter,
                    &mut d,
                );
                d == h.mk_digest
            }
            Header::V2(h) => {
                let seg = h.meta.data_segment().map_err(bad)?;
                let d = h.meta.digest_of_segment(&seg.id).map_err(bad)?;
                let mut out = Zeroizing::new(vec![0u8; d.digest.len()]);
                kdf::hash(&d.hash)
                    .map_err(bad)?
                    .pbkdf2(vk, &d.salt, d.iterations, &mut out);
                *out == d.digest
            }
        })
    }
}

/// How a key slot's material is laid out and encrypted.
pub(crate) struct SlotArea {
    pub offset: u64,
    pub len: usize,
    pub cipher: String,
    pub area_key_bytes: usize,
    pub key_bytes: usize,
    pub stripes: usize,
    pub af_hash: String,
    pub kdf: kdf::Kdf,
    pub salt: Vec<u8>,
}

impl Header {
    /// The area of slot `id`, when it holds a key.
    pub(crate) fn slot_area(&self, id: u32) -> Result<SlotArea, LuksError> {
        let no = || LuksError::Slot(format!("key slot {id} is not in use"));
        match self {
            Header::V1(h) => {
                let s = h
                    .slots
                    .get(id as usize)
                    .filter(|s| s.active())
                    .ok_or_else(no)?;
                Ok(SlotArea {
                    offset: u64::from(s.offset) * 512,
                    len: (luks1::af_sectors(h.key_bytes, s.stripes) * 512) as usize,
                    cipher: h.cipher(),
                    area_key_bytes: h.key_bytes as usize,
                    key_bytes: h.key_bytes as usize,
                    stripes: s.stripes as usize,
                    af_hash: h.hash.clone(),
                    kdf: kdf::Kdf::Pbkdf2 {
                        hash: h.hash.clone(),
                        iterations: s.iterations,
                    },
                    salt: s.salt.to_vec(),
                })
            }
            Header::V2(h) => {
                let k = h.meta.keyslots.iter().find(|k| k.id == id).ok_or_else(no)?;
                let len = (u64::from(k.key_size) * u64::from(k.stripes)).div_ceil(512) * 512;
                if k.stripes == 0 || k.key_size == 0 || len > k.area_size {
                    return Err(LuksError::Invalid(format!(
                        "key slot {id}: {} stripes of a {}-byte key do not fit its {}-byte area",
                        k.stripes, k.key_size, k.area_size
                    )));
                }
                Ok(SlotArea {
                    offset: k.area_offset,
                    len: len as usize,
                    cipher: k.area_encryption.clone(),
                    area_key_bytes: k.area_key_size as usize,
                    key_bytes: k.key_size as usize,
                    stripes: k.stripes as usize,
                    af_hash: k.af_hash.clone(),
                    kdf: k.kdf.clone(),
                    salt: k.salt.clone(),
                })
            }
        }
    }
}

/// The engine of a key slot area: its cipher with the area key, 512-byte
/// sectors from 0, as cryptsetup encrypts key material.
pub(crate) fn area_engine(cipher: &str, key: &[u8]) -> Result<SectorCrypt, LuksError> {
    let spec = CipherSpec::parse(cipher).map_err(|e| LuksError::Invalid(e.to_string()))?;
    SectorCrypt::new(&spec, &Key::from_bytes(key), Geometry::default())
        .map_err(|e| LuksError::Invalid(format!("key slot cipher {cipher}: {e}")))
}

impl Image {
    /// Open `path` (read-only unless `write`) and read its header.
    pub fn open(path: &Path, write: bool) -> Result<Image, LuksError> {
        let shown = crate::redact::for_terminal(&path.display().to_string());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
            .map_err(io(format!("opening {shown}")))?;
        let len = length_of(&file, &shown)?;
        let header = Header::read(&file, len)?;
        Ok(Image {
            file,
            len,
            header,
            shown,
        })
    }

    /// The same image read again (after a write changed its header).
    pub fn open_file(image: &Image) -> Result<Image, LuksError> {
        let file = image
            .file
            .try_clone()
            .map_err(io(format!("reopening {}", image.shown)))?;
        let header = Header::read(&file, image.len)?;
        Ok(Image {
            file,
            len: image.len,
            header,
            shown: image.shown.clone(),
        })
    }

    /// The image as it was named, for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Try `passphrase` on key slot `slot`, or on every slot in priority
    /// order (high first; priority 0 only when named), with Argon2 memory
    /// capped at `memory_limit_kib`. Returns the slot and the volume key.
    pub fn unlock(
        &self,
        passphrase: &[u8],
        slot: Option<u32>,
        memory_limit_kib: u32,
    ) -> Result<(u32, Zeroizing<Vec<u8>>), LuksError> {
        let mut order: Vec<SlotInfo> = self
            .header
            .slots()
            .into_iter()
            .filter(|s| s.active)
            .collect();
        if let Some(n) = slot {
            order.retain(|s| s.id == n);
            if order.is_empty() {
                return Err(LuksError::Slot(format!("key slot {n} is not in use")));
            }
        } else {
            order.retain(|s| s.priority > 0);
            order.sort_by_key(|s| std::cmp::Reverse(s.priority));
        }
        if order.is_empty() {
            return Err(LuksError::Slot("no key slot is in use".into()));
        }
        for s in order {
            if let Some(vk) = self.try_slot(s.id, passphrase, memory_limit_kib)? {
                return Ok((s.id, vk));
            }
        }
        Err(LuksError::WrongPassphrase)
    }

    /// The volume key from slot `id` with `passphrase`, or `None` when the
    /// passphrase is not this slot's.
    pub fn try_slot(
        &self,
        id: u32,
        passphrase: &[u8],
        memory_limit_kib: u32,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, LuksError> {
        let a = self.header.slot_area(id)?;
        a.kdf
            .check(memory_limit_kib)
            .map_err(|e| LuksError::Slot(format!("key slot {id}: {e}")))?;
        let hash = kdf::hash(&a.af_hash).map_err(LuksError::Invalid)?;
        if a.offset + a.len as u64 > self.len {
            return Err(LuksError::Truncated(format!(
                "key slot {id}'s material ends at byte {}, the image has {}",
                a.offset + a.len as u64,
                self.len
            )));
        }
        let key = a
            .kdf
            .derive(passphrase, &a.salt, a.area_key_bytes)
            .map_err(|e| LuksError::Slot(format!("key slot {id}: {e}")))?;
        let mut material = Zeroizing::new(vec![0u8; a.len]);
        self.file
            .read_exact_at(&mut material, a.offset)
            .map_err(io(format!("reading key slot {id}")))?;
        area_engine(&a.cipher, &key)?
            .crypt(0, &mut material, Direction::Decrypt)
            .map_err(|e| LuksError::Invalid(format!("key slot {id}: {e}")))?;
        let vk = af::merge(&material, a.key_bytes, a.stripes, hash);
        Ok(self.header.check_volume_key(&vk)?.then_some(vk))
    }

    /// The data segment.
    pub fn segment(&self) -> Result<Segment, LuksError> {
        self.header.segment(self.len)
    }

    /// The engine for the data with volume key `vk`.
    pub fn data_engine(&self, vk: &[u8]) -> Result<SectorCrypt, LuksError> {
        let s = self.segment()?;
        let spec = CipherSpec::parse(&s.cipher).map_err(|e| LuksError::Invalid(e.to_string()))?;
        let g = Geometry {
            sector_size: s.sector_size,
            iv_offset: s.iv_offset,
            iv_large_sectors: false,
        };
        SectorCrypt::new(&spec, &Key::from_bytes(vk), g)
            .map_err(|e| LuksError::Invalid(format!("data segment: {e}")))
    }

    /// The crypt parameters cryptsetup loads for this volume on `device`:
    /// its cipher, the volume key, iv_tweak as iv_offset, the data offset,
    /// the sector size and the persistent flags.
    pub fn table_params(&self, vk: &[u8], device: &str) -> Result<CryptParams, LuksError> {
        let s = self.segment()?;
        if let Header::V2(h) = &self.header
            && !h.meta.requirements.is_empty()
        {
            return Err(LuksError::Refused(format!(
                "the volume has requirements dmch does not meet: {}",
                h.meta.requirements.join(", ")
            )));
        }
        let spec = CipherSpec::parse(&s.cipher).map_err(|e| LuksError::Invalid(e.to_string()))?;
        let mut opts = s.flags.clone();
        opts.sector_size = (s.sector_size != 512).then_some(s.sector_size);
        Ok(CryptParams::new(spec, Key::from_bytes(vk), device)
            .with_iv_offset(s.iv_offset)
            .with_offset(s.offset / 512)
            .with_options(opts))
    }
}
