//! One kernel case: a crypt table, the data pushed through it, and what
//! the reference makes of it.

use crate::engine::SectorCrypt;
use crate::spec::CipherSpec;
use crate::table::{CryptParams, Table};

/// One kernel case: a crypt table and the data pushed through it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// Unique, readable: spec, key length, geometry.
    pub id: String,
    /// The cipher spec, as the table will carry it (possibly one to refuse).
    pub cipher: String,
    /// The key field in hex.
    pub key_hex: String,
    /// The table's iv_offset.
    pub iv_offset: u64,
    /// The encryption sector size in bytes.
    pub sector_size: u32,
    /// Whether the table has iv_large_sectors.
    pub iv_large_sectors: bool,
    /// Device offset (512-byte sectors) of the mapping on its backing file.
    pub offset: u64,
    /// Bytes of data, a whole number of sectors.
    pub len: usize,
    /// More optional parameters, after sector_size and iv_large_sectors
    /// (the fuzzer's; possibly ones the kernel refuses).
    pub flags: Vec<String>,
}

impl Case {
    /// The crypt parameters for a table on `device`.
    /// These are raw fields, not a checked table: the kernel is also sent
    /// the tables the reference refuses.
    pub fn params(&self, device: &str) -> String {
        let mut opts = crate::table::Options {
            sector_size: (self.sector_size != 512).then_some(self.sector_size),
            iv_large_sectors: self.iv_large_sectors,
            ..Default::default()
        }
        .to_args();
        opts.extend(self.flags.iter().cloned());
        crate::table::params_text(
            &self.cipher,
            &self.key_hex,
            self.iv_offset,
            device,
            self.offset,
            &opts,
        )
    }

    /// The plaintext: byte i is i mod 256 (the vector format's `counter N`).
    pub fn plaintext(&self) -> Vec<u8> {
        (0..self.len).map(|i| i as u8).collect()
    }

    /// One line for the guest's case file.
    pub fn to_line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.id,
            self.cipher,
            self.key_hex,
            self.iv_offset,
            self.sector_size,
            self.iv_large_sectors as u8,
            self.offset,
            self.len,
            self.flags.join(",")
        )
    }

    /// Read a case written by [`Case::to_line`].
    pub fn from_line(line: &str) -> Option<Case> {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 9 {
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
            flags: f[8]
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        })
    }

    /// What the reference makes of this case: `Err` when it refuses it.
    pub fn reference(&self) -> Result<Vec<u8>, String> {
        self.reference_with(Fault::None)
    }

    /// The reference engine for this case's table, checked as the kernel's
    /// constructor would, and broken on purpose when `fault` says so.
    fn engine(&self, fault: Fault) -> Result<SectorCrypt, String> {
        let text = self.params("/dev/null");
        let args: Vec<&str> = text.split_whitespace().collect();
        let t = CryptParams::parse_args(&args)
            .and_then(|p| Table::new(0, self.len as u64 / 512, p))
            .map_err(|e| e.to_string())?;
        let e = SectorCrypt::new(&t.params.cipher, &t.params.key, t.params.geometry())
            .map_err(|e| e.to_string())?;
        Ok(fault.apply(e))
    }

    /// The reference, optionally broken on purpose (see [`Fault`]).
    pub fn reference_with(&self, fault: Fault) -> Result<Vec<u8>, String> {
        let e = self.engine(fault)?;
        let mut d = self.plaintext();
        e.encrypt(0, &mut d).map_err(|e| e.to_string())?;
        Ok(d)
    }

    /// What the reference reads back from `ciphertext` under this case's
    /// table (the plaintext when the table round-trips; empty when the
    /// reference refuses the table).
    pub fn reference_readback(&self, ciphertext: &[u8], fault: Fault) -> Vec<u8> {
        let mut d = ciphertext.to_vec();
        match self.engine(fault) {
            Ok(e) if e.decrypt(0, &mut d).is_ok() => d,
            _ => Vec::new(),
        }
    }
}

/// A deliberately broken reference, to prove the kernel check catches it:
/// only with the `test-fault` feature, selected by DMCH_TEST_FAULT=byteswap-iv.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The reference as it is.
    None,
    /// Every IV byte-reversed: plain64 written big-endian.
    #[cfg(feature = "test-fault")]
    ByteswapIv,
}

impl Fault {
    /// `e`, broken as this fault says.
    pub(crate) fn apply(self, e: SectorCrypt) -> SectorCrypt {
        match self {
            Fault::None => e,
            #[cfg(feature = "test-fault")]
            Fault::ByteswapIv => e.inject_fault_byteswap_iv(),
        }
    }
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

/// The first 16 bytes of each sector: what a report shows of a mismatch.
pub(crate) fn excerpts(data: &[u8], sector_size: usize) -> Vec<[u8; 16]> {
    data.chunks(sector_size)
        .map(|s| s[..16].try_into().unwrap())
        .collect()
}
