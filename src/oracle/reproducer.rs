//! A reproducer a kernel maintainer can run without dmch: a shell script
//! that builds the case's backing file and loop device, loads the exact
//! table with `dmsetup`, writes the case's input with `dd`, and compares
//! the ciphertext's sha256 with the reference's (or watches the kernel log
//! for the fault). Steps (reloads, rewrites) are written out too.

use super::case::{Case, Pattern, Step};
use super::{Refusal, Verdict};
use crate::hash::sha256;

/// A shell word in single quotes.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A command that prints `len` bytes of `p` on stdout, with tools every
/// system has (head, printf, perl for the counter and random patterns,
/// whose bytes dmch's own pattern generator defines).
fn producer(p: &Pattern, len: usize) -> String {
    match p {
        Pattern::Zeros => format!("head -c {len} /dev/zero"),
        Pattern::Counter => {
            format!(
                "perl -e 'print chr($_ % 256) for 0..{}'",
                len.saturating_sub(1)
            )
        }
        Pattern::Repeat(b) => format!(
            "perl -e 'my $p = pack(\"H*\", \"{}\"); print substr($p x ({len} / length($p) + 1), 0, {len})'",
            hex::encode(b)
        ),
        // splitmix64, as dmch's oracle::fuzz::splitmix.
        Pattern::Random(seed) => format!(
            "perl -Mbigint -e 'my $s = {seed}; my $m = (1 << 64) - 1; my $o = \"\"; while (length($o) < {len}) {{ $s = ($s + 0x9e3779b97f4a7c15) & $m; my $z = $s; $z = (($z ^ ($z >> 30)) * 0xbf58476d1ce4e5b9) & $m; $z = (($z ^ ($z >> 27)) * 0x94d049bb133111eb) & $m; $z = $z ^ ($z >> 31); for my $i (0..7) {{ $o .= chr(($z >> (8 * $i)) & 255) }} }} print substr($o, 0, {len})'"
        ),
    }
}

/// The script for `case`, which got `verdict` on kernel `release`.
pub fn script(case: &Case, release: &str, verdict: &Verdict) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let (lo, hi) = case.span();
    let sectors = case.len / 512;
    let _ = writeln!(s, "#!/bin/sh");
    let _ = writeln!(
        s,
        "# Reproduces dmch case {} as found on Linux {release}.",
        case.id
    );
    let _ = writeln!(
        s,
        "# dmch's words: dmch kernel check --case {}",
        quote(&case.to_words())
    );
    if let Some(r) = verdict.reason() {
        for l in r.lines() {
            let _ = writeln!(s, "# verdict: {l}");
        }
    }
    if let Verdict::KernelFault(f) | Verdict::KnownKernelFault(f, _) = verdict {
        for l in &f.lines {
            let _ = writeln!(s, "#   | {l}");
        }
    }
    let _ = writeln!(
        s,
        "# Needs root, dmsetup, losetup, dd, perl, sha256sum. It removes what it made.\n# A kernel with the fault may BUG or panic here: run it in a throwaway VM."
    );
    let _ = writeln!(s, "set -eu");
    let _ = writeln!(s, "dir=$(mktemp -d); name=dmch-repro-$$; dev=''");
    let _ = writeln!(
        s,
        "cleanup() {{ dmsetup remove \"$name\" 2>/dev/null || true; [ -n \"$dev\" ] && losetup -d \"$dev\" 2>/dev/null; rm -rf \"$dir\"; }}"
    );
    let _ = writeln!(s, "trap cleanup EXIT");
    let _ = writeln!(s, "truncate -s {hi} \"$dir/backing\"");
    let _ = writeln!(s, "dev=$(losetup --find --show \"$dir/backing\")");
    let _ = writeln!(s, "dmesg -c >/dev/null 2>&1 || true");
    // Checked after a failed create too: a table load that BUGs kills
    // dmsetup, which is no refusal.
    let _ = writeln!(
        s,
        "faulted() {{ if dmesg 2>/dev/null | grep -E '{}'; then echo 'KERNEL FAULT logged (above)'; exit 2; fi; }}",
        super::klog::shell_pattern()
    );
    // The words as the kernel splits them, joined again with one space
    // (whitespace and backslashes inside a word quoted): the same table to
    // dm_split_args, and one dmsetup can pass (no NUL, no newline).
    let table = |iv: u64, off: u64| {
        let words =
            crate::table::split_args(&case.params_at("$dev", iv, off), crate::fault::Fault::None);
        let words: Vec<String> = words
            .iter()
            .map(|w| {
                w.chars()
                    .flat_map(|c| match c {
                        '\\' | ' ' | '\t' | '\u{b}' | '\u{c}' | '\r' => vec!['\\', c],
                        '\n' => vec!['\\', 'n'],
                        c => vec![c],
                    })
                    .collect()
            })
            .collect();
        format!(
            "0 {sectors} crypt {}",
            words.join(" ").replace("$dev", "'\"$dev\"'")
        )
    };
    // What the reference expects of the kernel this was found on.
    let reference = case.model_as(
        crate::fault::Fault::None,
        crate::table::Rules::of_release(release),
    );
    match &reference {
        Ok(x) => {
            let _ = writeln!(s, "want={}", hex::encode(sha256(&x.backing)));
        }
        Err(Refusal::Undefined(why)) => {
            let _ = writeln!(s, "want=undefined");
            let _ = writeln!(s, "echo {}", quote(&format!("no defined result: {why}")));
        }
        Err(Refusal::Refused(why)) => {
            let _ = writeln!(s, "want=refused");
            let _ = writeln!(
                s,
                "echo {}",
                quote(&format!("the kernel should refuse the table: {why}"))
            );
        }
    }
    let _ = writeln!(
        s,
        "if ! printf '%s\\n' '{}' | dmsetup create \"$name\"; then",
        table(case.iv_offset, case.offset)
    );
    let _ = writeln!(s, "  faulted");
    let _ = writeln!(
        s,
        "  if [ \"$want\" = refused ]; then echo 'the kernel refused the table, as it should'; exit 0; fi"
    );
    let _ = writeln!(
        s,
        "  echo 'the kernel refused the table; the reference accepts it'; exit 1"
    );
    let _ = writeln!(s, "fi");
    let _ = writeln!(
        s,
        "{} | dd of=/dev/mapper/\"$name\" bs=512 oflag=direct conv=fsync status=none",
        producer(&case.data, case.len)
    );
    let ss = case.sector_size as usize;
    for st in &case.steps {
        match st {
            Step::Reload { iv_offset, offset } => {
                let _ = writeln!(s, "dmsetup suspend \"$name\"");
                let _ = writeln!(
                    s,
                    "printf '%s\\n' '{}' | dmsetup load \"$name\"",
                    table(*iv_offset, *offset)
                );
                let _ = writeln!(s, "dmsetup resume \"$name\"");
            }
            Step::Write { unit, units, data } => {
                let _ = writeln!(
                    s,
                    "{} | dd of=/dev/mapper/\"$name\" bs={ss} seek={unit} oflag=direct conv=fsync,notrunc status=none",
                    producer(data, *units as usize * ss)
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "got=$(dd if=\"$dir/backing\" bs=512 skip={} count={} status=none | sha256sum | cut -d' ' -f1)",
        lo / 512,
        (hi - lo) / 512
    );
    let _ = writeln!(s, "faulted");
    let _ = writeln!(s, "echo \"ciphertext sha256: $got (the reference: $want)\"");
    let _ = writeln!(
        s,
        "case \"$want\" in undefined) echo 'no fault logged: the kernel used memory it does not own, unnoticed'; exit 3;; refused) echo 'MISMATCH: the kernel accepted the table'; exit 1;; esac"
    );
    let _ = writeln!(
        s,
        "[ \"$got\" = \"$want\" ] || {{ echo MISMATCH; exit 1; }}"
    );
    let _ = writeln!(s, "echo 'kernel and reference agree'");
    s
}

/// A file name for the case's script.
pub fn file_name(release: &str, case: &Case) -> String {
    let clean = |t: &str| -> String {
        t.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}--{}.sh", clean(release), clean(&case.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_carries_the_table_the_data_and_the_digest() {
        let mut c = Case::new("x/1", "aes-xts-plain64", &"11".repeat(32), 1024);
        c.steps = vec![Step::Reload {
            iv_offset: 7,
            offset: 0,
        }];
        let v = Verdict::Fail(super::super::Mismatch::Ciphertext, "differs".into());
        let s = script(&c, "7.2.13", &v);
        assert!(s.contains("dmsetup create"), "{s}");
        assert!(s.contains("crypt aes-xts-plain64 1111"));
        assert!(s.contains("dmsetup load"));
        let want = hex::encode(sha256(&c.reference().unwrap().backing));
        assert!(s.contains(&format!("want={want}")));
        // The steps of the script in order: want, create, write, compare.
        let at = |t: &str| s.find(t).unwrap_or_else(|| panic!("no {t} in {s}"));
        assert!(at("want=") < at("dmsetup create"));
        assert!(at("dmsetup create") < at("dd of=/dev/mapper"));
        assert!(at("dd of=/dev/mapper") < at("| sha256sum"));
        assert_eq!(file_name("7.2.13+deb14", &c), "7.2.13_deb14--x_1.sh");
    }

    /// Every kind of expectation gives a script `sh -n` reads, and the
    /// reference it holds is the one of the kernel it was found on.
    #[test]
    fn scripts_are_valid_shell_for_data_refusals_and_undefined_results() {
        let data = Case::new("d", "aes-cbc-essiv:sha256", &"22".repeat(16), 512);
        let refused = Case::new("r", "aes-cbc-essiv:sha256", &"22".repeat(15), 512);
        let undefined = Case::new("u", "des:64-cbc-lmk", &"33".repeat(65 * 8), 512);
        let mut big = Case::new("b", "aes-xts-plain64", &"44".repeat(32), 512);
        big.iv_offset_text = Some("18446744073709551617".into());
        let v = Verdict::Fail(super::super::Mismatch::Ciphertext, "x".into());
        for (c, want) in [
            (&data, None),
            (&refused, Some("want=refused")),
            (&undefined, Some("want=undefined")),
        ] {
            let s = script(c, "6.12.118", &v);
            if let Some(w) = want {
                assert!(s.contains(w), "{s}");
            }
            let ok = std::process::Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(&s)
                .status()
                .unwrap();
            assert!(ok.success(), "sh -n refuses the script for {}:\n{s}", c.id);
        }
        // 2^64 + 1 wraps to 1 on 6.12 and saturates on 7.2: the digests differ.
        let want = |r: &str| {
            script(&big, r, &v)
                .lines()
                .find(|l| l.starts_with("want="))
                .unwrap()
                .to_string()
        };
        assert_ne!(want("6.12.118"), want("7.2.13"));
        // A create that dies in a BUG is a fault, not a refusal: the log is
        // looked at before the refusal is judged.
        let s = script(&undefined, "7.2.13", &v);
        let create = s.find("| dmsetup create").unwrap();
        let refused_line = s.find("the kernel refused the table;").unwrap();
        let faulted = s[create..].find("  faulted").unwrap() + create;
        assert!(faulted < refused_line, "{s}");
        assert!(s.contains("detected buffer overflow|kernel BUG at"), "{s}");
    }

    /// The script's perl producers give dmch's own pattern bytes.
    #[test]
    fn the_producers_make_the_patterns_bytes() {
        if std::process::Command::new("perl")
            .arg("-v")
            .output()
            .is_err()
        {
            println!("SKIPPED: perl is not installed, the producers cannot be run");
            return;
        }
        for p in [
            Pattern::Counter,
            Pattern::Zeros,
            Pattern::Repeat(vec![1, 2, 3]),
            Pattern::Random(42),
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(producer(&p, 1000))
                .output()
                .unwrap();
            assert_eq!(out.stdout, p.bytes(1000), "{p:?}");
        }
    }
}
