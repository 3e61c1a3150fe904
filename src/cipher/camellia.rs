//! Camellia (RFC 3713), table-driven and four blocks interleaved.
//!
//! The F-function's S-boxes and its linear P-function fold into eight
//! 256-entry tables of 64-bit words (one per input byte), so a round is
//! eight lookups and XORs; independent blocks run side by side because one
//! block's rounds form a serial chain. The `camellia` crate computes P per
//! block and goes block by block; it stays the peer the tests compare
//! against.

use super::BlockCipher;
use zeroize::Zeroizing;

/// SBOX1 of RFC 3713, section 2.4.4 (the other three derive from it).
const SBOX1: [u8; 256] = [
    112, 130, 44, 236, 179, 39, 192, 229, 228, 133, 87, 53, 234, 12, 174, 65, 35, 239, 107, 147,
    69, 25, 165, 33, 237, 14, 79, 78, 29, 101, 146, 189, 134, 184, 175, 143, 124, 235, 31, 206, 62,
    48, 220, 95, 94, 197, 11, 26, 166, 225, 57, 202, 213, 71, 93, 61, 217, 1, 90, 214, 81, 86, 108,
    77, 139, 13, 154, 102, 251, 204, 176, 45, 116, 18, 43, 32, 240, 177, 132, 153, 223, 76, 203,
    194, 52, 126, 118, 5, 109, 183, 169, 49, 209, 23, 4, 215, 20, 88, 58, 97, 222, 27, 17, 28, 50,
    15, 156, 22, 83, 24, 242, 34, 254, 68, 207, 178, 195, 181, 122, 145, 36, 8, 232, 168, 96, 252,
    105, 80, 170, 208, 160, 125, 161, 137, 98, 151, 84, 91, 30, 149, 224, 255, 100, 210, 16, 196,
    0, 72, 163, 247, 117, 219, 138, 3, 230, 218, 9, 63, 221, 148, 135, 92, 131, 2, 205, 74, 144,
    51, 115, 103, 246, 243, 157, 127, 191, 226, 82, 155, 216, 38, 200, 55, 198, 59, 129, 150, 111,
    75, 19, 190, 99, 46, 233, 121, 167, 140, 159, 110, 188, 142, 41, 245, 249, 182, 47, 253, 180,
    89, 120, 152, 6, 106, 231, 70, 113, 186, 212, 37, 171, 66, 136, 162, 141, 250, 114, 7, 185, 85,
    248, 238, 172, 10, 54, 73, 42, 104, 60, 56, 241, 164, 64, 40, 211, 123, 187, 201, 67, 193, 21,
    227, 173, 244, 119, 199, 128, 158,
];

const SIGMA: [u64; 6] = [
    0xa09e_667f_3bcc_908b,
    0xb67a_e858_4caa_73b2,
    0xc6ef_372f_e94f_82be,
    0x54ff_53a5_f1d3_6f1c,
    0x10e5_27fa_de68_2d1d,
    0xb056_88c2_b3e6_c1fd,
];

/// Which S-box (1-4) each input byte t1..t8 of F goes through.
const SBOX_OF_BYTE: [u8; 8] = [1, 2, 3, 4, 2, 3, 4, 1];

/// P-function: output byte y_k is the XOR of these input bytes (1-based).
const P: [&[usize]; 8] = [
    &[1, 3, 4, 6, 7, 8],
    &[1, 2, 4, 5, 7, 8],
    &[1, 2, 3, 5, 6, 8],
    &[2, 3, 4, 5, 6, 7],
    &[1, 2, 6, 7, 8],
    &[2, 3, 5, 7, 8],
    &[3, 4, 5, 6, 8],
    &[1, 4, 5, 6, 7],
];

const fn sbox(which: u8, x: u8) -> u8 {
    match which {
        1 => SBOX1[x as usize],
        2 => SBOX1[x as usize].rotate_left(1),
        3 => SBOX1[x as usize].rotate_left(7),
        _ => SBOX1[x.rotate_left(1) as usize],
    }
}

/// SP[i][x]: F's output for input byte i = x and all others contributing
/// nothing (S-box, then P spreads the byte over the output).
const fn sp_tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 8 {
        // Output bytes (y1 is the most significant) that byte i feeds.
        let mut mask = 0u64;
        let mut k = 0;
        while k < 8 {
            let mut m = 0;
            while m < P[k].len() {
                if P[k][m] == i + 1 {
                    mask |= 1 << (8 * (7 - k));
                }
                m += 1;
            }
            k += 1;
        }
        let mut x = 0;
        while x < 256 {
            t[i][x] = mask * sbox(SBOX_OF_BYTE[i], x as u8) as u64;
            x += 1;
        }
        i += 1;
    }
    t
}

static SP: [[u64; 256]; 8] = sp_tables();

#[inline(always)]
fn f(x: u64, k: u64) -> u64 {
    let b = (x ^ k).to_be_bytes();
    SP[0][b[0] as usize]
        ^ SP[1][b[1] as usize]
        ^ SP[2][b[2] as usize]
        ^ SP[3][b[3] as usize]
        ^ SP[4][b[4] as usize]
        ^ SP[5][b[5] as usize]
        ^ SP[6][b[6] as usize]
        ^ SP[7][b[7] as usize]
}

fn fl(x: u64, k: u64) -> u64 {
    let (mut x1, mut x2) = ((x >> 32) as u32, x as u32);
    let (k1, k2) = ((k >> 32) as u32, k as u32);
    x2 ^= (x1 & k1).rotate_left(1);
    x1 ^= x2 | k2;
    (u64::from(x1) << 32) | u64::from(x2)
}

fn fl_inv(y: u64, k: u64) -> u64 {
    let (mut y1, mut y2) = ((y >> 32) as u32, y as u32);
    let (k1, k2) = ((k >> 32) as u32, k as u32);
    y1 ^= y2 | k2;
    y2 ^= (y1 & k1).rotate_left(1);
    (u64::from(y1) << 32) | u64::from(y2)
}

/// Subkeys in the order one direction uses them.
#[derive(Clone)]
struct Subkeys {
    kw: [u64; 4],
    /// 18 or 24 round keys.
    k: Vec<u64>,
    /// 4 or 6 FL/FL^-1 keys.
    ke: Vec<u64>,
}

impl Drop for Subkeys {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.kw.zeroize();
        self.k.zeroize();
        self.ke.zeroize();
    }
}

/// RFC 3713 section 2.2: KA, KB and the subkeys as rotations of them.
fn schedule(key: &[u8]) -> Subkeys {
    let kl = u128::from_be_bytes(key[..16].try_into().unwrap());
    let kr = match key.len() {
        16 => 0,
        24 => {
            let r = u64::from_be_bytes(key[16..24].try_into().unwrap());
            (u128::from(r) << 64) | u128::from(!r)
        }
        _ => u128::from_be_bytes(key[16..32].try_into().unwrap()),
    };
    let halves = |v: u128| ((v >> 64) as u64, v as u64);
    let (mut d1, mut d2) = halves(kl ^ kr);
    d2 ^= f(d1, SIGMA[0]);
    d1 ^= f(d2, SIGMA[1]);
    d1 ^= (kl >> 64) as u64;
    d2 ^= kl as u64;
    d2 ^= f(d1, SIGMA[2]);
    d1 ^= f(d2, SIGMA[3]);
    let ka = (u128::from(d1) << 64) | u128::from(d2);
    let (mut d1, mut d2) = halves(ka ^ kr);
    d2 ^= f(d1, SIGMA[4]);
    d1 ^= f(d2, SIGMA[5]);
    let kb = (u128::from(d1) << 64) | u128::from(d2);
    let _wipe = Zeroizing::new([kl, kr, ka, kb]);

    // Each entry: (source, rotation); both 64-bit halves are taken.
    let pairs = |list: &[(u128, u32)]| -> Vec<u64> {
        list.iter()
            .flat_map(|&(v, n)| {
                let (h, l) = halves(v.rotate_left(n));
                [h, l]
            })
            .collect()
    };
    if key.len() == 16 {
        let kw = pairs(&[(kl, 0), (ka, 111)]);
        let mut k = pairs(&[(ka, 0), (kl, 15), (ka, 15), (kl, 45)]);
        // The RFC's one split pair: k9 from KA <<< 45, k10 from KL <<< 60.
        k.push(halves(ka.rotate_left(45)).0);
        k.push(halves(kl.rotate_left(60)).1);
        k.extend(pairs(&[(ka, 60), (kl, 94), (ka, 94), (kl, 111)]));
        let ke = pairs(&[(ka, 30), (kl, 77)]);
        Subkeys {
            kw: kw.try_into().unwrap(),
            k,
            ke,
        }
    } else {
        let kw = pairs(&[(kl, 0), (kb, 111)]);
        let k = pairs(&[
            (kb, 0),
            (kr, 15),
            (ka, 15),
            (kb, 30),
            (kl, 45),
            (ka, 45),
            (kr, 60),
            (kb, 60),
            (kl, 77),
            (kr, 94),
            (ka, 94),
            (kl, 111),
        ]);
        let ke = pairs(&[(kr, 30), (kl, 60), (ka, 77)]);
        Subkeys {
            kw: kw.try_into().unwrap(),
            k,
            ke,
        }
    }
}

pub(super) struct Camellia {
    enc: Subkeys,
    dec: Subkeys,
}

/// Blocks processed side by side.
const WIDE: usize = 8;

impl Camellia {
    /// `key` is 16, 24 or 32 bytes (checked by the registry).
    pub(super) fn new(key: &[u8]) -> Self {
        let enc = schedule(key);
        let mut k = enc.k.clone();
        k.reverse();
        let mut ke = enc.ke.clone();
        ke.reverse();
        let dec = Subkeys {
            kw: [enc.kw[2], enc.kw[3], enc.kw[0], enc.kw[1]],
            k,
            ke,
        };
        Camellia { enc, dec }
    }

    #[inline(always)]
    fn run_n<const N: usize>(sk: &Subkeys, data: &mut [u8]) {
        let half = |b: usize, h: usize| {
            u64::from_be_bytes(data[16 * b + 8 * h..16 * b + 8 * h + 8].try_into().unwrap())
        };
        let mut d1: [u64; N] = core::array::from_fn(|b| half(b, 0) ^ sk.kw[0]);
        let mut d2: [u64; N] = core::array::from_fn(|b| half(b, 1) ^ sk.kw[1]);
        for (seg, ks) in sk.k.chunks_exact(6).enumerate() {
            if seg > 0 {
                let (a, b) = (sk.ke[2 * seg - 2], sk.ke[2 * seg - 1]);
                for i in 0..N {
                    d1[i] = fl(d1[i], a);
                    d2[i] = fl_inv(d2[i], b);
                }
            }
            for pair in ks.chunks_exact(2) {
                for i in 0..N {
                    d2[i] ^= f(d1[i], pair[0]);
                }
                for i in 0..N {
                    d1[i] ^= f(d2[i], pair[1]);
                }
            }
        }
        for b in 0..N {
            data[16 * b..16 * b + 8].copy_from_slice(&(d2[b] ^ sk.kw[2]).to_be_bytes());
            data[16 * b + 8..16 * b + 16].copy_from_slice(&(d1[b] ^ sk.kw[3]).to_be_bytes());
        }
    }

    fn run(sk: &Subkeys, data: &mut [u8]) {
        super::interleaved(
            data,
            16 * WIDE,
            16,
            |c| Self::run_n::<WIDE>(sk, c),
            |b| Self::run_n::<1>(sk, b),
        );
    }
}

impl BlockCipher for Camellia {
    fn block_size(&self) -> usize {
        16
    }
    fn encrypt_blocks(&self, data: &mut [u8]) {
        Self::run(&self.enc, data);
    }
    fn decrypt_blocks(&self, data: &mut [u8]) {
        Self::run(&self.dec, data);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_matches, hex};
    use super::*;

    /// RFC 3713 appendix A.
    #[test]
    fn rfc3713_known_answers() {
        let pt = hex("0123456789abcdeffedcba9876543210");
        for (key, ct) in [
            (
                "0123456789abcdeffedcba9876543210",
                "67673138549669730857065648eabe43",
            ),
            (
                "0123456789abcdeffedcba98765432100011223344556677",
                "b4993401b3e996f84ee5cee7d79b09b9",
            ),
            (
                "0123456789abcdeffedcba987654321000112233445566778899aabbccddeeff",
                "9acc237dff16d76c20ef7c919e3a7509",
            ),
        ] {
            let c = Camellia::new(&hex(key));
            let mut b = pt.clone();
            c.encrypt_blocks(&mut b);
            assert_eq!(b, hex(ct), "key {key}");
            c.decrypt_blocks(&mut b);
            assert_eq!(b, pt);
        }
    }

    #[test]
    fn matches_the_camellia_crate() {
        for klen in [16usize, 24, 32] {
            let key: Vec<u8> = (0..klen).map(|i| (i * 89 + klen) as u8).collect();
            let ours = Camellia::new(&key);
            let peer = match klen {
                16 => super::super::adapter::keyed::<camellia::Camellia128>(&key),
                24 => super::super::adapter::keyed::<camellia::Camellia192>(&key),
                _ => super::super::adapter::keyed::<camellia::Camellia256>(&key),
            };
            for blocks in [1, WIDE - 1, WIDE, WIDE + 1, 3 * WIDE + 3] {
                let plain: Vec<u8> = (0..16 * blocks).map(|i| (i * 13 + klen) as u8).collect();
                assert_matches(
                    &ours,
                    &*peer,
                    &plain,
                    &format!("key {klen}, {blocks} blocks"),
                );
            }
        }
    }
}
