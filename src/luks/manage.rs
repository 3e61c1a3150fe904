//! Offline creation and key management in cryptsetup's layout: format
//! (LUKS1 or LUKS2, optionally from a plain image in one pass), add a key,
//! kill a slot, remove or change a key. Everything is computed first
//! (KDF, splitter, encryption); only then is anything written: key
//! material into free space before the header that names it, a header
//! that forgets a slot before its material is wiped.

use super::kdf::{self, Kdf};
use super::metadata::{BIN_LEN, METADATA_SIZES};
use super::{Header, Image, LuksError, af, area_engine, io, luks1, luks2};
use crate::iv::Direction;
use base64::Engine;
use serde_json::{Value, json};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How a new key slot derives its key: the KDF, and its costs given or
/// found by timing this machine (as cryptsetup's --iter-time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KdfChoice {
    /// `pbkdf2`, `argon2i` or `argon2id`.
    pub kind: String,
    /// PBKDF2's hash.
    pub hash: String,
    /// Target time for one unlock, in milliseconds.
    pub iter_time_ms: u32,
    /// PBKDF2 iterations or Argon2 time cost, without timing.
    pub force_iterations: Option<u32>,
    /// Argon2 memory, KiB.
    pub memory_kib: Option<u32>,
    /// Argon2 lanes.
    pub parallel: Option<u32>,
}

impl KdfChoice {
    /// cryptsetup's defaults for a LUKS version: LUKS2 argon2id, LUKS1
    /// pbkdf2 with sha256; two seconds an unlock.
    pub fn default_for(version: u8) -> Self {
        KdfChoice {
            kind: if version == 1 { "pbkdf2" } else { "argon2id" }.into(),
            hash: "sha256".into(),
            iter_time_ms: 2000,
            force_iterations: None,
            memory_kib: None,
            parallel: None,
        }
    }

    /// The KDF with its costs, timed here when not forced.
    pub fn resolve(&self, key_len: usize) -> Result<Kdf, LuksError> {
        let bad = |m: String| LuksError::Refused(m);
        if self.iter_time_ms == 0 && self.force_iterations.is_none() {
            return Err(bad("--iter-time must be at least 1 ms".into()));
        }
        let target = Duration::from_millis(u64::from(self.iter_time_ms));
        match self.kind.as_str() {
            "pbkdf2" => {
                let h = kdf::hash(&self.hash).map_err(bad)?;
                let iterations = match self.force_iterations {
                    Some(n) if n >= 1 => n,
                    Some(_) => {
                        return Err(bad("--pbkdf-force-iterations must be at least 1".into()));
                    }
                    None => pbkdf2_iterations(h, key_len, target),
                };
                Ok(Kdf::Pbkdf2 {
                    hash: self.hash.clone(),
                    iterations,
                })
            }
            "argon2i" | "argon2id" => {
                let cpus = self.parallel.unwrap_or_else(|| {
                    std::thread::available_parallelism().map_or(1, |n| n.get().min(4) as u32)
                });
                let memory_kib = self.memory_kib.unwrap_or_else(default_argon2_memory);
                let k = |time| Kdf::Argon2 {
                    id: self.kind == "argon2id",
                    time,
                    memory_kib,
                    cpus,
                };
                k(1).check(u32::MAX).map_err(bad)?;
                let time = match self.force_iterations {
                    Some(n) if n >= 1 => n,
                    Some(_) => {
                        return Err(bad("--pbkdf-force-iterations must be at least 1".into()));
                    }
                    None => argon2_time(&k(1), key_len, target)?,
                };
                Ok(k(time))
            }
            other => Err(bad(format!(
                "--pbkdf {other} is not pbkdf2, argon2i or argon2id"
            ))),
        }
    }
}

/// cryptsetup's Argon2 memory: 1 GiB, or half the machine's memory when
/// that is less.
fn default_argon2_memory() -> u32 {
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(2 << 20);
    (total_kib / 2).min(1 << 20) as u32
}

/// Iterations of PBKDF2 that take `target` here (at least 1000, as
/// cryptsetup's minimum).
fn pbkdf2_iterations(h: &kdf::LuksHash, key_len: usize, target: Duration) -> u32 {
    let mut out = vec![0u8; key_len];
    let mut n: u32 = 1000;
    loop {
        let t = Instant::now();
        h.pbkdf2(b"benchmark", &[0u8; 32], n, &mut out);
        let took = t.elapsed();
        if took >= Duration::from_millis(50) || n >= 1 << 30 {
            let per = took.as_secs_f64() / f64::from(n);
            return ((target.as_secs_f64() / per) as u64).clamp(1000, u64::from(u32::MAX)) as u32;
        }
        n = n.saturating_mul(4);
    }
}

/// Argon2 passes that take `target` with the given memory (at least 4,
/// cryptsetup's minimum).
fn argon2_time(one_pass: &Kdf, key_len: usize, target: Duration) -> Result<u32, LuksError> {
    let t = Instant::now();
    one_pass
        .derive(b"benchmark", &[0u8; 32], key_len)
        .map_err(LuksError::Refused)?;
    let per = t.elapsed().as_secs_f64().max(1e-6);
    Ok(((target.as_secs_f64() / per) as u64).clamp(4, u64::from(u32::MAX)) as u32)
}

fn random(n: usize) -> Result<Zeroizing<Vec<u8>>, LuksError> {
    let mut b = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut b).map_err(|e| LuksError::Refused(format!("no random bytes: {e}")))?;
    Ok(b)
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The volume key digest's iterations: timed for 125 ms as cryptsetup
/// does, or its minimum of 1000 when the key slot's costs were forced
/// (images for tests, built fast).
fn digest_iterations(o: &FormatOptions, h: &kdf::LuksHash, len: usize) -> u32 {
    if o.kdf.force_iterations.is_some() {
        1000
    } else {
        pbkdf2_iterations(h, len, Duration::from_millis(125))
    }
}

/// A random RFC 4122 version 4 UUID.
pub fn new_uuid() -> Result<String, LuksError> {
    let mut b = *random(16)?.first_chunk::<16>().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// Whether `s` is a UUID in its text form.
pub fn valid_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Key material for `vk` in a slot: the splitter's stripes encrypted with
/// the key `passphrase` derives, padded to `len` bytes of area.
/// Where a slot's material goes: the area cipher, the splitter's stripes
/// and hash, the area's length.
struct Area<'a> {
    cipher: &'a str,
    stripes: usize,
    af_hash: &'a str,
    len: usize,
}

fn seal(
    vk: &[u8],
    passphrase: &[u8],
    kdf: &Kdf,
    salt: &[u8],
    a: Area,
) -> Result<Zeroizing<Vec<u8>>, LuksError> {
    let Area {
        cipher,
        stripes,
        af_hash,
        len,
    } = a;
    let h = kdf::hash(af_hash).map_err(LuksError::Invalid)?;
    let key = kdf
        .derive(passphrase, salt, vk.len())
        .map_err(LuksError::Refused)?;
    let split = af::split(vk, stripes, h).map_err(LuksError::Refused)?;
    let mut area = Zeroizing::new(vec![0u8; len]);
    area[..split.len()].copy_from_slice(&split);
    let sectors = split.len().div_ceil(512) * 512;
    area_engine(cipher, &key)?
        .crypt(0, &mut area[..sectors], Direction::Encrypt)
        .map_err(|e| LuksError::Invalid(e.to_string()))?;
    Ok(area)
}

/// What `format` builds.
#[derive(Clone, Debug)]
pub struct FormatOptions {
    /// 1 or 2.
    pub version: u8,
    /// The dm-crypt cipher spec (`aes-xts-plain64`).
    pub cipher: String,
    /// Volume key bytes.
    pub key_bytes: usize,
    /// LUKS2 encryption sector size (`None`: 4096 when the data allows).
    pub sector_size: Option<u32>,
    /// The first key slot's KDF.
    pub kdf: KdfChoice,
    /// The UUID (`None`: a new one).
    pub uuid: Option<String>,
    /// LUKS2 label and subsystem.
    pub label: String,
    /// LUKS2 subsystem.
    pub subsystem: String,
    /// The volume key to store (`None`: a new random one).
    pub volume_key: Option<Zeroizing<Vec<u8>>>,
    /// Data offset in bytes (`None`: cryptsetup's, 16 MiB for LUKS2).
    pub offset: Option<u64>,
    /// LUKS2 metadata size (binary header and JSON area), bytes.
    pub metadata_size: u64,
    /// LUKS2 persistent flags (`allow-discards`, ...).
    pub flags: Vec<String>,
}

/// A formatted header: the bytes from 0 to the data offset, ready to
/// write, and what was chosen.
pub struct Formatted {
    /// Header, key slot areas, zeros: everything before the data.
    pub bytes: Zeroizing<Vec<u8>>,
    /// Where the data starts, bytes.
    pub offset: u64,
    /// The volume key.
    pub volume_key: Zeroizing<Vec<u8>>,
    /// The encryption sector size.
    pub sector_size: u32,
    /// The UUID.
    pub uuid: String,
    /// The data cipher spec.
    pub cipher: String,
}

/// How much data the new volume holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSize {
    /// An existing image of this many bytes: the data is what follows the header.
    Device(u64),
    /// This many bytes of plaintext will follow the header (`--from`).
    Plain(u64),
}

/// The data offset `format` will choose, bytes.
pub fn planned_offset(o: &FormatOptions) -> u64 {
    match (o.version, o.offset) {
        (_, Some(b)) => b,
        (1, None) => u64::from(luks1::Header::layout(o.key_bytes as u32, None).1) * 512,
        _ => 16 << 20,
    }
}

impl Formatted {
    /// The engine for the new volume's data.
    pub fn engine(&self) -> Result<crate::engine::SectorCrypt, LuksError> {
        let spec = crate::spec::CipherSpec::parse(&self.cipher)
            .map_err(|e| LuksError::Refused(e.to_string()))?;
        crate::engine::SectorCrypt::new(
            &spec,
            &crate::key::Key::from_bytes(&self.volume_key),
            crate::engine::Geometry {
                sector_size: self.sector_size,
                ..Default::default()
            },
        )
        .map_err(|e| LuksError::Refused(e.to_string()))
    }
}

/// Build a header for `size` with `passphrase` in key slot 0.
pub fn format(
    o: &FormatOptions,
    passphrase: &[u8],
    size: DataSize,
) -> Result<Formatted, LuksError> {
    let bad = |m: String| LuksError::Refused(m);
    let offset = planned_offset(o);
    let data_len = match size {
        DataSize::Plain(n) => Some(n),
        DataSize::Device(total) if total <= offset => {
            return Err(bad(format!(
                "the image has {total} bytes; its header alone takes {offset} (the data starts there)"
            )));
        }
        DataSize::Device(total) => Some(total - offset),
    };
    let vk = match &o.volume_key {
        Some(k) if k.len() != o.key_bytes => {
            return Err(bad(format!(
                "the volume key has {} bytes, the key size asks for {}",
                k.len(),
                o.key_bytes
            )));
        }
        Some(k) => k.clone(),
        None => random(o.key_bytes)?,
    };
    let uuid = match &o.uuid {
        Some(u) if !valid_uuid(u) => return Err(bad(format!("--uuid {u} is not a UUID"))),
        Some(u) => u.to_lowercase(),
        None => new_uuid()?,
    };
    let sector_size = match (o.version, o.sector_size) {
        (1, Some(n)) if n != 512 => return Err(bad("LUKS1 has 512-byte sectors only".into())),
        (1, _) => 512,
        (_, Some(n)) => n,
        (_, None) if data_len.is_none_or(|n| n % 4096 == 0) => 4096,
        (_, None) => 512,
    };
    if !(512..=4096).contains(&sector_size) || !sector_size.is_power_of_two() {
        return Err(bad(format!(
            "--sector-size {sector_size} is not a power of two from 512 to 4096"
        )));
    }
    if let Some(n) = data_len
        && n % u64::from(sector_size) != 0
    {
        return Err(bad(format!(
            "the data is {n} bytes, not a whole number of {sector_size}-byte sectors"
        )));
    }
    // The data cipher must take this key: built once, as the kernel would.
    let spec = crate::spec::CipherSpec::parse(&o.cipher).map_err(|e| bad(e.to_string()))?;
    crate::engine::SectorCrypt::new(
        &spec,
        &crate::key::Key::from_bytes(&vk),
        crate::engine::Geometry {
            sector_size,
            ..Default::default()
        },
    )
    .map_err(|e| bad(format!("{}: {e}", o.cipher)))?;
    let kdf = o.kdf.resolve(o.key_bytes)?;
    let salt = random(32)?;
    let f = match o.version {
        1 => format1(o, &vk, passphrase, &kdf, &salt, uuid.clone())?,
        2 => format2(o, &vk, passphrase, &kdf, &salt, &uuid, sector_size)?,
        v => return Err(bad(format!("--type luks{v}: LUKS1 or LUKS2 only"))),
    };
    Ok(Formatted {
        bytes: f.0,
        offset: f.1,
        volume_key: vk,
        sector_size,
        uuid,
        cipher: o.cipher.clone(),
    })
}

fn format1(
    o: &FormatOptions,
    vk: &[u8],
    passphrase: &[u8],
    kdf: &Kdf,
    salt: &[u8],
    uuid: String,
) -> Result<(Zeroizing<Vec<u8>>, u64), LuksError> {
    let Kdf::Pbkdf2 { hash, iterations } = kdf else {
        return Err(LuksError::Refused(
            "LUKS1 key slots use pbkdf2 (--pbkdf pbkdf2)".into(),
        ));
    };
    let key_bytes = o.key_bytes as u32;
    if key_bytes == 0 || key_bytes > luks1::MAX_KEY_BYTES {
        return Err(LuksError::Refused(format!(
            "a {key_bytes}-byte key is not one LUKS1 takes"
        )));
    }
    let payload = o.offset.map(|b| (b / 512) as u32);
    if o.offset
        .is_some_and(|b| b % 512 != 0 || b / 512 > u64::from(u32::MAX))
    {
        return Err(LuksError::Refused(
            "the data offset must be whole 512-byte sectors".into(),
        ));
    }
    let (offsets, payload) = luks1::Header::layout(key_bytes, payload);
    let (name, mode) = o
        .cipher
        .split_once('-')
        .ok_or_else(|| LuksError::Refused(format!("{} has no cipher mode for LUKS1", o.cipher)))?;
    let h = kdf::hash(hash).map_err(LuksError::Refused)?;
    let mk_salt = random(32)?;
    let mk_iter = digest_iterations(o, h, 20);
    let mut mk_digest = [0u8; 20];
    h.pbkdf2(vk, &mk_salt, mk_iter, &mut mk_digest);
    let per = (luks1::af_sectors(key_bytes, luks1::STRIPES) * 512) as usize;
    let mut header = luks1::Header {
        cipher_name: name.to_string(),
        cipher_mode: mode.to_string(),
        hash: hash.clone(),
        payload_offset: payload,
        key_bytes,
        mk_digest,
        mk_digest_salt: mk_salt[..].try_into().unwrap(),
        mk_digest_iter: mk_iter,
        uuid,
        slots: offsets
            .iter()
            .map(|&offset| luks1::Slot {
                state: luks1::SLOT_INACTIVE,
                iterations: 0,
                salt: [0; 32],
                offset,
                stripes: luks1::STRIPES,
            })
            .collect(),
    };
    header.slots[0].state = luks1::SLOT_ACTIVE;
    header.slots[0].iterations = *iterations;
    header.slots[0].salt = salt.try_into().unwrap();
    let total = u64::from(payload) * 512;
    header
        .check(total.max(u64::from(offsets[7]) * 512 + per as u64))
        .map_err(|e| LuksError::Refused(format!("the layout: {e}")))?;
    let area = seal(
        vk,
        passphrase,
        kdf,
        salt,
        Area {
            cipher: &o.cipher,
            stripes: luks1::STRIPES as usize,
            af_hash: hash,
            len: per,
        },
    )?;
    let mut bytes = Zeroizing::new(vec![0u8; total as usize]);
    bytes[..luks1::HEADER_LEN].copy_from_slice(&header.to_bytes()?);
    let at = u64::from(offsets[0]) as usize * 512;
    bytes[at..at + per].copy_from_slice(&area);
    Ok((bytes, total))
}

/// The LUKS2 area for a key: the splitter's output rounded up to 4 KiB.
fn area_size(key_bytes: usize, stripes: usize) -> u64 {
    ((key_bytes * stripes) as u64).div_ceil(4096) * 4096
}

fn kdf_json(kdf: &Kdf, salt: &[u8]) -> Value {
    match kdf {
        Kdf::Pbkdf2 { hash, iterations } => {
            json!({"type": "pbkdf2", "hash": hash, "iterations": iterations, "salt": b64(salt)})
        }
        Kdf::Argon2 {
            time,
            memory_kib,
            cpus,
            ..
        } => json!({
            "type": kdf.type_name(), "time": time, "memory": memory_kib, "cpus": cpus, "salt": b64(salt)
        }),
    }
}

fn keyslot_json(
    key_bytes: usize,
    cipher: &str,
    offset: u64,
    size: u64,
    kdf: &Kdf,
    salt: &[u8],
) -> Value {
    json!({
        "type": "luks2",
        "key_size": key_bytes,
        "af": {"type": "luks1", "stripes": 4000, "hash": "sha256"},
        "area": {
            "type": "raw", "offset": offset.to_string(), "size": size.to_string(),
            "encryption": cipher, "key_size": key_bytes,
        },
        "kdf": kdf_json(kdf, salt),
    })
}

fn format2(
    o: &FormatOptions,
    vk: &[u8],
    passphrase: &[u8],
    kdf: &Kdf,
    salt: &[u8],
    uuid: &str,
    sector_size: u32,
) -> Result<(Zeroizing<Vec<u8>>, u64), LuksError> {
    let bad = |m: String| LuksError::Refused(m);
    let metadata = o.metadata_size;
    if !METADATA_SIZES.contains(&metadata) {
        return Err(bad(format!(
            "--luks2-metadata-size {metadata} is not one LUKS2 allows (16 KiB to 4 MiB, powers of two)"
        )));
    }
    let offset = o.offset.unwrap_or(16 << 20);
    if !offset.is_multiple_of(4096) {
        return Err(bad(
            "the LUKS2 data offset must be a multiple of 4096 bytes".into(),
        ));
    }
    let keyslots_size = offset
        .checked_sub(2 * metadata)
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            bad(format!(
                "a data offset of {offset} bytes leaves no room for key slots"
            ))
        })?
        .min(super::metadata::MAX_KEYSLOTS_SIZE);
    let size = area_size(vk.len(), 4000);
    let area_at = 2 * metadata;
    if area_at + size > 2 * metadata + keyslots_size {
        return Err(bad(format!(
            "the key slots area ({keyslots_size} bytes) cannot hold a {size}-byte key slot"
        )));
    }
    let d_salt = random(32)?;
    let d_iter = digest_iterations(o, kdf::hash("sha256").expect("sha256"), 32);
    let mut digest = [0u8; 32];
    kdf::hash("sha256")
        .expect("sha256")
        .pbkdf2(vk, &d_salt, d_iter, &mut digest);
    let mut config = json!({"json_size": (metadata - BIN_LEN).to_string(), "keyslots_size": keyslots_size.to_string()});
    if !o.flags.is_empty() {
        config["flags"] = json!(o.flags);
    }
    let doc = json!({
        "keyslots": {"0": keyslot_json(vk.len(), &o.cipher, area_at, size, kdf, salt)},
        "tokens": {},
        "segments": {"0": {
            "type": "crypt", "offset": offset.to_string(), "size": "dynamic", "iv_tweak": "0",
            "encryption": o.cipher, "sector_size": sector_size,
        }},
        "digests": {"0": {
            "type": "pbkdf2", "keyslots": ["0"], "segments": ["0"], "hash": "sha256",
            "iterations": d_iter, "salt": b64(&d_salt), "digest": b64(&digest),
        }},
        "config": config,
    });
    let bin = luks2::BinHeader {
        hdr_size: metadata,
        seqid: 1,
        label: o.label.clone(),
        checksum_alg: "sha256".into(),
        salt: [0; 64],
        uuid: uuid.to_string(),
        subsystem: o.subsystem.clone(),
        hdr_offset: 0,
    };
    let headers = luks2::Header::to_bytes(&bin, &doc)?;
    let area = seal(
        vk,
        passphrase,
        kdf,
        salt,
        Area {
            cipher: &o.cipher,
            stripes: 4000,
            af_hash: "sha256",
            len: size as usize,
        },
    )?;
    let mut bytes = Zeroizing::new(vec![0u8; offset as usize]);
    bytes[..headers.len()].copy_from_slice(&headers);
    bytes[area_at as usize..(area_at + size) as usize].copy_from_slice(&area);
    // What cryptsetup would accept: the same reader checks it now.
    let image = bytes.to_vec();
    luks2::Header::read(
        |at, n| Ok(image[at as usize..at as usize + n].to_vec()),
        offset.max(image.len() as u64),
    )
    .map_err(|e| bad(format!("the new header does not check: {e}")))?;
    Ok((bytes, offset))
}

/// Write `b` at `at` of the image and make it durable.
fn write(image: &Image, b: &[u8], at: u64, what: &str) -> Result<(), LuksError> {
    image
        .file
        .write_all_at(b, at)
        .map_err(io(format!("writing {what} of {}", image.shown())))?;
    image
        .file
        .sync_data()
        .map_err(io(format!("syncing {}", image.shown())))
}

/// Rewrite a LUKS2 header with `doc`, seqid one up, after checking that
/// `doc` is metadata cryptsetup accepts.
fn write_luks2(image: &Image, h: &luks2::Header, doc: &Value) -> Result<(), LuksError> {
    let text = serde_json::to_vec(doc).map_err(|e| LuksError::Invalid(e.to_string()))?;
    super::metadata::Metadata::validate(doc.clone(), h.meta.json_size, text.len() as u64)
        .map_err(|e| LuksError::Invalid(format!("the new metadata: {e}")))?;
    let mut bin = h.bin.clone();
    bin.seqid += 1;
    let b = luks2::Header::to_bytes(&bin, doc)?;
    let half = b.len() / 2;
    write(image, &b[..half], 0, "the primary header")?;
    write(image, &b[half..], half as u64, "the secondary header")
}

/// The lowest 4 KiB-aligned offset in the key slots area where `size`
/// bytes overlap no key slot's area.
fn find_gap(m: &super::metadata::Metadata, size: u64) -> Result<u64, LuksError> {
    let start = 2 * (m.json_size + BIN_LEN);
    let end = start + m.keyslots_size;
    let taken: Vec<(u64, u64)> = m.doc["keyslots"]
        .as_object()
        .into_iter()
        .flat_map(|k| k.values())
        .filter_map(|k| {
            let a = &k["area"];
            Some((
                a["offset"].as_str()?.parse().ok()?,
                a["size"].as_str()?.parse().ok()?,
            ))
        })
        .collect();
    let mut at = start;
    loop {
        if at + size > end {
            return Err(LuksError::Slot("no room left in the key slots area".into()));
        }
        match taken.iter().find(|(o, n)| at < o + n && *o < at + size) {
            Some((o, n)) => at = (o + n).next_multiple_of(4096),
            None => return Ok(at),
        }
    }
}

/// The KDF of a new slot of `header`: LUKS1 slots are PBKDF2 with the
/// header's own hash, whatever hash was asked for.
fn slot_kdf(header: &Header, choice: &KdfChoice, key_len: usize) -> Result<Kdf, LuksError> {
    match header {
        Header::V1(h) => {
            if choice.kind != "pbkdf2" {
                return Err(LuksError::Refused(
                    "LUKS1 key slots use pbkdf2 (--pbkdf pbkdf2)".into(),
                ));
            }
            KdfChoice {
                hash: h.hash.clone(),
                ..choice.clone()
            }
            .resolve(key_len)
        }
        Header::V2(_) => choice.resolve(key_len),
    }
}

/// Store `vk` under `passphrase` in slot `slot` (`None`: the first free
/// one). Returns the slot.
pub fn add_key(
    image: &Image,
    vk: &[u8],
    passphrase: &[u8],
    slot: Option<u32>,
    choice: &KdfChoice,
) -> Result<u32, LuksError> {
    if !image.header.check_volume_key(vk)? {
        return Err(LuksError::Slot("that is not this volume's key".into()));
    }
    let slots = image.header.slots();
    let max = match image.header {
        Header::V1(_) => luks1::SLOTS as u32,
        Header::V2(_) => 32,
    };
    let id = match slot {
        Some(n) if n >= max => {
            return Err(LuksError::Slot(format!(
                "key slot {n} does not exist (0 to {})",
                max - 1
            )));
        }
        Some(n) if slots.iter().any(|s| s.id == n && s.active) => {
            return Err(LuksError::Slot(format!("key slot {n} is in use")));
        }
        Some(n) => n,
        None => (0..max)
            .find(|n| !slots.iter().any(|s| s.id == *n && s.active))
            .ok_or_else(|| LuksError::Slot("every key slot is in use".into()))?,
    };
    let kdf = slot_kdf(&image.header, choice, vk.len())?;
    let salt = random(32)?;
    match &image.header {
        Header::V1(h) => {
            let Kdf::Pbkdf2 { iterations, .. } = &kdf else {
                unreachable!("slot_kdf gives LUKS1 pbkdf2")
            };
            let s = &h.slots[id as usize];
            let len = (luks1::af_sectors(h.key_bytes, s.stripes) * 512) as usize;
            let area = seal(
                vk,
                passphrase,
                &kdf,
                &salt,
                Area {
                    cipher: &h.cipher(),
                    stripes: s.stripes as usize,
                    af_hash: &h.hash,
                    len,
                },
            )?;
            let mut new = h.clone();
            new.slots[id as usize].state = luks1::SLOT_ACTIVE;
            new.slots[id as usize].iterations = *iterations;
            new.slots[id as usize].salt = salt[..].try_into().unwrap();
            write(
                image,
                &area,
                u64::from(s.offset) * 512,
                &format!("key slot {id}"),
            )?;
            write(image, &new.to_bytes()?, 0, "the header")?;
        }
        Header::V2(h) => {
            let m = &h.meta;
            let seg = m.data_segment().map_err(LuksError::Invalid)?;
            let digest = m.digest_of_segment(&seg.id).map_err(LuksError::Invalid)?;
            let size = area_size(vk.len(), 4000);
            let at = find_gap(m, size)?;
            let area = seal(
                vk,
                passphrase,
                &kdf,
                &salt,
                Area {
                    cipher: &seg.encryption,
                    stripes: 4000,
                    af_hash: "sha256",
                    len: size as usize,
                },
            )?;
            let mut doc = m.doc.clone();
            doc["keyslots"][id.to_string()] =
                keyslot_json(vk.len(), &seg.encryption, at, size, &kdf, &salt);
            doc["digests"][&digest.id]["keyslots"]
                .as_array_mut()
                .expect("validated")
                .push(json!(id.to_string()));
            write(image, &area, at, &format!("key slot {id}"))?;
            write_luks2(image, h, &doc)?;
        }
    }
    Ok(id)
}

/// Forget slot `id` and wipe its key material. The last slot in use only
/// with `last_ok` (the volume could never be opened again).
pub fn kill_slot(image: &Image, id: u32, last_ok: bool) -> Result<(), LuksError> {
    let slots = image.header.slots();
    if !slots.iter().any(|s| s.id == id && s.active) {
        return Err(LuksError::Slot(format!("key slot {id} is not in use")));
    }
    if slots.iter().filter(|s| s.active).count() == 1 && !last_ok {
        return Err(LuksError::Refused(format!(
            "key slot {id} is the last one in use: without it nothing opens the volume (--force to do it anyway)"
        )));
    }
    let a = image.header.slot_area(id)?;
    match &image.header {
        Header::V1(h) => {
            let mut new = h.clone();
            new.slots[id as usize].state = luks1::SLOT_INACTIVE;
            new.slots[id as usize].iterations = 0;
            new.slots[id as usize].salt = [0; 32];
            write(image, &new.to_bytes()?, 0, "the header")?;
        }
        Header::V2(h) => {
            let mut doc = h.meta.doc.clone();
            doc["keyslots"]
                .as_object_mut()
                .expect("validated")
                .remove(&id.to_string());
            for d in doc["digests"]
                .as_object_mut()
                .expect("validated")
                .values_mut()
            {
                if let Some(ks) = d["keyslots"].as_array_mut() {
                    ks.retain(|k| k.as_str() != Some(&id.to_string()));
                }
            }
            for t in doc["tokens"]
                .as_object_mut()
                .expect("validated")
                .values_mut()
            {
                if let Some(ks) = t["keyslots"].as_array_mut() {
                    ks.retain(|k| k.as_str() != Some(&id.to_string()));
                }
            }
            write_luks2(image, h, &doc)?;
        }
    }
    write(
        image,
        &random(a.len)?,
        a.offset,
        &format!("the wiped key slot {id}"),
    )
}

/// Put `new_passphrase` in place of the passphrase of slot `id` (which
/// `vk` came from). LUKS2 keeps the slot number, its new material in a
/// free area first; LUKS1 uses a free slot when there is one, else
/// rewrites the slot in place. Returns the slot that now holds the key.
pub fn change_key(
    image: &Image,
    id: u32,
    vk: &[u8],
    new_passphrase: &[u8],
    choice: &KdfChoice,
) -> Result<u32, LuksError> {
    if !image.header.check_volume_key(vk)? {
        return Err(LuksError::Slot("that is not this volume's key".into()));
    }
    let old = image.header.slot_area(id)?;
    match &image.header {
        Header::V1(h) => {
            if let Some(free) = h.slots.iter().position(|s| !s.active()) {
                let n = add_key(image, vk, new_passphrase, Some(free as u32), choice)?;
                let again = Image::open_file(image)?;
                kill_slot(&again, id, true)?;
                return Ok(n);
            }
            let kdf = slot_kdf(&image.header, choice, vk.len())?;
            let Kdf::Pbkdf2 { iterations, .. } = &kdf else {
                unreachable!("slot_kdf gives LUKS1 pbkdf2")
            };
            let salt = random(32)?;
            let area = seal(
                vk,
                new_passphrase,
                &kdf,
                &salt,
                Area {
                    cipher: &h.cipher(),
                    stripes: old.stripes,
                    af_hash: &h.hash,
                    len: old.len,
                },
            )?;
            let mut new = h.clone();
            new.slots[id as usize].iterations = *iterations;
            new.slots[id as usize].salt = salt[..].try_into().unwrap();
            write(image, &area, old.offset, &format!("key slot {id}"))?;
            write(image, &new.to_bytes()?, 0, "the header")?;
            Ok(id)
        }
        Header::V2(h) => {
            let kdf = choice.resolve(vk.len())?;
            let salt = random(32)?;
            let m = &h.meta;
            let size = area_size(vk.len(), 4000);
            let at = find_gap(m, size)?;
            let k = &m.doc["keyslots"][id.to_string()];
            let cipher = k["area"]["encryption"]
                .as_str()
                .unwrap_or("aes-xts-plain64")
                .to_string();
            let area = seal(
                vk,
                new_passphrase,
                &kdf,
                &salt,
                Area {
                    cipher: &cipher,
                    stripes: 4000,
                    af_hash: "sha256",
                    len: size as usize,
                },
            )?;
            let mut doc = m.doc.clone();
            let mut slot = keyslot_json(vk.len(), &cipher, at, size, &kdf, &salt);
            if let Some(p) = k.get("priority") {
                slot["priority"] = p.clone();
            }
            doc["keyslots"][id.to_string()] = slot;
            write(image, &area, at, &format!("key slot {id}"))?;
            write_luks2(image, h, &doc)?;
            write(
                image,
                &random(old.len)?,
                old.offset,
                &format!("the old key slot {id}"),
            )?;
            Ok(id)
        }
    }
}
