//! Parser for the `.vec` format (see the module docs of `vectors`).

use crate::error::{Error, Result};
use crate::key::Key;

/// Input bytes: literal hex or a generator, so long inputs stay short.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// Literal bytes.
    Hex(Vec<u8>),
    /// N zero bytes.
    Zeros(usize),
    /// N bytes counting up from 0, wrapping at 256.
    Counter(usize),
}

impl Data {
    /// The bytes (generated ones made now).
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Data::Hex(b) => b.clone(),
            Data::Zeros(n) => vec![0; *n],
            Data::Counter(n) => (0..*n).map(|i| i as u8).collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
/// What a vector expects.
pub enum Expected {
    /// These bytes exactly.
    Hex(Vec<u8>),
    /// Bytes with this SHA-256 (long outputs).
    Sha256([u8; 32]),
}

#[derive(Clone, Debug, PartialEq, Eq)]
/// What a vector runs through.
pub enum Kind {
    /// Whole dm-crypt sectors through the engine.
    Sector {
        /// The cipher spec.
        spec: String,
        /// The table's iv_offset.
        iv_offset: u64,
        /// The encryption sector size in bytes.
        sector_size: u32,
        /// Whether iv_large_sectors is set.
        iv_large_sectors: bool,
        /// The target sector of the first plaintext byte.
        start_sector: u64,
    },
    /// One crypto API request (`cbc(aes)` with an explicit IV), as testmgr.
    Cipher {
        /// The crypto API name, e.g. `cbc(aes)`.
        algorithm: String,
        /// The IV of the request.
        iv: Option<Vec<u8>>,
    },
    /// Passphrase or key file to volume key (cryptsetup plain mode). The
    /// vector's `plaintext` is the input, `expected` the key; `None` in
    /// `fails` means the derivation must succeed.
    Passphrase {
        /// The hash spec (`-h`).
        hash: String,
        /// The key size in bytes.
        key_size: usize,
        /// `passphrase`, `keyfile-stdin` or `keyfile`.
        source: String,
        /// `--keyfile-size` (0: none).
        keyfile_size: usize,
        /// `--keyfile-offset`.
        keyfile_offset: u64,
        /// The derivation must fail.
        must_fail: bool,
    },
    /// A key derivation function as LUKS key slots use it: `plaintext` is
    /// the password, `expected` the derived bytes.
    Kdf {
        /// `pbkdf2-<hash>`, `argon2i` or `argon2id`.
        kdf: String,
        /// The salt.
        salt: Vec<u8>,
        /// PBKDF2 iterations or Argon2 passes.
        iterations: u32,
        /// Argon2 memory (KiB).
        memory: u32,
        /// Argon2 lanes.
        lanes: u32,
        /// Argon2 secret (RFC 9106's K).
        secret: Vec<u8>,
        /// Argon2 associated data (RFC 9106's X).
        associated: Vec<u8>,
    },
}

#[derive(Clone, Debug)]
/// One known answer.
pub struct Vector {
    /// Unique within its file.
    pub id: String,
    /// Line of the `[vector ...]` header, for messages.
    pub line: usize,
    /// Where it comes from (a suite, a standard, a kernel).
    pub source: String,
    /// How its expected value was produced.
    pub produced: String,
    /// What it runs through.
    pub kind: Kind,
    /// The key (for passphrase vectors: unused).
    pub key: Key,
    /// The input.
    pub plaintext: Data,
    /// SHA-256 of the input, when the file states it.
    pub plaintext_sha256: Option<[u8; 32]>,
    /// The expected output.
    pub expected: Expected,
}

impl Vector {
    /// What the summary groups by: the spec or the crypto API name.
    pub fn label(&self) -> &str {
        match &self.kind {
            Kind::Sector { spec, .. } => spec,
            Kind::Cipher { algorithm, .. } => algorithm,
            Kind::Passphrase { hash, .. } => hash,
            Kind::Kdf { kdf, .. } => kdf,
        }
    }
}

#[derive(Clone, Debug)]
/// A parsed `.vec` file.
pub struct VectorFile {
    /// Its file name.
    pub name: String,
    /// The `[file]` section's fields (source, retrieved, semantics).
    pub header: Vec<(String, String)>,
    /// Its vectors, in order.
    pub vectors: Vec<Vector>,
}

const HEX_FIELDS: &[&str] = &[
    "input",
    "expected-key",
    "key",
    "iv",
    "plaintext",
    "ciphertext",
    "ciphertext-sha256",
    "plaintext-sha256",
];

/// Records as (header, header line, fields with their lines).
type Record = (String, usize, Vec<(String, String, usize)>);

fn records(name: &str, text: &str) -> Result<Vec<Record>> {
    let err = |line: usize, why: String| Error::Vector {
        file: name.to_string(),
        line,
        why,
    };
    let mut out: Vec<Record> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end();
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with('[') {
            let head = line
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .ok_or_else(|| err(n, format!("bad record header '{line}'")))?;
            out.push((head.to_string(), n, Vec::new()));
        } else if line.starts_with([' ', '\t']) {
            let rec = out
                .last_mut()
                .and_then(|r| r.2.last_mut())
                .ok_or_else(|| err(n, "continuation line before any field".into()))?;
            let more = line.trim();
            if HEX_FIELDS.contains(&rec.0.as_str()) {
                rec.1.push_str(more);
            } else {
                rec.1.push(' ');
                rec.1.push_str(more);
            }
        } else {
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| err(n, format!("expected 'field: value', got '{line}'")))?;
            let rec = out
                .last_mut()
                .ok_or_else(|| err(n, "field before the first [record]".into()))?;
            rec.2.push((k.trim().to_string(), v.trim().to_string(), n));
        }
    }
    Ok(out)
}

fn hex_bytes(field: &str, v: &str) -> std::result::Result<Vec<u8>, String> {
    hex::decode(v).map_err(|e| format!("{field}: not hex ({e})"))
}

fn sha(field: &str, v: &str) -> std::result::Result<[u8; 32], String> {
    hex_bytes(field, v)?
        .try_into()
        .map_err(|_| format!("{field}: a SHA-256 is 32 bytes"))
}

/// The most bytes `zeros N` or `counter N` may ask for.
const MAX_GENERATED: usize = 64 << 20;

fn data(field: &str, v: &str) -> std::result::Result<Data, String> {
    let gen_len = |n: &str| {
        let len = n
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("{field}: bad length '{n}'"))?;
        // Generated data is made in memory: bound it (the largest shipped
        // vector is 64 KiB).
        if len > MAX_GENERATED {
            return Err(format!(
                "{field}: {len} bytes is over the {} MiB a vector may generate",
                MAX_GENERATED >> 20
            ));
        }
        Ok(len)
    };
    if let Some(n) = v.strip_prefix("zeros ") {
        Ok(Data::Zeros(gen_len(n)?))
    } else if let Some(n) = v.strip_prefix("counter ") {
        Ok(Data::Counter(gen_len(n)?))
    } else {
        Ok(Data::Hex(hex_bytes(field, v)?))
    }
}

fn vector(id: &str, fields: &[(String, String, usize)]) -> std::result::Result<Vector, String> {
    let get = |k: &str| fields.iter().find(|f| f.0 == k).map(|f| f.1.as_str());
    let need = |k: &str| get(k).ok_or_else(|| format!("vector '{id}' has no '{k}'"));
    let num = |k: &str, default: Option<u64>| -> std::result::Result<u64, String> {
        match get(k) {
            Some(v) => v.parse().map_err(|_| format!("{k}: '{v}' is not a number")),
            None => default.ok_or_else(|| format!("vector '{id}' has no '{k}'")),
        }
    };
    let allowed: &[&str] = match need("kind")? {
        "sector" => &["spec", "iv-offset", "sector-size", "flags", "start-sector"],
        "cipher" => &["algorithm", "iv"],
        "passphrase" => &[
            "hash",
            "key-size",
            "source-of-key",
            "input",
            "keyfile-size",
            "keyfile-offset",
            "expected-key",
            "expect",
        ],
        "kdf" => &[
            "kdf",
            "salt",
            "iterations",
            "memory",
            "lanes",
            "secret",
            "associated",
        ],
        other => {
            return Err(format!(
                "kind '{other}' is not sector, cipher, passphrase or kdf"
            ));
        }
    };
    for (k, _, _) in fields {
        let common = [
            "source",
            "produced",
            "note",
            "kind",
            "key",
            "plaintext",
            "plaintext-sha256",
            "ciphertext",
            "ciphertext-sha256",
        ];
        if !common.contains(&k.as_str()) && !allowed.contains(&k.as_str()) {
            return Err(format!("unknown field '{k}' in vector '{id}'"));
        }
    }
    if need("kind")? == "passphrase" {
        let must_fail = get("expect") == Some("failure");
        let expected = match (get("expected-key"), must_fail) {
            (Some(k), false) => Expected::Hex(hex_bytes("expected-key", k)?),
            (None, true) => Expected::Hex(Vec::new()),
            _ => return Err("give 'expected-key', or 'expect: failure'".into()),
        };
        let source = need("source-of-key")?.to_string();
        if !["passphrase", "keyfile-stdin", "keyfile"].contains(&source.as_str()) {
            return Err(format!(
                "source-of-key '{source}' is not passphrase, keyfile-stdin or keyfile"
            ));
        }
        return Ok(Vector {
            id: id.to_string(),
            line: 0,
            source: need("source")?.to_string(),
            produced: need("produced")?.to_string(),
            kind: Kind::Passphrase {
                hash: need("hash")?.to_string(),
                key_size: num("key-size", None)? as usize,
                source,
                keyfile_size: num("keyfile-size", Some(0))? as usize,
                keyfile_offset: num("keyfile-offset", Some(0))?,
                must_fail,
            },
            key: Key::from_bytes(&[]),
            plaintext: data("input", need("input")?)?,
            plaintext_sha256: None,
            expected,
        });
    }
    if need("kind")? == "kdf" {
        let bytes = |k: &str| get(k).map_or(Ok(Vec::new()), |v| hex_bytes(k, v));
        let small = |k: &str, d: u64| -> std::result::Result<u32, String> {
            u32::try_from(num(k, Some(d))?).map_err(|_| format!("{k}: over 32 bits"))
        };
        let (iterations, memory, lanes) = (
            small("iterations", 1)?,
            small("memory", 0)?,
            small("lanes", 1)?,
        );
        // A vector runs in memory and time: bounded before anything is taken.
        if iterations > 10_000_000 || memory > 65536 || lanes > 16 {
            return Err(format!(
                "vector '{id}' asks for {iterations} iterations, {memory} KiB, {lanes} lanes; a kdf vector may take at most 10000000, 65536 KiB, 16"
            ));
        }
        let ciphertext = need("ciphertext")?;
        if ciphertext.len() > 2048 {
            return Err(format!("vector '{id}': a kdf output of at most 1024 bytes"));
        }
        return Ok(Vector {
            id: id.to_string(),
            line: 0,
            source: need("source")?.to_string(),
            produced: need("produced")?.to_string(),
            kind: Kind::Kdf {
                kdf: need("kdf")?.to_string(),
                salt: bytes("salt")?,
                iterations,
                memory,
                lanes,
                secret: bytes("secret")?,
                associated: bytes("associated")?,
            },
            key: Key::from_bytes(&[]),
            plaintext: data("plaintext", need("plaintext")?)?,
            plaintext_sha256: None,
            expected: Expected::Hex(hex_bytes("ciphertext", ciphertext)?),
        });
    }
    let kind = if need("kind")? == "sector" {
        let flags = get("flags").unwrap_or("");
        let mut large = false;
        for f in flags.split_whitespace() {
            match f {
                "iv_large_sectors" => large = true,
                other => return Err(format!("unknown flag '{other}'")),
            }
        }
        let ss = num("sector-size", Some(512))?;
        Kind::Sector {
            spec: need("spec")?.to_string(),
            iv_offset: num("iv-offset", Some(0))?,
            sector_size: u32::try_from(ss).map_err(|_| format!("sector-size {ss} too large"))?,
            iv_large_sectors: large,
            start_sector: num("start-sector", Some(0))?,
        }
    } else {
        Kind::Cipher {
            algorithm: need("algorithm")?.to_string(),
            iv: get("iv").map(|v| hex_bytes("iv", v)).transpose()?,
        }
    };
    let key = Key::parse(need("key")?).map_err(|e| e.to_string())?;
    let expected = match (get("ciphertext"), get("ciphertext-sha256")) {
        (Some(c), None) => Expected::Hex(hex_bytes("ciphertext", c)?),
        (None, Some(h)) => Expected::Sha256(sha("ciphertext-sha256", h)?),
        _ => return Err("give exactly one of 'ciphertext' and 'ciphertext-sha256'".into()),
    };
    Ok(Vector {
        id: id.to_string(),
        line: 0,
        source: need("source")?.to_string(),
        produced: need("produced")?.to_string(),
        kind,
        key,
        plaintext: data("plaintext", need("plaintext")?)?,
        plaintext_sha256: get("plaintext-sha256")
            .map(|v| sha("plaintext-sha256", v))
            .transpose()?,
        expected,
    })
}

/// Parse one vector file. Errors carry the file name and line.
pub fn parse(name: &str, text: &str) -> Result<VectorFile> {
    let mut file = VectorFile {
        name: name.to_string(),
        header: Vec::new(),
        vectors: Vec::new(),
    };
    for (head, line, fields) in records(name, text)? {
        let err = |why: String| Error::Vector {
            file: name.to_string(),
            line,
            why,
        };
        if head == "file" {
            file.header = fields.into_iter().map(|(k, v, _)| (k, v)).collect();
        } else if let Some(id) = head.strip_prefix("vector ") {
            let mut v = vector(id.trim(), &fields).map_err(err)?;
            v.line = line;
            if file.vectors.iter().any(|o| o.id == v.id) {
                return Err(Error::Vector {
                    file: name.to_string(),
                    line,
                    why: format!("duplicate vector id '{}'", v.id),
                });
            }
            file.vectors.push(v);
        } else {
            return Err(err(format!("unknown record '[{head}]'")));
        }
    }
    if !file.header.iter().any(|(k, _)| k == "source") {
        return Err(Error::Vector {
            file: name.to_string(),
            line: 1,
            why: "the [file] record must name its source".into(),
        });
    }
    Ok(file)
}
