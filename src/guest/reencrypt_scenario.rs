//! The reencrypt scenario, run inside the guest on real block devices:
//! a whole `dmch reencrypt` logged by the kernel's dm-log-writes target,
//! the log replayed up to every FLUSH (and with a random part of the
//! writes after it) onto a fresh image, each resumed and compared with the
//! reference's encryption of the plaintext; then a read error and a write
//! error (dm-error) mid-way, resumed once the device is whole again.

use super::scenario::{check, clean, dmch};
use crate::engine::{Geometry, SectorCrypt};
use crate::key::Key;
use crate::spec::CipherSpec;
use crate::sys::dm::{Control, Mapping, Target};
use crate::sys::loopdev::LoopDevice;
use std::fs::OpenOptions;

/// Room before the data for the journal (sectors), the data, the zone.
const ROOM: u64 = 512;
const DATA: usize = 1 << 20;
const ZONE: &str = "64K";
const JOURNAL: usize = 8192 + 2 * 65536;
const IMG: &str = "/tmp/rr-data.img";
const LOG: &str = "/tmp/rr-log.img";
const REPLAY: &str = "/tmp/rr-replay.img";
const OLD_KEY: &str = "/tmp/rr-old.key";
const NEW_KEY: &str = "/tmp/rr-new.key";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn engine(spec: &str, key: &[u8]) -> Option<SectorCrypt> {
    SectorCrypt::new(
        &CipherSpec::parse(spec).ok()?,
        &Key::from_bytes(key),
        Geometry::default(),
    )
    .ok()
}

/// The image before (room, then the old ciphertext) and the data after.
fn volumes() -> Option<(Vec<u8>, Vec<u8>)> {
    let mut plain: Vec<u8> = (0..DATA).map(|i| (i * 131 + i / 4099) as u8).collect();
    plain[1080] = 0x53;
    plain[1081] = 0xef;
    let (ok, nk) = ([0x31u8; 32], [0x42u8; 32]);
    std::fs::write(OLD_KEY, ok).ok()?;
    std::fs::write(NEW_KEY, nk).ok()?;
    let mut old = plain.clone();
    engine("aes-cbc-plain", &ok)?.encrypt(0, &mut old).ok()?;
    let mut new = plain;
    engine("aes-xts-plain64", &nk)?.encrypt(0, &mut new).ok()?;
    let mut before = vec![0xa5u8; ROOM as usize * 512];
    before.extend_from_slice(&old);
    Some((before, new))
}

fn convert_args(dev: &str) -> Vec<String> {
    [
        "reencrypt",
        "--old-cipher",
        "aes-cbc-plain",
        "--old-key-file",
        OLD_KEY,
        "-c",
        "aes-xts-plain64",
        "-d",
        NEW_KEY,
        "-o",
        "512",
        "--journal-on-device",
        "0",
        "--zone-size",
        ZONE,
        dev,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn resume_args(dev: &str) -> Vec<String> {
    [
        "reencrypt",
        "--resume",
        "--old-key-file",
        OLD_KEY,
        "-d",
        NEW_KEY,
        "--journal-on-device",
        "0",
        dev,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run_dmch(args: &[String]) -> (i32, String) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (c, _, e) = dmch(&a, b"");
    (c, e)
}

fn has_magic(img: &[u8]) -> bool {
    [0usize, 4096]
        .iter()
        .any(|&o| img.get(o..o + 8) == Some(b"DMCHRJ01"))
}

/// Whether `img` holds the finished conversion: the new data, no journal.
fn finished(img: &[u8], new: &[u8]) -> bool {
    img.get(ROOM as usize * 512..) == Some(new) && !has_magic(img)
}

fn create(ctl: &Control, name: &str, targets: &[Target<'_>]) -> std::io::Result<Mapping> {
    let m = ctl.create(name)?;
    if let Err(e) = ctl
        .load_targets(&m, targets, false)
        .and_then(|_| ctl.resume(&m))
    {
        let _ = ctl.remove(&m);
        return Err(e);
    }
    Ok(m)
}

/// One entry of a dm-log-writes log: where, how long, its flags, its data.
struct Entry {
    sector: u64,
    flags: u64,
    data: Vec<u8>,
}

const LOG_FLUSH: u64 = 1;
const LOG_FUA: u64 = 2;
const LOG_DISCARD: u64 = 4;
const LOG_MARK: u64 = 8;

/// The entries of a dm-log-writes log (the format of the kernel's
/// drivers/md/dm-log-writes.c: a super block at 0, then each entry's
/// header in one device sector and its data after it).
fn parse_log(log: &[u8]) -> Result<(u64, Vec<Entry>), String> {
    let u64_at = |b: &[u8], o: usize| -> Result<u64, String> {
        b.get(o..o + 8)
            .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
            .ok_or_else(|| format!("the log ends at byte {o}"))
    };
    if u64_at(log, 0)? != 0x6a736677736872 || u64_at(log, 8)? != 1 {
        return Err("no dm-log-writes super block".into());
    }
    let n = u64_at(log, 16)?;
    let ss = u64::from(u32::from_le_bytes(log[24..28].try_into().expect("4 bytes")));
    if !matches!(ss, 512 | 1024 | 2048 | 4096) {
        return Err(format!("sector size {ss}"));
    }
    let mut pos = ss as usize;
    let mut out = Vec::new();
    for _ in 0..n {
        let sector = u64_at(log, pos)?;
        let nr = u64_at(log, pos + 8)?;
        let flags = u64_at(log, pos + 16)?;
        let data_len = u64_at(log, pos + 24)?;
        pos += ss as usize;
        if data_len != 0 && flags & LOG_MARK == 0 {
            return Err("inline data entries are not handled".into());
        }
        let len = if flags & LOG_DISCARD != 0 {
            0
        } else {
            (nr * ss) as usize
        };
        let data = log
            .get(pos..pos + len)
            .ok_or("an entry's data runs past the log")?
            .to_vec();
        pos += len;
        out.push(Entry {
            sector: sector * ss,
            flags,
            data,
        });
    }
    Ok((ss, out))
}

fn apply(img: &mut [u8], e: &Entry) {
    let o = e.sector as usize;
    if e.flags & LOG_DISCARD == 0 && o + e.data.len() <= img.len() {
        img[o..o + e.data.len()].copy_from_slice(&e.data);
    }
}

/// Log a whole conversion, then resume from every crash point the log has.
fn replay(ctl: &Control, before: &[u8], new: &[u8]) {
    let what = "reencrypt: a conversion logged by dm-log-writes";
    let made = std::fs::write(IMG, before).and_then(|_| std::fs::write(LOG, vec![0u8; 16 << 20]));
    let open = |p: &str| OpenOptions::new().read(true).write(true).open(p);
    let (Ok(()), Ok(df), Ok(lf)) = (made, open(IMG), open(LOG)) else {
        check(what, false, "cannot write the images");
        return;
    };
    let (Ok(d), Ok(l)) = (LoopDevice::attach(&df), LoopDevice::attach(&lf)) else {
        check(what, false, "cannot attach loop devices");
        return;
    };
    let sectors = before.len() as u64 / 512;
    let params = format!("{} {}", d.path, l.path);
    let t = [Target {
        start: 0,
        len: sectors,
        kind: "log-writes",
        params: &params,
    }];
    let logged = match create(ctl, "rr-log", &t) {
        Err(e) => Err(format!("the log-writes mapping: {e}")),
        Ok(m) => {
            let (c, e) = run_dmch(&convert_args(&m.node()));
            let removed = ctl.remove(&m);
            match (c, removed) {
                (0, Ok(())) => Ok(()),
                (0, Err(e)) => Err(format!("removing the log-writes mapping: {e}")),
                (_, _) => Err(e),
            }
        }
    };
    let _ = d.detach();
    let _ = l.detach();
    let through = std::fs::read(IMG).unwrap_or_default();
    check(
        "reencrypt through dm-log-writes: the device ends as the reference's encryption, journal wiped",
        logged.is_ok() && finished(&through, new),
        &logged.err().unwrap_or_default(),
    );
    let log = std::fs::read(LOG).unwrap_or_default();
    let (ss, entries) = match parse_log(&log) {
        Ok(x) => x,
        Err(e) => {
            check("reencrypt: the dm-log-writes log reads", false, &e);
            return;
        }
    };
    // Crash points: before every FLUSH (everything logged before it is
    // durable), also with a random part of the writes up to the next one,
    // and after the last entry.
    let flushes: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].flags & (LOG_FLUSH | LOG_FUA) != 0)
        .chain(std::iter::once(entries.len()))
        .collect();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut points = 0;
    let mut failures = Vec::new();
    let mut prefix = before.to_vec();
    let mut applied = 0;
    for (k, &at) in flushes.iter().enumerate() {
        while applied < at {
            apply(&mut prefix, &entries[applied]);
            applied += 1;
        }
        let next = flushes.get(k + 1).copied().unwrap_or(at);
        for variant in 0..2 {
            let mut state = prefix.clone();
            if variant == 1 {
                if next <= at + 1 {
                    continue;
                }
                // Writes after the flush reach the disk in any combination.
                for e in &entries[at..next] {
                    if rng.next().is_multiple_of(2) {
                        apply(&mut state, e);
                    }
                }
            }
            points += 1;
            if let Err(e) = resume_from(&state, before, new) {
                failures.push(format!("entry {at} variant {variant}: {e}"));
            }
        }
    }
    check(
        &format!(
            "reencrypt: power loss at each of {points} points of the dm-log-writes log ({} entries, {} flushes, {ss}-byte sectors), resumed: the reference's encryption every time",
            entries.len(),
            flushes.len() - 1
        ),
        failures.is_empty() && flushes.len() > 20,
        &failures.first().cloned().unwrap_or_default(),
    );
    clean("reencrypt replay");
}

/// Resume the conversion a crash left as `state` and check the result.
fn resume_from(state: &[u8], before: &[u8], new: &[u8]) -> Result<(), String> {
    std::fs::write(REPLAY, state).map_err(|e| e.to_string())?;
    if !has_magic(state) {
        // No journal: never begun (all as before) or finished and wiped.
        let untouched = state == before;
        return if untouched || finished(state, new) {
            Ok(())
        } else {
            Err("no journal, but the data is neither old nor new".into())
        };
    }
    let (c, e) = run_dmch(&resume_args(REPLAY));
    if c != 0 {
        return Err(format!("resume failed: {}", e.trim()));
    }
    let got = std::fs::read(REPLAY).map_err(|e| e.to_string())?;
    if finished(&got, new) {
        Ok(())
    } else {
        Err("the resumed data is not the reference's encryption".into())
    }
}

/// A read error or a write error half-way (16 sectors of the table are
/// dm-error's): one line, then the device made whole again and the
/// conversion resumed. For the write error the whole device is read
/// first and kept open, so the reads are the page cache's and only the
/// writes reach the error target. (dm-flakey's error_writes would also
/// fail the FLUSH of the first sync, before the journal is whole.)
fn io_error(ctl: &Control, kind: &str, before: &[u8], new: &[u8]) {
    let what = format!("reencrypt: a {kind} error half-way");
    let Ok(()) = std::fs::write(IMG, before) else {
        check(&what, false, "cannot write the image");
        return;
    };
    let Ok(df) = OpenOptions::new().read(true).write(true).open(IMG) else {
        check(&what, false, "cannot open the image");
        return;
    };
    let Ok(d) = LoopDevice::attach(&df) else {
        check(&what, false, "cannot attach a loop device");
        return;
    };
    let sectors = before.len() as u64 / 512;
    let half = ROOM + DATA as u64 / 1024;
    let linear_head = format!("{} 0", d.path);
    let linear_tail = format!("{} {}", d.path, half + 16);
    let whole = format!("{} 0", d.path);
    let t = |start, len, kind, params| Target {
        start,
        len,
        kind,
        params,
    };
    let faulty = [
        t(0, half, "linear", &linear_head),
        t(half, 16, "error", ""),
        t(half + 16, sectors - half - 16, "linear", &linear_tail),
    ];
    let outcome = (|| -> Result<(), String> {
        let m = create(ctl, "rr-fault", &faulty).map_err(|e| format!("the faulty mapping: {e}"))?;
        // Written through the error target: its sectors read from the page
        // cache, filled from the image while the table was all linear.
        let held = if kind == "write" {
            Some(cached(ctl, &m, &d.path, sectors, &faulty)?)
        } else {
            None
        };
        let (c, e) = run_dmch(&convert_args(&m.node()));
        let stopped = c != 0
            && e.trim()
                .lines()
                .filter(|l| l.starts_with("dmch: error:"))
                .count()
                == 1
            && e.contains("Input/output error")
            && e.contains("--resume");
        // The device whole again: one linear target in place of the faults.
        let fixed = [Target {
            start: 0,
            len: sectors,
            kind: "linear",
            params: &whole,
        }];
        let healed = ctl
            .suspend(&m)
            .and_then(|_| ctl.load_targets(&m, &fixed, false))
            .and_then(|_| ctl.resume(&m));
        let (rc, re) = run_dmch(&resume_args(&m.node()));
        drop(held);
        let _ = ctl.remove(&m);
        if !stopped {
            return Err(format!(
                "the conversion did not stop in one line: {}",
                e.trim()
            ));
        }
        healed.map_err(|e| format!("reloading the whole device: {e}"))?;
        if rc != 0 {
            return Err(format!("resume failed: {}", re.trim()));
        }
        Ok(())
    })();
    let _ = d.detach();
    let got = std::fs::read(IMG).unwrap_or_default();
    let ok = outcome.is_ok() && finished(&got, new);
    let detail = match outcome {
        Err(e) => e,
        Ok(()) if !ok => "the resumed data is not the reference's encryption".into(),
        Ok(()) => String::new(),
    };
    check(
        &format!(
            "{what}: one line, then --resume on the whole device gives the reference's encryption"
        ),
        ok,
        &detail,
    );
    clean(&what);
}

/// Fill the page cache of mapping `m` with the whole device read through an
/// all-linear table, then put `faulty` back; the open file keeps the cache.
fn cached(
    ctl: &Control,
    m: &Mapping,
    dev: &str,
    sectors: u64,
    faulty: &[Target<'_>],
) -> Result<std::fs::File, String> {
    let whole = format!("{dev} 0");
    let linear = [Target {
        start: 0,
        len: sectors,
        kind: "linear",
        params: &whole,
    }];
    let swap = |t: &[Target<'_>]| {
        ctl.suspend(m)
            .and_then(|_| ctl.load_targets(m, t, false))
            .and_then(|_| ctl.resume(m))
            .map_err(|e| format!("reloading: {e}"))
    };
    swap(&linear)?;
    let mut f = std::fs::File::open(m.node()).map_err(|e| e.to_string())?;
    std::io::copy(&mut f, &mut std::io::sink()).map_err(|e| format!("reading ahead: {e}"))?;
    swap(faulty)?;
    Ok(f)
}

/// The whole scenario; prints DMCH-CHECK lines.
pub fn run() {
    let Ok(ctl) = Control::open() else {
        check("reencrypt: device-mapper control", false, "cannot open it");
        return;
    };
    let Some((before, new)) = volumes() else {
        check("reencrypt: the volumes", false, "cannot make them");
        return;
    };
    debug_assert!(JOURNAL <= ROOM as usize * 512);
    replay(&ctl, &before, &new);
    io_error(&ctl, "read", &before, &new);
    io_error(&ctl, "write", &before, &new);
}
