//! The LUKS1 header (LUKS On-Disk Format Specification 1.2.3): 592
//! big-endian bytes at the start of the device, eight key slots, the data
//! at `payload_offset` sectors. Read with cryptsetup's checks
//! (`_check_and_convert_hdr`, `LUKS_check_keyslots`), written in its layout.

use super::LuksError;

/// The magic at byte 0.
pub const MAGIC: [u8; 6] = *b"LUKS\xba\xbe";
/// Header size in bytes.
pub const HEADER_LEN: usize = 592;
/// A key slot in use.
pub const SLOT_ACTIVE: u32 = 0x00AC_71F3;
/// A key slot free.
pub const SLOT_INACTIVE: u32 = 0x0000_DEAD;
/// Every LUKS1 key slot splits its key into this many stripes.
pub const STRIPES: u32 = 4000;
/// Eight slots.
pub const SLOTS: usize = 8;
/// The largest volume key dmch takes (cryptsetup's is 512 bytes too).
pub const MAX_KEY_BYTES: u32 = 512;

/// One LUKS1 key slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The raw state word (active, inactive, or anything else: disabled).
    pub state: u32,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// PBKDF2 salt.
    pub salt: [u8; 32],
    /// Start of the key material, in 512-byte sectors.
    pub offset: u32,
    /// Anti-forensic stripes.
    pub stripes: u32,
}

impl Slot {
    /// Whether the slot holds a key.
    pub fn active(&self) -> bool {
        self.state == SLOT_ACTIVE
    }
}

/// A LUKS1 header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// `aes`, `serpent`, ...
    pub cipher_name: String,
    /// `xts-plain64`, `cbc-essiv:sha256`, ...
    pub cipher_mode: String,
    /// PBKDF2 and splitter hash.
    pub hash: String,
    /// Data start, in 512-byte sectors.
    pub payload_offset: u32,
    /// Volume key length in bytes.
    pub key_bytes: u32,
    /// PBKDF2 of the volume key (20 bytes).
    pub mk_digest: [u8; 20],
    /// Its salt.
    pub mk_digest_salt: [u8; 32],
    /// Its iterations.
    pub mk_digest_iter: u32,
    /// The volume's UUID, as text.
    pub uuid: String,
    /// The eight key slots.
    pub slots: Vec<Slot>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// A NUL-padded text field (cut at the first NUL, as C reads it).
fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn put_text(out: &mut [u8], s: &str) -> Result<(), LuksError> {
    // One byte stays NUL.
    if s.len() >= out.len() {
        return Err(LuksError::Invalid(format!(
            "'{s}' does not fit the LUKS1 header's {}-byte field",
            out.len()
        )));
    }
    out[..s.len()].copy_from_slice(s.as_bytes());
    Ok(())
}

/// Sectors the key material of a slot spans (`AF_split_sectors`).
pub fn af_sectors(key_bytes: u32, stripes: u32) -> u64 {
    (u64::from(key_bytes) * u64::from(stripes)).div_ceil(512)
}

impl Header {
    /// Whether `b` starts with the LUKS magic and version 1.
    pub fn detect(b: &[u8]) -> bool {
        b.len() >= 8 && b[..6] == MAGIC && b[6..8] == [0, 1]
    }

    /// Parse and check a header; `device_len` is the image's size in bytes.
    pub fn parse(b: &[u8], device_len: u64) -> Result<Header, LuksError> {
        if b.len() < HEADER_LEN {
            return Err(LuksError::Truncated(format!(
                "{} bytes, a LUKS1 header needs {HEADER_LEN}",
                b.len()
            )));
        }
        if b[..6] != MAGIC {
            return Err(LuksError::NotLuks);
        }
        let version = u16::from_be_bytes([b[6], b[7]]);
        if version != 1 {
            return Err(LuksError::Invalid(format!(
                "LUKS version {version} where 1 was expected"
            )));
        }
        let slots = (0..SLOTS)
            .map(|i| {
                let s = &b[208 + 48 * i..208 + 48 * (i + 1)];
                Slot {
                    state: be32(s, 0),
                    iterations: be32(s, 4),
                    salt: s[8..40].try_into().unwrap(),
                    offset: be32(s, 40),
                    stripes: be32(s, 44),
                }
            })
            .collect();
        let h = Header {
            cipher_name: text(&b[8..40]),
            cipher_mode: text(&b[40..72]),
            hash: text(&b[72..104]),
            payload_offset: be32(b, 104),
            key_bytes: be32(b, 108),
            mk_digest: b[112..132].try_into().unwrap(),
            mk_digest_salt: b[132..164].try_into().unwrap(),
            mk_digest_iter: be32(b, 164),
            uuid: text(&b[168..208]),
            slots,
        };
        h.check(device_len)?;
        Ok(h)
    }

    /// cryptsetup's rules: a hash it can HMAC with at least 20 bytes out, a
    /// key of 1 to 512 bytes, 4000 stripes in every slot, key material after
    /// the header, before the payload and not overlapping, and a device
    /// that holds the last slot.
    pub fn check(&self, device_len: u64) -> Result<(), LuksError> {
        let bad = |m: String| Err(LuksError::Invalid(m));
        let h = super::kdf::hash(&self.hash).map_err(LuksError::Invalid)?;
        if h.size < 20 {
            return bad(format!(
                "hash {} is shorter than LUKS1's 20-byte digest",
                self.hash
            ));
        }
        if self.key_bytes == 0 || self.key_bytes > MAX_KEY_BYTES {
            return bad(format!(
                "a volume key of {} bytes (1 to {MAX_KEY_BYTES})",
                self.key_bytes
            ));
        }
        let per = af_sectors(self.key_bytes, STRIPES);
        for (i, s) in self.slots.iter().enumerate() {
            if s.stripes != STRIPES {
                return bad(format!(
                    "key slot {i} has {} stripes, not {STRIPES}",
                    s.stripes
                ));
            }
            if u64::from(s.offset) * 512 < HEADER_LEN as u64 {
                return bad(format!(
                    "key slot {i} starts inside the header (sector {})",
                    s.offset
                ));
            }
            if self.payload_offset != 0
                && u64::from(s.offset) + per > u64::from(self.payload_offset)
            {
                return bad(format!(
                    "key slot {i} (sectors {}..{}) runs into the data at sector {}",
                    s.offset,
                    u64::from(s.offset) + per,
                    self.payload_offset
                ));
            }
        }
        let mut order: Vec<&Slot> = self.slots.iter().collect();
        order.sort_by_key(|s| s.offset);
        for w in order.windows(2) {
            if u64::from(w[1].offset) < u64::from(w[0].offset) + per {
                return bad(format!(
                    "key slots at sectors {} and {} overlap",
                    w[0].offset, w[1].offset
                ));
            }
        }
        let end = (u64::from(order[SLOTS - 1].offset) + per) * 512;
        if end > device_len {
            return Err(LuksError::Truncated(format!(
                "the key slots end at byte {end}, the image has {device_len}"
            )));
        }
        Ok(())
    }

    /// The 592 bytes on disk.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LuksError> {
        let mut b = vec![0u8; HEADER_LEN];
        b[..6].copy_from_slice(&MAGIC);
        b[6..8].copy_from_slice(&1u16.to_be_bytes());
        put_text(&mut b[8..40], &self.cipher_name)?;
        put_text(&mut b[40..72], &self.cipher_mode)?;
        put_text(&mut b[72..104], &self.hash)?;
        b[104..108].copy_from_slice(&self.payload_offset.to_be_bytes());
        b[108..112].copy_from_slice(&self.key_bytes.to_be_bytes());
        b[112..132].copy_from_slice(&self.mk_digest);
        b[132..164].copy_from_slice(&self.mk_digest_salt);
        b[164..168].copy_from_slice(&self.mk_digest_iter.to_be_bytes());
        put_text(&mut b[168..208], &self.uuid)?;
        for (i, s) in self.slots.iter().enumerate() {
            let o = &mut b[208 + 48 * i..208 + 48 * (i + 1)];
            o[0..4].copy_from_slice(&s.state.to_be_bytes());
            o[4..8].copy_from_slice(&s.iterations.to_be_bytes());
            o[8..40].copy_from_slice(&s.salt);
            o[40..44].copy_from_slice(&s.offset.to_be_bytes());
            o[44..48].copy_from_slice(&s.stripes.to_be_bytes());
        }
        Ok(b)
    }

    /// The dm-crypt cipher spec of the data and the key slots.
    pub fn cipher(&self) -> String {
        format!("{}-{}", self.cipher_name, self.cipher_mode)
    }

    /// cryptsetup's layout for a key of `key_bytes`: slots from sector 8,
    /// each rounded up to 4 KiB, the payload at the next 1 MiB boundary
    /// (`align` sectors) unless `payload` is given.
    pub fn layout(key_bytes: u32, payload: Option<u32>) -> (Vec<u32>, u32) {
        let per = af_sectors(key_bytes, STRIPES);
        let mut at = 8u64;
        let mut offsets = Vec::new();
        for _ in 0..SLOTS {
            offsets.push(at as u32);
            at = (at + per).next_multiple_of(8);
        }
        (offsets, payload.unwrap_or(at.next_multiple_of(2048) as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        let (offsets, payload) = Header::layout(64, None);
        Header {
            cipher_name: "aes".into(),
            cipher_mode: "xts-plain64".into(),
            hash: "sha256".into(),
            payload_offset: payload,
            key_bytes: 64,
            mk_digest: [1; 20],
            mk_digest_salt: [2; 32],
            mk_digest_iter: 1000,
            uuid: "7c2a1d2e-8d5b-4d0f-9b0c-0123456789ab".into(),
            slots: offsets
                .into_iter()
                .map(|o| Slot {
                    state: SLOT_INACTIVE,
                    iterations: 0,
                    salt: [0; 32],
                    offset: o,
                    stripes: STRIPES,
                })
                .collect(),
        }
    }

    #[test]
    fn the_layout_is_cryptsetups() {
        // 64-byte keys: 500 sectors of key material, slots 504 apart from
        // sector 8, the payload at 4096 (2 MiB), as cryptsetup 2.6 lays it.
        let (o, p) = Header::layout(64, None);
        assert_eq!(o, [8, 512, 1016, 1520, 2024, 2528, 3032, 3536]);
        assert_eq!(p, 4096);
        let (o, p) = Header::layout(32, None);
        assert_eq!((o[1], p), (264, 4096));
    }

    #[test]
    fn headers_round_trip_and_bad_ones_are_named() {
        let h = sample();
        let b = h.to_bytes().unwrap();
        assert!(Header::detect(&b));
        assert_eq!(Header::parse(&b, 4096 * 512).unwrap(), h);
        let reparse = |f: &dyn Fn(&mut Header)| {
            let mut x = sample();
            f(&mut x);
            Header::parse(&x.to_bytes().unwrap(), 4096 * 512)
                .unwrap_err()
                .to_string()
        };
        assert!(reparse(&|x| x.slots[3].stripes = 3999).contains("key slot 3 has 3999 stripes"));
        assert!(reparse(&|x| x.slots[0].offset = 1).contains("starts inside the header"));
        assert!(reparse(&|x| x.slots[1].offset = 100).contains("overlap"));
        assert!(reparse(&|x| x.payload_offset = 3000).contains("runs into the data"));
        assert!(reparse(&|x| x.hash = "md5".into()).contains("not one LUKS names"));
        assert!(reparse(&|x| x.key_bytes = 4096).contains("a volume key of 4096 bytes"));
        assert!(matches!(
            Header::parse(&b, 4000 * 512),
            Err(LuksError::Truncated(_))
        ));
        assert!(matches!(
            Header::parse(&b[..100], 1 << 30),
            Err(LuksError::Truncated(_))
        ));
    }
}
