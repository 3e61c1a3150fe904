//! Runs vectors through the reference and reports per case, in both
//! directions: encrypt(plaintext) must give the expected ciphertext, and
//! decrypt must give the plaintext back.

use super::format::{Expected, Kind, Vector, VectorFile};
use crate::engine::{Geometry, SectorCrypt};
use crate::hash;
use crate::mode;
use crate::spec::CipherSpec;

#[derive(Clone, Debug, PartialEq, Eq)]
/// How one vector fared.
pub enum CaseOutcome {
    /// The reference reproduced it both ways.
    Pass,
    /// It did not: what differs.
    Fail(String),
}

#[derive(Clone, Debug)]
/// One vector's result.
pub struct CaseResult {
    /// The vector file.
    pub file: String,
    /// The vector's id.
    pub id: String,
    /// What it exercises (spec or algorithm).
    pub label: String,
    /// Its provenance.
    pub source: String,
    /// Pass or fail.
    pub outcome: CaseOutcome,
}

#[derive(Default, Debug)]
/// The results of a `dmch check` run.
pub struct Report {
    /// Every vector's result, in file order.
    pub cases: Vec<CaseResult>,
}

impl Report {
    /// How many failed.
    pub fn failed(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.outcome != CaseOutcome::Pass)
            .count()
    }

    /// (file, label, cases, passed, failed), in order of first appearance.
    pub fn summary(&self) -> Vec<(String, String, usize, usize, usize)> {
        let mut rows: Vec<(String, String, usize, usize, usize)> = Vec::new();
        for c in &self.cases {
            let i = match rows.iter().position(|r| r.0 == c.file && r.1 == c.label) {
                Some(i) => i,
                None => {
                    rows.push((c.file.clone(), c.label.clone(), 0, 0, 0));
                    rows.len() - 1
                }
            };
            rows[i].2 += 1;
            if c.outcome == CaseOutcome::Pass {
                rows[i].3 += 1;
            } else {
                rows[i].4 += 1;
            }
        }
        rows
    }
}

/// First differing byte, with short hex excerpts of both sides.
pub fn describe_mismatch(what: &str, got: &[u8], want: &[u8]) -> String {
    if got.len() != want.len() {
        return format!("{what}: {} bytes, expected {}", got.len(), want.len());
    }
    let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
    let from = at - at % 16;
    let to = (from + 16).min(got.len());
    format!(
        "{what} differs from byte {at} (sector {} of 512): got {} expected {}",
        at / 512,
        hex::encode(&got[from..to]),
        hex::encode(&want[from..to])
    )
}

fn compare(what: &str, got: &[u8], want: &Expected) -> Result<(), String> {
    match want {
        Expected::Hex(w) if got == w.as_slice() => Ok(()),
        Expected::Hex(w) => Err(describe_mismatch(what, got, w)),
        Expected::Sha256(h) if hash::sha256(got) == *h => Ok(()),
        Expected::Sha256(h) => Err(format!(
            "{what} SHA-256 {} expected {}",
            hex::encode(hash::sha256(got)),
            hex::encode(h)
        )),
    }
}

fn run_sector(v: &Vector, spec: &str, geometry: Geometry, start: u64) -> Result<(), String> {
    let spec = CipherSpec::parse(spec).map_err(|e| e.to_string())?;
    let engine = SectorCrypt::new(&spec, &v.key, geometry).map_err(|e| e.to_string())?;
    both_ways(v, |data, enc| {
        if enc {
            engine.encrypt(start, data)
        } else {
            engine.decrypt(start, data)
        }
        .map_err(|e| e.to_string())
    })
}

/// A crypto API request: `chain(cipher)` or `essiv(chain(cipher),hash)`.
fn run_cipher(v: &Vector, algorithm: &str, iv: Option<&[u8]>) -> Result<(), String> {
    let key = v.key.bytes().map_err(|e| e.to_string())?;
    let (inner, essiv_hash) = match algorithm
        .strip_prefix("essiv(")
        .and_then(|r| r.strip_suffix(')'))
    {
        Some(r) => {
            let (m, h) = r.rsplit_once(',').ok_or("essiv(<mode>,<hash>) expected")?;
            (m, Some(hash::lookup(h).ok_or(format!("unknown hash {h}"))?))
        }
        None => (algorithm, None),
    };
    let (chain, cipher) = inner
        .strip_suffix(')')
        .and_then(|r| r.split_once('('))
        .ok_or_else(|| format!("'{algorithm}' is not chain(cipher)"))?;
    let t = mode::resolve(chain, cipher)?;
    let m = t.instantiate(key)?;
    let mut iv = iv.map(|b| b.to_vec()).unwrap_or_default();
    if iv.len() != m.iv_size() {
        return Err(format!(
            "iv is {} bytes, {algorithm} takes {}",
            iv.len(),
            m.iv_size()
        ));
    }
    // The essiv template encrypts the request IV with cipher(hash(key)).
    if let Some(h) = essiv_hash {
        let salt = h.digest(key);
        let c = t
            .cipher
            .new_keyed(&salt)
            .ok_or("ESSIV salt is not a valid key")?;
        c.encrypt_blocks(&mut iv);
    }
    both_ways(v, |data, enc| {
        if !m.valid_len(data.len()) {
            return Err(format!(
                "{} bytes is not a valid length for {algorithm}",
                data.len()
            ));
        }
        let mut ivc = iv.clone();
        if enc {
            m.encrypt(&mut ivc, data)
        } else {
            m.decrypt(&mut ivc, data)
        }
        Ok(())
    })
}

fn run_passphrase(
    v: &Vector,
    hash: &str,
    key_size: usize,
    source: &str,
    keyfile_size: usize,
    keyfile_offset: u64,
    must_fail: bool,
) -> Result<(), String> {
    use crate::keyderive::{HashSpec, Limits, Source, derive};
    let source = match source {
        "passphrase" => Source::Passphrase,
        "keyfile-stdin" => Source::KeyFileStdin,
        _ => Source::KeyFile,
    };
    let input = v.plaintext.bytes();
    let limits = Limits {
        offset: keyfile_offset,
        size: keyfile_size,
    };
    // A real key file ignores the hash, even one that does not exist.
    let result = match (&source, HashSpec::parse(hash)) {
        (Source::KeyFile, _) => derive(
            &source,
            &HashSpec::Plain(None),
            &mut &input[..],
            limits,
            key_size,
        ),
        (_, Ok(spec)) => derive(&source, &spec, &mut &input[..], limits, key_size),
        (_, Err(e)) => Err(e),
    };
    match (result, must_fail) {
        (Err(_), true) => Ok(()),
        (Ok(_), true) => Err("derivation succeeded; the source says it must fail".into()),
        (Err(e), false) => Err(e.to_string()),
        (Ok(k), false) => compare("key", &k, &v.expected),
    }
}

fn run_kdf(v: &Vector, kind: &Kind) -> Result<(), String> {
    let Kind::Kdf {
        kdf,
        salt,
        iterations,
        memory,
        lanes,
        secret,
        associated,
    } = kind
    else {
        unreachable!()
    };
    let Expected::Hex(want) = &v.expected else {
        return Err("a kdf vector gives its output in hex".into());
    };
    let mut out = vec![0u8; want.len()];
    let password = v.plaintext.bytes();
    match kdf.strip_prefix("pbkdf2-") {
        Some(h) => crate::kdf::hash(h)?.pbkdf2(&password, salt, *iterations, &mut out),
        None => {
            let id = match kdf.as_str() {
                "argon2id" => true,
                "argon2i" => false,
                other => {
                    return Err(format!(
                        "kdf '{other}' is not pbkdf2-<hash>, argon2i or argon2id"
                    ));
                }
            };
            crate::kdf::argon2(
                id,
                (*iterations, *memory, *lanes),
                &password,
                salt,
                secret,
                associated,
                &mut out,
            )?
        }
    }
    compare("derived key", &out, &v.expected)
}

fn both_ways(
    v: &Vector,
    mut f: impl FnMut(&mut [u8], bool) -> Result<(), String>,
) -> Result<(), String> {
    let plain = v.plaintext.bytes();
    if let Some(h) = v.plaintext_sha256
        && hash::sha256(&plain) != h
    {
        return Err("plaintext does not match its plaintext-sha256".into());
    }
    let mut data = plain.clone();
    f(&mut data, true)?;
    compare("ciphertext", &data, &v.expected)?;
    // Decrypt the expected ciphertext when we have it, else our own output
    // (which has just been shown to hash to the expected value).
    if let Expected::Hex(c) = &v.expected {
        data = c.clone();
    }
    f(&mut data, false)?;
    compare("decrypted plaintext", &data, &Expected::Hex(plain))
}

/// Run one vector.
pub fn run_vector(v: &Vector) -> CaseOutcome {
    let r = match &v.kind {
        Kind::Sector {
            spec,
            iv_offset,
            sector_size,
            iv_large_sectors,
            start_sector,
        } => run_sector(
            v,
            spec,
            Geometry {
                sector_size: *sector_size,
                iv_offset: *iv_offset,
                iv_large_sectors: *iv_large_sectors,
            },
            *start_sector,
        ),
        Kind::Cipher { algorithm, iv } => run_cipher(v, algorithm, iv.as_deref()),
        Kind::Passphrase {
            hash,
            key_size,
            source,
            keyfile_size,
            keyfile_offset,
            must_fail,
        } => run_passphrase(
            v,
            hash,
            *key_size,
            source,
            *keyfile_size,
            *keyfile_offset,
            *must_fail,
        ),
        k @ Kind::Kdf { .. } => run_kdf(v, k),
    };
    match r {
        Ok(()) => CaseOutcome::Pass,
        Err(e) => CaseOutcome::Fail(e),
    }
}

/// Run every vector of `f`, adding to `report`.
pub fn run_file(f: &VectorFile, report: &mut Report) {
    for v in &f.vectors {
        report.cases.push(CaseResult {
            file: f.name.clone(),
            id: v.id.clone(),
            label: v.label().to_string(),
            source: v.source.clone(),
            outcome: run_vector(v),
        });
    }
}

/// Run every vector of `files`.
pub fn run_files(files: &[VectorFile]) -> Report {
    let mut r = Report::default();
    for f in files {
        run_file(f, &mut r);
    }
    r
}
