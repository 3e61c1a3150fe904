//! Known kernel faults: a fault the list expects on a kernel version turns
//! from `kernel-fault` (fails the run) into `known-kernel-fault` (does
//! not), and an expected fault that did not happen is reported. The list
//! built into dmch is `vectors/known-kernel-faults.txt`; `--known-faults
//! FILE` adds more. One entry per line, `key=value` words, a value in
//! double quotes when it has spaces:
//!
//! ```text
//! kernels=7.2- kind=fortify cipher=*-lmk log="detected buffer overflow" note="..."
//! ```
//!
//! `kernels` (a [`VersionRange`]) and `note` are required; `kind` (a fault
//! kind or `any`), `case` (a glob over case ids), `cipher` (a glob over the
//! cipher spec) and `log` (text one report line contains) narrow it.

use super::Case;
use super::klog::{FaultKind, KernelFault};
use crate::kver::{KernelVersion, VersionRange};

/// One expected fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownFault {
    /// The kernels it happens on.
    pub kernels: VersionRange,
    /// The kind expected (`None`: any).
    pub kind: Option<FaultKind>,
    /// A glob over case ids.
    pub case: Option<String>,
    /// A glob over cipher specs.
    pub cipher: Option<String>,
    /// Text a line of the report contains.
    pub log: Option<String>,
    /// The evidence and where it is tracked, in words.
    pub note: String,
}

/// The list built into dmch.
pub fn builtin() -> Vec<KnownFault> {
    parse(include_str!("../../vectors/known-kernel-faults.txt"))
        .expect("the built-in known-faults list parses (tested)")
}

/// `*` matches any run of characters; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

impl KnownFault {
    /// Whether the entry covers `case` on kernel `v` (fault aside).
    pub fn covers(&self, case: &Case, v: KernelVersion) -> bool {
        self.kernels.contains(v)
            && self.case.as_deref().is_none_or(|g| glob(g, &case.id))
            && self.cipher.as_deref().is_none_or(|g| glob(g, &case.cipher))
    }

    /// Whether the entry expects `fault` in `case` on kernel `v`.
    pub fn expects(&self, case: &Case, v: KernelVersion, fault: &KernelFault) -> bool {
        self.covers(case, v)
            && self.kind.is_none_or(|k| k == fault.kind)
            && self
                .log
                .as_deref()
                .is_none_or(|t| fault.lines.iter().any(|l| l.contains(t)))
    }
}

/// Split a line into words, a double-quoted value keeping its spaces.
fn words(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("'{rest}' is not key=value"))?;
        if key.contains(char::is_whitespace) || key.is_empty() {
            return Err(format!("'{key}' is not a field name"));
        }
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q
                .find('"')
                .ok_or_else(|| format!("{key}: unclosed quote"))?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push((key.to_string(), value.to_string()));
        rest = next.trim_start();
    }
    Ok(out)
}

/// Read a known-faults list; the error names the line.
pub fn parse(text: &str) -> Result<Vec<KnownFault>, String> {
    let mut v = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", n + 1);
        let mut k = KnownFault {
            kernels: VersionRange {
                from: None,
                to: None,
            },
            kind: None,
            case: None,
            cipher: None,
            log: None,
            note: String::new(),
        };
        let mut kernels = false;
        for (key, value) in words(line).map_err(at)? {
            match key.as_str() {
                "kernels" => {
                    k.kernels = value.parse().map_err(at)?;
                    kernels = true;
                }
                "kind" if value == "any" => k.kind = None,
                "kind" => {
                    k.kind = Some(
                        FaultKind::parse(&value)
                            .ok_or_else(|| at(format!("kind '{value}' is not a fault kind")))?,
                    )
                }
                "case" => k.case = Some(value),
                "cipher" => k.cipher = Some(value),
                "log" => k.log = Some(value),
                "note" => k.note = value,
                other => return Err(at(format!("unknown field '{other}'"))),
            }
        }
        if !kernels || k.note.is_empty() {
            return Err(at("an entry needs kernels= and note=".into()));
        }
        v.push(k);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*-lmk", "des:64-cbc-lmk"));
        assert!(glob("des:*-lmk", "des:64-cbc-lmk"));
        assert!(glob("*cbc*", "des:64-cbc-lmk"));
        assert!(!glob("*-lmk", "aes-cbc-lmkx"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
        assert!(!glob("a*a", "a"));
    }

    #[test]
    fn the_builtin_list_parses_and_bad_lists_are_named() {
        assert!(!builtin().is_empty());
        for (bad, says) in [
            ("kind=bug note=x", "needs kernels="),
            ("kernels=7.2- note=x colour=red", "unknown field 'colour'"),
            ("kernels=7.2- kind=boom note=x", "not a fault kind"),
            ("kernels=seven note=x", "not MAJOR.MINOR"),
            ("kernels=7.2- note=\"open", "unclosed quote"),
            ("lonely", "not key=value"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn an_entry_expects_only_its_fault() {
        let k =
            &parse("kernels=7.2- kind=fortify cipher=*-lmk log=\"buffer overflow\" note=\"x y\"")
                .unwrap()[0];
        assert_eq!(k.note, "x y");
        let c = Case::new("c", "des:64-cbc-lmk", "00", 512);
        let f = KernelFault {
            kind: FaultKind::Fortify,
            lines: vec!["memcpy: detected buffer overflow: 16 byte read".into()],
        };
        let v72 = KernelVersion::new(7, 2);
        assert!(k.expects(&c, v72, &f));
        assert!(!k.expects(&c, KernelVersion::new(6, 12), &f));
        let other = KernelFault {
            kind: FaultKind::Warning,
            ..f.clone()
        };
        assert!(!k.expects(&c, v72, &other));
        let xts = Case::new("c", "aes-xts-plain64", "00", 512);
        assert!(!k.expects(&xts, v72, &f));
    }
}
