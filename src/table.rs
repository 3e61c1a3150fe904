//! dm table lines for the crypt target:
//! `<start> <len> crypt <cipher> <key> <iv_offset> <device> <offset> [<#opt> <opt>...]`.
//!
//! Option names are matched case-insensitively (strcasecmp); the valued
//! options `sector_size:`, `integrity:` and `integrity_key_size:` are read by
//! sscanf in the kernel and so are case-sensitive. Output follows the order
//! of the kernel's status line.

use crate::error::{Error, Result};
use crate::fault::Fault;
use crate::key::Key;
use crate::kver::KernelVersion;
use crate::spec::CipherSpec;
use std::fmt;

/// The optional parameters, as the kernel knows them (6.12).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `allow_discards`: pass discards through.
    pub allow_discards: bool,
    /// `same_cpu_crypt`: encrypt on the CPU that issued the I/O.
    pub same_cpu_crypt: bool,
    /// `high_priority` (6.10 and later): high-priority workqueues.
    pub high_priority: bool,
    /// `submit_from_crypt_cpus`: write from the encryption threads.
    pub submit_from_crypt_cpus: bool,
    /// `no_read_workqueue`: decrypt reads in the completion context.
    pub no_read_workqueue: bool,
    /// `no_write_workqueue`: encrypt writes without the write workqueue.
    pub no_write_workqueue: bool,
    /// `integrity:<bytes>:<aead|none>`.
    pub integrity: Option<(u32, String)>,
    /// `integrity_key_size:<bytes>`.
    pub integrity_key_size: Option<u32>,
    /// `sector_size:<bytes>` (512 when absent).
    pub sector_size: Option<u32>,
    /// `iv_large_sectors`: IV sectors in sector_size units.
    pub iv_large_sectors: bool,
    /// How the text was read (not part of what the options are).
    pub read: ReadNotes,
}

/// What reading option text noted beyond the options themselves. Two
/// option sets are equal whatever their notes: the kernel holds the same.
#[derive(Clone, Debug, Default, Eq)]
pub struct ReadNotes {
    /// Words after the counted options: the kernel ignores them (and so
    /// does the table this becomes; `dmch table` warns).
    pub ignored: Vec<String>,
    /// The largest `sector_size:` any option named: the kernel checks the
    /// target length against each one as it reads it, even one a later
    /// option replaces (0: none named).
    pub len_unit: u32,
}

impl PartialEq for ReadNotes {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The crypt target's parameters (everything after `crypt`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CryptParams {
    /// The cipher spec.
    pub cipher: CipherSpec,
    /// The key field.
    pub key: Key,
    /// The IV offset, in 512-byte sectors.
    pub iv_offset: u64,
    /// The device, as given (a path or major:minor).
    pub device: String,
    /// The data's offset on the device, in 512-byte sectors.
    pub offset: u64,
    /// The optional parameters.
    pub options: Options,
}

/// A whole table line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// First sector of the target in the mapped device.
    pub start: u64,
    /// Length of the target in 512-byte sectors.
    pub len: u64,
    /// The crypt target's parameters.
    pub params: CryptParams,
}

/// Sector geometry: the table fields and options that change the transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Encryption unit in bytes: 512, 1024, 2048 or 4096.
    pub sector_size: u32,
    /// The table's iv_offset, in 512-byte units.
    pub iv_offset: u64,
    /// IV sectors count in `sector_size` units instead of 512 bytes.
    pub iv_large_sectors: bool,
}

impl Default for Geometry {
    fn default() -> Self {
        Geometry {
            sector_size: 512,
            iv_offset: 0,
            iv_large_sectors: false,
        }
    }
}

impl Geometry {
    /// The kernel's rules: sector_size a power of two in 512..=4096, and
    /// iv_offset a multiple of sector_size/512.
    pub fn validate(&self) -> Result<()> {
        let ss = self.sector_size;
        if !(512..=4096).contains(&ss) || !ss.is_power_of_two() {
            return Err(Error::Geometry(format!(
                "sector size {ss} is not a power of two between 512 and 4096"
            )));
        }
        let step = u64::from(ss / 512);
        if !self.iv_offset.is_multiple_of(step) {
            return Err(Error::Geometry(format!(
                "iv_offset {} is not a multiple of {step} (sector size {ss} / 512)",
                self.iv_offset
            )));
        }
        Ok(())
    }

    pub(crate) fn shift(&self) -> u32 {
        (self.sector_size / 512).trailing_zeros()
    }
}

/// The largest integrity tag dm-crypt takes (MAX_TAG_SIZE).
const MAX_TAG_SIZE: u32 = 480;

/// How the kernel's `sscanf` turns a decimal number of 2^64 or more into
/// 64 bits (lib/kstrtox.c `_parse_integer_limit`): every digit is consumed
/// either way, so the table loads with the value it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// `res = res * base + val` wraps: N mod 2^64 (seen on 5.10, 6.1 and
    /// 6.12; 6.12.118's source, kstrtox.c:82).
    Wrap,
    /// `check_mul_overflow`/`check_add_overflow` set ULLONG_MAX: min(N,
    /// 2^64 - 1) (seen on 7.2.13 and 7.3-rc7; kstrtox.c:84-86 there).
    Saturate,
}

/// The first kernel version known to saturate: 6.12 wraps and 7.2 does
/// not; 6.13 to 7.1 were not checked, and are taken to saturate.
pub const SATURATING_FROM: KernelVersion = KernelVersion::new(6, 13);

impl Overflow {
    /// The rule of `rules`' kernel; without a version, the newest kernels'.
    pub fn of(rules: Rules) -> Overflow {
        if rules.fault.is(Fault::NumbersAlwaysWrap) {
            return Overflow::Wrap;
        }
        if rules.fault.is(Fault::NumbersAlwaysSaturate) {
            return Overflow::Saturate;
        }
        match rules.kernel {
            Some(v) if v < SATURATING_FROM => Overflow::Wrap,
            _ => Overflow::Saturate,
        }
    }
}

/// The kernel version whose parsing rules a table follows (`None`: the
/// newest kernels'). Only numbers of 2^64 or more read differently so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// The kernel, when known.
    pub kernel: Option<KernelVersion>,
    /// A parsing rule broken on purpose (the `test-fault` mutants).
    pub fault: Fault,
}

impl Rules {
    /// The rules of kernel `v`.
    pub fn of_kernel(v: KernelVersion) -> Rules {
        Rules {
            kernel: Some(v),
            fault: Fault::None,
        }
    }

    /// The rules of the kernel that reported `release`; the newest
    /// kernels' when it names no version.
    pub fn of_release(release: &str) -> Rules {
        Rules {
            kernel: KernelVersion::from_release(release),
            fault: Fault::None,
        }
    }
}

/// A number as dm-crypt's `sscanf("%llu")` reads it: decimal digits only,
/// a value past 2^64 wrapped or saturated as `rules`' kernel does (the
/// narrower `%u`/`%hu` fields then cut this to their width: the fuzzer
/// showed `sector_size:66048` loads as 512 through `%hu` on 6.12).
fn kernel_number(field: &str, s: &str, rules: Rules) -> Result<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Table(format!(
            "{field} '{s}' is not an unsigned decimal number"
        )));
    }
    let overflow = Overflow::of(rules);
    Ok(s.bytes().fold(0u64, |n, b| {
        let d = u64::from(b - b'0');
        match overflow {
            Overflow::Wrap => n.wrapping_mul(10).wrapping_add(d),
            Overflow::Saturate => n
                .checked_mul(10)
                .and_then(|x| x.checked_add(d))
                .unwrap_or(u64::MAX),
        }
    }))
}

/// The optional-parameter count as device-mapper's `dm_read_arg` reads it:
/// `sscanf("%u")`, digits only (a '+' is refused, seen on 6.12), cut to
/// 32 bits.
fn count_number(s: &str, rules: Rules) -> Result<u64> {
    Ok(u64::from(
        kernel_number("optional parameter count", s, rules)? as u32,
    ))
}

fn number(field: &str, s: &str) -> Result<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Table(format!(
            "{field} '{s}' is not an unsigned decimal number"
        )));
    }
    s.parse()
        .map_err(|_| Error::Table(format!("{field} '{s}' does not fit in 64 bits")))
}

impl Options {
    fn parse(args: &[&str], rules: Rules) -> Result<Self> {
        let mut o = Options::default();
        let Some((count, rest)) = args.split_first() else {
            return Ok(o);
        };
        let n = count_number(count, rules)?;
        // dm-crypt's feature-argument bound (9 since 6.10 added high_priority).
        if n > 9 {
            return Err(Error::Table(format!(
                "optional parameter count {n} is over the kernel's 9 (Invalid number of feature args)"
            )));
        }
        let n = n as usize;
        if n > rest.len() {
            return Err(Error::Table(format!(
                "optional parameter count says {n} but {} follow",
                rest.len()
            )));
        }
        // The kernel reads `n` options and ignores whatever follows them
        // (seen on 5.10, 6.1 and 6.12: `0 sector_size:2048` loads with
        // 512-byte sectors).
        for opt in &rest[..n] {
            o.apply(opt, rules)?;
        }
        o.read.ignored = rest[n..].iter().map(|s| s.to_string()).collect();
        Ok(o)
    }

    fn apply(&mut self, opt: &str, rules: Rules) -> Result<()> {
        let flag = opt.to_ascii_lowercase();
        match flag.as_str() {
            "allow_discards" => self.allow_discards = true,
            "same_cpu_crypt" => self.same_cpu_crypt = true,
            "high_priority" => self.high_priority = true,
            "submit_from_crypt_cpus" => self.submit_from_crypt_cpus = true,
            "no_read_workqueue" => self.no_read_workqueue = true,
            "no_write_workqueue" => self.no_write_workqueue = true,
            "iv_large_sectors" => self.iv_large_sectors = true,
            _ => {
                if let Some(v) = opt.strip_prefix("sector_size:") {
                    // `%hu`: the number is cut to 16 bits before it is checked.
                    let ss = kernel_number("sector_size", v, rules)? as u16;
                    if !(512..=4096).contains(&ss) || !ss.is_power_of_two() {
                        return Err(Error::Table(format!(
                            "sector_size:{v} is not a power of two between 512 and 4096"
                        )));
                    }
                    // sector_size:512 is the default: the kernel keeps no option.
                    self.sector_size = (ss != 512).then_some(u32::from(ss));
                    self.read.len_unit = self.read.len_unit.max(u32::from(ss));
                } else if let Some(v) = opt.strip_prefix("integrity_key_size:") {
                    let n = number("integrity_key_size", v)?;
                    if n == 0 || n > u32::MAX as u64 {
                        return Err(Error::Table(format!("integrity_key_size:{v} is invalid")));
                    }
                    self.integrity_key_size = Some(n as u32);
                } else if let Some(v) = opt.strip_prefix("integrity:") {
                    let (bytes, profile) = v.split_once(':').ok_or_else(|| {
                        Error::Table(format!("'{opt}' must be integrity:<bytes>:<aead|none>"))
                    })?;
                    let b = number("integrity tag size", bytes)?;
                    if b == 0 || b > MAX_TAG_SIZE as u64 {
                        return Err(Error::Table(format!(
                            "integrity tag size {b} is not in 1..={MAX_TAG_SIZE}"
                        )));
                    }
                    if !profile.eq_ignore_ascii_case("aead")
                        && !profile.eq_ignore_ascii_case("none")
                    {
                        return Err(Error::Table(format!(
                            "integrity profile '{profile}' is not aead or none"
                        )));
                    }
                    self.integrity = Some((b as u32, profile.to_string()));
                } else {
                    return Err(Error::Table(format!("unknown optional parameter '{opt}'")));
                }
            }
        }
        Ok(())
    }

    /// The options in the order the kernel's status prints them.
    pub fn to_args(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        let flags = [
            (self.allow_discards, "allow_discards"),
            (self.same_cpu_crypt, "same_cpu_crypt"),
            (self.high_priority, "high_priority"),
            (self.submit_from_crypt_cpus, "submit_from_crypt_cpus"),
            (self.no_read_workqueue, "no_read_workqueue"),
            (self.no_write_workqueue, "no_write_workqueue"),
        ];
        v.extend(flags.iter().filter(|f| f.0).map(|f| f.1.to_string()));
        if let Some((b, p)) = &self.integrity {
            v.push(format!("integrity:{b}:{p}"));
        }
        if let Some(n) = self.integrity_key_size {
            v.push(format!("integrity_key_size:{n}"));
        }
        if let Some(ss) = self.sector_size {
            v.push(format!("sector_size:{ss}"));
        }
        if self.iv_large_sectors {
            v.push("iv_large_sectors".into());
        }
        v
    }
}

impl CryptParams {
    /// Parse the crypt target's parameters, already split on whitespace,
    /// as the newest kernels read them.
    pub fn parse_args(args: &[&str]) -> Result<Self> {
        Self::parse_args_as(args, Rules::default())
    }

    /// Parse the crypt target's parameters as kernel `rules` reads them.
    pub fn parse_args_as(args: &[&str], rules: Rules) -> Result<Self> {
        if args.len() < 5 {
            return Err(Error::Table(format!(
                "crypt needs <cipher> <key> <iv_offset> <device> <offset>; got {} field(s)",
                args.len()
            )));
        }
        let cipher = CipherSpec::parse(args[0])?;
        let key = Key::parse_in_table(args[1], rules.fault)?;
        let iv_offset = kernel_number("iv_offset", args[2], rules)?;
        let device = args[3].to_string();
        let offset = kernel_number("device offset", args[4], rules)?;
        let options = Options::parse(&args[5..], rules)?;
        let p = CryptParams {
            cipher,
            key,
            iv_offset,
            device,
            offset,
            options,
        };
        p.validate()?;
        Ok(p)
    }

    /// Typed parameters: iv_offset and device offset 0, no options; the
    /// `with_*` methods set the rest, [`Table::new`] checks the whole.
    pub fn new(cipher: CipherSpec, key: Key, device: impl Into<String>) -> Self {
        CryptParams {
            cipher,
            key,
            iv_offset: 0,
            device: device.into(),
            offset: 0,
            options: Options::default(),
        }
    }

    /// The IV offset (`-p`, skip), in 512-byte sectors.
    pub fn with_iv_offset(mut self, sectors: u64) -> Self {
        self.iv_offset = sectors;
        self
    }

    /// The device offset (`-o`), in 512-byte sectors.
    pub fn with_offset(mut self, sectors: u64) -> Self {
        self.offset = sectors;
        self
    }

    /// `sector_size:` given explicitly (`None`: not given, 512 bytes).
    pub fn with_sector_size(mut self, bytes: Option<u32>) -> Self {
        self.options.sector_size = bytes;
        self
    }

    /// `iv_large_sectors` on or off.
    pub fn with_iv_large_sectors(mut self, on: bool) -> Self {
        self.options.iv_large_sectors = on;
        self
    }

    /// All optional parameters at once.
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The constructor's rules that need no target length: the geometry,
    /// and a device offset of whole encryption sectors.
    pub fn validate(&self) -> Result<()> {
        self.geometry()
            .validate()
            .map_err(|e| Error::Table(e.to_string()))?;
        // The kernel refuses a device offset that is not a whole number of
        // encryption sectors (seen on 6.1: EINVAL for offset 3, sector_size:2048).
        let step = u64::from(self.geometry().sector_size / 512);
        if !self.offset.is_multiple_of(step) {
            return Err(Error::Table(format!(
                "device offset {} is not a multiple of sector_size/512 ({step})",
                self.offset
            )));
        }
        Ok(())
    }

    /// The sector geometry the engine needs from these parameters.
    pub fn geometry(&self) -> Geometry {
        Geometry {
            sector_size: self.options.sector_size.unwrap_or(512),
            iv_offset: self.iv_offset,
            iv_large_sectors: self.options.iv_large_sectors,
        }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, key: &str) -> fmt::Result {
        f.write_str(&params_text(
            &self.cipher.text,
            key,
            self.iv_offset,
            &self.device,
            self.offset,
            &self.options.to_args(),
        ))
    }

    /// The parameters with the key hidden (zeros, as dmsetup without --showkeys).
    pub fn redacted(&self) -> String {
        struct R<'a>(&'a CryptParams);
        impl fmt::Display for R<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write(f, &self.0.key.redacted())
            }
        }
        R(self).to_string()
    }
}

/// The parameters with the key in clear, as a table is loaded.
impl fmt::Display for CryptParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, &self.key.table_form())
    }
}

/// The crypt parameters as text, from fields that need not be valid: the
/// one place table text is made (the oracle sends the kernel tables the
/// reference refuses, to compare refusals). The result holds the key.
pub fn params_text(
    cipher: &str,
    key: &str,
    iv_offset: u64,
    device: &str,
    offset: u64,
    options: &[String],
) -> String {
    params_text_counted(
        cipher,
        key,
        &iv_offset.to_string(),
        device,
        offset,
        options,
        None,
    )
}

/// As [`params_text`], with the iv_offset as text and `count` written as
/// the optional-parameter count instead of the true one when given (tables
/// that spell numbers or lie about their count, for refusal parity).
pub fn params_text_counted(
    cipher: &str,
    key: &str,
    iv_offset: &str,
    device: &str,
    offset: u64,
    options: &[String],
    count: Option<&str>,
) -> String {
    let mut t = format!("{cipher} {key} {iv_offset} {device} {offset}");
    match count {
        Some(n) => t.push_str(&format!(" {n}")),
        None if !options.is_empty() => t.push_str(&format!(" {}", options.len())),
        None => {}
    }
    for o in options {
        t.push(' ');
        t.push_str(o);
    }
    t
}

impl Table {
    /// A whole table, checked as the kernel's constructor would: the
    /// parameters' rules, a non-zero length of whole encryption sectors.
    pub fn new(start: u64, len: u64, params: CryptParams) -> Result<Self> {
        params.validate()?;
        if len == 0 {
            return Err(Error::Table("length is zero".into()));
        }
        let unit = params
            .geometry()
            .sector_size
            .max(params.options.read.len_unit);
        let step = u64::from(unit / 512);
        if !len.is_multiple_of(step) {
            return Err(Error::Table(format!(
                "length {len} is not a multiple of sector_size/512 ({step})"
            )));
        }
        Ok(Table { start, len, params })
    }

    /// Parse a whole line: `<start> <len> crypt <params...>`, as the
    /// newest kernels read it.
    pub fn parse(line: &str) -> Result<Self> {
        Self::parse_as(line, Rules::default())
    }

    /// [`Table::parse`] as the kernel of `rules` reads the line.
    pub fn parse_as(line: &str, rules: Rules) -> Result<Self> {
        let f = split_args(line, rules.fault);
        let f: Vec<&str> = f.iter().map(String::as_str).collect();
        if f.len() < 3 {
            return Err(Error::Table(
                "a table line is <start> <len> crypt <cipher> <key> <iv_offset> <device> <offset> [<#opt> <opt>...]".into(),
            ));
        }
        let start = number("start", f[0])?;
        let len = number("length", f[1])?;
        if f[2] != "crypt" {
            return Err(Error::Table(format!("target type '{}' is not crypt", f[2])));
        }
        if len == 0 {
            return Err(Error::Table("length is zero".into()));
        }
        let params = CryptParams::parse_args_as(&f[3..], rules)?;
        Table::new(start, len, params)
    }

    /// Parse either a whole line or just the crypt parameters.
    pub fn parse_line_or_params(text: &str) -> Result<(Option<Table>, CryptParams)> {
        Self::parse_line_or_params_as(text, Rules::default())
    }

    /// [`Table::parse_line_or_params`] as kernel `rules` reads the text.
    pub fn parse_line_or_params_as(
        text: &str,
        rules: Rules,
    ) -> Result<(Option<Table>, CryptParams)> {
        let words = split_args(text, rules.fault);
        let f: Vec<&str> = words.iter().map(String::as_str).collect();
        // A cipher spec is never all digits, so two leading numbers mean a whole line.
        let numeric = |s: &&str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if f.len() >= 3 && (f[2] == "crypt" || (numeric(&f[0]) && numeric(&f[1]))) {
            let t = Table::parse_as(text, rules)?;
            let p = t.params.clone();
            Ok((Some(t), p))
        } else {
            Ok((None, CryptParams::parse_args_as(&f, rules)?))
        }
    }

    /// The line with the key hidden (zeros, as dmsetup without --showkeys).
    pub fn redacted(&self) -> String {
        format!(
            "{} {} crypt {}",
            self.start,
            self.len,
            self.params.redacted()
        )
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} crypt {}", self.start, self.len, self.params)
    }
}

impl std::str::FromStr for Table {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// Split a table's parameters into words as the kernel does
/// (`dm_split_args`): words end at the kernel's whitespace (space, \t, \n,
/// \v, \f, \r and the Latin-1 non-breaking space 0xA0 its ctype counts),
/// a backslash makes the next byte part of the word whatever it is, and
/// the text ends at the first NUL (the ioctl hands the kernel a C string).
pub fn split_args(text: &str, fault: crate::fault::Fault) -> zeroize::Zeroizing<Vec<String>> {
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0);
    let literal = fault.is(crate::fault::Fault::BackslashLiteral);
    let bytes = text.as_bytes();
    let bytes = &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())];
    // The words hold the key: wiped on drop, allocated once each.
    let mut out = zeroize::Zeroizing::new(Vec::new());
    let mut i = 0;
    loop {
        while i < bytes.len() && space(bytes[i]) {
            i += 1;
        }
        if i == bytes.len() {
            return out;
        }
        let mut word = Vec::with_capacity(bytes.len() - i);
        while i < bytes.len() {
            if bytes[i] == b'\\' && i + 1 < bytes.len() && !literal {
                word.push(bytes[i + 1]);
                i += 2;
                continue;
            }
            if space(bytes[i]) {
                break;
            }
            word.push(bytes[i]);
            i += 1;
        }
        out.push(String::from_utf8(word).unwrap_or_else(|e| {
            let w = zeroize::Zeroizing::new(e.into_bytes());
            String::from_utf8_lossy(&w).into_owned()
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_print_in_kernel_status_order() {
        let t = Table::parse(
            "0 16 crypt aes-xts-plain64 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff 0 /dev/loop0 8 4 IV_LARGE_SECTORS sector_size:4096 no_write_workqueue Allow_Discards",
        )
        .unwrap();
        assert_eq!(
            t.to_string(),
            "0 16 crypt aes-xts-plain64 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff 0 /dev/loop0 8 4 allow_discards no_write_workqueue sector_size:4096 iv_large_sectors"
        );
        assert!(!t.redacted().contains("0011"));
    }

    #[test]
    fn kernel_rules_are_enforced() {
        let k = "00112233445566778899aabbccddeeff";
        for bad in [
            format!("0 7 crypt aes-cbc-plain {k} 0 /dev/x 0 1 sector_size:4096"),
            format!("0 8 crypt aes-cbc-plain {k} 1 /dev/x 0 1 sector_size:4096"),
            format!("0 8 crypt aes-cbc-plain {k} 0 /dev/x 0 1 sector_size:1000"),
            format!("0 8 crypt aes-cbc-plain {k} 0 /dev/x 0 1 SECTOR_SIZE:4096"),
            format!("0 8 crypt aes-cbc-plain {k} 0 /dev/x 0 2 allow_discards"),
            format!("0 8 linear aes-cbc-plain {k} 0 /dev/x 0"),
            // Each sector_size is checked against the length as it is read.
            format!("0 7 crypt aes-cbc-plain {k} 0 /dev/x 0 2 sector_size:4096 sector_size:512"),
            format!("0 8 crypt aes-cbc-plain {k} 0 /dev/x 0 -1 allow_discards"),
            format!("0 8 crypt aes-cbc-plain {k} 0 /dev/x 0 +1 allow_discards"),
            format!("0 8 crypt aes-cbc-plain {k} 0 /dev/x 0 10 a b c d e f g h i j"),
        ] {
            assert!(Table::parse(&bad).is_err(), "accepted: {bad}");
        }
    }

    /// What the fuzzer learned from the kernel (5.10, 6.1, 6.12): options
    /// past the count are ignored, and sscanf lets numbers wrap (`%u` cuts
    /// the count to 32 bits, `%hu` sector_size to 16).
    #[test]
    fn the_kernel_reads_counts_and_numbers_its_own_way() {
        let k = "00112233445566778899aabbccddeeff";
        let p = |rest: &str| Table::parse(&format!("0 8 crypt aes-cbc-plain {k} {rest}")).unwrap();
        let t = p("0 /dev/x 0 1 allow_discards same_cpu_crypt");
        assert!(t.params.options.allow_discards && !t.params.options.same_cpu_crypt);
        assert_eq!(t.params.options.read.ignored, ["same_cpu_crypt"]);
        let t = p("0 /dev/x 0 0 sector_size:2048");
        assert_eq!(t.params.geometry().sector_size, 512);
        let t = p("0 /dev/x 0 4294967297 sector_size:4096");
        assert_eq!(t.params.geometry().sector_size, 4096);
        let t = p("0 /dev/x 0 1 sector_size:66048");
        assert_eq!(t.params.geometry().sector_size, 512);
        assert_eq!(t.params.options.sector_size, None);
    }

    /// Numbers of 2^64 or more: 6.12 and earlier wrap them, 7.2 and later
    /// saturate them (lib/kstrtox.c; see [`Overflow`]). Both sides of the
    /// boundary, and its edges.
    #[test]
    fn numbers_past_2_64_wrap_until_6_12_and_saturate_from_6_13() {
        let k = "00112233445566778899aabbccddeeff";
        let at = |v: KernelVersion, rest: &str| {
            Table::parse_as(
                &format!("0 8 crypt aes-cbc-plain {k} {rest}"),
                Rules::of_kernel(v),
            )
            .unwrap()
            .params
        };
        let (old, new) = (KernelVersion::new(6, 12), KernelVersion::new(7, 2));
        let big = "18446744073709551617 /dev/x 000000000000000000000018";
        let t = at(old, big);
        assert_eq!((t.iv_offset, t.offset), (1, 18));
        let t = at(new, big);
        assert_eq!((t.iv_offset, t.offset), (u64::MAX, 18));
        // 2^64 - 1 itself reads the same everywhere.
        for v in [old, new] {
            assert_eq!(at(v, "18446744073709551615 /dev/x 0").iv_offset, u64::MAX);
        }
        // The boundary: 6.12 is the last to wrap, 6.13 the first taken to
        // saturate; no version means the newest kernels.
        assert_eq!(
            Overflow::of(Rules::of_kernel(KernelVersion::new(6, 12))),
            Overflow::Wrap
        );
        assert_eq!(
            Overflow::of(Rules::of_kernel(SATURATING_FROM)),
            Overflow::Saturate
        );
        assert_eq!(Overflow::of(Rules::default()), Overflow::Saturate);
        assert_eq!(
            Overflow::of(Rules::of_kernel(KernelVersion::new(5, 10))),
            Overflow::Wrap
        );
        // The optional count goes through %u after the 64-bit read: 2^64+1
        // wraps to 1 on 6.12 but saturates to 2^32-1 (too many) on 7.2.
        let opt = "0 /dev/x 0 18446744073709551617 allow_discards";
        assert!(at(old, opt).options.allow_discards);
        assert!(
            Table::parse_as(
                &format!("0 8 crypt aes-cbc-plain {k} {opt}"),
                Rules::of_kernel(new)
            )
            .is_err()
        );
    }
}
