//! dmsetup-style setups, the seed's first way to make a dm-crypt device:
//! tables as text in dmsetup's format (several lines, any target types),
//! every crypt line checked by the reference before the kernel sees it and
//! the other targets passed through, and dmsetup's own output formats for
//! `table`, `status`, `info` and `ls`, so scripts that parse them keep
//! working. `verify` reads sectors through a live crypt target and from its
//! backing device and checks them against the reference.

use crate::engine::SectorCrypt;
use crate::plain::SetupError;
use crate::sys::activate::{self, ActivateError};
use crate::sys::dm::{self, Control, Info, Mapping, Target};
use crate::sys::{aligned, direct};
use crate::table::{CryptParams, Table};
use std::io::Read;
use zeroize::Zeroizing;

type Result<T> = std::result::Result<T, SetupError>;

fn invalid(s: String) -> SetupError {
    SetupError::Invalid(s)
}

/// The most table text dmch reads (the kernel's own ioctl buffer is far
/// smaller for any real table).
pub const MAX_TABLE_BYTES: usize = 1 << 20;

/// One line of a table.
pub struct Line {
    /// First sector in the mapped device.
    pub start: u64,
    /// Length in 512-byte sectors.
    pub len: u64,
    /// Target type.
    pub kind: String,
    /// Everything after the type (holds a crypt key).
    pub params: Zeroizing<String>,
}

/// Read a table (a file or standard input), bounded.
pub fn read_table(r: &mut dyn Read) -> Result<Zeroizing<String>> {
    let mut data = Zeroizing::new(Vec::new());
    r.take(MAX_TABLE_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| invalid(format!("reading the table: {e}")))?;
    if data.len() > MAX_TABLE_BYTES {
        return Err(invalid(format!(
            "the table is over {} KiB",
            MAX_TABLE_BYTES >> 10
        )));
    }
    let text =
        String::from_utf8(data.to_vec()).map_err(|_| invalid("the table is not text".into()))?;
    Ok(Zeroizing::new(text))
}

fn number(line_no: usize, what: &str, s: &str) -> Result<u64> {
    s.parse().map_err(|_| {
        invalid(format!(
            "table line {line_no}: {what} '{}' is not a number",
            crate::redact::for_terminal(s)
        ))
    })
}

/// Parse a table: one target per line, blank lines and `#` comments
/// skipped. Crypt lines are checked by the reference (grammar, names, key
/// size, geometry, option counts, an engine built); others are passed as
/// they are, for the kernel to judge.
pub fn parse(text: &str) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 {
            return Err(invalid(format!(
                "table line {n}: a line is <start> <length> <target> [<parameters>]"
            )));
        }
        let start = number(n, "start", f[0])?;
        let len = number(n, "length", f[1])?;
        let kind = f[2];
        if kind.len() >= 16 || !kind.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(format!(
                "table line {n}: '{}' is not a target type",
                crate::redact::for_terminal(kind)
            )));
        }
        if kind == "crypt" {
            let t = Table::parse(l).map_err(|e| invalid(format!("table line {n}: {e}")))?;
            let p = &t.params;
            // A keyring key is checked by its stated size: the bytes are the
            // kernel's, never dmch's.
            let key = match &p.key {
                crate::key::Key::Keyring { size, .. } => crate::key::Key::from_bytes(&vec![
                        0u8;
                        (*size as usize)
                            .min(crate::key::MAX_KEY_BYTES + 1)
                    ]),
                k => k.clone(),
            };
            SectorCrypt::new(&p.cipher, &key, p.geometry())
                .map_err(|e| invalid(format!("table line {n}: {e}")))?;
        }
        lines.push(Line {
            start,
            len,
            kind: kind.to_string(),
            params: Zeroizing::new(f[3..].join(" ")),
        });
    }
    if lines.is_empty() {
        return Err(invalid("the table has no lines".into()));
    }
    Ok(lines)
}

fn targets(lines: &[Line]) -> Vec<Target<'_>> {
    lines
        .iter()
        .map(|l| Target {
            start: l.start,
            len: l.len,
            kind: &l.kind,
            params: &l.params,
        })
        .collect()
}

fn find(ctl: &Control, name: &str) -> Result<Info> {
    ctl.info(name)
        .map_err(|source| SetupError::Io {
            what: format!("looking up {name}"),
            source,
        })?
        .ok_or_else(|| SetupError::Missing(name.to_string()))
}

/// `dmsetup create NAME`: make the device and make the table live; any
/// refusal removes what was made.
pub fn create(ctl: &Control, name: &str, lines: &[Line], read_only: bool) -> Result<Mapping> {
    crate::plain::check_new_name(Some(ctl), name)?;
    let m = activate::activate_table(ctl, name, &targets(lines), read_only)?;
    dm::make_node(&m);
    Ok(m)
}

/// `dmsetup reload NAME`: load the table into the inactive slot; the
/// live table stays until `resume`.
pub fn reload(ctl: &Control, name: &str, lines: &[Line], read_only: bool) -> Result<()> {
    let info = find(ctl, name)?;
    ctl.load_targets(&info.mapping, &targets(lines), read_only)
        .map_err(|e| SetupError::Activate(ActivateError::Refused(e)))
}

/// `dmsetup suspend [--noflush] NAME`.
pub fn suspend(ctl: &Control, name: &str, noflush: bool) -> Result<()> {
    let info = find(ctl, name)?;
    ctl.suspend_with(&info.mapping, noflush)
        .map_err(|source| SetupError::Io {
            what: format!("suspending {name}"),
            source,
        })
}

/// `dmsetup resume NAME`: a loaded table goes live.
pub fn resume(ctl: &Control, name: &str) -> Result<()> {
    let info = find(ctl, name)?;
    ctl.resume(&info.mapping)
        .map_err(|e| SetupError::Activate(ActivateError::Refused(e)))?;
    dm::make_node(&info.mapping);
    Ok(())
}

/// `dmsetup remove [--retry] NAME`: with `retry`, a device still busy for
/// a moment (udev) is asked again for up to a second.
pub fn remove(ctl: &Control, name: &str, retry: bool) -> Result<()> {
    let info = find(ctl, name)?;
    let r = if retry {
        activate::deactivate(ctl, &info.mapping)
    } else {
        ctl.remove(&info.mapping)
    };
    r.map_err(|source| SetupError::Io {
        what: format!("removing {name}"),
        source,
    })?;
    let _ = std::fs::remove_file(std::path::Path::new("/dev/mapper").join(name));
    Ok(())
}

/// A crypt key field as dmsetup shows it without --showkeys: hex keys as
/// zeros of the same length; keyring references (`:32:logon:desc`) and
/// `-` as they are.
fn mask_key(params: &str) -> String {
    let mut f: Vec<String> = params.split(' ').map(String::from).collect();
    if let Some(k) = f.get_mut(1)
        && !k.starts_with(':')
        && k != "-"
    {
        *k = "0".repeat(k.len());
    }
    f.join(" ")
}

/// `dmsetup table NAME`: the live table, keys hidden unless `show_keys`.
pub fn table(ctl: &Control, name: &str, show_keys: bool) -> Result<Vec<String>> {
    let info = find(ctl, name)?;
    let t = ctl.table(&info.mapping).map_err(|source| SetupError::Io {
        what: format!("reading the table of {name}"),
        source,
    })?;
    Ok(t.iter()
        .map(|(s, l, ty, p)| {
            let p = if ty == "crypt" && !show_keys {
                mask_key(p)
            } else {
                p.to_string()
            };
            format!("{s} {l} {ty} {p}")
        })
        .collect())
}

/// `dmsetup status NAME`: each target's status line.
pub fn status(ctl: &Control, name: &str) -> Result<Vec<String>> {
    let info = find(ctl, name)?;
    let t = ctl.status(&info.mapping).map_err(|source| SetupError::Io {
        what: format!("reading the status of {name}"),
        source,
    })?;
    Ok(t.iter()
        .map(|(s, l, ty, p)| format!("{s} {l} {ty} {}", p.as_str()))
        .collect())
}

/// `dmsetup info NAME`, in dmsetup's layout.
pub fn info(ctl: &Control, name: &str) -> Result<String> {
    let i = find(ctl, name)?;
    let (major, minor) = i.mapping.major_minor();
    let read_ahead = std::fs::File::open(i.mapping.node())
        .and_then(|f| crate::sys::blockdev::read_ahead(&f))
        .map_or_else(|_| "unknown".to_string(), |r| r.to_string());
    let state = format!(
        "{}{}",
        if i.suspended { "SUSPENDED" } else { "ACTIVE" },
        if i.read_only { " (READ-ONLY)" } else { "" }
    );
    let tables = match (i.live_table, i.inactive_table) {
        (true, true) => "LIVE & INACTIVE",
        (true, false) => "LIVE",
        (false, true) => "INACTIVE",
        (false, false) => "None",
    };
    let mut t = format!(
        "Name:              {name}\nState:             {state}\nRead Ahead:        {read_ahead}\nTables present:    {tables}\nOpen count:        {}\nEvent number:      {}\nMajor, minor:      {major}, {minor}\nNumber of targets: {}\n",
        i.open_count, i.event_nr, i.target_count
    );
    if !i.uuid.is_empty() {
        t.push_str(&format!("UUID: {}\n", i.uuid));
    }
    Ok(t)
}

fn list(ctl: &Control) -> Result<Vec<(String, u32, u32)>> {
    ctl.list().map_err(|source| SetupError::Io {
        what: "listing devices".into(),
        source,
    })
}

/// `dmsetup ls`: `name\t(major:minor)` per device, or dmsetup's words for none.
pub fn ls(ctl: &Control) -> Result<Vec<String>> {
    let l = list(ctl)?;
    if l.is_empty() {
        return Ok(vec!["No devices found".into()]);
    }
    Ok(l.into_iter()
        .map(|(n, maj, min)| format!("{n}\t({maj}:{min})"))
        .collect())
}

/// Names of every device, for the commands that take no NAME.
pub fn names(ctl: &Control) -> Result<Vec<String>> {
    Ok(list(ctl)?.into_iter().map(|d| d.0).collect())
}

/// Read one encryption unit at byte `at` of `path` with O_DIRECT.
fn read_unit(path: &str, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let (mut raw, off) = aligned(len);
    let f = direct(path, false)?;
    f.read_exact_at(&mut raw[off..off + len], at)?;
    Ok(raw[off..off + len].to_vec())
}

/// `--verify`: for every crypt target of the live table, the first and the
/// last encryption unit read through the mapping must equal what the
/// reference decrypts from the backing device at the same place. One line.
pub fn verify(ctl: &Control, name: &str) -> Result<String> {
    let info = find(ctl, name)?;
    let io = |what: String| move |source| SetupError::Io { what, source };
    let live = ctl
        .table(&info.mapping)
        .map_err(io(format!("reading the table of {name}")))?;
    let mut checked = Vec::new();
    for (start, len, ty, params) in &live {
        if ty != "crypt" {
            continue;
        }
        let args: Vec<&str> = params.split_whitespace().collect();
        let mut p = CryptParams::parse_args(&args)?;
        if matches!(p.key, crate::key::Key::Keyring { .. }) {
            checked.push(format!("{start}+{len} not checked (keyring key)"));
            continue;
        }
        p.device = crate::plain::device_path(&p.device);
        let fault = crate::fault::Fault::from_env().map_err(invalid)?;
        let engine = SectorCrypt::new_with_fault(&p.cipher, &p.key, p.geometry(), fault)?;
        let unit = p.geometry().sector_size as usize;
        let step = unit as u64 / 512;
        for rel in [0, len - step] {
            let plain = read_unit(&info.mapping.node(), (start + rel) * 512, unit)
                .map_err(io(format!("reading {name} at sector {}", start + rel)))?;
            let mut ours = read_unit(&p.device, (p.offset + rel) * 512, unit).map_err(io(
                format!("reading {} at sector {}", p.device, p.offset + rel),
            ))?;
            engine.decrypt(rel, &mut ours)?;
            if ours != plain {
                return Err(invalid(format!(
                    "verify: {name}: the kernel and the reference disagree on sector {} of the crypt target at {start} (kernel {}..., reference {}...)",
                    rel,
                    hex::encode(&plain[..16]),
                    hex::encode(&ours[..16])
                )));
            }
        }
        checked.push(format!("{start}+{len}"));
    }
    if checked.is_empty() {
        return Ok(format!("verify: {name}: no crypt target to check"));
    }
    Ok(format!(
        "verify: {name}: first and last sectors of crypt target(s) {} agree with the reference",
        checked.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn tables_parse_with_crypt_lines_checked_and_others_passed() {
        let t = parse(&format!(
            "# the seed's example\n0 2048 crypt aes-plain {K} 0 /dev/loop0 0\n\n2048 8 zero\n2056 8 linear /dev/loop1 0\n"
        ))
        .unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(
            (t[0].start, t[0].len, t[0].kind.as_str()),
            (0, 2048, "crypt")
        );
        assert_eq!(t[1].kind, "zero");
        assert_eq!(t[2].params.as_str(), "/dev/loop1 0");
        // Keyring keys pass by their stated size.
        assert!(parse("0 8 crypt aes-xts-plain64 :64:logon:vol 0 /dev/x 0").is_ok());
        for (bad, why) in [
            (
                format!("0 8 crypt rot13-cbc-plain {K} 0 /dev/x 0"),
                "unknown block cipher",
            ),
            (format!("0 8 crypt aes-xts-plain64 {K} 0 /dev/x 0"), "key"),
            (
                "0 8 crypt aes-xts-plain64 :16:logon:vol 0 /dev/x 0".to_string(),
                "key",
            ),
            ("0 8".to_string(), "a line is"),
            ("x 8 zero".to_string(), "start 'x'"),
            ("0 8 averyveryverylongtype".to_string(), "not a target type"),
            ("# only a comment".to_string(), "no lines"),
        ] {
            let e = parse(&bad).err().expect(&bad).to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn keys_are_masked_as_dmsetup_masks_them() {
        assert_eq!(
            mask_key(&format!("aes-plain {K} 0 7:0 0")),
            format!("aes-plain {} 0 7:0 0", "0".repeat(32))
        );
        assert_eq!(
            mask_key("aes-xts-plain64 :64:logon:vol 0 7:0 0"),
            "aes-xts-plain64 :64:logon:vol 0 7:0 0"
        );
        assert_eq!(
            mask_key("cipher_null-ecb - 0 7:0 0"),
            "cipher_null-ecb - 0 7:0 0"
        );
    }

    #[test]
    fn tables_are_bounded() {
        let big = vec![b'#'; MAX_TABLE_BYTES + 10];
        assert!(read_table(&mut &big[..]).is_err());
        assert!(read_table(&mut &b"0 8 zero\n"[..]).is_ok());
    }
}
