//! The conversion itself, over any [`Storage`]: zone by zone, each zone's
//! ciphertext side journalled and synced before the zone is rewritten in
//! place and synced, and recovery from whatever a crash left.
//!
//! Why this order is enough: the header that names a zone is written with
//! the zone's journal data, into the slot and area of its own parity, and
//! both are synced before the device is touched; the device write is
//! synced before the next header is written. So the newest valid header
//! either names a zone whose journal data is intact (then it is written
//! again, which is harmless if it already was), or names a zone whose data
//! did not all reach the journal (then the device never saw that zone, and
//! it is converted from the device). Every zone before `progress` is final.

use super::ReencryptError;
use super::journal::{Header, Journal, PIECE, piece_sum, sum, zone_sum};
use super::plan::Plan;
use super::storage::Storage;
use crate::engine::SectorCrypt;
use hmac::{KeyInit, Mac};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The engines of both sides (`None`: plaintext).
pub struct Engines {
    /// The old side.
    pub old: Option<SectorCrypt>,
    /// The new side.
    pub new: Option<SectorCrypt>,
}

impl Engines {
    /// Both sides of `plan` under their keys (empty for a plaintext side).
    pub fn new(plan: &Plan, old_key: &[u8], new_key: &[u8]) -> Result<Engines, ReencryptError> {
        let side = |s: &Option<super::plan::Side>, k: &[u8]| match s {
            Some(s) => s.engine(k).map(Some),
            None => Ok(None),
        };
        Ok(Engines {
            old: side(&plan.old, old_key)?,
            new: side(&plan.new, new_key)?,
        })
    }

    /// Old to new, in place; `sector` is the target sector of `buf[0]`.
    fn convert(&self, sector: u64, buf: &mut [u8]) -> Result<(), ReencryptError> {
        if let Some(e) = &self.old {
            e.decrypt(sector, buf)?;
        }
        if let Some(e) = &self.new {
            e.encrypt(sector, buf)?;
        }
        Ok(())
    }
}

/// The plan's fingerprint under both keys: a resume with other keys, or
/// a journal of another plan, is refused before anything is written.
pub fn fingerprint(plan_text: &str, old_key: &[u8], new_key: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"dmch-reencrypt-journal-v1");
    for k in [old_key, new_key] {
        h.update((k.len() as u32).to_le_bytes());
        h.update(k);
    }
    let key = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
    let mut mac =
        <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&key[..]).expect("any key length");
    mac.update(plan_text.as_bytes());
    mac.finalize().into_bytes().into()
}

/// How far a run is.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Bytes final.
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
    /// Bytes converted by this run so far.
    pub this_run: u64,
    /// Time this run has taken.
    pub elapsed: Duration,
}

/// A conversion at some state, with its device and journal.
pub struct Converter<'a, D: Storage, J: Storage> {
    plan: &'a Plan,
    engines: &'a Engines,
    device: D,
    journal: Journal<J>,
    head: Header,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> ReencryptError {
    move |source| ReencryptError::Io { what, source }
}

impl<'a, D: Storage, J: Storage> Converter<'a, D, J> {
    /// The first header of a new journal for `plan`.
    pub fn first_header(plan: &Plan, fingerprint: [u8; 32]) -> Result<Header, ReencryptError> {
        Ok(Header {
            seq: 1,
            done: false,
            area: 1,
            progress: 0,
            hot: 0,
            hot_sum: [0; 32],
            fingerprint,
            plan: plan.to_text()?,
        })
    }

    /// A conversion continuing from `head` (checked against the plan: a
    /// header that cannot be one of ours is a corrupt journal).
    pub fn new(
        plan: &'a Plan,
        engines: &'a Engines,
        device: D,
        journal: J,
        head: Header,
    ) -> Result<Self, ReencryptError> {
        let p = head.progress;
        let zone_ok = p.is_multiple_of(plan.zone) || p == plan.length;
        let hot_ok = head.hot == 0 || head.hot == plan.zone.min(plan.length - p.min(plan.length));
        if p > plan.length || !zone_ok || !hot_ok || (head.done && p != plan.length) {
            return Err(ReencryptError::Journal(format!(
                "the journal's state (progress {p}, hot zone {} bytes) does not fit its plan",
                head.hot
            )));
        }
        Ok(Converter {
            plan,
            engines,
            journal: Journal::new(journal, plan.zone),
            device,
            head,
        })
    }

    /// Bytes already final.
    pub fn progress(&self) -> u64 {
        self.head.progress
    }

    /// Whether the header says the conversion is complete.
    pub fn done(&self) -> bool {
        self.head.done
    }

    /// Put right what an interruption left: the zone the newest header
    /// names is written again from the journal if its data there is whole,
    /// else it was never touched. Returns whether a zone was rewritten.
    pub fn recover(&mut self) -> Result<bool, ReencryptError> {
        let h = &self.head;
        if h.done || h.hot == 0 {
            return Ok(false);
        }
        let (p, n) = (h.progress, h.hot as usize);
        let mut data = Zeroizing::new(vec![0u8; n]);
        self.journal
            .read_area(h.area, &mut data)
            .map_err(io("reading the journal's zone".into()))?;
        if sum(&data) != h.hot_sum {
            // The journal data of this zone never became whole, so its
            // header was not synced either and the device is untouched.
            self.head.hot = 0;
            return Ok(false);
        }
        if self.plan.new.is_none() {
            // A decryption journals the old ciphertext.
            let old = self.engines.old.as_ref().expect("decrypt has an old side");
            old.decrypt(p / 512, &mut data)?;
        }
        let at = self.plan.start() + p;
        self.device
            .write_at(&data, at)
            .map_err(io(format!("rewriting the device at byte {at}")))?;
        self.device
            .sync()
            .map_err(io("syncing the device".into()))?;
        self.head.progress = p + n as u64;
        self.head.hot = 0;
        Ok(true)
    }

    /// Convert zone after zone until done (or a stop is asked for between
    /// zones), reporting after each; [`Converter::recover`] first.
    pub fn run(&mut self, progress: &mut dyn FnMut(&Progress)) -> Result<(), ReencryptError> {
        let t0 = Instant::now();
        let from = self.head.progress;
        let zone = self.plan.zone as usize;
        let decrypting = self.plan.new.is_none();
        let mut buf = Zeroizing::new(vec![0u8; zone]);
        // A decryption journals the old ciphertext, kept here.
        let mut orig = Zeroizing::new(vec![0u8; if decrypting { zone } else { 0 }]);
        while self.head.progress < self.plan.length && !self.head.done {
            if crate::interrupt::requested() {
                return Err(ReencryptError::Interrupted {
                    done: self.head.progress,
                    total: self.plan.length,
                });
            }
            let p = self.head.progress;
            let n = (self.plan.length - p).min(self.plan.zone) as usize;
            let seq = self.head.seq + 1;
            let area = (seq % 2) as u32;
            let sums = self.convert_zone(p, &mut buf[..n], &mut orig, area)?;
            let next = Header {
                seq,
                done: false,
                area,
                progress: p,
                hot: n as u64,
                hot_sum: zone_sum(&sums),
                fingerprint: self.head.fingerprint,
                plan: self.head.plan.clone(),
            };
            self.journal
                .write_header(&next)
                .map_err(io("writing the journal".into()))?;
            self.journal
                .sync()
                .map_err(io("syncing the journal".into()))?;
            self.head = next;
            let at = self.plan.start() + p;
            buf[..n]
                .par_chunks(PIECE)
                .enumerate()
                .try_for_each(|(i, piece)| {
                    let o = at + (i * PIECE) as u64;
                    self.device
                        .write_at(piece, o)
                        .map_err(io(format!("writing the device at byte {o}")))
                })?;
            self.device
                .sync()
                .map_err(io("syncing the device".into()))?;
            self.head.progress = p + n as u64;
            self.head.hot = 0;
            progress(&Progress {
                done: self.head.progress,
                total: self.plan.length,
                this_run: self.head.progress - from,
                elapsed: t0.elapsed(),
            });
        }
        if !self.head.done {
            let last = Header {
                seq: self.head.seq + 1,
                done: true,
                hot: 0,
                progress: self.plan.length,
                ..self.head.clone()
            };
            self.journal
                .write_header(&last)
                .map_err(io("writing the journal".into()))?;
            self.journal
                .sync()
                .map_err(io("syncing the journal".into()))?;
            self.head = last;
        }
        Ok(())
    }

    /// Read the zone at `p` into `buf`, convert it, and write its
    /// ciphertext side into journal `area` (not synced), a piece per task
    /// so that reads, the ciphers, the checksums and the writes all run on
    /// every core. Returns the pieces' checksums.
    fn convert_zone(
        &self,
        p: u64,
        buf: &mut [u8],
        orig: &mut [u8],
        area: u32,
    ) -> Result<Vec<[u8; 32]>, ReencryptError> {
        let at = self.plan.start() + p;
        let decrypting = self.plan.new.is_none();
        let one = |i: usize, piece: &mut [u8], keep: Option<&mut [u8]>| {
            let off = (i * PIECE) as u64;
            self.device
                .read_at(piece, at + off)
                .map_err(io(format!("reading the device at byte {}", at + off)))?;
            let side: &[u8] = match keep {
                Some(k) => {
                    k.copy_from_slice(piece);
                    self.engines.convert((p + off) / 512, piece)?;
                    k
                }
                None => {
                    self.engines.convert((p + off) / 512, piece)?;
                    piece
                }
            };
            self.journal
                .write_area(area, off, side)
                .map_err(io("writing the journal".into()))?;
            Ok(piece_sum(side))
        };
        if decrypting {
            let orig = &mut orig[..buf.len()];
            buf.par_chunks_mut(PIECE)
                .zip(orig.par_chunks_mut(PIECE))
                .enumerate()
                .map(|(i, (piece, keep))| one(i, piece, Some(keep)))
                .collect()
        } else {
            buf.par_chunks_mut(PIECE)
                .enumerate()
                .map(|(i, piece)| one(i, piece, None))
                .collect()
        }
    }

    /// Zero the journal (a journal in room on the device); the header
    /// must say done.
    pub fn wipe_journal(&self) -> Result<(), ReencryptError> {
        debug_assert!(self.head.done);
        self.journal
            .wipe(&self.head)
            .map_err(io("wiping the journal".into()))
    }
}
