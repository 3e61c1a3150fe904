//! LUKS2 JSON metadata: validated as cryptsetup validates it
//! (`LUKS2_hdr_validate`: requirements, tokens, digests, segments,
//! keyslots, config, areas, JSON size, then each luks2 keyslot), and read
//! into the typed parts dmch uses. The document itself is kept, so tokens
//! and fields dmch does not know survive a rewrite.

use super::kdf::Kdf;
use base64::Engine;
use serde_json::{Map, Value};

/// The metadata sizes LUKS2 allows (binary header plus JSON area), bytes.
pub const METADATA_SIZES: [u64; 9] = [
    0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
];
/// The binary header before the JSON area.
pub const BIN_LEN: u64 = 4096;
/// The largest keyslots area (`LUKS2_MAX_KEYSLOTS_SIZE`, 128 MiB).
pub const MAX_KEYSLOTS_SIZE: u64 = 128 << 20;

type R<T> = Result<T, String>;

fn obj<'a>(v: &'a Value, key: &str, what: &str) -> R<&'a Map<String, Value>> {
    v.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| format!("{what} has no \"{key}\" object"))
}

fn arr<'a>(v: &'a Value, key: &str, what: &str) -> R<&'a Vec<Value>> {
    v.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{what} has no \"{key}\" array"))
}

/// A non-empty string field (`json_contains_string`).
fn string<'a>(v: &'a Value, key: &str, what: &str) -> R<&'a str> {
    match v.get(key).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("{what} has no \"{key}\" string")),
    }
}

/// An integer field (json-c's int type: a JSON number without fraction).
fn int(v: &Value, key: &str, what: &str) -> R<i64> {
    match v.get(key) {
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap()),
        Some(Value::Number(n)) if n.is_u64() => Ok(i64::MAX),
        _ => Err(format!("{what} has no \"{key}\" integer")),
    }
}

/// A uint32 integer field.
fn uint32(v: &Value, key: &str, what: &str) -> R<u32> {
    let n = int(v, key, what)?;
    u32::try_from(n).map_err(|_| format!("{what}: \"{key}\" {n} is not a 32-bit unsigned number"))
}

/// A uint64 written as a decimal string (`numbered` and `strtoull`).
fn u64_string(v: &Value, key: &str, what: &str) -> R<u64> {
    let s = string(v, key, what)?;
    parse_u64(s).ok_or_else(|| format!("{what}: \"{key}\" \"{s}\" is not a 64-bit unsigned number"))
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Object keys must be decimal numbers (`numbered`).
fn numbered<'a>(m: &'a Map<String, Value>, what: &str) -> R<Vec<(&'a str, &'a Value)>> {
    m.iter()
        .map(|(k, v)| {
            if k.bytes().all(|b| b.is_ascii_digit()) {
                Ok((k.as_str(), v))
            } else {
                Err(format!("{what} \"{k}\" is not in numbered form"))
            }
        })
        .collect()
}

/// An array of strings naming objects of `section`.
fn references(v: &Value, key: &str, what: &str, section: &Map<String, Value>) -> R<Vec<String>> {
    arr(v, key, what)?
        .iter()
        .map(|x| match x.as_str() {
            Some(s) if section.get(s).is_some_and(Value::is_object) => Ok(s.to_string()),
            Some(s) => Err(format!("{what} names {key} \"{s}\", which does not exist")),
            None => Err(format!(
                "{what}: \"{key}\" holds a value that is not a string"
            )),
        })
        .collect()
}

fn b64(v: &Value, key: &str, what: &str) -> R<Vec<u8>> {
    let s = string(v, key, what)?;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| format!("{what}: \"{key}\" is not base64"))
}

/// A crypt data segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Its key in `segments`.
    pub id: String,
    /// Start of the data on the device, bytes.
    pub offset: u64,
    /// Length in bytes; `None`: to the end of the device ("dynamic").
    pub size: Option<u64>,
    /// The dm-crypt iv_offset, 512-byte sectors.
    pub iv_tweak: u64,
    /// The dm-crypt cipher spec.
    pub encryption: String,
    /// Encryption sector size, bytes.
    pub sector_size: u32,
}

/// A luks2 key slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyslot {
    /// Its key in `keyslots` (0 to 31).
    pub id: u32,
    /// Bytes of the key it stores (the volume key).
    pub key_size: u32,
    /// 0 ignore, 1 normal, 2 high (absent: normal).
    pub priority: u32,
    /// How the passphrase becomes the area key.
    pub kdf: Kdf,
    /// The KDF salt.
    pub salt: Vec<u8>,
    /// Splitter stripes and hash.
    pub stripes: u32,
    /// The splitter's hash.
    pub af_hash: String,
    /// The area: offset and size (bytes), cipher spec and key size.
    pub area_offset: u64,
    /// Area size in bytes.
    pub area_size: u64,
    /// The area's cipher spec.
    pub area_encryption: String,
    /// The area key's size.
    pub area_key_size: u32,
}

/// A pbkdf2 digest of a volume key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    /// Its key in `digests`.
    pub id: String,
    /// The key slots holding the key it checks.
    pub keyslots: Vec<String>,
    /// The segments that key encrypts.
    pub segments: Vec<String>,
    /// PBKDF2 hash.
    pub hash: String,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Salt.
    pub salt: Vec<u8>,
    /// The expected PBKDF2 output.
    pub digest: Vec<u8>,
}

/// The validated metadata and its typed parts.
#[derive(Clone, Debug)]
pub struct Metadata {
    /// The document, as read (tokens and unknown fields kept).
    pub doc: Value,
    /// JSON area size (`config.json_size`).
    pub json_size: u64,
    /// Keyslots area size (`config.keyslots_size`).
    pub keyslots_size: u64,
    /// Crypt segments, by key order.
    pub segments: Vec<Segment>,
    /// luks2 key slots, by id.
    pub keyslots: Vec<Keyslot>,
    /// Digests.
    pub digests: Vec<Digest>,
    /// Persistent activation flags (`config.flags`).
    pub flags: Vec<String>,
    /// Mandatory requirements (`config.requirements.mandatory`).
    pub requirements: Vec<String>,
}

impl Metadata {
    /// 2 x metadata size + keyslots size: the bytes before any data.
    pub fn hdr_and_areas(&self) -> u64 {
        2 * (self.json_size + BIN_LEN) + self.keyslots_size
    }

    /// Validate `doc` as the JSON of a header whose JSON area is
    /// `area_len` bytes and whose serialised text took `text_len` bytes.
    pub fn validate(doc: Value, area_len: u64, text_len: u64) -> R<Metadata> {
        let top = doc
            .as_object()
            .ok_or("the JSON area does not hold an object")?;
        let _ = top;
        let requirements = requirements(&doc)?;
        tokens(&doc)?;
        let digests = digests(&doc)?;
        let segments = segments(&doc)?;
        keyslots_basic(&doc)?;
        let (json_size, keyslots_size, flags) = config(&doc)?;
        areas(&doc, json_size, keyslots_size)?;
        if json_size != area_len {
            return Err(format!(
                "config json_size {json_size} differs from the binary header's JSON area of {area_len} bytes"
            ));
        }
        if text_len > json_size {
            return Err("the JSON does not fit its area".into());
        }
        let keyslots = keyslots(&doc, &digests)?;
        Ok(Metadata {
            doc,
            json_size,
            keyslots_size,
            segments,
            keyslots,
            digests,
            flags,
            requirements,
        })
    }

    /// The one data segment dmch reads and opens: segment 0 (a volume in
    /// reencryption has more, and is refused).
    pub fn data_segment(&self) -> R<&Segment> {
        match self.segments.as_slice() {
            [s] => Ok(s),
            [] => Err("the metadata has no crypt segment".into()),
            _ => Err(format!(
                "the metadata has {} segments (a reencryption in progress?): not supported",
                self.segments.len()
            )),
        }
    }

    /// The digest of the volume key of segment `seg`.
    pub fn digest_of_segment(&self, seg: &str) -> R<&Digest> {
        self.digests
            .iter()
            .find(|d| d.segments.iter().any(|s| s == seg))
            .ok_or_else(|| format!("no digest checks the key of segment {seg}"))
    }
}

fn requirements(doc: &Value) -> R<Vec<String>> {
    let config = obj(doc, "config", "the JSON area")?;
    let Some(req) = config.get("requirements") else {
        return Ok(Vec::new());
    };
    let req = req
        .as_object()
        .ok_or("config \"requirements\" is not an object")?;
    let Some(m) = req.get("mandatory") else {
        return Ok(Vec::new());
    };
    let m = m
        .as_array()
        .ok_or("requirements \"mandatory\" is not an array")?;
    let list: Vec<String> = m
        .iter()
        .map(|x| {
            x.as_str().map(String::from).ok_or_else(|| {
                "requirements \"mandatory\" holds a value that is not a string".to_string()
            })
        })
        .collect::<R<_>>()?;
    let reencrypt = list
        .iter()
        .filter(|f| {
            *f == "online-reencrypt"
                || f.strip_prefix("online-reencrypt-v")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    if reencrypt > 1 {
        return Err("more than one online-reencrypt requirement".into());
    }
    Ok(list)
}

fn tokens(doc: &Value) -> R<()> {
    let tokens = obj(doc, "tokens", "the JSON area")?;
    let keyslots = obj(doc, "keyslots", "the JSON area")?;
    for (k, t) in numbered(tokens, "token")? {
        let what = format!("token {k}");
        string(t, "type", &what)?;
        references(t, "keyslots", &what, keyslots)?;
    }
    Ok(())
}

fn digests(doc: &Value) -> R<Vec<Digest>> {
    let digests = obj(doc, "digests", "the JSON area")?;
    let keyslots = obj(doc, "keyslots", "the JSON area")?;
    let segments = obj(doc, "segments", "the JSON area")?;
    let mut out = Vec::new();
    for (k, d) in numbered(digests, "digest")? {
        let what = format!("digest {k}");
        let ty = string(d, "type", &what)?;
        let ks = references(d, "keyslots", &what, keyslots)?;
        let ss = references(d, "segments", &what, segments)?;
        // Other digest types are kept but cannot check a key here.
        if ty == "pbkdf2" {
            out.push(Digest {
                id: k.to_string(),
                keyslots: ks,
                segments: ss,
                hash: string(d, "hash", &what)?.to_string(),
                iterations: uint32(d, "iterations", &what)?,
                salt: b64(d, "salt", &what)?,
                digest: b64(d, "digest", &what)?,
            });
        }
    }
    Ok(out)
}

fn segments(doc: &Value) -> R<Vec<Segment>> {
    let segments = obj(doc, "segments", "the JSON area")?;
    let digests = obj(doc, "digests", "the JSON area")?;
    if segments.is_empty() {
        return Err("the segments section is empty".into());
    }
    let mut first_backup: Option<u64> = None;
    let mut crypt = Vec::new();
    let mut regular: Vec<(u64, u64, Option<u64>)> = Vec::new();
    for (k, s) in numbered(segments, "segment")? {
        let what = format!("segment {k}");
        let ty = string(s, "type", &what)?;
        let offset = u64_string(s, "offset", &what)?;
        let size_text = string(s, "size", &what)?;
        let size = if size_text == "dynamic" {
            None
        } else {
            match parse_u64(size_text) {
                Some(n) if n > 0 => Some(n),
                _ => {
                    return Err(format!(
                        "{what}: size \"{size_text}\" is not a positive 64-bit number or \"dynamic\""
                    ));
                }
            }
        };
        if offset % 512 != 0 || size.is_some_and(|n| n % 512 != 0) {
            return Err(format!("{what}: offset and size must be multiples of 512"));
        }
        let mut backup = false;
        if let Some(f) = s.get("flags") {
            let f = f
                .as_array()
                .ok_or_else(|| format!("{what}: flags is not an array"))?;
            for x in f {
                let x = x
                    .as_str()
                    .ok_or_else(|| format!("{what}: flags holds a value that is not a string"))?;
                backup |= x.starts_with("backup-");
            }
        }
        let n: u64 = k.parse().unwrap_or(u64::MAX);
        if backup {
            first_backup = Some(first_backup.map_or(n, |b| b.min(n)));
        } else if first_backup.is_some_and(|b| n >= b) {
            return Err(format!(
                "{what} is a regular segment behind a backup segment"
            ));
        }
        if ty == "crypt" {
            let iv = string(s, "iv_tweak", &what)?;
            let encryption = string(s, "encryption", &what)?;
            let ss = uint32(s, "sector_size", &what)?;
            if ss == 0 || ss % 512 != 0 {
                return Err(format!(
                    "{what}: sector_size {ss} is not a positive multiple of 512"
                ));
            }
            let iv_tweak = parse_u64(iv).ok_or_else(|| {
                format!("{what}: iv_tweak \"{iv}\" is not a 64-bit unsigned number")
            })?;
            if size.is_some_and(|n| n % u64::from(ss) != 0) {
                return Err(format!(
                    "{what}: size is not a multiple of the sector size {ss}"
                ));
            }
            let assigned = digests.values().any(|d| {
                d.get("segments")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(k)))
            });
            if !assigned {
                return Err(format!("crypt {what} is not assigned to a key digest"));
            }
            if !backup {
                crypt.push(Segment {
                    id: k.to_string(),
                    offset,
                    size,
                    iv_tweak,
                    encryption: encryption.to_string(),
                    sector_size: ss,
                });
            }
        }
        if !backup {
            regular.push((n, offset, size));
        }
    }
    let count = segments.len() as u64;
    if first_backup == Some(0) {
        return Err("no regular segment".into());
    }
    if first_backup.is_some_and(|b| b >= count) {
        return Err("a gap between the regular and the backup segments".into());
    }
    let nregular = first_backup.unwrap_or(count);
    regular.sort();
    for i in 0..nregular {
        if !segments.contains_key(&i.to_string()) {
            return Err(format!("a gap at key {i} of the segments"));
        }
    }
    // Only the last regular segment may be dynamic; none may overlap.
    for (i, (_, off, size)) in regular.iter().enumerate() {
        if size.is_none() && i + 1 != regular.len() {
            return Err("only the last regular segment may have a dynamic size".into());
        }
        for (j, (_, o2, s2)) in regular.iter().enumerate() {
            if i != j && *off >= *o2 && s2.is_none_or(|n| *off < o2.saturating_add(n)) {
                return Err(format!("segments at {o2} and {off} overlap"));
            }
        }
    }
    for i in nregular..count {
        if !segments.contains_key(&i.to_string()) {
            return Err(format!("a gap at key {i} of the segments"));
        }
    }
    Ok(crypt)
}

fn keyslots_basic(doc: &Value) -> R<()> {
    let keyslots = obj(doc, "keyslots", "the JSON area")?;
    for (k, v) in numbered(keyslots, "keyslot")? {
        let what = format!("keyslot {k}");
        string(v, "type", &what)?;
        uint32(v, "key_size", &what)?;
    }
    Ok(())
}

fn config(doc: &Value) -> R<(u64, u64, Vec<String>)> {
    let c = doc
        .get("config")
        .ok_or("the JSON area has no \"config\" object")?;
    if !c.is_object() {
        return Err("the JSON area has no \"config\" object".into());
    }
    let json_size = u64_string(c, "json_size", "config")?;
    let keyslots_size = u64_string(c, "keyslots_size", "config")?;
    let metadata = json_size
        .checked_add(BIN_LEN)
        .ok_or("config json_size is absurd")?;
    if !METADATA_SIZES.contains(&metadata) {
        return Err(format!(
            "a metadata size of {metadata} bytes (json_size {json_size} + 4096) is not one LUKS2 allows"
        ));
    }
    if keyslots_size % 4096 != 0 || keyslots_size > MAX_KEYSLOTS_SIZE {
        return Err(format!(
            "keyslots_size {keyslots_size} is not a multiple of 4096 up to 128 MiB"
        ));
    }
    let segments = obj(doc, "segments", "the JSON area")?;
    let first = segments
        .values()
        .filter_map(|s| s.get("offset").and_then(Value::as_str).and_then(parse_u64))
        .min()
        .unwrap_or(0);
    if first != 0 && (first < keyslots_size || first - keyslots_size < 2 * metadata) {
        return Err(format!(
            "keyslots_size {keyslots_size} does not fit between the headers ({} bytes) and the data at {first}",
            2 * metadata
        ));
    }
    let mut flags = Vec::new();
    if let Some(f) = c.get("flags") {
        let f = f.as_array().ok_or("config flags is not an array")?;
        for x in f {
            flags.push(
                x.as_str()
                    .ok_or("config flags holds a value that is not a string")?
                    .to_string(),
            );
        }
    }
    Ok((json_size, keyslots_size, flags))
}

fn areas(doc: &Value, json_size: u64, keyslots_size: u64) -> R<()> {
    let keyslots = obj(doc, "keyslots", "the JSON area")?;
    let metadata = json_size + BIN_LEN;
    let end = 2 * metadata + keyslots_size;
    let mut iv = Vec::new();
    for (k, v) in keyslots {
        let what = format!("keyslot {k}");
        let area = v
            .get("area")
            .filter(|a| a.is_object())
            .ok_or_else(|| format!("{what} has no \"area\" object"))?;
        string(area, "type", &format!("{what} area"))?;
        let o = u64_string(area, "offset", &format!("{what} area"))?;
        let n = u64_string(area, "size", &format!("{what} area"))?;
        iv.push((k.clone(), o, n));
    }
    for (k, o, n) in &iv {
        if *o < 2 * metadata {
            return Err(format!(
                "keyslot {k}'s area at {o} is inside the LUKS2 headers"
            ));
        }
        if *n == 0 {
            return Err(format!("keyslot {k}'s area is empty"));
        }
        let e = o
            .checked_add(*n)
            .ok_or_else(|| format!("keyslot {k}'s area overflows"))?;
        if e > end {
            return Err(format!(
                "keyslot {k}'s area [{o}, {e}) runs past the keyslots area (ends at {end})"
            ));
        }
        for (k2, o2, n2) in &iv {
            if k2 != k && *o >= *o2 && *o < o2.saturating_add(*n2) {
                return Err(format!("the areas of keyslots {k2} and {k} overlap"));
            }
        }
    }
    Ok(())
}

fn kdf(v: &Value, what: &str) -> R<(Kdf, Vec<u8>)> {
    let k = v
        .get("kdf")
        .filter(|k| k.is_object())
        .ok_or_else(|| format!("{what} has no \"kdf\" object"))?;
    let what = format!("{what} kdf");
    let ty = string(k, "type", &what)?;
    // Other fields (the other KDF's leftovers, which cryptsetup's repair
    // drops, or unknown ones, which cryptsetup 2.6 keeps) are ignored.
    let salt = b64(k, "salt", &what)?;
    let kdf = match ty {
        "pbkdf2" => Kdf::Pbkdf2 {
            hash: string(k, "hash", &what)?.to_string(),
            iterations: uint32(k, "iterations", &what)?,
        },
        "argon2i" | "argon2id" => Kdf::Argon2 {
            id: ty == "argon2id",
            time: uint32(k, "time", &what)?,
            memory_kib: uint32(k, "memory", &what)?,
            cpus: uint32(k, "cpus", &what)?,
        },
        other => {
            return Err(format!(
                "{what}: type \"{other}\" is not pbkdf2, argon2i or argon2id"
            ));
        }
    };
    Ok((kdf, salt))
}

fn keyslots(doc: &Value, digests: &[Digest]) -> R<Vec<Keyslot>> {
    let keyslots = obj(doc, "keyslots", "the JSON area")?;
    let all_digests = obj(doc, "digests", "the JSON area")?;
    let mut out = Vec::new();
    for (k, v) in keyslots {
        let what = format!("keyslot {k}");
        if string(v, "type", &what)? != "luks2" {
            // Other types (reencrypt) are kept; dmch opens luks2 slots only.
            continue;
        }
        let (kdf, salt) = kdf(v, &what)?;
        let af = v
            .get("af")
            .filter(|a| a.is_object())
            .ok_or_else(|| format!("{what} has no \"af\" object"))?;
        let aw = format!("{what} af");
        if string(af, "type", &aw)? != "luks1" {
            return Err(format!("{aw}: type is not luks1"));
        }
        let area = &v["area"];
        let arw = format!("{what} area");
        if string(area, "type", &arw)? != "raw" {
            return Err(format!("{arw}: type is not raw"));
        }
        let n = all_digests
            .values()
            .filter(|d| {
                d.get("keyslots")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(k)))
            })
            .count();
        if n != 1 {
            return Err(format!("{what} is assigned to {n} digests, not exactly 1"));
        }
        let _ = digests;
        let id: u32 = k
            .parse()
            .map_err(|_| format!("{what}: not a key slot number"))?;
        let priority = match v.get("priority") {
            None => 1,
            Some(_) => uint32(v, "priority", &what)?,
        };
        out.push(Keyslot {
            id,
            key_size: uint32(v, "key_size", &what)?,
            priority,
            kdf,
            salt,
            stripes: uint32(af, "stripes", &aw)?,
            af_hash: string(af, "hash", &aw)?.to_string(),
            area_offset: u64_string(area, "offset", &arw)?,
            area_size: u64_string(area, "size", &arw)?,
            area_encryption: string(area, "encryption", &arw)?.to_string(),
            area_key_size: uint32(area, "key_size", &arw)?,
        });
    }
    out.sort_by_key(|k| k.id);
    Ok(out)
}
