//! The kernel-check matrix: every spec the reference supports, over key
//! sizes, sector sizes (with and without iv_large_sectors), iv_offsets
//! (zero, odd, near the 32-bit wrap), device offsets and key counts, plus
//! tables the kernel must refuse. Deterministic, so `--shard K/N` splits it
//! the same way on every runner.

use super::Case;
use crate::cipher;
use crate::hash::sha256;

/// A key of `len` bytes derived from the case id (stable across runs).
fn key_for(id: &str, len: usize) -> String {
    if len == 0 {
        return "-".into();
    }
    let mut out = Vec::with_capacity(len + 32);
    let mut i = 0u32;
    while out.len() < len {
        out.extend_from_slice(&sha256(format!("{id}/{i}").as_bytes()));
        i += 1;
    }
    out.truncate(len);
    hex::encode(out)
}

struct Builder(Vec<Case>);

impl Builder {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        cipher: &str,
        key_len: usize,
        ss: u32,
        large: bool,
        iv_offset: u64,
        offset: u64,
    ) {
        let id = format!(
            "{cipher}/k{key_len}/s{ss}{}/iv{iv_offset}/o{offset}",
            if large { "L" } else { "" }
        );
        let key_hex = key_for(&id, key_len);
        self.push(id, cipher, key_hex, ss, large, iv_offset, offset);
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        id: String,
        cipher: &str,
        key_hex: String,
        ss: u32,
        large: bool,
        iv_offset: u64,
        offset: u64,
    ) {
        if self.0.iter().any(|c| c.id == id) {
            return;
        }
        self.0.push(Case {
            id,
            cipher: cipher.into(),
            key_hex,
            iv_offset,
            sector_size: ss,
            iv_large_sectors: large,
            offset,
            len: 4 * ss as usize,
            ..Case::default()
        });
    }

    fn basic(&mut self, cipher: &str, key_len: usize) {
        self.add(cipher, key_len, 512, false, 0, 0);
    }
}

const WRAP: u64 = (1 << 32) - 8;

/// The whole matrix.
pub fn cases() -> Vec<Case> {
    let mut b = Builder(Vec::new());
    let ivs = ["null", "plain", "plain64", "plain64be", "benbi", "eboiv"];
    for name in cipher::names().filter(|n| *n != "cipher_null") {
        let info = cipher::lookup(name).unwrap();
        let lens: Vec<usize> = (1..=64).filter(|&n| info.accepts_key_len(n)).collect();
        let (min, max) = (lens[0], *lens.last().unwrap());
        for klen in [min, max] {
            b.basic(&format!("{name}-ecb"), klen);
            for iv in ivs {
                b.basic(&format!("{name}-cbc-{iv}"), klen);
            }
            for h in ["sha256", "md5", "sha1", "rmd160"] {
                b.basic(&format!("{name}-cbc-essiv:{h}"), klen);
            }
            for chain in ["pcbc", "ctr", "cfb", "ofb"] {
                b.basic(&format!("{name}-{chain}-plain64"), klen);
            }
            if info.block_size == 16 {
                for iv in ivs {
                    b.basic(&format!("{name}-xts-{iv}"), 2 * klen);
                    b.basic(&format!("{name}-lrw-{iv}"), klen + 16);
                }
                b.basic(&format!("{name}-xts-essiv:sha256"), 2 * klen);
            }
        }
        if info.block_size == 16 && info.accepts_key_len(32) {
            for stream in ["xchacha12", "xchacha20"] {
                b.basic(&format!("{stream},{name}-adiantum-plain64"), 32);
            }
        }
    }
    // Geometry: sector sizes, large IVs, odd and wrapping iv_offsets, device offsets.
    for (spec, klen) in [
        ("aes-xts-plain64", 64),
        ("aes-cbc-essiv:sha256", 32),
        ("serpent-cbc-plain", 32),
        ("twofish-xts-benbi", 32),
        ("aes-cbc-eboiv", 16),
        ("aes-cbc-plain64be", 24),
        ("xchacha12,aes-adiantum-plain64", 32),
        ("aes-cbc-elephant", 32),
    ] {
        for ss in [512u32, 1024, 2048, 4096] {
            let step = u64::from(ss / 512);
            for large in [false, true] {
                b.add(spec, klen, ss, large, 0, 0);
                b.add(spec, klen, ss, large, WRAP, 3);
            }
            b.add(spec, klen, ss, false, 7 * step, 0);
        }
    }
    // Sectors on both sides of the 2^32 wrap (plain keeps the low 32 bits,
    // the others carry on) and of the 2^64 wrap.
    for (spec, klen) in [
        ("aes-cbc-plain", 16),
        ("aes-cbc-plain64", 16),
        ("aes-xts-plain", 32),
        ("aes-xts-plain64", 32),
        ("aes-cbc-plain64be", 16),
        ("aes-cbc-essiv:sha256", 16),
        ("aes-lrw-benbi", 32),
        ("aes-cbc-eboiv", 16),
        ("aes-cbc-lmk", 16),
        ("aes-cbc-tcw", 48),
        ("aes-cbc-elephant", 32),
        ("xchacha12,aes-adiantum-plain64", 32),
    ] {
        b.add(spec, klen, 512, false, (1 << 32) - 2, 0);
        b.add(spec, klen, 512, false, u64::MAX - 1, 0);
    }
    for ss in [2048u32, 4096] {
        let step = u64::from(ss / 512);
        b.add("aes-xts-plain64", 64, ss, false, WRAP, 3 * step);
        b.add("aes-cbc-plain", 32, ss, false, WRAP, 3 * step);
    }
    // Key counts.
    for (spec, klen) in [
        ("aes:2-cbc-plain64", 32),
        ("aes:4-cbc-essiv:sha256", 64),
        ("aes:4-xts-plain64", 128),
        ("serpent:2-cbc-benbi", 64),
        ("aes:2-cbc-plain64", 33),
    ] {
        b.add(spec, klen, 512, false, 1, 0);
        b.add(spec, klen, 4096, true, 8, 0);
    }
    // Compatibility modes.
    for (spec, klen) in [
        ("aes-cbc-lmk", 16),
        ("aes:64-cbc-lmk", 64 * 16),
        ("aes:64-cbc-lmk", 65 * 16),
        ("aes:64-cbc-lmk", 65 * 32),
        ("capi:cbc(aes)-lmk", 65 * 32),
        ("twofish:64-cbc-lmk", 64 * 32),
        // v3 with parts under 16 bytes: the kernel accepts them but copies
        // the seed from past the part (crypt_iv_lmk_init), so the expected
        // verdict is a fault or an undefined result, never a ciphertext.
        ("des:64-cbc-lmk", 65 * 8),
        ("cast5:64-cbc-lmk", 65 * 10),
        ("aes-cbc-tcw", 32 + 32),
        ("aes-cbc-tcw", 16 + 32),
        ("serpent-cbc-tcw", 32 + 32),
        ("twofish-cbc-tcw", 32 + 32),
        ("des3_ede-cbc-tcw", 24 + 8 + 16),
        ("aes-cbc-elephant", 64),
    ] {
        b.add(spec, klen, 512, false, 0, 0);
        b.add(spec, klen, 512, false, WRAP, 1);
    }
    b.add("aes-cbc-elephant", 64, 4096, false, 8, 0);
    // lmk over chain modes other than cbc: the kernel does not refuse them,
    // and reads with a zero IV plus lmk's fix-up of the first block, which
    // only undoes the write for cbc. The reference must do the same.
    for (spec, klen) in [
        ("aes-xts-lmk", 32),
        ("aes:64-xts-lmk", 64 * 32),
        ("serpent-xts-lmk", 64),
        ("aes-ctr-lmk", 16),
        ("aes-pcbc-lmk", 16),
        ("aes-ecb-lmk", 16),
    ] {
        b.add(spec, klen, 512, false, 0, 0);
        b.add(spec, klen, 512, false, 5, 0);
    }
    // Other spellings and corners the kernel decides.
    for (spec, key) in [
        ("capi:cbc(aes)-essiv:sha256", key_for("c1", 16)),
        ("capi:xts(aes)-plain64", key_for("c2", 32)),
        ("capi:ecb(twofish)-null", key_for("c3", 16)),
        ("capi:cbc(aes-generic)-plain64", key_for("c4", 16)),
        ("capi:adiantum(xchacha20,aes)-plain64", key_for("c5", 32)),
        ("aes", key_for("c6", 32)),
        ("aes-plain", key_for("c7", 32)),
        ("aes-ecb-plain64", key_for("c8", 16)),
        ("aes-cbc-plain64:ignored", key_for("c9", 16)),
        ("aes-xts-plain64", "00".repeat(64)),
        ("des-cbc-plain", "0101010101010101".into()),
        ("des3_ede-cbc-plain", "0123456789abcdef".repeat(3)),
        ("serpent-cbc-plain64", "-".into()),
        ("cipher_null-ecb", "-".into()),
        ("blowfish-cbc-essiv:wp512", key_for("c10", 16)),
        ("blowfish-cbc-essiv:sha3-256", key_for("c11", 16)),
        // Refused by the kernel (and so by the reference).
        ("aes-cbc-essiv:sha512", key_for("r1", 16)),
        ("des3_ede-cbc-essiv:sha256", key_for("r2", 24)),
        ("blowfish-cbc-essiv:ripemd160", key_for("r3", 16)),
        ("cast5-cbc-essiv:sha1", key_for("r4", 16)),
        ("aes-ecb-essiv:sha256", key_for("r5", 16)),
        ("aes:3-cbc-plain", key_for("r6", 48)),
        ("aes-cbc", key_for("r7", 16)),
        ("aes-xts-plain64", key_for("r8", 16)),
        ("aes-cbc-plain64", key_for("r9", 20)),
        ("aes-cbc-bogus", key_for("r10", 16)),
        ("rot13-cbc-plain", key_for("r11", 16)),
        ("aes-ctr-benbi", key_for("r12", 16)),
        ("aes-ctr-eboiv", key_for("r16", 16)),
        ("aes-ctr-essiv:sha256", key_for("r17", 16)),
        ("des-xts-plain64", key_for("r13", 16)),
        ("xchacha12,aes-adiantum-essiv:sha256", key_for("r14", 32)),
        ("aes-cbc-tcw", key_for("r15", 32)),
    ] {
        b.push(
            format!(
                "{spec}/{}",
                &sha256(key.as_bytes())[..4]
                    .iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<String>()
            ),
            spec,
            key,
            512,
            false,
            0,
            0,
        );
    }
    // Refused geometry.
    b.add("aes:64-cbc-lmk", 65 * 16, 4096, false, 0, 0);
    b.add("aes-cbc-tcw", 64, 1024, false, 0, 0);
    b.add("aes-xts-plain64", 64, 4096, false, 3, 0);
    b.0
}

/// Cases of shard `k` of `n` (1-based), round robin over the matrix.
pub fn shard(cases: Vec<Case>, k: usize, n: usize) -> Vec<Case> {
    cases
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % n == k - 1)
        .map(|(_, c)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_is_large_unique_and_stable() {
        let a = cases();
        let b = cases();
        assert_eq!(a, b);
        assert!(a.len() > 300, "{} cases", a.len());
        let mut ids: Vec<_> = a.iter().map(|c| &c.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), a.len());
        assert!(
            a.iter().any(|c| c.reference().is_err()),
            "no refused tables"
        );
        let s: usize = (1..=3).map(|k| shard(a.clone(), k, 3).len()).sum();
        assert_eq!(s, a.len());
    }

    #[test]
    fn cases_survive_the_guest_file_format() {
        for c in cases() {
            assert_eq!(Case::from_line(&c.to_line()).as_ref(), Some(&c));
        }
    }
}
