//! The anti-forensic splitter of the LUKS1 on-disk format (section 2.4):
//! a key of n bytes is stored as `stripes` blocks of n bytes, all but the
//! last random, the last the key XORed with the diffusion of the others, so
//! that a few lost sectors lose the key. Diffusion hashes each digest-sized
//! chunk with its big-endian 32-bit index in front (a short last chunk
//! keeps that many bytes of its hash).

use super::kdf::LuksHash;
use zeroize::Zeroizing;

fn diffuse(buf: &mut [u8], h: &LuksHash) {
    for (i, chunk) in buf.chunks_mut(h.size).enumerate() {
        let d = Zeroizing::new(h.digest(&[&(i as u32).to_be_bytes(), chunk]));
        let n = chunk.len();
        chunk.copy_from_slice(&d[..n]);
    }
}

/// The key back from its `stripes` blocks (`material` holds at least
/// `key_len * stripes` bytes).
pub fn merge(material: &[u8], key_len: usize, stripes: usize, h: &LuksHash) -> Zeroizing<Vec<u8>> {
    let mut buf = Zeroizing::new(vec![0u8; key_len]);
    let blocks: Vec<&[u8]> = material.chunks_exact(key_len).take(stripes).collect();
    for b in &blocks[..stripes - 1] {
        for (x, y) in buf.iter_mut().zip(b.iter()) {
            *x ^= y;
        }
        diffuse(&mut buf, h);
    }
    for (x, y) in buf.iter_mut().zip(blocks[stripes - 1]) {
        *x ^= y;
    }
    buf
}

/// `key` split into `stripes` blocks, the first `stripes - 1` random.
pub fn split(key: &[u8], stripes: usize, h: &LuksHash) -> Result<Zeroizing<Vec<u8>>, String> {
    let n = key.len();
    let mut out = Zeroizing::new(vec![0u8; n * stripes]);
    getrandom::fill(&mut out[..n * (stripes - 1)])
        .map_err(|e| format!("no random bytes for the splitter: {e}"))?;
    let mut buf = Zeroizing::new(vec![0u8; n]);
    for b in out[..n * (stripes - 1)].chunks_exact(n) {
        for (x, y) in buf.iter_mut().zip(b) {
            *x ^= y;
        }
        diffuse(&mut buf, h);
    }
    for ((o, x), k) in out[n * (stripes - 1)..].iter_mut().zip(buf.iter()).zip(key) {
        *o = x ^ k;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::luks::kdf::hash;

    #[test]
    fn split_then_merge_gives_the_key_and_every_stripe_matters() {
        for h in ["sha1", "sha256", "sha512", "ripemd160", "whirlpool"] {
            let h = hash(h).unwrap();
            for n in [16usize, 32, 33, 64] {
                let key: Vec<u8> = (0..n as u8).collect();
                let s = split(&key, 40, h).unwrap();
                assert_eq!(&merge(&s, n, 40, h)[..], &key[..], "{} {n}", h.name);
                let mut broken = s.to_vec();
                broken[3] ^= 1;
                assert_ne!(&merge(&broken, n, 40, h)[..], &key[..]);
            }
        }
    }

    /// One stripe is the key itself; two are r and key ^ diffuse(r), with
    /// diffusion hashing be32(i) || chunk, a short chunk cut to its length.
    #[test]
    fn diffusion_follows_the_luks1_specification() {
        let h = hash("sha1").unwrap();
        let key = [7u8; 24];
        assert_eq!(&merge(&key, 24, 1, h)[..], &key);
        let r: Vec<u8> = (0..24).collect();
        let mut want = Vec::new();
        want.extend_from_slice(&h.digest(&[&0u32.to_be_bytes(), &r[..20]]));
        want.extend_from_slice(&h.digest(&[&1u32.to_be_bytes(), &r[20..]])[..4]);
        let mut material = r.clone();
        material.extend(want.iter().zip(key).map(|(a, b)| a ^ b));
        assert_eq!(&merge(&material, 24, 2, h)[..], &key);
    }
}
