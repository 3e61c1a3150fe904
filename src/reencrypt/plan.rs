//! What a conversion does, as typed values and as the text its journal
//! keeps (so `--resume` needs only the keys): the mode, each side's table
//! parameters and key derivation, where the data lies, the zone size.

use super::ReencryptError;
use crate::engine::{Geometry, SectorCrypt};
use crate::key::Key;
use crate::spec::CipherSpec;
use std::collections::BTreeMap;

/// Which sides are encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Old ciphertext to new ciphertext.
    Reencrypt,
    /// Plaintext to ciphertext (`--encrypt`).
    Encrypt,
    /// Ciphertext to plaintext (`--decrypt`).
    Decrypt,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Reencrypt => "reencrypt",
            Mode::Encrypt => "encrypt",
            Mode::Decrypt => "decrypt",
        }
    }
}

/// One side's table parameters and how its key is derived (plain mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Side {
    /// Cipher spec, e.g. `aes-cbc-plain`.
    pub cipher: String,
    /// Passphrase hash (`-h`), as plain mode takes it.
    pub hash: String,
    /// Key size in bits (`-s`).
    pub key_bits: usize,
    /// Encryption sector size in bytes.
    pub sector_size: u32,
    /// The table's iv_offset (`-p`, skip), in 512-byte sectors.
    pub iv_offset: u64,
    /// IVs counted in sector-size units.
    pub iv_large_sectors: bool,
    /// Bytes of key material skipped (`--keyfile-offset`).
    pub keyfile_offset: u64,
    /// Bytes of key material read at most (`--keyfile-size`, 0: no limit).
    pub keyfile_size: usize,
}

impl Side {
    fn geometry(&self) -> Geometry {
        Geometry {
            sector_size: self.sector_size,
            iv_offset: self.iv_offset,
            iv_large_sectors: self.iv_large_sectors,
        }
    }

    /// The engine for this side under `key`, checked as the kernel would.
    pub fn engine(&self, key: &[u8]) -> Result<SectorCrypt, ReencryptError> {
        if key.len() * 8 != self.key_bits {
            return Err(ReencryptError::Invalid(format!(
                "a {}-bit key for a {}-bit side",
                key.len() * 8,
                self.key_bits
            )));
        }
        let spec = CipherSpec::parse(&self.cipher)?;
        Ok(SectorCrypt::new(
            &spec,
            &Key::from_bytes(key),
            self.geometry(),
        )?)
    }

    fn write(&self, prefix: &str, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "{prefix}.cipher={}\n{prefix}.hash={}\n{prefix}.key_bits={}\n{prefix}.sector_size={}\n\
             {prefix}.iv_offset={}\n{prefix}.iv_large_sectors={}\n{prefix}.keyfile_offset={}\n\
             {prefix}.keyfile_size={}\n",
            self.cipher,
            self.hash,
            self.key_bits,
            self.sector_size,
            self.iv_offset,
            u8::from(self.iv_large_sectors),
            self.keyfile_offset,
            self.keyfile_size
        );
    }

    fn read(prefix: &str, f: &BTreeMap<&str, &str>) -> Result<Side, String> {
        let get = |k: &str| -> Result<&str, String> {
            f.get(format!("{prefix}.{k}").as_str())
                .copied()
                .ok_or_else(|| format!("no {prefix}.{k}"))
        };
        let num = |k: &str| -> Result<u64, String> {
            get(k)?
                .parse()
                .map_err(|_| format!("{prefix}.{k} is not a number"))
        };
        Ok(Side {
            cipher: get("cipher")?.to_string(),
            hash: get("hash")?.to_string(),
            key_bits: num("key_bits")? as usize,
            sector_size: u32::try_from(num("sector_size")?).map_err(|e| e.to_string())?,
            iv_offset: num("iv_offset")?,
            iv_large_sectors: num("iv_large_sectors")? != 0,
            keyfile_offset: num("keyfile_offset")?,
            keyfile_size: num("keyfile_size")? as usize,
        })
    }
}

/// The largest zone: two of them are held in memory and in the journal.
pub const ZONE_MAX: u64 = 64 << 20;
/// The zone size unless one is asked for.
pub const ZONE_DEFAULT: u64 = 4 << 20;

/// A whole conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Which sides are encrypted.
    pub mode: Mode,
    /// The old side (`None`: plaintext).
    pub old: Option<Side>,
    /// The new side (`None`: plaintext).
    pub new: Option<Side>,
    /// Where the data starts on the device, in 512-byte sectors (`-o`).
    pub offset: u64,
    /// Bytes of data converted.
    pub length: u64,
    /// Bytes converted per journalled step.
    pub zone: u64,
}

impl Plan {
    /// A plan, checked: the sides the mode needs, whole sectors of both
    /// sides, a zone of whole sectors within bounds, data inside a device of
    /// `device_bytes`. `size` (sectors) defaults to the device after the offset.
    pub fn new(
        mode: Mode,
        old: Option<Side>,
        new: Option<Side>,
        offset: u64,
        size: Option<u64>,
        zone: Option<u64>,
        device_bytes: u64,
    ) -> Result<Plan, ReencryptError> {
        let bad = |s: String| Err(ReencryptError::Invalid(s));
        let start = offset.checked_mul(512).filter(|s| *s < device_bytes);
        let Some(start) = start else {
            return bad(format!(
                "offset {offset} sectors is not inside the device ({} sectors)",
                device_bytes / 512
            ));
        };
        let length = match size {
            Some(s) => match s.checked_mul(512) {
                Some(l) if l > 0 && start + l <= device_bytes => l,
                _ => {
                    return bad(format!(
                        "offset {offset} + size {s} sectors is past the end of the device ({} sectors) or empty",
                        device_bytes / 512
                    ));
                }
            },
            None => (device_bytes - start) / 512 * 512,
        };
        let ss = old
            .iter()
            .chain(new.iter())
            .map(|s| u64::from(s.sector_size))
            .max()
            .unwrap_or(512);
        let zone = zone.unwrap_or(ZONE_DEFAULT.min(length.div_ceil(ss) * ss));
        let plan = Plan {
            mode,
            old,
            new,
            offset,
            length,
            zone,
        };
        plan.check(device_bytes)?;
        Ok(plan)
    }

    /// The checks of [`Plan::new`], also run on a plan read from a journal.
    pub fn check(&self, device_bytes: u64) -> Result<(), ReencryptError> {
        let bad = |s: String| Err(ReencryptError::Invalid(s));
        match (self.mode, &self.old, &self.new) {
            (Mode::Reencrypt, Some(_), Some(_))
            | (Mode::Encrypt, None, Some(_))
            | (Mode::Decrypt, Some(_), None) => {}
            _ => return bad(format!("a {} plan with the wrong sides", self.mode.name())),
        }
        for s in self.old.iter().chain(self.new.iter()) {
            if !matches!(s.sector_size, 512 | 1024 | 2048 | 4096) {
                return bad(format!(
                    "sector size {} is not 512, 1024, 2048 or 4096",
                    s.sector_size
                ));
            }
            if s.cipher
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
            {
                return bad("the cipher spec has spaces or control characters".into());
            }
            CipherSpec::parse(&s.cipher)?;
            if s.hash.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return bad("the hash has spaces or control characters".into());
            }
        }
        let ss = self
            .old
            .iter()
            .chain(self.new.iter())
            .map(|s| u64::from(s.sector_size))
            .max()
            .unwrap_or(512);
        if self.length == 0 || !self.length.is_multiple_of(ss) {
            return bad(format!(
                "the data is {} bytes, not a whole number of {ss}-byte sectors",
                self.length
            ));
        }
        if self.zone == 0 || !self.zone.is_multiple_of(ss) || self.zone > ZONE_MAX {
            return bad(format!(
                "zone size {} is not a multiple of {ss} bytes up to {} MiB",
                self.zone,
                ZONE_MAX >> 20
            ));
        }
        let end = self
            .offset
            .checked_mul(512)
            .and_then(|s| s.checked_add(self.length));
        if end.is_none_or(|e| e > device_bytes) {
            return bad(format!(
                "the data (offset {} sectors, {} bytes) is past the end of the device ({device_bytes} bytes)",
                self.offset, self.length
            ));
        }
        Ok(())
    }

    /// Byte where the data starts.
    pub fn start(&self) -> u64 {
        self.offset * 512
    }

    /// The plan as the journal keeps it.
    pub fn to_text(&self) -> Result<String, ReencryptError> {
        let mut t = format!(
            "mode={}\noffset={}\nlength={}\nzone={}\n",
            self.mode.name(),
            self.offset,
            self.length,
            self.zone
        );
        if let Some(s) = &self.old {
            s.write("old", &mut t);
        }
        if let Some(s) = &self.new {
            s.write("new", &mut t);
        }
        if t.len() > super::journal::PLAN_MAX {
            return Err(ReencryptError::Invalid(
                "the cipher specs are too long for the journal header".into(),
            ));
        }
        Ok(t)
    }

    /// The plan a journal keeps.
    pub fn from_text(t: &str) -> Result<Plan, String> {
        let mut f = BTreeMap::new();
        for line in t.lines() {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("plan line '{line}' has no '='"))?;
            if f.insert(k, v).is_some() {
                return Err(format!("plan field {k} twice"));
            }
        }
        let num = |k: &str| -> Result<u64, String> {
            f.get(k)
                .ok_or_else(|| format!("no {k}"))?
                .parse()
                .map_err(|_| format!("{k} is not a number"))
        };
        let mode = match f.get("mode").copied() {
            Some("reencrypt") => Mode::Reencrypt,
            Some("encrypt") => Mode::Encrypt,
            Some("decrypt") => Mode::Decrypt,
            other => return Err(format!("mode {other:?}")),
        };
        let side = |p: &str| -> Result<Option<Side>, String> {
            if f.contains_key(format!("{p}.cipher").as_str()) {
                Side::read(p, &f).map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(Plan {
            mode,
            old: side("old")?,
            new: side("new")?,
            offset: num("offset")?,
            length: num("length")?,
            zone: num("zone")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn side(cipher: &str) -> Side {
        Side {
            cipher: cipher.into(),
            hash: "ripemd160".into(),
            key_bits: 256,
            sector_size: 512,
            iv_offset: 7,
            iv_large_sectors: false,
            keyfile_offset: 0,
            keyfile_size: 0,
        }
    }

    #[test]
    fn a_plan_reads_back_from_its_text() {
        let p = Plan::new(
            Mode::Reencrypt,
            Some(side("aes-cbc-plain")),
            Some(side("aes-xts-plain64")),
            8,
            None,
            Some(65536),
            (1 << 20) + 4096,
        )
        .unwrap();
        assert_eq!(p.length, 1 << 20);
        assert_eq!(Plan::from_text(&p.to_text().unwrap()).unwrap(), p);
    }

    #[test]
    fn plans_that_cannot_be_done_are_refused() {
        let new = || Some(side("aes-xts-plain64"));
        let mut big = side("aes-xts-plain64");
        big.sector_size = 4096;
        let cases = [
            (Mode::Reencrypt, None, new(), 0, None, None, 1 << 20),
            (Mode::Encrypt, None, new(), 4096, None, None, 1 << 20),
            (Mode::Encrypt, None, new(), 0, Some(4096), None, 1 << 20),
            (Mode::Encrypt, None, new(), 0, None, Some(1000), 1 << 20),
            (
                Mode::Encrypt,
                None,
                new(),
                0,
                None,
                Some(128 << 20),
                1 << 20,
            ),
            (Mode::Encrypt, None, Some(big), 1, None, None, 1 << 20),
        ];
        for (i, (m, o, n, off, size, zone, dev)) in cases.into_iter().enumerate() {
            assert!(
                Plan::new(m, o, n, off, size, zone, dev).is_err(),
                "case {i} accepted"
            );
        }
    }
}
