//! `dmch luks dump`: a header in the spirit of `cryptsetup luksDump`, as
//! text or JSON (LUKS2: the metadata document itself, with the binary
//! header's fields). Never a key: that is `--dump-volume-key`'s, asked.

use super::kdf::Kdf;
use super::{Header, luks1};
use serde_json::{Value, json};
use std::fmt::Write;

fn hex_lines(b: &[u8], indent: &str) -> String {
    let mut out = String::new();
    for (i, chunk) in b.chunks(16).enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(indent);
        }
        let words: Vec<String> = chunk.iter().map(|x| format!("{x:02x}")).collect();
        out.push_str(&words.join(" "));
    }
    out
}

fn kdf_lines(k: &Kdf, out: &mut String) {
    match k {
        Kdf::Pbkdf2 { hash, iterations } => {
            let _ = writeln!(out, "\tPBKDF:      pbkdf2");
            let _ = writeln!(out, "\tHash:       {hash}");
            let _ = writeln!(out, "\tIterations: {iterations}");
        }
        Kdf::Argon2 {
            time,
            memory_kib,
            cpus,
            ..
        } => {
            let _ = writeln!(out, "\tPBKDF:      {}", k.type_name());
            let _ = writeln!(out, "\tTime cost:  {time}");
            let _ = writeln!(out, "\tMemory:     {memory_kib}");
            let _ = writeln!(out, "\tThreads:    {cpus}");
        }
    }
}

/// The header as text, `image` naming it.
pub fn text(h: &Header, image: &str, len: u64) -> String {
    let mut o = String::new();
    match h {
        Header::V1(h) => {
            let _ = writeln!(o, "LUKS header information for {image}\n");
            let _ = writeln!(o, "Version:       \t1");
            let _ = writeln!(o, "Cipher name:   \t{}", h.cipher_name);
            let _ = writeln!(o, "Cipher mode:   \t{}", h.cipher_mode);
            let _ = writeln!(o, "Hash spec:     \t{}", h.hash);
            let _ = writeln!(o, "Payload offset:\t{}", h.payload_offset);
            let _ = writeln!(o, "MK bits:       \t{}", h.key_bytes * 8);
            let _ = writeln!(
                o,
                "MK digest:     \t{}",
                hex_lines(&h.mk_digest, "               \t")
            );
            let _ = writeln!(
                o,
                "MK salt:       \t{}",
                hex_lines(&h.mk_digest_salt, "               \t")
            );
            let _ = writeln!(o, "MK iterations: \t{}", h.mk_digest_iter);
            let _ = writeln!(o, "UUID:          \t{}\n", h.uuid);
            for (i, s) in h.slots.iter().enumerate() {
                if s.active() {
                    let _ = writeln!(o, "Key Slot {i}: ENABLED");
                    let _ = writeln!(o, "\tIterations:         \t{}", s.iterations);
                    let _ = writeln!(
                        o,
                        "\tSalt:               \t{}",
                        hex_lines(&s.salt, "\t                   \t")
                    );
                    let _ = writeln!(o, "\tKey material offset:\t{}", s.offset);
                    let _ = writeln!(o, "\tAF stripes:         \t{}", s.stripes);
                } else {
                    let _ = writeln!(o, "Key Slot {i}: DISABLED");
                }
            }
        }
        Header::V2(h) => {
            let m = &h.meta;
            let _ = writeln!(o, "LUKS header information");
            let _ = writeln!(o, "Version:       \t2");
            let _ = writeln!(o, "Epoch:         \t{}", h.bin.seqid);
            let _ = writeln!(
                o,
                "Metadata area: \t{} [bytes]",
                m.json_size + super::metadata::BIN_LEN
            );
            let _ = writeln!(o, "Keyslots area: \t{} [bytes]", m.keyslots_size);
            let _ = writeln!(o, "UUID:          \t{}", h.bin.uuid);
            let show = |s: &str| {
                if s.is_empty() {
                    "(no label)".to_string()
                } else {
                    s.to_string()
                }
            };
            let _ = writeln!(o, "Label:         \t{}", show(&h.bin.label));
            let sub = if h.bin.subsystem.is_empty() {
                "(no subsystem)".to_string()
            } else {
                h.bin.subsystem.clone()
            };
            let _ = writeln!(o, "Subsystem:     \t{sub}");
            let flags = if m.flags.is_empty() {
                "(no flags)".to_string()
            } else {
                m.flags.join(" ")
            };
            let _ = writeln!(o, "Flags:       \t{flags}");
            if !m.requirements.is_empty() {
                let _ = writeln!(o, "Requirements:\t{}", m.requirements.join(" "));
            }
            if let Some(d) = &h.damaged {
                let _ = writeln!(o, "Warning:       \t{d}; the other copy was used");
            }
            let _ = writeln!(o, "\nData segments:");
            for s in &m.segments {
                let _ = writeln!(o, "  {}: crypt", s.id);
                let _ = writeln!(o, "\toffset: {} [bytes]", s.offset);
                match s.size {
                    Some(n) => {
                        let _ = writeln!(o, "\tlength: {n} [bytes]");
                    }
                    None => {
                        let _ = writeln!(
                            o,
                            "\tlength: (whole device: {} bytes here)",
                            len.saturating_sub(s.offset)
                        );
                    }
                }
                let _ = writeln!(o, "\tcipher: {}", s.encryption);
                let _ = writeln!(o, "\tsector: {} [bytes]", s.sector_size);
                if s.iv_tweak != 0 {
                    let _ = writeln!(o, "\tIV tweak: {}", s.iv_tweak);
                }
            }
            let _ = writeln!(o, "\nKeyslots:");
            for k in &m.keyslots {
                let _ = writeln!(o, "  {}: luks2", k.id);
                let _ = writeln!(o, "\tKey:        {} bits", k.key_size * 8);
                let p = match k.priority {
                    0 => "ignored",
                    2 => "high",
                    _ => "normal",
                };
                let _ = writeln!(o, "\tPriority:   {p}");
                let _ = writeln!(o, "\tCipher:     {}", k.area_encryption);
                let _ = writeln!(o, "\tCipher key: {} bits", k.area_key_size * 8);
                kdf_lines(&k.kdf, &mut o);
                let _ = writeln!(o, "\tSalt:       {}", hex_lines(&k.salt, "\t            "));
                let _ = writeln!(o, "\tAF stripes: {}", k.stripes);
                let _ = writeln!(o, "\tAF hash:    {}", k.af_hash);
                let _ = writeln!(o, "\tArea offset:{} [bytes]", k.area_offset);
                let _ = writeln!(o, "\tArea length:{} [bytes]", k.area_size);
                if let Some(d) = m
                    .digests
                    .iter()
                    .find(|d| d.keyslots.contains(&k.id.to_string()))
                {
                    let _ = writeln!(o, "\tDigest ID:  {}", d.id);
                }
            }
            let tokens = m.doc["tokens"].as_object().map_or(0, |t| t.len());
            let _ = writeln!(o, "Tokens:");
            if tokens > 0 {
                for (id, t) in m.doc["tokens"].as_object().unwrap() {
                    let _ = writeln!(o, "  {id}: {}", t["type"].as_str().unwrap_or("?"));
                }
            }
            let _ = writeln!(o, "Digests:");
            for d in &m.digests {
                let _ = writeln!(o, "  {}: pbkdf2", d.id);
                let _ = writeln!(o, "\tHash:       {}", d.hash);
                let _ = writeln!(o, "\tIterations: {}", d.iterations);
                let _ = writeln!(o, "\tSalt:       {}", hex_lines(&d.salt, "\t            "));
                let _ = writeln!(
                    o,
                    "\tDigest:     {}",
                    hex_lines(&d.digest, "\t            ")
                );
            }
        }
    }
    o
}

/// The header as JSON.
pub fn json(h: &Header) -> Value {
    match h {
        Header::V1(h) => {
            let slots: Vec<Value> = h
                .slots
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    json!({
                        "slot": i, "active": s.active(), "iterations": s.iterations,
                        "salt": hex::encode(s.salt), "key_material_offset": s.offset,
                        "stripes": s.stripes,
                    })
                })
                .collect();
            json!({
                "version": 1, "uuid": h.uuid, "cipher_name": h.cipher_name,
                "cipher_mode": h.cipher_mode, "hash": h.hash,
                "payload_offset": h.payload_offset, "key_bytes": h.key_bytes,
                "mk_digest": hex::encode(h.mk_digest), "mk_digest_salt": hex::encode(h.mk_digest_salt),
                "mk_digest_iterations": h.mk_digest_iter, "key_slots": slots,
                "slots_total": luks1::SLOTS,
            })
        }
        Header::V2(h) => json!({
            "version": 2, "uuid": h.bin.uuid, "label": h.bin.label,
            "subsystem": h.bin.subsystem, "seqid": h.bin.seqid,
            "hdr_size": h.bin.hdr_size, "checksum_alg": h.bin.checksum_alg,
            "damaged": h.damaged, "metadata": h.meta.doc,
        }),
    }
}
