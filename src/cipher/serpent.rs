//! Serpent (Anderson, Biham, Knudsen, 1998) in its bit-sliced form, sixteen
//! blocks at a time on AVX-512.
//!
//! Serpent's S-boxes act on the four 32-bit words of a block bit by bit, so
//! sixteen blocks transposed into four 512-bit registers (register j holds
//! word j of every block) run one round with plain logic. Each S-box output
//! bit is a 4-input boolean function: two `vpternlogd` over three inputs and
//! one `vpternlogd` selecting on the fourth, with the truth tables computed
//! from the S-box tables at compile time. Twelve instructions per S-box.
//!
//! Without AVX-512 the `serpent` crate does the work; it is also the peer the
//! tests compare this implementation against.

use super::{BlockCipher, Direction};
use zeroize::Zeroizing;

/// The eight S-boxes of the Serpent specification (section 2.2).
const SBOX: [[u8; 16]; 8] = [
    [3, 8, 15, 1, 10, 6, 5, 11, 14, 13, 4, 2, 7, 0, 9, 12],
    [15, 12, 2, 7, 9, 0, 5, 10, 1, 11, 14, 8, 6, 13, 3, 4],
    [8, 6, 7, 9, 3, 12, 10, 15, 13, 1, 14, 4, 0, 11, 5, 2],
    [0, 15, 11, 8, 12, 9, 6, 3, 13, 1, 2, 4, 10, 7, 5, 14],
    [1, 15, 8, 3, 12, 0, 11, 6, 2, 5, 4, 10, 9, 14, 7, 13],
    [15, 5, 2, 11, 4, 10, 9, 12, 0, 3, 14, 8, 13, 6, 7, 1],
    [7, 2, 12, 5, 8, 4, 6, 11, 14, 9, 1, 15, 13, 3, 10, 0],
    [1, 13, 15, 0, 14, 8, 2, 11, 7, 4, 12, 10, 9, 3, 5, 6],
];

const fn inverses() -> [[u8; 16]; 8] {
    let mut inv = [[0u8; 16]; 8];
    let mut s = 0;
    while s < 8 {
        let mut x = 0;
        while x < 16 {
            inv[s][SBOX[s][x] as usize] = x as u8;
            x += 1;
        }
        s += 1;
    }
    inv
}

const INV_SBOX: [[u8; 16]; 8] = inverses();

const PHI: u32 = 0x9e37_79b9;
const ROUNDS: usize = 32;

type Words = [u32; 4];

/// Apply S-box `s` bit-sliced to four words (key schedule only).
fn sbox_words(s: &[u8; 16], w: Words) -> Words {
    let mut out = [0u32; 4];
    for bit in 0..32 {
        let nibble = (0..4).fold(0usize, |n, j| n | ((((w[j] >> bit) & 1) as usize) << j));
        let y = s[nibble];
        for (j, o) in out.iter_mut().enumerate() {
            *o |= (((y >> j) & 1) as u32) << bit;
        }
    }
    out
}

/// Round keys from a 32-byte key (the registry pads shorter keys the way
/// the kernel does).
fn schedule(key: &[u8; 32]) -> Zeroizing<[Words; ROUNDS + 1]> {
    let mut w = Zeroizing::new([0u32; 8 + 4 * (ROUNDS + 1)]);
    for (i, c) in key.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes(c.try_into().unwrap());
    }
    for i in 0..4 * (ROUNDS + 1) {
        w[i + 8] = (w[i] ^ w[i + 3] ^ w[i + 5] ^ w[i + 7] ^ PHI ^ i as u32).rotate_left(11);
    }
    let mut keys = Zeroizing::new([[0u32; 4]; ROUNDS + 1]);
    for (i, k) in keys.iter_mut().enumerate() {
        let words = [w[8 + 4 * i], w[9 + 4 * i], w[10 + 4 * i], w[11 + 4 * i]];
        *k = sbox_words(&SBOX[(ROUNDS + 3 - i) % 8], words);
    }
    keys
}

pub(super) struct Serpent {
    keys: Zeroizing<[Words; ROUNDS + 1]>,
    /// The crate, for CPUs without AVX-512.
    portable: Option<Box<dyn BlockCipher>>,
}

impl Serpent {
    /// `key` is the kernel-padded 32-byte key.
    pub(super) fn new(key: &[u8; 32]) -> Self {
        let portable =
            (!simd::available()).then(|| super::adapter::keyed::<serpent::Serpent>(&key[..]));
        Serpent {
            keys: schedule(key),
            portable,
        }
    }

    /// Force the crate path (tests compare the two).
    #[cfg(test)]
    fn portable(key: &[u8; 32]) -> Self {
        Serpent {
            keys: schedule(key),
            portable: Some(super::adapter::keyed::<serpent::Serpent>(&key[..])),
        }
    }

    fn run(&self, data: &mut [u8], dir: Direction) {
        if let Some(p) = &self.portable {
            return p.crypt_blocks(data, dir);
        }
        let enc = dir.is_encrypt();
        // SAFETY: `portable` is None only when simd::available().
        #[cfg(target_arch = "x86_64")]
        super::in_groups::<{ simd::GROUP }>(data, |g| unsafe { simd::run16(&self.keys, g, enc) });
    }
}

impl BlockCipher for Serpent {
    fn block_size(&self) -> usize {
        16
    }
    fn encrypt_blocks(&self, data: &mut [u8]) {
        self.run(data, Direction::Encrypt);
    }
    fn decrypt_blocks(&self, data: &mut [u8]) {
        self.run(data, Direction::Decrypt);
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod simd {
    pub(super) fn available() -> bool {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{INV_SBOX, ROUNDS, SBOX, Words};
    use core::arch::x86_64::*;

    /// Bytes of sixteen blocks.
    pub(super) const GROUP: usize = 256;

    pub(super) fn available() -> bool {
        crate::cpu::simd_for("serpent")
    }

    type X = [__m512i; 4];

    /// `vpternlogd` truth table of output bit `bit` of S-box `s` on inputs
    /// (x2, x1, x0), for x3 fixed to `hi`.
    const fn tt(s: &[u8; 16], bit: usize, hi: usize) -> i32 {
        let mut imm = 0;
        let mut m = 0;
        while m < 8 {
            if (s[m | (hi << 3)] >> bit) & 1 == 1 {
                imm |= 1 << m;
            }
            m += 1;
        }
        imm
    }

    /// One output bit: evaluate for x3 = 0 and x3 = 1, then select on x3.
    #[inline(always)]
    unsafe fn bit<const LO: i32, const HI: i32>(x: &X) -> __m512i {
        unsafe {
            let lo = _mm512_ternarylogic_epi32::<LO>(x[2], x[1], x[0]);
            let hi = _mm512_ternarylogic_epi32::<HI>(x[2], x[1], x[0]);
            // x3 ? hi : lo
            _mm512_ternarylogic_epi32::<0xCA>(x[3], hi, lo)
        }
    }

    macro_rules! sbox {
        ($name:ident, $table:expr) => {
            #[inline(always)]
            unsafe fn $name(x: &mut X) {
                unsafe {
                    *x = [
                        bit::<{ tt(&$table, 0, 0) }, { tt(&$table, 0, 1) }>(x),
                        bit::<{ tt(&$table, 1, 0) }, { tt(&$table, 1, 1) }>(x),
                        bit::<{ tt(&$table, 2, 0) }, { tt(&$table, 2, 1) }>(x),
                        bit::<{ tt(&$table, 3, 0) }, { tt(&$table, 3, 1) }>(x),
                    ];
                }
            }
        };
    }

    sbox!(s0, SBOX[0]);
    sbox!(s1, SBOX[1]);
    sbox!(s2, SBOX[2]);
    sbox!(s3, SBOX[3]);
    sbox!(s4, SBOX[4]);
    sbox!(s5, SBOX[5]);
    sbox!(s6, SBOX[6]);
    sbox!(s7, SBOX[7]);
    sbox!(i0, INV_SBOX[0]);
    sbox!(i1, INV_SBOX[1]);
    sbox!(i2, INV_SBOX[2]);
    sbox!(i3, INV_SBOX[3]);
    sbox!(i4, INV_SBOX[4]);
    sbox!(i5, INV_SBOX[5]);
    sbox!(i6, INV_SBOX[6]);
    sbox!(i7, INV_SBOX[7]);

    const XOR3: i32 = 0x96;

    #[inline(always)]
    unsafe fn mix_key(x: &mut X, k: &Words) {
        unsafe {
            for j in 0..4 {
                x[j] = _mm512_xor_si512(x[j], _mm512_set1_epi32(k[j] as i32));
            }
        }
    }

    /// The linear transformation (specification, section 2.3).
    #[inline(always)]
    unsafe fn lt(x: &mut X) {
        unsafe {
            let [mut a, mut b, mut c, mut d] = *x;
            a = _mm512_rol_epi32::<13>(a);
            c = _mm512_rol_epi32::<3>(c);
            b = _mm512_ternarylogic_epi32::<XOR3>(b, a, c);
            d = _mm512_ternarylogic_epi32::<XOR3>(d, c, _mm512_slli_epi32::<3>(a));
            b = _mm512_rol_epi32::<1>(b);
            d = _mm512_rol_epi32::<7>(d);
            a = _mm512_ternarylogic_epi32::<XOR3>(a, b, d);
            c = _mm512_ternarylogic_epi32::<XOR3>(c, d, _mm512_slli_epi32::<7>(b));
            a = _mm512_rol_epi32::<5>(a);
            c = _mm512_rol_epi32::<22>(c);
            *x = [a, b, c, d];
        }
    }

    #[inline(always)]
    unsafe fn inv_lt(x: &mut X) {
        unsafe {
            let [mut a, mut b, mut c, mut d] = *x;
            c = _mm512_ror_epi32::<22>(c);
            a = _mm512_ror_epi32::<5>(a);
            c = _mm512_ternarylogic_epi32::<XOR3>(c, d, _mm512_slli_epi32::<7>(b));
            a = _mm512_ternarylogic_epi32::<XOR3>(a, b, d);
            d = _mm512_ror_epi32::<7>(d);
            b = _mm512_ror_epi32::<1>(b);
            d = _mm512_ternarylogic_epi32::<XOR3>(d, c, _mm512_slli_epi32::<3>(a));
            b = _mm512_ternarylogic_epi32::<XOR3>(b, a, c);
            c = _mm512_ror_epi32::<3>(c);
            a = _mm512_ror_epi32::<13>(a);
            *x = [a, b, c, d];
        }
    }

    /// 4x4 transpose of 32-bit words inside each 128-bit lane; its own
    /// inverse. Blocks in, bit-sliced words out (and back).
    #[inline(always)]
    unsafe fn transpose(x: &mut X) {
        unsafe {
            let t0 = _mm512_unpacklo_epi32(x[0], x[1]);
            let t1 = _mm512_unpackhi_epi32(x[0], x[1]);
            let t2 = _mm512_unpacklo_epi32(x[2], x[3]);
            let t3 = _mm512_unpackhi_epi32(x[2], x[3]);
            *x = [
                _mm512_unpacklo_epi64(t0, t2),
                _mm512_unpackhi_epi64(t0, t2),
                _mm512_unpacklo_epi64(t1, t3),
                _mm512_unpackhi_epi64(t1, t3),
            ];
        }
    }

    #[inline(always)]
    unsafe fn encrypt(keys: &[Words; ROUNDS + 1], x: &mut X) {
        unsafe {
            for r in (0..ROUNDS).step_by(8) {
                mix_key(x, &keys[r]);
                s0(x);
                lt(x);
                mix_key(x, &keys[r + 1]);
                s1(x);
                lt(x);
                mix_key(x, &keys[r + 2]);
                s2(x);
                lt(x);
                mix_key(x, &keys[r + 3]);
                s3(x);
                lt(x);
                mix_key(x, &keys[r + 4]);
                s4(x);
                lt(x);
                mix_key(x, &keys[r + 5]);
                s5(x);
                lt(x);
                mix_key(x, &keys[r + 6]);
                s6(x);
                lt(x);
                mix_key(x, &keys[r + 7]);
                s7(x);
                // The last round replaces the transformation by a key.
                if r + 8 < ROUNDS {
                    lt(x);
                }
            }
            mix_key(x, &keys[ROUNDS]);
        }
    }

    #[inline(always)]
    unsafe fn decrypt(keys: &[Words; ROUNDS + 1], x: &mut X) {
        unsafe {
            mix_key(x, &keys[ROUNDS]);
            for r in (0..ROUNDS).step_by(8).rev() {
                if r + 8 < ROUNDS {
                    inv_lt(x);
                }
                i7(x);
                mix_key(x, &keys[r + 7]);
                inv_lt(x);
                i6(x);
                mix_key(x, &keys[r + 6]);
                inv_lt(x);
                i5(x);
                mix_key(x, &keys[r + 5]);
                inv_lt(x);
                i4(x);
                mix_key(x, &keys[r + 4]);
                inv_lt(x);
                i3(x);
                mix_key(x, &keys[r + 3]);
                inv_lt(x);
                i2(x);
                mix_key(x, &keys[r + 2]);
                inv_lt(x);
                i1(x);
                mix_key(x, &keys[r + 1]);
                inv_lt(x);
                i0(x);
                mix_key(x, &keys[r]);
            }
        }
    }

    /// Encrypt or decrypt sixteen blocks in place.
    ///
    /// # Safety
    /// The CPU must support AVX-512F ([`available`]).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run16(keys: &[Words; ROUNDS + 1], data: &mut [u8; GROUP], enc: bool) {
        unsafe {
            let p = data.as_mut_ptr() as *mut __m512i;
            let mut x: X = [
                _mm512_loadu_si512(p),
                _mm512_loadu_si512(p.add(1)),
                _mm512_loadu_si512(p.add(2)),
                _mm512_loadu_si512(p.add(3)),
            ];
            transpose(&mut x);
            if enc {
                encrypt(keys, &mut x);
            } else {
                decrypt(keys, &mut x);
            }
            transpose(&mut x);
            for (j, v) in x.iter().enumerate() {
                _mm512_storeu_si512(p.add(j), *v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_matches, rand_bytes};
    use super::*;

    #[test]
    fn inverse_sboxes_invert() {
        for s in 0..8 {
            for x in 0..16 {
                assert_eq!(INV_SBOX[s][SBOX[s][x] as usize] as usize, x);
            }
        }
    }

    /// Both paths against the crate, for every group size and a tail.
    #[test]
    fn matches_the_serpent_crate() {
        if !simd::available() {
            eprintln!("serpent: no AVX-512 on this CPU; comparing the crate path only");
        }
        let mut seed = 7;
        for len in [16, 48, 256, 272, 512 + 240, 4096] {
            let mut key = [0u8; 32];
            rand_bytes(&mut seed, &mut key);
            let mut data = vec![0u8; len];
            rand_bytes(&mut seed, &mut data);
            let peer = super::super::adapter::keyed::<serpent::Serpent>(&key[..]);
            for ours in [Serpent::new(&key), Serpent::portable(&key)] {
                assert_matches(&ours, &*peer, &data, &format!("{len} bytes"));
            }
        }
    }
}
