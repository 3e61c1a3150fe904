//! The journal's on-disk format and its reads and writes.
//!
//! Layout (all integers little-endian): two 4096-byte header slots at 0 and
//! 4096, then two data areas of `zone` bytes each. A header is written to
//! slot `seq % 2`, so the previous one survives a torn write; the valid
//! slot with the higher `seq` is the state. Header fields:
//!
//! ```text
//!    0  8  magic "DMCHRJ01"
//!    8  8  seq
//!   16  4  state: 0 running, 1 done
//!   20  4  area of the hot zone (0 or 1)
//!   24  8  progress: bytes of the data area already final
//!   32  8  hot: length of the zone being converted at `progress` (0: none)
//!   40 32  checksum of the hot zone's journal data: the BLAKE3 of the
//!          BLAKE3s of its 256 KiB pieces
//!   72 32  fingerprint: HMAC-SHA-256 of the plan, keyed by both keys
//!  104  4  plan length; the plan text follows at 128
//! 4064 32  SHA-256 of bytes 0..4064
//! ```
//!
//! The data area of zone number `i` is area `i % 2`; it holds the zone's
//! ciphertext side, never plaintext: the new ciphertext, or for a
//! decryption the old one.

use sha2::{Digest, Sha256};
use std::io;

use super::storage::Storage;

/// Bytes of one header slot.
pub const SLOT: u64 = 4096;
/// Where the first data area starts.
pub const AREAS: u64 = 2 * SLOT;
const MAGIC: &[u8; 8] = b"DMCHRJ01";
const PLAN_AT: usize = 128;
const SUM_AT: usize = SLOT as usize - 32;
/// The longest plan text a header holds.
pub const PLAN_MAX: usize = SUM_AT - PLAN_AT;

/// Bytes a journal for zones of `zone` bytes takes.
pub fn size_for(zone: u64) -> u64 {
    AREAS + 2 * zone
}

/// What a header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Monotonic; the higher valid one wins.
    pub seq: u64,
    /// Every zone is final and synced.
    pub done: bool,
    /// The area (0 or 1) holding the hot zone's data.
    pub area: u32,
    /// Bytes of the data area already final.
    pub progress: u64,
    /// Length of the zone at `progress` being converted (0: none).
    pub hot: u64,
    /// SHA-256 of the hot zone's journal data.
    pub hot_sum: [u8; 32],
    /// HMAC of the plan under both keys: the same keys, the same plan.
    pub fingerprint: [u8; 32],
    /// The plan, as [`super::Plan::to_text`] writes it.
    pub plan: String,
}

impl Header {
    /// The slot bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; SLOT as usize];
        b[..8].copy_from_slice(MAGIC);
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..20].copy_from_slice(&u32::from(self.done).to_le_bytes());
        b[20..24].copy_from_slice(&self.area.to_le_bytes());
        b[24..32].copy_from_slice(&self.progress.to_le_bytes());
        b[32..40].copy_from_slice(&self.hot.to_le_bytes());
        b[40..72].copy_from_slice(&self.hot_sum);
        b[72..104].copy_from_slice(&self.fingerprint);
        let plan = self.plan.as_bytes();
        assert!(plan.len() <= PLAN_MAX, "plan checked by Plan::to_text");
        b[104..108].copy_from_slice(&(plan.len() as u32).to_le_bytes());
        b[PLAN_AT..PLAN_AT + plan.len()].copy_from_slice(plan);
        let sum = Sha256::digest(&b[..SUM_AT]);
        b[SUM_AT..].copy_from_slice(&sum);
        b
    }

    /// The header in `b`, if it is one whose checksum holds.
    pub fn decode(b: &[u8]) -> Option<Header> {
        if b.len() != SLOT as usize || &b[..8] != MAGIC {
            return None;
        }
        if Sha256::digest(&b[..SUM_AT])[..] != b[SUM_AT..] {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let plan_len = u32_at(104) as usize;
        let state = u32_at(16);
        let area = u32_at(20);
        if plan_len > PLAN_MAX || state > 1 || area > 1 {
            return None;
        }
        let plan = std::str::from_utf8(&b[PLAN_AT..PLAN_AT + plan_len]).ok()?;
        Some(Header {
            seq: u64_at(8),
            done: state == 1,
            area,
            progress: u64_at(24),
            hot: u64_at(32),
            hot_sum: b[40..72].try_into().expect("32 bytes"),
            fingerprint: b[72..104].try_into().expect("32 bytes"),
            plan: plan.to_string(),
        })
    }
}

/// A journal on some storage.
pub struct Journal<S> {
    st: S,
    zone: u64,
}

impl<S: Storage> Journal<S> {
    /// The journal on `st` for zones of up to `zone` bytes.
    pub fn new(st: S, zone: u64) -> Self {
        Journal { st, zone }
    }

    /// The newest valid header; or, when none is valid, whether any slot
    /// still starts with the magic (a damaged journal) or none does (no
    /// journal: never made, or wiped when its conversion completed).
    pub fn latest(&self) -> io::Result<Found> {
        let mut best: Option<Header> = None;
        let mut magic = false;
        for slot in 0..2 {
            let mut b = vec![0u8; SLOT as usize];
            match self.st.read_at(&mut b, slot * SLOT) {
                Ok(()) => {}
                // A journal cut short has no header there.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => continue,
                Err(e) => return Err(e),
            }
            magic |= &b[..8] == MAGIC;
            if let Some(h) = Header::decode(&b)
                && best.as_ref().is_none_or(|x| h.seq > x.seq)
            {
                best = Some(h);
            }
        }
        Ok(match (best, magic) {
            (Some(h), _) => Found::Valid(h),
            (None, true) => Found::Damaged,
            (None, false) => Found::Nothing,
        })
    }

    /// Write `h` to its slot (not synced).
    pub fn write_header(&self, h: &Header) -> io::Result<()> {
        self.st.write_at(&h.encode(), (h.seq % 2) * SLOT)
    }

    /// Write part of a zone's data to `area` from byte `at` of it (not synced).
    pub fn write_area(&self, area: u32, at: u64, data: &[u8]) -> io::Result<()> {
        debug_assert!(at + data.len() as u64 <= self.zone);
        self.st
            .write_at(data, AREAS + u64::from(area) * self.zone + at)
    }

    /// Read `buf.len()` bytes of `area`.
    pub fn read_area(&self, area: u32, buf: &mut [u8]) -> io::Result<()> {
        self.st.read_at(buf, AREAS + u64::from(area) * self.zone)
    }

    /// Make the journal's writes durable.
    pub fn sync(&self) -> io::Result<()> {
        self.st.sync()
    }

    /// Zero the whole journal so that a crash while wiping leaves either
    /// the final header or no magic at all (never a damaged journal): the
    /// areas and the older slot first, then the first 512 bytes of the
    /// final slot (one sector, written whole or not at all), then the rest.
    pub fn wipe(&self, last: &Header) -> io::Result<()> {
        let zeros = vec![0u8; self.zone.max(SLOT) as usize];
        for area in 0..2 {
            self.st
                .write_at(&zeros[..self.zone as usize], AREAS + area * self.zone)?;
        }
        let slot = &zeros[..SLOT as usize];
        self.st.write_at(slot, ((last.seq + 1) % 2) * SLOT)?;
        self.st.sync()?;
        let at = (last.seq % 2) * SLOT;
        self.st.write_at(&slot[..512], at)?;
        self.st.sync()?;
        self.st.write_at(&slot[512..], at + 512)?;
        self.st.sync()
    }
}

/// What a journal's header slots hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// The newest valid header.
    Valid(Header),
    /// A magic, but no header whose checksum holds.
    Damaged,
    /// No magic at all.
    Nothing,
}

/// The unit a zone is read, converted, hashed and written in, in
/// parallel: its checksum is the BLAKE3 of its pieces' BLAKE3s.
pub const PIECE: usize = 256 << 10;

/// BLAKE3 of one piece (SHA-256 here cost a third of a conversion).
pub fn piece_sum(data: &[u8]) -> [u8; 32] {
    blake3::hash(data).into()
}

/// A zone's checksum from its pieces' sums, in order.
pub fn zone_sum(pieces: &[[u8; 32]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for p in pieces {
        h.update(p);
    }
    h.finalize().into()
}

/// A zone's checksum, its pieces hashed in parallel.
pub fn sum(data: &[u8]) -> [u8; 32] {
    use rayon::prelude::*;
    let pieces: Vec<[u8; 32]> = data.par_chunks(PIECE).map(piece_sum).collect();
    zone_sum(&pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            seq: 7,
            done: false,
            area: 1,
            progress: 1 << 20,
            hot: 65536,
            hot_sum: [3; 32],
            fingerprint: [9; 32],
            plan: "mode=reencrypt\n".into(),
        }
    }

    #[test]
    fn a_header_reads_back_and_any_flipped_bit_voids_it() {
        let h = header();
        let b = h.encode();
        assert_eq!(Header::decode(&b), Some(h));
        for i in (0..SLOT as usize).step_by(97) {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert_eq!(Header::decode(&c), None, "bit flipped at byte {i}");
        }
        assert_eq!(Header::decode(&b[..100]), None);
    }
}
