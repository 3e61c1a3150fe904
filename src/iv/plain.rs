//! plain, plain64, plain64be: the sector number itself.
//! plain is the 32-bit cryptoloop IV and wraps at 2^32.

use super::{IvGenerator, IvRequest, IvSetup};
use crate::fault::Fault;

struct Plain {
    /// Test-only fault: keep all 64 bits (the rule is the low 32).
    uncut: bool,
}
struct Plain64;
struct Plain64Be;

impl IvGenerator for Plain {
    fn generate(&self, r: &IvRequest, iv: &mut [u8], _: &mut [u8]) {
        if self.uncut {
            iv[..8].copy_from_slice(&r.iv_sector.to_le_bytes());
        } else {
            iv[..4].copy_from_slice(&(r.iv_sector as u32).to_le_bytes());
        }
    }
}

impl IvGenerator for Plain64 {
    fn generate(&self, r: &IvRequest, iv: &mut [u8], _: &mut [u8]) {
        iv[..8].copy_from_slice(&r.iv_sector.to_le_bytes());
    }
}

impl IvGenerator for Plain64Be {
    fn generate(&self, r: &IvRequest, iv: &mut [u8], _: &mut [u8]) {
        let n = iv.len();
        iv[n - 8..].copy_from_slice(&r.iv_sector.to_be_bytes());
    }
}

pub(super) fn build_plain(s: &IvSetup) -> Result<Box<dyn IvGenerator>, String> {
    Ok(Box::new(Plain {
        uncut: s.fault.is(Fault::PlainNotCut),
    }))
}
pub(super) fn build_plain64(_: &IvSetup) -> Result<Box<dyn IvGenerator>, String> {
    Ok(Box::new(Plain64))
}
pub(super) fn build_plain64be(_: &IvSetup) -> Result<Box<dyn IvGenerator>, String> {
    Ok(Box::new(Plain64Be))
}
