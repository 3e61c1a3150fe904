//! Regression cases: minimal cases the fuzzer shrank from a disagreement
//! between the kernel and the reference, each with what the kernel did.
//! `dmch kernel check` runs them through kernels again; `cargo test` and
//! `dmch check` hold the reference to the kernel's recorded answer.
//!
//! One case a line, words as in [`Case::to_words`] after the record's own:
//!
//! ```text
//! # why it was found (free text)
//! kernel=RELEASE date=YYYY-MM-DD found=FUZZ-ID expect=refused id=... cipher=... ...
//! kernel=RELEASE date=YYYY-MM-DD found=FUZZ-ID expect=data ct=SHA256 pt=SHA256 id=... ...
//! ```
//!
//! `ct` is the SHA-256 of the backing bytes the case touches, `pt` that of
//! the final read through the mapping.

use super::{Case, Fault, KernelResult, Verdict, compare};

/// One recorded regression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regression {
    /// The minimal case.
    pub case: Case,
    /// The kernel release that answered.
    pub kernel: String,
    /// When (UTC date).
    pub date: String,
    /// The fuzz case it was shrunk from.
    pub found: String,
    /// What the kernel did: refused, or the digests of its data.
    pub expect: KernelResult,
}

/// The regressions built into dmch.
pub fn builtin() -> Vec<Regression> {
    parse(include_str!("../../vectors/kernel-regressions.txt"))
        .expect("the built-in regression file parses (a test checks it)")
}

/// Read a regression file; the error names the line.
pub fn parse(text: &str) -> Result<Vec<Regression>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_line(line).map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    Ok(out)
}

fn parse_line(line: &str) -> Result<Regression, String> {
    let (mut kernel, mut date, mut found, mut expect) = (None, None, None, None);
    let (mut ct, mut pt) = (None, None);
    let mut rest = Vec::new();
    let digest = |v: &str| -> Result<[u8; 32], String> {
        hex::decode(v)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("'{v}' is not a SHA-256 in hex"))
    };
    for w in line.split_whitespace() {
        match w.split_once('=') {
            Some(("kernel", v)) => kernel = Some(v.to_string()),
            Some(("date", v)) => date = Some(v.to_string()),
            Some(("found", v)) => found = Some(v.to_string()),
            Some(("expect", v)) => expect = Some(v.to_string()),
            Some(("ct", v)) => ct = Some(digest(v)?),
            Some(("pt", v)) => pt = Some(digest(v)?),
            _ => rest.push(w),
        }
    }
    let need = |x: Option<String>, what: &str| x.ok_or_else(|| format!("no {what}="));
    let expect = match need(expect, "expect")?.as_str() {
        "refused" => KernelResult::Rejected("refused".into()),
        "data" => KernelResult::Data {
            ct_sha256: ct.ok_or("expect=data needs ct=")?,
            pt_sha256: pt.ok_or("expect=data needs pt=")?,
            excerpts: Vec::new(),
        },
        other => return Err(format!("expect={other} is not refused or data")),
    };
    let case = Case::from_words(&rest.join(" "), "regression")?;
    Ok(Regression {
        case,
        kernel: need(kernel, "kernel")?,
        date: need(date, "date")?,
        found: need(found, "found")?,
        expect,
    })
}

impl Regression {
    /// The record as one line of the file.
    pub fn to_line(&self) -> String {
        let expect = match &self.expect {
            KernelResult::Data {
                ct_sha256,
                pt_sha256,
                ..
            } => format!(
                "expect=data ct={} pt={}",
                hex::encode(ct_sha256),
                hex::encode(pt_sha256)
            ),
            _ => "expect=refused".into(),
        };
        format!(
            "kernel={} date={} found={} {expect} {}",
            self.kernel,
            self.date,
            self.found,
            self.case.to_words()
        )
    }

    /// Whether the reference (broken by `fault`, if any) gives the kernel's
    /// recorded answer; the error says how it does not.
    pub fn replay(&self, fault: Fault) -> Result<(), String> {
        let rules = crate::table::Rules::of_release(&self.kernel);
        match compare(&self.case, &self.expect, None, fault, rules) {
            Verdict::Pass | Verdict::RejectedAsExpected => Ok(()),
            Verdict::Fail(_, why) => Err(format!(
                "{} (kernel {}, found as {}): {why}",
                self.case.id, self.kernel, self.found
            )),
            Verdict::Unavailable(why) => Err(why),
            v @ (Verdict::KernelFault(_) | Verdict::KnownKernelFault(..)) => Err(format!(
                "{} (kernel {}, found as {}): {}",
                self.case.id,
                self.kernel,
                self.found,
                v.reason().unwrap_or_default()
            )),
        }
    }
}

/// Append `r` to the regression file at `path` (made when missing, with a
/// header), with a comment line saying why it is there.
pub fn append(path: &std::path::Path, r: &Regression, why: &str) -> std::io::Result<()> {
    use std::io::Write;
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if new {
        writeln!(
            f,
            "# Regression cases shrunk by `dmch kernel fuzz`, with what the kernel did.\n# Replayed by `dmch kernel check --regressions {}`.",
            path.display()
        )?;
    }
    let why: String = why
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    writeln!(f, "# {why}\n{}", r.to_line())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut c = Case::new("r1", "aes-cbc-plain", &"01".repeat(16), 512);
        c.iv_offset = 1 << 32;
        for expect in [
            KernelResult::Rejected("refused".into()),
            KernelResult::Data {
                ct_sha256: [1; 32],
                pt_sha256: [2; 32],
                excerpts: Vec::new(),
            },
        ] {
            let r = Regression {
                case: c.clone(),
                kernel: "6.12.117".into(),
                date: "2026-12-01".into(),
                found: "fuzz-v2-1-5".into(),
                expect,
            };
            assert_eq!(parse(&r.to_line()).unwrap(), vec![r]);
        }
    }

    #[test]
    fn bad_records_name_their_line() {
        for (text, says) in [
            (
                "kernel=x date=y found=z cipher=aes key=00 len=512",
                "line 1: no expect=",
            ),
            (
                "\n# c\nkernel=x date=y found=z expect=data cipher=aes key=00 len=512",
                "line 3: expect=data needs ct=",
            ),
            (
                "kernel=x date=y found=z expect=maybe cipher=aes key=00 len=512",
                "not refused or data",
            ),
            (
                "kernel=x date=y found=z expect=data ct=00 pt=00",
                "not a SHA-256",
            ),
            (
                "kernel=x date=y found=z expect=refused key=00 len=512",
                "needs cipher=",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_builtin_file_parses_and_the_reference_gives_the_kernels_answers() {
        let all = builtin();
        assert!(!all.is_empty(), "no regressions built in");
        for r in &all {
            r.replay(Fault::None).unwrap();
        }
        // No record encodes an undefined result as a rule.
        for r in &all {
            assert!(
                !matches!(r.case.reference(), Err(super::super::Refusal::Undefined(_))),
                "{} records an undefined result",
                r.case.id
            );
        }
    }
}
