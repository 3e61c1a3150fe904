//! Making text safe to show: every message that may echo what a user typed
//! passes through here, so a key typed into the wrong field, or a terminal
//! escape sequence in a file name, never reaches the screen as such.

/// Runs of this many hex digits or more are taken for key material (a
/// 128-bit key is 32 digits; no spec, name or number we print is as long).
const HEX_RUN: usize = 32;

/// `text` with control characters escaped and long hex runs hidden.
pub fn for_terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= HEX_RUN {
            out.push_str(&format!("<{} hex digits hidden>", run.len()));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        flush(&mut run, &mut out);
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::for_terminal;

    #[test]
    fn long_hex_runs_are_hidden_and_short_ones_kept() {
        let key = "00112233445566778899aabbccddeeff";
        assert_eq!(
            for_terminal(&format!("unknown cipher '{key}'")),
            "unknown cipher '<32 hex digits hidden>'"
        );
        assert_eq!(for_terminal("sector 0x1f, aes:64"), "sector 0x1f, aes:64");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(for_terminal("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
    }
}
