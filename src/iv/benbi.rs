//! benbi: big-endian "narrow block" count, starting at 1 (for LRW):
//! be64((iv_sector << (9 - log2(block size))) + 1) in the last 8 bytes.

use super::{IvCheck, IvGenerator, IvRequest, IvSetup};

struct Benbi {
    shift: u32,
}

impl IvGenerator for Benbi {
    fn generate(&self, r: &IvRequest, iv: &mut [u8], _: &mut [u8]) {
        let n = iv.len();
        let v = (r.iv_sector << self.shift).wrapping_add(1);
        iv[n - 8..].copy_from_slice(&v.to_be_bytes());
    }
}

pub(super) fn check(c: &IvCheck) -> Result<(), String> {
    let bs = c.template.block_size();
    if !bs.is_power_of_two() {
        return Err(format!("benbi needs a power-of-two block size, got {bs}"));
    }
    if bs > 512 {
        return Err(format!("benbi needs a block size of at most 512, got {bs}"));
    }
    Ok(())
}

pub(super) fn build(s: &IvSetup) -> Result<Box<dyn IvGenerator>, String> {
    let shift = 9 - s.template.block_size().trailing_zeros();
    Ok(Box::new(Benbi { shift }))
}
