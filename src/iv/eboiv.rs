//! eboiv (BitLocker): the IV is instance 0's mode run over one zero block
//! with le64(iv_sector * sector_size) as its IV; for cbc that is
//! E_K(le64(byte offset)). The kernel does exactly this through the tfm.

use super::{IvCheck, IvGenerator, IvRequest, IvSetup};
use crate::mode::Mode;

struct Eboiv {
    mode: Box<dyn Mode>,
    sector_size: u64,
}

impl IvGenerator for Eboiv {
    fn generate(&self, r: &IvRequest, iv: &mut [u8], _: &mut [u8]) {
        let n = iv.len();
        let mut ivin = [0u8; 16];
        ivin[..8].copy_from_slice(&r.iv_sector.wrapping_mul(self.sector_size).to_le_bytes());
        iv.fill(0);
        self.mode.encrypt(&mut ivin[..n], iv);
    }
}

pub(super) fn check(c: &IvCheck) -> Result<(), String> {
    if c.template.block_size() != c.iv_size {
        return Err(format!(
            "eboiv needs the block size ({}) to equal the IV size ({})",
            c.template.block_size(),
            c.iv_size
        ));
    }
    Ok(())
}

pub(super) fn build(s: &IvSetup) -> Result<Box<dyn IvGenerator>, String> {
    // A separate tfm keyed like instance 0, so the generator owns its state.
    let mode = s.template.instantiate(s.subkeys[0])?;
    Ok(Box::new(Eboiv {
        mode,
        sector_size: s.sector_size as u64,
    }))
}
