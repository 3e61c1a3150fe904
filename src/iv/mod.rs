//! IV generators, one file each, all with the same hooks as the kernel's
//! `crypt_iv_operations`:
//!
//! * `check`: spec-level validation (runs before any key is seen);
//! * `extra_key_size`: key bytes the generator takes from the end of the key
//!   (lmk seed, tcw seed and whitening, elephant key) before the split;
//! * `build` (the kernel's ctr/init): construct with the keyed instances;
//! * [`IvGenerator::generate`] before the mode runs and [`IvGenerator::post`]
//!   after it. Both may also touch the sector data, which is how lmk, tcw and
//!   elephant fit without special cases in the engine.

mod benbi;
mod eboiv;
mod elephant;
mod essiv;
mod lmk;
mod null;
mod plain;
mod tcw;

use crate::mode::Template;

pub use crate::cipher::Direction;

/// One sector's request, as the kernel's `dm_crypt_request`.
#[derive(Clone, Copy, Debug)]
pub struct IvRequest {
    /// The IV sector (512-byte units, or sector_size units with iv_large_sectors).
    pub iv_sector: u64,
    /// The keyed instance this sector uses.
    pub instance: usize,
    pub dir: Direction,
}

pub trait IvGenerator: Send + Sync {
    /// Fill `iv` (zeroed, `iv_size` bytes) before the mode runs over `data`
    /// (plaintext when encrypting, ciphertext when decrypting).
    fn generate(&self, req: &IvRequest, iv: &mut [u8], data: &mut [u8]);
    /// Called after the mode ran over `data`.
    fn post(&self, _req: &IvRequest, _iv: &mut [u8], _data: &mut [u8]) {}
}

/// What a generator may use at construction.
pub struct IvSetup<'a> {
    pub template: &'a Template,
    pub opts: Option<&'a str>,
    pub iv_size: usize,
    pub sector_size: usize,
    /// The key of each instance, in instance order.
    pub subkeys: &'a [&'a [u8]],
    /// Key bytes reserved by `extra_key_size` (the end of the key).
    pub extra_key: &'a [u8],
    /// The whole key, for generators that locate their part as the kernel does.
    pub key: &'a [u8],
    pub keycount: usize,
    /// A deliberately broken rule (test-fault feature only).
    pub fault: crate::fault::Fault,
}

/// Spec-level facts a generator checks before any key is seen.
pub struct IvCheck<'a> {
    pub template: &'a Template,
    pub opts: Option<&'a str>,
    pub iv_size: usize,
    pub sector_size: usize,
    pub keycount: u32,
}

/// One registry entry.
pub struct IvInfo {
    pub name: &'static str,
    /// A crypto API template around the mode (essiv) rather than a dm-crypt
    /// generator: it cannot be dropped silently when the mode has no IV.
    pub wraps_mode: bool,
    check: fn(&IvCheck) -> Result<(), String>,
    /// Key bytes taken from the end of the key, given the whole key size.
    extra_key_size: fn(key_size: usize, iv: &IvCheck) -> Result<usize, String>,
    build: fn(&IvSetup) -> Result<Box<dyn IvGenerator>, String>,
    /// Why the kernel's result for this setup is undefined (it reads memory
    /// it does not own), if it is: the reference then refuses the table
    /// instead of guessing what that memory held.
    undefined: fn(&IvSetup) -> Option<String>,
}

impl IvInfo {
    pub fn check(&self, c: &IvCheck) -> Result<(), String> {
        (self.check)(c)
    }
    pub fn extra_key_size(&self, key_size: usize, c: &IvCheck) -> Result<usize, String> {
        (self.extra_key_size)(key_size, c)
    }
    pub fn build(&self, s: &IvSetup) -> Result<Box<dyn IvGenerator>, String> {
        (self.build)(s)
    }
    pub fn undefined(&self, s: &IvSetup) -> Option<String> {
        (self.undefined)(s)
    }
}

/// IV modes without options ignore any, as the kernel does: it never looks
/// at ivopts unless the IV mode uses them (`aes-cbc-plain64:x` loads).
fn ignores_opts(_: &IvCheck) -> Result<(), String> {
    Ok(())
}

/// lmk and tcw exist for 512-byte sectors only.
fn only_512(name: &str, c: &IvCheck) -> Result<(), String> {
    if c.sector_size != 512 {
        return Err(format!(
            "IV mode '{name}' works on 512-byte sectors only, not {}",
            c.sector_size
        ));
    }
    Ok(())
}

fn no_extra(_: usize, _: &IvCheck) -> Result<usize, String> {
    Ok(0)
}

/// IV modes the kernel knows but that cannot give reproducible sectors.
fn not_reproducible(c: &IvCheck) -> Result<(), String> {
    let _ = c;
    Err("IV mode 'random' takes IVs from the RNG and stores them in integrity metadata; so its sectors cannot be reproduced".into())
}

/// Every result of the generator is defined by the kernel's own objects.
fn defined(_: &IvSetup) -> Option<String> {
    None
}

fn never(_: &IvSetup) -> Result<Box<dyn IvGenerator>, String> {
    unreachable!("check refuses first")
}

static IV_MODES: &[IvInfo] = &[
    IvInfo {
        name: "null",
        wraps_mode: false,
        check: ignores_opts,
        extra_key_size: no_extra,
        build: null::build,
        undefined: defined,
    },
    IvInfo {
        name: "plain",
        wraps_mode: false,
        check: ignores_opts,
        extra_key_size: no_extra,
        build: plain::build_plain,
        undefined: defined,
    },
    IvInfo {
        name: "plain64",
        wraps_mode: false,
        check: ignores_opts,
        extra_key_size: no_extra,
        build: plain::build_plain64,
        undefined: defined,
    },
    IvInfo {
        name: "plain64be",
        wraps_mode: false,
        check: ignores_opts,
        extra_key_size: no_extra,
        build: plain::build_plain64be,
        undefined: defined,
    },
    IvInfo {
        name: "essiv",
        wraps_mode: true,
        check: essiv::check,
        extra_key_size: no_extra,
        build: essiv::build,
        undefined: defined,
    },
    IvInfo {
        name: "benbi",
        wraps_mode: false,
        check: benbi::check,
        extra_key_size: no_extra,
        build: benbi::build,
        undefined: defined,
    },
    IvInfo {
        name: "eboiv",
        wraps_mode: false,
        check: eboiv::check,
        extra_key_size: no_extra,
        build: eboiv::build,
        undefined: defined,
    },
    IvInfo {
        name: "lmk",
        wraps_mode: false,
        check: lmk::check,
        extra_key_size: lmk::extra_key_size,
        build: lmk::build,
        undefined: lmk::undefined,
    },
    IvInfo {
        name: "tcw",
        wraps_mode: false,
        check: tcw::check,
        extra_key_size: tcw::extra_key_size,
        build: tcw::build,
        undefined: defined,
    },
    IvInfo {
        name: "elephant",
        wraps_mode: false,
        check: elephant::check,
        extra_key_size: elephant::extra_key_size,
        build: elephant::build,
        undefined: defined,
    },
    IvInfo {
        name: "random",
        wraps_mode: false,
        check: not_reproducible,
        extra_key_size: no_extra,
        build: never,
        undefined: defined,
    },
];

/// Find an IV generator by name; the error names the known ones.
pub fn lookup(name: &str) -> Result<&'static IvInfo, String> {
    if let Some(i) = IV_MODES.iter().find(|i| i.name == name) {
        return Ok(i);
    }
    Err(format!(
        "unknown IV mode '{name}' (known: {})",
        IV_MODES
            .iter()
            .map(|i| i.name)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
