//! Key material: the table's key field (hex, `-`, or a keyring reference).
//! Bytes are zeroized on drop and never shown by `Debug`.

use crate::error::{Error, Result};
use std::fmt;
use zeroize::Zeroizing;

/// The largest key the reference takes, in bytes: far above any the kernel
/// uses (lmk v3: 65 x 32), small enough that no size typed by mistake
/// allocates without bound.
pub const MAX_KEY_BYTES: usize = 8192;

#[derive(Clone, PartialEq, Eq)]
/// The key field of a crypt table.
pub enum Key {
    /// Raw key bytes (from hex). Empty for `-`.
    Bytes(Zeroizing<Vec<u8>>),
    /// `:<size>:<type>:<description>`: a key in the kernel keyring.
    Keyring {
        /// Key size in bytes, as the table states it.
        size: u32,
        /// Keyring type: logon, user, encrypted or trusted.
        kind: String,
        /// The key's description in the keyring.
        description: String,
    },
}

const KEYRING_TYPES: &[&str] = &["logon", "user", "encrypted", "trusted"];

impl Key {
    /// A key of these raw bytes (copied; the copy is wiped on drop).
    pub fn from_bytes(b: &[u8]) -> Self {
        Key::Bytes(Zeroizing::new(b.to_vec()))
    }

    /// Whether this is the empty key (`-`): nothing secret to protect.
    pub fn is_empty(&self) -> bool {
        matches!(self, Key::Bytes(b) if b.is_empty())
    }

    /// A key from a key file or stdin: its raw bytes, or hex text (`hex`,
    /// one trailing newline allowed). Reads at most what the largest key
    /// needs, so a huge or endless input is refused, not swallowed.
    pub fn read(mut r: &mut dyn std::io::Read, hex: bool) -> Result<Self> {
        use std::io::Read;
        let cap = MAX_KEY_BYTES * 2 + 2;
        let mut data = Zeroizing::new(Vec::new());
        Read::take(&mut r, cap as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::Key(format!("reading the key: {e}")))?;
        if hex {
            if data.len() > cap {
                return Err(Error::Key(format!(
                    "the key file holds more than any key ({MAX_KEY_BYTES} bytes at most)"
                )));
            }
            let text = std::str::from_utf8(&data)
                .map_err(|_| Error::Key("the key file is not hex text".into()))?;
            return Key::parse(text.trim_end_matches(['\n', '\r']));
        }
        if data.len() > MAX_KEY_BYTES {
            return Err(Error::Key(format!(
                "the key file holds more than {MAX_KEY_BYTES} bytes, larger than any key"
            )));
        }
        Ok(Key::from_bytes(&data))
    }

    /// The table's key field as the kernel reads it: the key is
    /// `strlen / 2` bytes (`get_key_size`) decoded from the first
    /// `2 * size` characters (`hex2bin`), so an odd-length key's last
    /// character is never looked at, whatever it is (every kernel from
    /// 5.10 to 7.3; `fault` can break the rule for the test proving it).
    /// [`Key::parse`] stays strict for keys a user types.
    pub fn parse_in_table(s: &str, fault: crate::fault::Fault) -> Result<Self> {
        let odd = !s.starts_with(':')
            && s != "-"
            && s.len() > 1
            && !s.len().is_multiple_of(2)
            && !fault.is(crate::fault::Fault::OddKeyRefused);
        if odd {
            // Cut at a character boundary only: a multi-byte last character
            // leaves bytes that are not hex, which fail as the kernel fails.
            let cut = s.len() - 1;
            return match s.get(..cut) {
                Some(even) => Key::parse(even),
                None => Err(Error::Key(format!(
                    "hex key has a non-hex character near position {cut}"
                ))),
            };
        }
        Key::parse(s)
    }

    /// Parse the table's key field.
    pub fn parse(s: &str) -> Result<Self> {
        if s == "-" {
            return Ok(Key::Bytes(Zeroizing::new(Vec::new())));
        }
        if let Some(rest) = s.strip_prefix(':') {
            return parse_keyring(rest);
        }
        if s.is_empty() {
            return Err(Error::Key("empty key (use '-' for an empty key)".into()));
        }
        if s.len() > MAX_KEY_BYTES * 2 {
            return Err(Error::Key(format!(
                "hex key of {} digits is over {MAX_KEY_BYTES} bytes",
                s.len()
            )));
        }
        if !s.len().is_multiple_of(2) {
            return Err(Error::Key(format!(
                "hex key has an odd number of digits ({})",
                s.len()
            )));
        }
        if let Some(pos) = s.bytes().position(|b| !b.is_ascii_hexdigit()) {
            return Err(Error::Key(format!(
                "hex key has a non-hex character at position {}",
                pos + 1
            )));
        }
        let bytes = hex::decode(s).map_err(|e| Error::Key(format!("hex key: {e}")))?;
        Ok(Key::Bytes(Zeroizing::new(bytes)))
    }

    /// Key size in bytes as the kernel counts it.
    pub fn size(&self) -> usize {
        match self {
            Key::Bytes(b) => b.len(),
            Key::Keyring { size, .. } => *size as usize,
        }
    }

    /// The raw bytes; keyring keys live in the kernel and cannot be read here.
    pub fn bytes(&self) -> Result<&[u8]> {
        match self {
            Key::Bytes(b) => Ok(b),
            Key::Keyring {
                kind, description, ..
            } => Err(Error::Offline(format!(
                "key is in the kernel keyring ({kind}:{description}); pass it as hex for offline use"
            ))),
        }
    }

    /// The table form, with the key in clear: only for loading a table or
    /// when the user asked to see keys.
    pub fn table_form(&self) -> String {
        match self {
            Key::Bytes(b) if b.is_empty() => "-".into(),
            Key::Bytes(b) => hex::encode(b),
            Key::Keyring {
                size,
                kind,
                description,
            } => format!(":{size}:{kind}:{description}"),
        }
    }

    /// The form shown when keys are hidden (as `dmsetup table` without --showkeys).
    pub fn redacted(&self) -> String {
        match self {
            Key::Bytes(b) if b.is_empty() => "-".into(),
            Key::Bytes(b) => "0".repeat(b.len() * 2),
            k => k.table_form(),
        }
    }
}

fn parse_keyring(rest: &str) -> Result<Key> {
    let mut it = rest.splitn(3, ':');
    let (size, kind, desc) = (it.next(), it.next(), it.next());
    let (Some(size), Some(kind), Some(desc)) = (size, kind, desc) else {
        return Err(Error::Key(
            "keyring key must be :<size>:<type>:<description>".into(),
        ));
    };
    let size: u32 = size
        .parse()
        .map_err(|_| Error::Key(format!("keyring key size '{size}' is not a number")))?;
    if !KEYRING_TYPES.contains(&kind) {
        return Err(Error::Key(format!(
            "keyring key type '{kind}' is not one of {}",
            KEYRING_TYPES.join(", ")
        )));
    }
    if desc.is_empty() {
        return Err(Error::Key("keyring key has an empty description".into()));
    }
    Ok(Key::Keyring {
        size,
        kind: kind.into(),
        description: desc.into(),
    })
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Bytes(b) => write!(f, "Key(<{} bytes hidden>)", b.len()),
            Key::Keyring { .. } => write!(f, "Key({})", self.table_form()),
        }
    }
}
