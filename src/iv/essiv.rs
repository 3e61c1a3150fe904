//! essiv:<hash>. Since Linux 5.4 this is the crypto API's essiv template:
//! each instance's salt is hash(that instance's key), the IV cipher is the
//! mode's block cipher keyed with the WHOLE digest, and the IV is
//! E_salt(le64(iv_sector) padded with zeros). A digest that is not a valid
//! key for the cipher is refused, as the template's setkey refuses it.

use super::{IvCheck, IvGenerator, IvRequest, IvSetup};
use crate::cipher::BlockCipher;
use crate::hash;

struct Essiv {
    /// One salt-keyed cipher per instance.
    ciphers: Vec<Box<dyn BlockCipher>>,
}

impl IvGenerator for Essiv {
    fn generate(&self, r: &IvRequest, iv: &mut [u8], _: &mut [u8]) {
        iv[..8].copy_from_slice(&r.iv_sector.to_le_bytes());
        self.ciphers[r.instance].encrypt_blocks(iv);
    }
}

pub(super) fn check(c: &IvCheck) -> Result<(), String> {
    let name = c
        .opts
        .ok_or("ESSIV needs a digest: essiv:<hash>, e.g. essiv:sha256")?;
    let h = hash::lookup(name).ok_or_else(|| match hash::kernel_spelling(name) {
        Some(k) => format!("unknown hash '{name}' for ESSIV (the kernel calls it '{k}')"),
        None => format!("unknown hash '{name}' for ESSIV"),
    })?;
    let cipher = c.template.cipher;
    if c.iv_size != cipher.block_size {
        return Err(format!(
            "ESSIV needs the IV size ({}) to equal the {} block size ({})",
            c.iv_size, cipher.name, cipher.block_size
        ));
    }
    if !cipher.accepts_key_len(h.digest_size) {
        return Err(format!(
            "essiv:{name} gives a {}-byte salt, which is not a valid {} key ({})",
            h.digest_size, cipher.name, cipher.key_sizes
        ));
    }
    Ok(())
}

pub(super) fn build(s: &IvSetup) -> Result<Box<dyn IvGenerator>, String> {
    let h = hash::lookup(s.opts.unwrap_or_default()).ok_or("ESSIV hash vanished")?;
    let n = s.subkeys.len();
    // Test-only fault: instance i salted with the next instance's key.
    let shift = usize::from(s.fault.is(crate::fault::Fault::EssivOtherSalt));
    let ciphers = (0..n)
        .map(|i| {
            let salt = zeroize::Zeroizing::new(h.digest(s.subkeys[(i + shift) % n]));
            s.template
                .cipher
                .new_keyed(&salt)
                .ok_or_else(|| "ESSIV salt is not a valid key".to_string())
        })
        .collect::<Result<_, _>>()?;
    Ok(Box::new(Essiv { ciphers }))
}
