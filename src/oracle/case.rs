//! One kernel case: a crypt table, the data pushed through it, optional
//! later steps (a reload with another iv_offset or offset, a partial
//! rewrite), and what the reference makes of it all.
//!
//! A case is written as words, `key=value` separated by spaces, the same
//! in the guest's case file, in `dmch kernel check --case '...'` and in the
//! regression file:
//!
//! ```text
//! id=ID cipher=SPEC key=HEX iv_offset=N sector_size=N large=1 offset=N len=BYTES
//! flags=a,b count=N data=PATTERN steps=STEP/STEP...
//! ```
//!
//! Only `cipher`, `key` and `len` are required; PATTERN is `counter` (byte i
//! is i mod 256, the default), `zeros`, `random:SEED` or `repeat:HEX`; a STEP
//! is `reload:IV_OFFSET:OFFSET` or `write:UNIT:UNITS:PATTERN` (units of the
//! sector size, from the start of the mapping). `count` overrides the
//! optional-parameter count the table carries (for refusal parity). In
//! `key`, `%XX` stands for the byte XX (hex): how a malformed key carries
//! whitespace, a NUL or `%` itself within its one word.

use crate::engine::SectorCrypt;
use crate::fault::Fault;
use crate::spec::CipherSpec;
use crate::table::{CryptParams, Rules, Table};

/// The key as one word: whitespace, control bytes, `%` and non-ASCII as
/// `%XX`.
fn escape_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The key a word carries (see [`escape_key`]).
fn unescape_key(word: &str) -> Result<String, String> {
    if !word.contains('%') {
        return Ok(word.into());
    }
    let b = word.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = word.get(i + 1..i + 3).unwrap_or("");
            let v = u8::from_str_radix(hex, 16)
                .ok()
                .filter(|_| hex.len() == 2)
                .ok_or_else(|| format!("key: '%' at {} is not %XX", i + 1))?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "key: the %XX bytes are not UTF-8".into())
}

/// Bounds on what a case may ask for, checked when it is read.
pub const MAX_LEN: usize = 64 << 20;
const MAX_STEPS: usize = 16;
const MAX_REPEAT: usize = 64;
const MAX_FIELD: usize = 20_000;

/// What a write puts through the mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Pattern {
    /// Byte i is i mod 256 (the vector format's `counter N`).
    #[default]
    Counter,
    /// All zeros.
    Zeros,
    /// A splitmix64 stream from this seed.
    Random(u64),
    /// These bytes over and over.
    Repeat(Vec<u8>),
}

impl Pattern {
    /// `len` bytes of this pattern.
    pub fn bytes(&self, len: usize) -> Vec<u8> {
        match self {
            Pattern::Counter => (0..len).map(|i| i as u8).collect(),
            Pattern::Zeros => vec![0; len],
            Pattern::Repeat(p) => p.iter().copied().cycle().take(len).collect(),
            Pattern::Random(seed) => {
                let mut s = *seed;
                let mut out = Vec::with_capacity(len + 8);
                while out.len() < len {
                    out.extend_from_slice(&super::fuzz::splitmix(&mut s).to_le_bytes());
                }
                out.truncate(len);
                out
            }
        }
    }

    /// Simpler patterns rank lower (the shrinker prefers them).
    pub fn rank(&self) -> u8 {
        match self {
            Pattern::Zeros => 0,
            Pattern::Counter => 1,
            Pattern::Repeat(_) => 2,
            Pattern::Random(_) => 3,
        }
    }

    fn word(&self) -> String {
        match self {
            Pattern::Counter => "counter".into(),
            Pattern::Zeros => "zeros".into(),
            Pattern::Random(s) => format!("random:{s}"),
            Pattern::Repeat(p) => format!("repeat:{}", hex::encode(p)),
        }
    }

    fn parse(s: &str) -> Result<Pattern, String> {
        Ok(match s {
            "counter" => Pattern::Counter,
            "zeros" => Pattern::Zeros,
            _ => {
                if let Some(seed) = s.strip_prefix("random:") {
                    Pattern::Random(
                        seed.parse()
                            .map_err(|_| format!("random:{seed}: the seed is not a number"))?,
                    )
                } else if let Some(h) = s.strip_prefix("repeat:") {
                    let p = hex::decode(h).map_err(|_| format!("repeat:{h}: not hex bytes"))?;
                    if p.is_empty() || p.len() > MAX_REPEAT {
                        return Err(format!("repeat: takes 1 to {MAX_REPEAT} bytes"));
                    }
                    Pattern::Repeat(p)
                } else {
                    return Err(format!(
                        "data pattern '{s}' is not counter, zeros, random:SEED or repeat:HEX"
                    ));
                }
            }
        })
    }
}

/// A step after the first write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Load a new table with another iv_offset and device offset (suspend,
    /// load, resume), everything else the same.
    Reload {
        /// The new iv_offset.
        iv_offset: u64,
        /// The new device offset (512-byte sectors).
        offset: u64,
    },
    /// Write `units` encryption units of `data` at unit `unit`.
    Write {
        /// First unit (sector_size bytes each) from the mapping's start.
        unit: u64,
        /// How many units.
        units: u64,
        /// What to write.
        data: Pattern,
    },
}

impl Step {
    fn word(&self) -> String {
        match self {
            Step::Reload { iv_offset, offset } => format!("reload:{iv_offset}:{offset}"),
            Step::Write { unit, units, data } => format!("write:{unit}:{units}:{}", data.word()),
        }
    }

    fn parse(s: &str) -> Result<Step, String> {
        let num = |v: &str, what: &str| -> Result<u64, String> {
            v.parse()
                .map_err(|_| format!("step '{s}': {what} '{v}' is not a number"))
        };
        let f: Vec<&str> = s.splitn(4, ':').collect();
        match f.as_slice() {
            ["reload", iv, off] => Ok(Step::Reload {
                iv_offset: num(iv, "iv_offset")?,
                offset: num(off, "offset")?,
            }),
            ["write", unit, units, data] => Ok(Step::Write {
                unit: num(unit, "unit")?,
                units: num(units, "units")?,
                data: Pattern::parse(data)?,
            }),
            _ => Err(format!(
                "step '{s}' is not reload:IV_OFFSET:OFFSET or write:UNIT:UNITS:PATTERN"
            )),
        }
    }
}

/// One kernel case: a crypt table and the data pushed through it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
    /// Bytes of data (a whole number of 512-byte sectors): the table's length.
    pub len: usize,
    /// More optional parameters, after sector_size and iv_large_sectors
    /// (the fuzzer's; possibly ones the kernel refuses).
    pub flags: Vec<String>,
    /// The optional-parameter count to write instead of the true one, as
    /// text (`+2`, `02`, a count that lies).
    pub opt_count: Option<String>,
    /// The first table's iv_offset as this text instead (`000…`, or a
    /// value past 2^64 the kernel wraps).
    pub iv_offset_text: Option<String>,
    /// What the first write puts through the mapping.
    pub data: Pattern,
    /// Reloads and rewrites after the first write.
    pub steps: Vec<Step>,
}

/// Why the reference gives no result for a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The kernel must refuse this table too.
    Refused(String),
    /// The kernel accepts it, but its result depends on memory it does not
    /// own: whatever it does is a kernel fault, never a rule.
    Undefined(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Refused(w) => f.write_str(w),
            Refusal::Undefined(w) => write!(f, "the kernel's result is undefined: {w}"),
        }
    }
}

impl From<crate::Error> for Refusal {
    fn from(e: crate::Error) -> Refusal {
        match e {
            crate::Error::Undefined(w) => Refusal::Undefined(w),
            e => Refusal::Refused(e.to_string()),
        }
    }
}

/// What the reference expects of a case the table of which it accepts.
pub struct Expected {
    /// The backing bytes over [`Case::span`] after every step.
    pub backing: Vec<u8>,
    /// What a read of the whole mapping gives at the end.
    pub read: Vec<u8>,
}

impl Case {
    /// A case with the defaults (512-byte sectors, counter data, nothing else).
    pub fn new(id: impl Into<String>, cipher: &str, key_hex: &str, len: usize) -> Case {
        Case {
            id: id.into(),
            cipher: cipher.into(),
            key_hex: key_hex.into(),
            sector_size: 512,
            len,
            ..Case::default()
        }
    }

    /// The crypt parameters for a table on `device` with this iv_offset and
    /// offset. These are raw fields, not a checked table: the kernel is also
    /// sent the tables the reference refuses.
    pub fn params_at(&self, device: &str, iv_offset: u64, offset: u64) -> String {
        let iv = match &self.iv_offset_text {
            Some(t) if iv_offset == self.iv_offset => t.clone(),
            _ => iv_offset.to_string(),
        };
        let mut opts = crate::table::Options {
            sector_size: (self.sector_size != 512).then_some(self.sector_size),
            iv_large_sectors: self.iv_large_sectors,
            ..Default::default()
        }
        .to_args();
        opts.extend(self.flags.iter().cloned());
        crate::table::params_text_counted(
            &self.cipher,
            &self.key_hex,
            &iv,
            device,
            offset,
            &opts,
            self.opt_count.as_deref(),
        )
    }

    /// The crypt parameters of the first table, on `device`.
    pub fn params(&self, device: &str) -> String {
        self.params_at(device, self.iv_offset, self.offset)
    }

    /// The plaintext of the first write.
    pub fn plaintext(&self) -> Vec<u8> {
        self.data.bytes(self.len)
    }

    /// Every (iv_offset, offset) the case's tables use, first one first.
    fn tables(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        std::iter::once((self.iv_offset, self.offset)).chain(self.steps.iter().filter_map(|s| {
            match s {
                Step::Reload { iv_offset, offset } => Some((*iv_offset, *offset)),
                Step::Write { .. } => None,
            }
        }))
    }

    /// The bytes of the backing file the case touches: [start, end).
    pub fn span(&self) -> (u64, u64) {
        let lo = self.tables().map(|t| t.1).min().unwrap_or(0);
        let hi = self.tables().map(|t| t.1).max().unwrap_or(0);
        (lo * 512, hi * 512 + self.len as u64)
    }

    /// The backing file size every case in `cases` fits in.
    pub fn backing_size(cases: &[Case]) -> u64 {
        cases.iter().map(|c| c.span().1).max().unwrap_or(4096)
    }

    /// The case as words (see the module documentation); defaults are left out.
    pub fn to_words(&self) -> String {
        let mut w = vec![
            format!("id={}", self.id),
            format!("cipher={}", self.cipher),
            format!("key={}", escape_key(&self.key_hex)),
        ];
        if self.iv_offset != 0 {
            w.push(format!("iv_offset={}", self.iv_offset));
        }
        if self.sector_size != 512 {
            w.push(format!("sector_size={}", self.sector_size));
        }
        if self.iv_large_sectors {
            w.push("large=1".into());
        }
        if self.offset != 0 {
            w.push(format!("offset={}", self.offset));
        }
        w.push(format!("len={}", self.len));
        if !self.flags.is_empty() {
            w.push(format!("flags={}", self.flags.join(",")));
        }
        if let Some(n) = &self.opt_count {
            w.push(format!("count={n}"));
        }
        if let Some(t) = &self.iv_offset_text {
            w.push(format!("iv_offset_text={t}"));
        }
        if self.data != Pattern::Counter {
            w.push(format!("data={}", self.data.word()));
        }
        if !self.steps.is_empty() {
            let s: Vec<String> = self.steps.iter().map(Step::word).collect();
            w.push(format!("steps={}", s.join("/")));
        }
        w.join(" ")
    }

    /// Read a case from words; `default_id` names it when no `id=` is given.
    /// Every bound is checked here, before anything is allocated.
    pub fn from_words(text: &str, default_id: &str) -> Result<Case, String> {
        let mut c = Case::new(default_id, "", "", 0);
        let (mut cipher, mut key, mut len) = (false, false, false);
        for word in text.split_whitespace() {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| format!("'{word}' is not key=value"))?;
            if v.len() > MAX_FIELD {
                return Err(format!("{k}= is longer than {MAX_FIELD} characters"));
            }
            let num = |v: &str| -> Result<u64, String> {
                v.parse()
                    .map_err(|_| format!("{k}={v}: not an unsigned number"))
            };
            match k {
                "id" => c.id = v.into(),
                "cipher" => (c.cipher, cipher) = (v.into(), true),
                "key" => (c.key_hex, key) = (unescape_key(v)?, true),
                "iv_offset" => c.iv_offset = num(v)?,
                "sector_size" => {
                    c.sector_size = u32::try_from(num(v)?)
                        .map_err(|_| format!("sector_size={v} is too large"))?
                }
                "large" => c.iv_large_sectors = matches!(v, "1" | "true" | "yes"),
                "offset" => c.offset = num(v)?,
                "len" => (c.len, len) = (num(v)? as usize, true),
                "flags" => {
                    c.flags = v
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                }
                "count" => c.opt_count = Some(v.into()),
                "iv_offset_text" => c.iv_offset_text = Some(v.into()),
                "data" => c.data = Pattern::parse(v)?,
                "steps" => {
                    c.steps = v
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(Step::parse)
                        .collect::<Result<_, _>>()?;
                }
                _ => return Err(format!("unknown case field '{k}'")),
            }
        }
        for (have, what) in [(cipher, "cipher="), (key, "key="), (len, "len=")] {
            if !have {
                return Err(format!("a case needs {what}"));
            }
        }
        c.check()?;
        Ok(c)
    }

    /// The bounds every case keeps: a length of whole 512-byte sectors up
    /// to [`MAX_LEN`], a backing span that fits, writes inside the mapping.
    pub fn check(&self) -> Result<(), String> {
        let c = self;
        if c.cipher.is_empty() || c.key_hex.is_empty() {
            return Err("a case needs a cipher and a key".into());
        }
        if c.len == 0 || !c.len.is_multiple_of(512) || c.len > MAX_LEN {
            return Err(format!(
                "len={} is not a positive multiple of 512 up to {MAX_LEN}",
                c.len
            ));
        }
        if c.sector_size == 0 || c.sector_size > 1 << 16 {
            return Err(format!("sector_size={} is out of range", c.sector_size));
        }
        if c.span().1 > 2 * MAX_LEN as u64 || c.tables().any(|t| t.1 > 1 << 40) {
            return Err("the case reaches too far into its backing file".into());
        }
        for s in &c.steps {
            if let Step::Write { unit, units, .. } = s {
                let end = unit.checked_add(*units).unwrap_or(u64::MAX);
                if *units == 0 || end * u64::from(c.sector_size) > c.len as u64 {
                    return Err(format!(
                        "step {}: units {unit}..{end} are not inside the {} bytes of the mapping",
                        s.word(),
                        c.len
                    ));
                }
            }
        }
        if c.steps.len() > MAX_STEPS {
            return Err(format!("at most {MAX_STEPS} steps"));
        }
        Ok(())
    }

    /// One line for the guest's case file.
    pub fn to_line(&self) -> String {
        self.to_words()
    }

    /// Read a case written by [`Case::to_line`].
    pub fn from_line(line: &str) -> Option<Case> {
        Case::from_words(line, "").ok()
    }

    /// What the reference makes of this case: the backing bytes and the
    /// final read, or why it refuses the table.
    pub fn reference(&self) -> Result<Expected, Refusal> {
        self.model(Fault::None)
    }

    /// The engine for this case's table at `iv_offset` and `offset`, checked
    /// as the kernel's constructor would, broken on purpose when `fault` says.
    fn engine(
        &self,
        iv_offset: u64,
        offset: u64,
        fault: Fault,
        rules: Rules,
    ) -> Result<SectorCrypt, Refusal> {
        let t = self
            .params_as(iv_offset, offset, rules)
            .and_then(|p| Table::new(0, self.len as u64 / 512, p))?;
        build_engine(&t, fault).map_err(Refusal::from)
    }

    /// The crypt parameters the kernel of `rules` reads from this case's
    /// table at `iv_offset` and `offset`, words split as dm_split_args does.
    fn params_as(&self, iv_offset: u64, offset: u64, rules: Rules) -> crate::Result<CryptParams> {
        let text = zeroize::Zeroizing::new(self.params_at("/dev/null", iv_offset, offset));
        let args = crate::table::split_args(&text, rules.fault);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        CryptParams::parse_args_as(&args, rules)
    }

    /// The key the kernel reads from this case's key field, in hex (a
    /// keyring key or a table the kernel refuses: none).
    pub(crate) fn key_as_read(&self) -> Option<zeroize::Zeroizing<String>> {
        match self.params_as(0, 0, Rules::default()).ok()?.key {
            crate::key::Key::Bytes(b) => Some(zeroize::Zeroizing::new(hex::encode(&*b))),
            crate::key::Key::Keyring { .. } => None,
        }
    }

    /// The reference's model of the whole case, optionally broken on
    /// purpose: a backing span of zeros, the first write, every step, then
    /// a read of the whole mapping through the last table.
    pub fn model(&self, fault: Fault) -> Result<Expected, Refusal> {
        self.model_as(fault, Rules::default())
    }

    /// [`Case::model`] with the table read as kernel `rules` reads it.
    pub fn model_as(&self, fault: Fault, rules: Rules) -> Result<Expected, Refusal> {
        // One fault breaks one rule, whichever layer holds it.
        let rules = Rules { fault, ..rules };
        let (lo, hi) = self.span();
        let mut backing = vec![0u8; (hi - lo) as usize];
        let ss = self.sector_size.max(1) as usize;
        let mut at = (self.offset * 512 - lo) as usize;
        let mut e = self.engine(self.iv_offset, self.offset, fault, rules)?;
        let mut d = self.plaintext();
        e.encrypt(0, &mut d)?;
        backing[at..at + self.len].copy_from_slice(&d);
        for (i, s) in self.steps.iter().enumerate() {
            match s {
                Step::Reload { iv_offset, offset } => {
                    e = self.engine(*iv_offset, *offset, fault, rules).map_err(
                        |why| match why {
                            Refusal::Refused(w) => {
                                Refusal::Refused(format!("step {} (reload): {w}", i + 1))
                            }
                            u => u,
                        },
                    )?;
                    at = (offset * 512 - lo) as usize;
                }
                Step::Write { unit, units, data } => {
                    let from = *unit as usize * ss;
                    let mut d = data.bytes(*units as usize * ss);
                    e.encrypt(from as u64 / 512, &mut d)?;
                    backing[at + from..at + from + d.len()].copy_from_slice(&d);
                }
            }
        }
        let mut read = backing[at..at + self.len].to_vec();
        e.decrypt(0, &mut read)?;
        Ok(Expected { backing, read })
    }
}

/// The reference engine for a checked table, broken on purpose when asked.
pub(crate) fn build_engine(t: &Table, fault: Fault) -> crate::Result<SectorCrypt> {
    let p = &t.params;
    SectorCrypt::new_with_fault(&p.cipher, &p.key, p.geometry(), fault)
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

/// At most this many excerpts travel per case: enough to name the first
/// differing sector of every case but the largest.
pub(crate) const MAX_EXCERPTS: usize = 2048;

/// The first 16 bytes of each sector: what a report shows of a mismatch.
pub(crate) fn excerpts(data: &[u8], sector_size: usize) -> Vec<[u8; 16]> {
    data.chunks(sector_size.max(512))
        .take(MAX_EXCERPTS)
        .filter(|s| s.len() >= 16)
        .map(|s| s[..16].try_into().unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Case {
        Case {
            id: "x".into(),
            cipher: "aes-cbc-essiv:sha256".into(),
            key_hex: "00".repeat(16),
            iv_offset: 8,
            sector_size: 4096,
            iv_large_sectors: true,
            offset: 16,
            len: 16384,
            flags: vec!["allow_discards".into()],
            opt_count: Some("+2".into()),
            iv_offset_text: Some("0008".into()),
            data: Pattern::Repeat(vec![1, 2, 3]),
            steps: vec![
                Step::Reload {
                    iv_offset: 24,
                    offset: 0,
                },
                Step::Write {
                    unit: 1,
                    units: 2,
                    data: Pattern::Random(9),
                },
            ],
        }
    }

    #[test]
    fn words_round_trip_and_leave_defaults_out() {
        let c = full();
        assert_eq!(Case::from_words(&c.to_words(), "d"), Ok(c));
        let plain = Case::new("p", "aes-xts-plain64", &"11".repeat(32), 512);
        assert_eq!(
            plain.to_words(),
            format!(
                "id=p cipher=aes-xts-plain64 key={} len=512",
                "11".repeat(32)
            )
        );
        let back = Case::from_words("cipher=aes key=00 len=512", "given-1").unwrap();
        assert_eq!(back.id, "given-1");
        assert_eq!(back.sector_size, 512);
    }

    #[test]
    fn bad_words_are_named() {
        for (text, says) in [
            ("cipher=aes key=00", "needs len="),
            ("cipher=aes key=00 len=100", "multiple of 512"),
            (
                "cipher=aes key=00 len=512 colour=red",
                "unknown case field 'colour'",
            ),
            ("cipher=aes key=00 len=512 data=stripes", "data pattern"),
            (
                "cipher=aes key=00 len=512 steps=write:0:2:zeros",
                "not inside",
            ),
            ("cipher=aes key=00 len=512 steps=jump:1", "is not reload"),
            ("cipher=aes key=00 len=99999999999", "multiple of 512"),
            ("cipher=aes key=00 len=512 offset=99999999999999", "too far"),
            ("lonely", "not key=value"),
        ] {
            let e = Case::from_words(text, "t").unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_model_follows_reloads_and_rewrites() {
        let key = "22".repeat(32);
        let mut c = Case::new("m", "aes-xts-plain64", &key, 4 * 512);
        c.steps = vec![
            Step::Reload {
                iv_offset: 100,
                offset: 2,
            },
            Step::Write {
                unit: 1,
                units: 1,
                data: Pattern::Zeros,
            },
        ];
        let m = c.reference().unwrap();
        assert_eq!(c.span(), (0, 6 * 512));
        // Sectors 0-1 keep the first write; 2..6 are read under the new table.
        let first = Case::new("f", "aes-xts-plain64", &key, 4 * 512)
            .reference()
            .unwrap();
        assert_eq!(m.backing[..1024], first.backing[..1024]);
        // The rewritten unit reads back as zeros through the new table.
        assert_eq!(m.read[512..1024], [0u8; 512]);
        assert_eq!(m.read.len(), 2048);
    }
}
