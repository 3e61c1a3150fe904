//! Cipher-spec grammar, as dm-crypt's constructor reads it.
//!
//! Old form: `cipher[:keycount]-chainmode-ivmode[:ivopts]`
//! (`crypt_ctr_cipher_old`), capi form: `capi:<crypto api name>-ivmode[:ivopts]`
//! (`crypt_ctr_cipher_new`). Parsing is grammar only; whether the names exist
//! is decided when an engine is built ([`crate::engine`]), as the kernel
//! decides when it allocates the tfms.

use crate::error::{Error, Result};
use std::fmt;

/// The largest keycount the reference accepts. Only `cipher_null`, whose key
/// is empty, can split over more keys than the key has bytes; the kernel
/// then tries to allocate that many transforms.
pub const MAX_KEYCOUNT: u32 = 1 << 16;

#[derive(Clone, Debug, PartialEq, Eq)]
/// How a cipher spec was written.
pub enum Form {
    /// `cipher[:keycount]-chainmode-ivmode[:ivopts]`.
    Old,
    /// `capi:<crypto API name>-ivmode[:ivopts]`.
    Capi,
}

/// A parsed cipher spec. `text` is kept because the kernel echoes the spec
/// exactly as given in its table status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CipherSpec {
    /// The spec as given (the kernel echoes it in status).
    pub text: String,
    /// The spelling it was given in.
    pub form: Form,
    /// Block cipher name (`aes`, `serpent`, `xchacha12,aes` for adiantum).
    pub cipher: String,
    /// Chaining mode name (`cbc`, `xts`, `ecb`, ...).
    pub chain: String,
    /// Number of keyed instances (old form `:keycount`; 1 for capi).
    pub keycount: u32,
    /// The IV mode as written (ecb drops it: see `effective_ivmode`).
    pub ivmode: Option<String>,
    /// The IV mode's options (the ESSIV hash).
    pub ivopts: Option<String>,
}

impl CipherSpec {
    /// Parse a spec with the kernel's rules and defaults.
    pub fn parse(text: &str) -> Result<Self> {
        let err = |why: &str| Error::spec(text, why);
        if text.is_empty() {
            return Err(err("empty"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err("contains whitespace or control characters"));
        }
        let spec = match text.strip_prefix("capi:") {
            Some(rest) => parse_capi(text, rest)?,
            None => parse_old(text)?,
        };
        if spec.cipher.is_empty() {
            return Err(err("empty cipher name"));
        }
        if spec.chain.is_empty() {
            return Err(err("empty chaining mode"));
        }
        if spec.ivmode.as_deref() == Some("") {
            return Err(err("empty IV mode"));
        }
        if spec.ivopts.as_deref() == Some("") {
            return Err(err("empty IV options after ':'"));
        }
        Ok(spec)
    }

    /// The IV mode that takes effect: ecb has no IV, and the kernel drops
    /// the IV mode with a warning (essiv excepted: it is refused, see engine).
    pub fn effective_ivmode(&self) -> Option<&str> {
        if self.chain == "ecb" {
            None
        } else {
            self.ivmode.as_deref()
        }
    }

    /// The crypto API name of the data transform, e.g. `cbc(aes)`.
    pub fn api_name(&self) -> String {
        format!("{}({})", self.chain, self.cipher)
    }

    /// The spec in the capi form: `capi:cbc(aes)-essiv:sha256`. `None` when
    /// it cannot be written so (the capi form has no keycount: 1, or 64 for lmk).
    pub fn to_capi(&self) -> Option<String> {
        let implied = if self.effective_ivmode() == Some("lmk") {
            64
        } else {
            1
        };
        if self.keycount != implied {
            return None;
        }
        let mut s = format!("capi:{}", self.api_name());
        s.push_str(&self.iv_suffix());
        Some(s)
    }

    /// `-ivmode[:ivopts]`, or nothing when no IV mode takes effect.
    fn iv_suffix(&self) -> String {
        match (self.effective_ivmode(), &self.ivopts) {
            (None, _) => String::new(),
            (Some(iv), None) => format!("-{iv}"),
            (Some(iv), Some(o)) => format!("-{iv}:{o}"),
        }
    }

    /// The spec in the old form: `aes:2-cbc-essiv:sha256`.
    pub fn to_old(&self) -> String {
        // Driver names such as aes-generic cannot be written in the old form.
        let mut s = self
            .cipher
            .strip_suffix("-generic")
            .unwrap_or(&self.cipher)
            .to_string();
        if self.keycount != 1 {
            s.push_str(&format!(":{}", self.keycount));
        }
        s.push('-');
        s.push_str(&self.chain);
        s.push_str(&self.iv_suffix());
        s
    }
}

/// Canonical display: the old form with every default spelled out
/// (`aes` -> `aes-cbc-plain`, `capi:xts(aes)-plain64` -> `aes-xts-plain64`).
impl fmt::Display for CipherSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_old())
    }
}

impl std::str::FromStr for CipherSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

fn parse_old(text: &str) -> Result<CipherSpec> {
    let err = |why: String| Error::spec(text, why);
    if text.contains('(') || text.contains(')') {
        return Err(err(
            "parentheses belong to the capi form (write capi:<api name>-<ivmode>)".into(),
        ));
    }
    // The kernel splits with strsep: first '-' ends cipher[:keycount], the
    // second ends the chain mode, and the IV mode runs to the first ':'.
    let mut parts = text.splitn(3, '-');
    let head = parts.next().unwrap_or("");
    let chain = parts.next();
    let rest = parts.next();
    let (cipher, keycount) = match head.split_once(':') {
        None => (head, 1),
        Some((c, k)) => {
            let n: u32 = if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) {
                k.parse()
                    .map_err(|_| err(format!("key count '{k}' is too large")))?
            } else {
                return Err(err(format!("key count '{k}' is not a number")));
            };
            if !n.is_power_of_two() {
                return Err(err(format!("key count {n} is not a power of two")));
            }
            if n > MAX_KEYCOUNT {
                return Err(err(format!(
                    "key count {n} is over {MAX_KEYCOUNT}: the kernel would allocate a transform per key (and fail), the reference refuses"
                )));
            }
            (c, n)
        }
    };
    let (ivmode, ivopts) = match rest {
        None => (None, None),
        Some(r) => match r.split_once(':') {
            None => (Some(r.to_string()), None),
            Some((m, o)) => (Some(m.to_string()), Some(o.to_string())),
        },
    };
    // Compatibility with the original format: `aes` and `aes-plain` are cbc-plain.
    let (chain, ivmode) = match (chain, ivmode) {
        (None, None) => ("cbc".to_string(), Some("plain".to_string())),
        (Some("plain"), None) => ("cbc".to_string(), Some("plain".to_string())),
        (Some(c), m) => (c.to_string(), m),
        (None, Some(_)) => unreachable!("an IV mode needs a chain mode before it"),
    };
    if chain != "ecb" && ivmode.is_none() {
        return Err(err(format!(
            "IV mechanism required: chain mode '{chain}' needs an IV mode (e.g. {cipher}-{chain}-plain64)"
        )));
    }
    Ok(CipherSpec {
        text: text.to_string(),
        form: Form::Old,
        cipher: cipher.to_string(),
        chain,
        keycount,
        ivmode,
        ivopts,
    })
}

fn parse_capi(text: &str, rest: &str) -> Result<CipherSpec> {
    let err = |why: String| Error::spec(text, why);
    // As the kernel does: options after the LAST ':', IV mode after the last
    // '-' of what remains (hash names such as sha3-256 contain '-').
    let (rest, ivopts) = match rest.rsplit_once(':') {
        Some((r, o)) => (r, Some(o.to_string())),
        None => (rest, None),
    };
    let (api, ivmode) = match rest.rsplit_once('-') {
        Some((a, m)) if !a.ends_with('(') && !m.contains(')') => (a, Some(m.to_string())),
        _ => (rest, None),
    };
    if ivmode.is_none() && ivopts.is_some() {
        return Err(err("IV options given without an IV mode".into()));
    }
    let open = api
        .find('(')
        .ok_or_else(|| err(format!("'{api}' is not a crypto API name like cbc(aes)")))?;
    if !api.ends_with(')') {
        return Err(err(format!("unbalanced parentheses in '{api}'")));
    }
    let chain = &api[..open];
    let cipher = &api[open + 1..api.len() - 1];
    if cipher.contains('(') || cipher.contains(')') {
        return Err(err(format!(
            "nested crypto API names such as '{api}' are not supported; write the inner mode directly"
        )));
    }
    if ivmode.is_none() && chain != "ecb" {
        return Err(err(format!(
            "no IV mode: the kernel would run {api} with an uninitialised IV; add one, e.g. {text}-plain64"
        )));
    }
    // crypt_ctr_cipher_new: lmk always runs 64 keyed instances.
    let keycount = if ivmode.as_deref() == Some("lmk") {
        64
    } else {
        1
    };
    Ok(CipherSpec {
        text: text.to_string(),
        form: Form::Capi,
        cipher: cipher.to_string(),
        chain: chain.to_string(),
        keycount,
        ivmode,
        ivopts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> CipherSpec {
        CipherSpec::parse(s).unwrap()
    }

    #[test]
    fn old_form_defaults_follow_the_kernel() {
        assert_eq!(p("aes").to_string(), "aes-cbc-plain");
        assert_eq!(p("aes-plain").to_string(), "aes-cbc-plain");
        assert_eq!(p("aes-ecb-plain64").to_string(), "aes-ecb");
        assert_eq!(p("aes-ecb-plain64").text, "aes-ecb-plain64");
        assert_eq!(p("aes:64-cbc-lmk").keycount, 64);
        assert_eq!(
            p("aes-cbc-essiv:sha3-256").ivopts.as_deref(),
            Some("sha3-256")
        );
    }

    #[test]
    fn capi_form_splits_at_the_last_separators() {
        let s = p("capi:cbc(aes)-essiv:sha3-256");
        assert_eq!((s.chain.as_str(), s.cipher.as_str()), ("cbc", "aes"));
        assert_eq!(s.ivmode.as_deref(), Some("essiv"));
        assert_eq!(s.ivopts.as_deref(), Some("sha3-256"));
        assert_eq!(p("capi:ecb(twofish)-null").to_string(), "twofish-ecb");
        assert_eq!(
            p("capi:xts(serpent)-plain64").to_string(),
            "serpent-xts-plain64"
        );
    }

    #[test]
    fn grammar_errors_are_refused() {
        for bad in [
            "",
            "aes-cbc",
            "aes:3-cbc-plain",
            "aes:x-cbc-plain",
            "aes:0-cbc-plain",
            "cbc(aes)-plain",
            "capi:cbc(aes)",
            "capi:aes-plain",
            "aes--plain",
            "aes-cbc-",
            "aes-cbc-essiv:",
            "capi:cbc(aes-plain64",
        ] {
            assert!(CipherSpec::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
