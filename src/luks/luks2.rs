//! LUKS2 binary headers (LUKS2 On-Disk Format, section 3): two copies,
//! each a 4096-byte binary header and its JSON area, checksummed
//! together; the secondary copy follows the primary at `hdr_size`. Read as
//! cryptsetup reads them: either copy may be damaged, the newer valid one
//! (higher `seqid`) wins; written with a new seqid and fresh salts.

use super::LuksError;
use super::metadata::{BIN_LEN, METADATA_SIZES, Metadata};
use serde_json::Value;

/// The primary header's magic.
pub const MAGIC_1ST: [u8; 6] = *b"LUKS\xba\xbe";
/// The secondary header's magic.
pub const MAGIC_2ND: [u8; 6] = *b"SKUL\xba\xbe";

/// One binary header's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinHeader {
    /// This copy and its JSON area, bytes.
    pub hdr_size: u64,
    /// Incremented on every write: the newer copy wins.
    pub seqid: u64,
    /// The volume label.
    pub label: String,
    /// The checksum's hash (`sha256`).
    pub checksum_alg: String,
    /// Per-copy salt.
    pub salt: [u8; 64],
    /// The volume UUID.
    pub uuid: String,
    /// The label's subsystem.
    pub subsystem: String,
    /// Where this copy starts on the device.
    pub hdr_offset: u64,
}

/// A read LUKS2 header: the copy that won, and how the other fared.
#[derive(Clone, Debug)]
pub struct Header {
    /// The winning copy's binary header.
    pub bin: BinHeader,
    /// Its validated metadata.
    pub meta: Metadata,
    /// Why the other copy was not used, when it was not valid (the image
    /// needs a repair; dmch reports it and writes nothing).
    pub damaged: Option<String>,
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Whether `b` starts with a LUKS2 primary header.
pub fn detect(b: &[u8]) -> bool {
    b.len() >= 8 && b[..6] == MAGIC_1ST && b[6..8] == [0, 2]
}

fn checksum(alg: &str, bin: &[u8], json: &[u8]) -> Result<Vec<u8>, String> {
    let h = super::kdf::hash(alg).map_err(|e| format!("checksum: {e}"))?;
    let mut zeroed = bin.to_vec();
    zeroed[448..512].fill(0);
    Ok(h.digest(&[&zeroed, json]))
}

/// Read one copy at `offset`: the binary header's sanity, the checksum,
/// the JSON area's form, then the metadata.
fn read_copy(
    read: &mut dyn FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
    offset: u64,
    secondary: bool,
    device_len: u64,
) -> Result<(BinHeader, Metadata), String> {
    if offset + BIN_LEN > device_len {
        return Err(format!("the image ends before byte {}", offset + BIN_LEN));
    }
    let b = read(offset, BIN_LEN as usize).map_err(|e| format!("reading: {e}"))?;
    let magic = if secondary { MAGIC_2ND } else { MAGIC_1ST };
    if b[..6] != magic {
        return Err("no LUKS2 magic".into());
    }
    let version = u16::from_be_bytes([b[6], b[7]]);
    if version != 2 {
        return Err(format!("version {version}, not 2"));
    }
    let bin = BinHeader {
        hdr_size: be64(&b, 8),
        seqid: be64(&b, 16),
        label: text(&b[24..72]),
        checksum_alg: text(&b[72..104]),
        salt: b[104..168].try_into().unwrap(),
        uuid: text(&b[168..208]),
        subsystem: text(&b[208..256]),
        hdr_offset: be64(&b, 256),
    };
    if bin.hdr_offset != offset {
        return Err(format!(
            "it says it starts at {}, not {offset}",
            bin.hdr_offset
        ));
    }
    if bin.hdr_size < 0x4000 || bin.hdr_size > 0x400000 {
        return Err(format!("a bogus header size of {} bytes", bin.hdr_size));
    }
    if secondary && offset != bin.hdr_size {
        return Err(format!(
            "a secondary header at {offset} with a header size of {}",
            bin.hdr_size
        ));
    }
    let json_len = bin.hdr_size - BIN_LEN;
    if offset + bin.hdr_size > device_len {
        return Err(format!(
            "the image ends before its JSON area does ({} bytes)",
            offset + bin.hdr_size
        ));
    }
    let json = read(offset + BIN_LEN, json_len as usize).map_err(|e| format!("reading: {e}"))?;
    let want = checksum(&bin.checksum_alg, &b, &json)?;
    if b[448..448 + want.len()] != want[..] {
        return Err("checksum mismatch".into());
    }
    // The JSON starts at the first byte, and only NULs follow it.
    if json.first() != Some(&b'{') {
        return Err("the JSON area does not start with '{'".into());
    }
    let mut stream = serde_json::Deserializer::from_slice(&json).into_iter::<Value>();
    let doc = match stream.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(format!("the JSON does not parse: {e}")),
        None => return Err("the JSON area is empty".into()),
    };
    let end = stream.byte_offset();
    if end >= json.len() {
        return Err("the JSON area has no NUL after the JSON".into());
    }
    if let Some(at) = json[end..].iter().position(|&c| c != 0) {
        return Err(format!(
            "byte {} of the JSON area, after the JSON, is not NUL",
            end + at
        ));
    }
    let meta = Metadata::validate(doc, json_len, end as u64)?;
    Ok((bin, meta))
}

impl Header {
    /// Read both copies of an image of `device_len` bytes through `read`
    /// (offset, length); the newer valid one wins.
    pub fn read(
        mut read: impl FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
        device_len: u64,
    ) -> Result<Header, LuksError> {
        let first = read_copy(&mut read, 0, false, device_len);
        // The secondary follows the primary; without a usable primary
        // binary header, every offset LUKS2 allows is tried.
        let second = match &first {
            Ok((b, _)) => read_copy(&mut read, b.hdr_size, true, device_len),
            Err(_) => {
                let mut last = Err("no secondary header at any offset LUKS2 allows".to_string());
                for o in METADATA_SIZES {
                    last = read_copy(&mut read, o, true, device_len);
                    if last.is_ok() {
                        break;
                    }
                }
                last
            }
        };
        // An image that ends inside the first header is truncated, not damaged.
        let short = |e: &Result<(BinHeader, Metadata), String>| {
            e.as_ref().is_err_and(|m| m.starts_with("the image ends"))
        };
        if short(&first) && second.is_err() {
            return Err(LuksError::Truncated(format!(
                "{device_len} bytes: {}",
                first.err().unwrap_or_default()
            )));
        }
        let (bin, meta, damaged) = match (first, second) {
            (Ok(a), Ok(b)) => {
                if b.0.seqid > a.0.seqid {
                    (b.0, b.1, None)
                } else {
                    (a.0, a.1, None)
                }
            }
            (Ok(a), Err(e)) => (
                a.0,
                a.1,
                Some(format!("the secondary header is damaged ({e})")),
            ),
            (Err(e), Ok(b)) => (
                b.0,
                b.1,
                Some(format!("the primary header is damaged ({e})")),
            ),
            (Err(e1), Err(e2)) => {
                return Err(LuksError::Invalid(format!(
                    "both LUKS2 headers are damaged: primary: {e1}; secondary: {e2}"
                )));
            }
        };
        let need = meta.hdr_and_areas();
        if need > device_len {
            return Err(LuksError::Truncated(format!(
                "the headers and key slots need {need} bytes, the image has {device_len}"
            )));
        }
        Ok(Header { bin, meta, damaged })
    }

    /// Both copies on disk (primary at 0, secondary at hdr_size) for `doc`
    /// with `bin`'s seqid, fresh salts, the checksum; the JSON compact.
    pub fn to_bytes(bin: &BinHeader, doc: &Value) -> Result<Vec<u8>, LuksError> {
        let json = serde_json::to_vec(doc).map_err(|e| LuksError::Invalid(e.to_string()))?;
        let area = bin.hdr_size - BIN_LEN;
        if json.len() as u64 >= area {
            return Err(LuksError::Invalid(format!(
                "the metadata takes {} bytes, more than its {area}-byte area",
                json.len()
            )));
        }
        let mut area_bytes = vec![0u8; area as usize];
        area_bytes[..json.len()].copy_from_slice(&json);
        let mut out = copy(bin, false, &area_bytes)?;
        out.extend(copy(bin, true, &area_bytes)?);
        Ok(out)
    }
}

/// One copy, primary or secondary: `bin`'s fields with a fresh salt, this
/// copy's magic and offset, `area` as its JSON area, the checksum over both.
pub fn copy(bin: &BinHeader, secondary: bool, area: &[u8]) -> Result<Vec<u8>, LuksError> {
    let mut b = vec![0u8; BIN_LEN as usize];
    b[..6].copy_from_slice(if secondary { &MAGIC_2ND } else { &MAGIC_1ST });
    b[6..8].copy_from_slice(&2u16.to_be_bytes());
    b[8..16].copy_from_slice(&bin.hdr_size.to_be_bytes());
    b[16..24].copy_from_slice(&bin.seqid.to_be_bytes());
    let put = |b: &mut [u8], at: usize, len: usize, s: &str| -> Result<(), LuksError> {
        if s.len() >= len {
            return Err(LuksError::Invalid(format!(
                "'{s}' is longer than {} bytes",
                len - 1
            )));
        }
        b[at..at + s.len()].copy_from_slice(s.as_bytes());
        Ok(())
    };
    put(&mut b, 24, 48, &bin.label)?;
    put(&mut b, 72, 32, &bin.checksum_alg)?;
    let mut salt = [0u8; 64];
    getrandom::fill(&mut salt).map_err(|e| LuksError::Invalid(format!("no random salt: {e}")))?;
    b[104..168].copy_from_slice(&salt);
    put(&mut b, 168, 40, &bin.uuid)?;
    put(&mut b, 208, 48, &bin.subsystem)?;
    let offset = if secondary { bin.hdr_size } else { 0 };
    b[256..264].copy_from_slice(&offset.to_be_bytes());
    let sum = checksum(&bin.checksum_alg, &b, area).map_err(LuksError::Invalid)?;
    b[448..448 + sum.len()].copy_from_slice(&sum);
    b.extend_from_slice(area);
    Ok(b)
}
