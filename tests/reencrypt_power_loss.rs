//! Power loss during `dmch reencrypt`, simulated below the conversion: a
//! write layer that keeps what `sync` made durable and, at a chosen write,
//! loses every write since the last sync (or keeps a random part of them)
//! and tears the write in flight. For every write of small conversions
//! (reencrypt, encrypt, decrypt; sector sizes 512 and 4096; an offset and
//! iv offsets) the run is cut there, resumed (itself cut again at random),
//! and the device compared with a fresh encryption of the plaintext under
//! the new parameters. The journal must never hold a plaintext sector.

use dmcrypt_harness::engine::{Geometry, SectorCrypt};
use dmcrypt_harness::key::Key;
use dmcrypt_harness::reencrypt::convert::Converter;
use dmcrypt_harness::reencrypt::journal::{Found, Journal};
use dmcrypt_harness::reencrypt::storage::Storage;
use dmcrypt_harness::reencrypt::{Engines, Mode, Plan, Side};
use dmcrypt_harness::spec::CipherSpec;
use std::io;
use std::sync::{Arc, Mutex};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// How unsynced writes fare at the crash.
#[derive(Clone, Copy, Debug)]
enum Loss {
    /// All lost; the write in flight torn.
    All,
    /// A random part kept (in any combination); the write in flight torn.
    Some,
}

struct World {
    writes: u64,
    crash_at: u64,
    crashed: bool,
    loss: Loss,
    rng: Rng,
    disks: Vec<DiskState>,
}

struct DiskState {
    durable: Vec<u8>,
    /// What reads see (durable plus unsynced writes).
    live: Vec<u8>,
    pending: Vec<(u64, Vec<u8>)>,
}

/// One disk of the world (the device or the journal).
#[derive(Clone)]
struct Disk {
    world: Arc<Mutex<World>>,
    id: usize,
}

fn dead() -> io::Error {
    io::Error::other("power lost")
}

impl World {
    fn crash(&mut self, torn: Option<(usize, u64, &[u8])>) {
        let loss = self.loss;
        for d in 0..self.disks.len() {
            let pending = std::mem::take(&mut self.disks[d].pending);
            for (off, data) in pending {
                let keep = match loss {
                    Loss::All => false,
                    Loss::Some => self.rng.below(2) == 0,
                };
                if keep {
                    let o = off as usize;
                    self.disks[d].durable[o..o + data.len()].copy_from_slice(&data);
                }
            }
        }
        if let Some((d, off, data)) = torn {
            // Whole 512-byte units of the write in flight, any of them.
            for (i, unit) in data.chunks(512).enumerate() {
                if self.rng.below(2) == 0 {
                    let o = off as usize + i * 512;
                    self.disks[d].durable[o..o + unit.len()].copy_from_slice(unit);
                }
            }
        }
        self.crashed = true;
    }
}

impl Storage for Disk {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let w = self.world.lock().unwrap();
        if w.crashed {
            return Err(dead());
        }
        let d = &w.disks[self.id];
        let o = offset as usize;
        let src = d
            .live
            .get(o..o + buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut w = self.world.lock().unwrap();
        if w.crashed {
            return Err(dead());
        }
        w.writes += 1;
        if w.writes == w.crash_at {
            w.crash(Some((self.id, offset, buf)));
            return Err(dead());
        }
        let d = &mut w.disks[self.id];
        let o = offset as usize;
        d.live[o..o + buf.len()].copy_from_slice(buf);
        d.pending.push((offset, buf.to_vec()));
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut w = self.world.lock().unwrap();
        if w.crashed {
            return Err(dead());
        }
        let d = &mut w.disks[self.id];
        for (off, data) in std::mem::take(&mut d.pending) {
            let o = off as usize;
            d.durable[o..o + data.len()].copy_from_slice(&data);
        }
        Ok(())
    }
}

/// A world of a device and a journal from their durable images.
fn world(images: [Vec<u8>; 2], crash_at: u64, loss: Loss, seed: u64) -> (Disk, Disk) {
    let disks = images
        .into_iter()
        .map(|b| DiskState {
            live: b.clone(),
            durable: b,
            pending: Vec::new(),
        })
        .collect();
    let w = Arc::new(Mutex::new(World {
        writes: 0,
        crash_at,
        crashed: false,
        loss,
        rng: Rng(seed | 1),
        disks,
    }));
    (
        Disk {
            world: w.clone(),
            id: 0,
        },
        Disk { world: w, id: 1 },
    )
}

fn durable(d: &Disk) -> Vec<u8> {
    d.world.lock().unwrap().disks[d.id].durable.clone()
}

fn writes(d: &Disk) -> u64 {
    d.world.lock().unwrap().writes
}

fn side(cipher: &str, sector_size: u32, iv_offset: u64) -> Side {
    Side {
        cipher: cipher.into(),
        hash: "sha256".into(),
        key_bits: 256,
        sector_size,
        iv_offset,
        iv_large_sectors: false,
        keyfile_offset: 0,
        keyfile_size: 0,
    }
}

fn engine(s: &Side, key: &[u8]) -> SectorCrypt {
    let g = Geometry {
        sector_size: s.sector_size,
        iv_offset: s.iv_offset,
        iv_large_sectors: s.iv_large_sectors,
    };
    SectorCrypt::new(
        &CipherSpec::parse(&s.cipher).unwrap(),
        &Key::from_bytes(key),
        g,
    )
    .unwrap()
}

struct Setup {
    name: &'static str,
    plan: Plan,
    old_key: Vec<u8>,
    new_key: Vec<u8>,
    plaintext: Vec<u8>,
    /// The device before: header room, then the old side's data.
    before: Vec<u8>,
    /// The device as it must end.
    after: Vec<u8>,
}

fn setup(name: &'static str, mode: Mode, old: Option<Side>, new: Option<Side>, zone: u64) -> Setup {
    sized(name, mode, old, new, zone, 64 * 1024)
}

/// A device of 4 KiB of header room and `data` bytes of data.
fn sized(
    name: &'static str,
    mode: Mode,
    old: Option<Side>,
    new: Option<Side>,
    zone: u64,
    data: usize,
) -> Setup {
    let device = 4096 + data;
    let old_key: Vec<u8> = (0..32).map(|i| i as u8 ^ 0x5a).collect();
    let new_key: Vec<u8> = (0..32).map(|i| (i as u8).wrapping_mul(7) ^ 0xc3).collect();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let plaintext: Vec<u8> = (0..data).map(|_| rng.next() as u8).collect();
    let plan = Plan::new(
        mode,
        old.clone(),
        new.clone(),
        8,
        None,
        Some(zone),
        device as u64,
    )
    .unwrap();
    let mut before = vec![0xeeu8; device];
    let mut data = plaintext.clone();
    if let Some(s) = &old {
        engine(s, &old_key).encrypt(0, &mut data).unwrap();
    }
    before[4096..].copy_from_slice(&data);
    let mut after = before.clone();
    let mut data = plaintext.clone();
    if let Some(s) = &new {
        engine(s, &new_key).encrypt(0, &mut data).unwrap();
    }
    after[4096..].copy_from_slice(&data);
    Setup {
        name,
        plan,
        old_key,
        new_key,
        plaintext,
        before,
        after,
    }
}

fn setups() -> Vec<Setup> {
    vec![
        setup(
            "reencrypt aes-cbc-plain -> aes-xts-plain64",
            Mode::Reencrypt,
            Some(side("aes-cbc-plain", 512, 0)),
            Some(side("aes-xts-plain64", 512, 0)),
            8192,
        ),
        setup(
            "reencrypt 512-byte sectors -> 4096, iv offsets",
            Mode::Reencrypt,
            Some(side("aes-cbc-essiv:sha256", 512, 3)),
            Some(side("serpent-xts-plain64", 4096, 16)),
            12288,
        ),
        setup(
            "encrypt a plaintext image in place",
            Mode::Encrypt,
            None,
            Some(side("twofish-cbc-essiv:sha256", 512, 0)),
            8192,
        ),
        // Zones of several 256 KiB pieces, converted and written in parallel.
        sized(
            "reencrypt with zones of three pieces",
            Mode::Reencrypt,
            Some(side("aes-xts-plain64", 512, 0)),
            Some(side("aes-cbc-essiv:sha256", 4096, 0)),
            768 << 10,
            (1536 << 10) + (256 << 10),
        ),
        setup(
            "decrypt in place",
            Mode::Decrypt,
            Some(side("aes-xts-plain64", 4096, 0)),
            None,
            16384,
        ),
    ]
}

/// The journal's first state, as `start` makes it durable.
fn fresh_journal(s: &Setup) -> Vec<u8> {
    let fp = dmcrypt_harness::reencrypt::convert::fingerprint(
        &s.plan.to_text().unwrap(),
        key_of(s, true),
        key_of(s, false),
    );
    let first = Converter::<Disk, Disk>::first_header(&s.plan, fp).unwrap();
    let mut j = vec![0u8; dmcrypt_harness::reencrypt::journal::size_for(s.plan.zone) as usize];
    let slot = dmcrypt_harness::reencrypt::journal::SLOT as usize;
    j[slot..2 * slot].copy_from_slice(&first.encode());
    j
}

fn key_of(s: &Setup, old: bool) -> &[u8] {
    match (old, &s.plan.old, &s.plan.new) {
        (true, Some(_), _) => &s.old_key,
        (false, _, Some(_)) => &s.new_key,
        _ => &[],
    }
}

/// One run from the durable state `images`, crashing at write `crash_at`
/// (0: never). Returns the durable images after it and whether it finished.
fn attempt(
    s: &Setup,
    images: [Vec<u8>; 2],
    crash_at: u64,
    loss: Loss,
    seed: u64,
) -> ([Vec<u8>; 2], bool, u64) {
    let engines = Engines::new(&s.plan, key_of(s, true), key_of(s, false)).unwrap();
    let (dev, jour) = world(images, crash_at, loss, seed);
    let head = match Journal::new(jour.clone(), s.plan.zone).latest().unwrap() {
        Found::Valid(h) => h,
        // Wiped: the crash came while the final journal was being zeroed.
        Found::Nothing => return ([durable(&dev), durable(&jour)], true, 0),
        Found::Damaged => panic!("{}: a crash left a damaged journal", s.name),
    };
    let mut c = Converter::new(&s.plan, &engines, dev.clone(), jour.clone(), head).unwrap();
    // The journal is then zeroed, as one in room on the device is.
    let ok = c.recover().is_ok() && c.run(&mut |_| {}).is_ok() && c.wipe_journal().is_ok();
    // A finished run synced everything; a crashed one left only durable bytes.
    ([durable(&dev), durable(&jour)], ok, writes(&dev))
}

fn no_plaintext_in(s: &Setup, journal: &[u8]) -> bool {
    let sectors: std::collections::HashSet<&[u8]> = s.plaintext.chunks(512).collect();
    !journal.chunks(512).any(|c| sectors.contains(c))
}

#[test]
fn power_loss_at_every_write_then_resume_gives_the_new_ciphertext() {
    let mut checked = 0;
    for s in setups() {
        let start = [s.before.clone(), fresh_journal(&s)];
        // The number of writes of an uninterrupted run.
        let (end, ok, total) = attempt(&s, start.clone(), 0, Loss::All, 1);
        assert!(
            end[1].iter().all(|b| *b == 0),
            "{}: the journal is not zeroed",
            s.name
        );
        assert!(ok, "{}: the run without a crash failed", s.name);
        assert_eq!(
            end[0], s.after,
            "{}: the run without a crash is wrong",
            s.name
        );
        assert!(total > 10, "{}: only {total} writes", s.name);
        for at in 1..=total {
            let variants =
                std::iter::once((Loss::All, at)).chain((1..8).map(|k| (Loss::Some, at * 131 + k)));
            for (loss, seed) in variants {
                let (mut images, ok, _) = attempt(&s, start.clone(), at, loss, seed);
                assert!(!ok, "{}: write {at} was to crash the run", s.name);
                assert!(
                    no_plaintext_in(&s, &images[1]),
                    "{}: plaintext in the journal after a crash at write {at}",
                    s.name
                );
                // The resume may lose power too, once, somewhere.
                let mut rng = Rng(seed ^ 0xabcdef);
                let again = 1 + rng.below(total);
                let (im, _, _) = attempt(&s, images, again, Loss::Some, seed + 1);
                images = im;
                let (im, ok, _) = attempt(&s, images, 0, loss, seed + 2);
                assert!(
                    ok,
                    "{}: resume after a crash at write {at} ({loss:?}) failed",
                    s.name
                );
                assert!(
                    im[0] == s.after,
                    "{}: crash at write {at} ({loss:?}, then at resume write {again}), resumed: the device differs from a fresh encryption at byte {:?}",
                    s.name,
                    im[0].iter().zip(&s.after).position(|(a, b)| a != b)
                );
                checked += 1;
            }
        }
    }
    println!("{checked} crash points resumed to the exact new ciphertext");
    assert!(checked > 100);
}

/// Without its ordering the journal is not enough: a converter whose
/// device write reaches the disk before its journal (no sync between them)
/// is caught by the same simulation. This proves the test can fail.
#[test]
fn the_simulation_catches_a_journal_not_synced_before_the_device_write() {
    struct Unsynced(Disk);
    impl Storage for Unsynced {
        fn read_at(&self, b: &mut [u8], o: u64) -> io::Result<()> {
            self.0.read_at(b, o)
        }
        fn write_at(&self, b: &[u8], o: u64) -> io::Result<()> {
            self.0.write_at(b, o)
        }
        // The journal's sync does nothing: its writes stay volatile while
        // the device is written.
        fn sync(&self) -> io::Result<()> {
            Ok(())
        }
    }
    let s = &setups()[0];
    let start = [s.before.clone(), fresh_journal(s)];
    let engines = Engines::new(&s.plan, &s.old_key, &s.new_key).unwrap();
    let mut caught = false;
    for at in 1..30 {
        let (dev, jour) = world(start.clone(), at, Loss::All, at);
        let Found::Valid(head) = Journal::new(jour.clone(), s.plan.zone).latest().unwrap() else {
            panic!("the first header is valid")
        };
        let mut c =
            Converter::new(&s.plan, &engines, dev.clone(), Unsynced(jour.clone()), head).unwrap();
        let _ = c.recover().and_then(|_| c.run(&mut |_| {}));
        let images = [durable(&dev), durable(&jour)];
        // A journal left without a header is as much a failure as wrong data.
        let (_, w) = world(images.clone(), 0, Loss::All, 5);
        if !matches!(
            Journal::new(w, s.plan.zone).latest().unwrap(),
            Found::Valid(_)
        ) {
            caught = true;
            continue;
        }
        let (im, _, _) = attempt(s, images, 0, Loss::All, 5);
        caught |= im[0] != s.after;
    }
    assert!(caught, "a journal that is never synced went unnoticed");
}
