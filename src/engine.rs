//! The sector engine: what dm-crypt does to each sector.
//!
//! Numbering follows `crypt_convert`: for the unit at 512-byte target sector
//! `s`, cc_sector = s + iv_offset (wrapping, as sector_t does); the instance
//! is cc_sector & (keycount - 1); the IV sector is cc_sector, shifted right by
//! log2(sector_size / 512) with iv_large_sectors. Large inputs are split over
//! all cores; nothing is allocated per sector.

use crate::error::{Error, Result};
use crate::fault::Fault;
use crate::iv::{self, Direction, IvCheck, IvGenerator, IvRequest, IvSetup};
use crate::key::Key;
use crate::mode::{self, Mode, Template};
use crate::spec::CipherSpec;
use rayon::prelude::*;

pub use crate::table::Geometry;

/// A configured dm-crypt transform: spec + key + geometry.
pub struct SectorCrypt {
    instances: Vec<Box<dyn Mode>>,
    ivgen: Option<Box<dyn IvGenerator>>,
    iv_size: usize,
    geometry: Geometry,
    keycount: u64,
    /// A deliberately broken rule (only with the `test-fault` feature).
    fault: Fault,
}

/// The spec-level facts an IV generator checks.
fn iv_check<'a>(
    spec: &'a CipherSpec,
    template: &'a Template,
    iv_size: usize,
    geometry: &Geometry,
) -> IvCheck<'a> {
    IvCheck {
        template,
        opts: spec.ivopts.as_deref(),
        iv_size,
        sector_size: geometry.sector_size as usize,
        keycount: spec.keycount,
    }
}

/// Resolve the spec's names the way the kernel allocates its tfms, without a
/// key: the template and, when the mode has IVs, the IV mode and its size.
pub fn resolve(
    spec: &CipherSpec,
    geometry: &Geometry,
) -> Result<(Template, Option<&'static iv::IvInfo>, usize)> {
    let bad = |why: String| Error::spec(&spec.text, why);
    geometry.validate()?;
    let template = mode::resolve(&spec.chain, &spec.cipher).map_err(bad)?;
    let mode_iv = template.iv_size();
    // "at least a 64 bit sector number should fit in our buffer"
    let iv_size = if mode_iv > 0 { mode_iv.max(8) } else { 0 };
    // Without IVs the kernel drops the IV mode, unless the IV mode is a
    // crypto API template wrapping the mode (essiv), which then refuses it.
    if let (0, Some(name)) = (iv_size, &spec.ivmode)
        && let Ok(info) = iv::lookup(name)
        && info.wraps_mode
    {
        return Err(bad(format!(
            "{name} needs a mode with an IV; {} has none",
            template.api_name()
        )));
    }
    let info = match (&spec.ivmode, iv_size) {
        (Some(name), n) if n > 0 => Some(iv::lookup(name).map_err(bad)?),
        _ => None,
    };
    if let Some(info) = info {
        info.check(&iv_check(spec, &template, iv_size, geometry))
            .map_err(bad)?;
    } else if iv_size > 0 {
        return Err(bad(format!("{} needs an IV mode", template.api_name())));
    }
    Ok((template, info, iv_size))
}

impl SectorCrypt {
    /// Key the engine for `spec` with `key`, checked as the kernel's
    /// constructor would (cipher, mode, IV generator, key split over keycount).
    pub fn new(spec: &CipherSpec, key: &Key, geometry: Geometry) -> Result<Self> {
        Self::build(spec, key, geometry, Fault::None)
    }

    /// As [`SectorCrypt::new`], with one kernel rule broken on purpose (see
    /// [`Fault`]) to prove that checkers catch a wrong reference without
    /// editing the engine. Without the `test-fault` feature the fault is
    /// ignored.
    pub fn new_with_fault(
        spec: &CipherSpec,
        key: &Key,
        geometry: Geometry,
        fault: Fault,
    ) -> Result<Self> {
        Self::build(spec, key, geometry, fault)
    }

    fn build(spec: &CipherSpec, key: &Key, geometry: Geometry, fault: Fault) -> Result<Self> {
        let (template, info, iv_size) = resolve(spec, &geometry)?;
        let key = key.bytes()?;
        let check = iv_check(spec, &template, iv_size, &geometry);
        let extra = match info {
            Some(i) => i.extra_key_size(key.len(), &check).map_err(Error::Key)?,
            None => 0,
        };
        if extra > key.len() {
            return Err(Error::Key(format!(
                "{}-byte key is shorter than the {extra} bytes the IV mode needs",
                key.len()
            )));
        }
        let keycount = spec.keycount as usize;
        // As crypt_subkey_size(): the remainder of an uneven split is unused.
        let subkey_size = (key.len() - extra) / keycount;
        if !template.accepts_key_len(subkey_size) {
            let split = if keycount > 1 {
                format!(" ({} bytes over {keycount} keys)", key.len() - extra)
            } else {
                String::new()
            };
            return Err(Error::Key(format!(
                "{} takes {}; got {subkey_size} bytes per key{split}",
                template.api_name(),
                template.key_sizes()
            )));
        }
        let subkeys: Vec<&[u8]> = (0..keycount)
            .map(|i| &key[i * subkey_size..(i + 1) * subkey_size])
            .collect();
        let instances = subkeys
            .iter()
            .map(|k| template.instantiate(k).map_err(Error::Key))
            .collect::<Result<Vec<_>>>()?;
        let ivgen = match info {
            Some(i) => {
                let setup = IvSetup {
                    template: &template,
                    opts: spec.ivopts.as_deref(),
                    iv_size,
                    sector_size: geometry.sector_size as usize,
                    subkeys: &subkeys,
                    extra_key: &key[key.len() - extra..],
                    key,
                    keycount,
                    fault,
                };
                if let Some(why) = i.undefined(&setup) {
                    return Err(Error::Undefined(why));
                }
                Some(i.build(&setup).map_err(Error::Key)?)
            }
            None => None,
        };
        Ok(SectorCrypt {
            instances,
            ivgen,
            iv_size,
            geometry,
            keycount: keycount as u64,
            fault,
        })
    }

    /// The sector geometry this engine numbers sectors by.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Encrypt whole sectors in place. `start_sector` is the target sector
    /// (512-byte units, relative to the target start) of `data[0]`.
    pub fn encrypt(&self, start_sector: u64, data: &mut [u8]) -> Result<()> {
        self.run(start_sector, data, Direction::Encrypt)
    }

    /// Decrypt whole sectors in place; see [`SectorCrypt::encrypt`].
    pub fn decrypt(&self, start_sector: u64, data: &mut [u8]) -> Result<()> {
        self.run(start_sector, data, Direction::Decrypt)
    }

    /// Encrypt or decrypt whole sectors in place, as `dir` says.
    pub fn crypt(&self, start_sector: u64, data: &mut [u8], dir: Direction) -> Result<()> {
        self.run(start_sector, data, dir)
    }

    /// Check that `len` bytes at `start_sector` are whole, aligned units.
    pub fn check_extent(&self, start_sector: u64, len: usize) -> Result<()> {
        let ss = self.geometry.sector_size as usize;
        if !len.is_multiple_of(ss) {
            return Err(Error::Geometry(format!(
                "input of {len} bytes is not a whole number of {ss}-byte sectors"
            )));
        }
        let step = u64::from(self.geometry.sector_size / 512);
        if !start_sector.is_multiple_of(step) {
            return Err(Error::Geometry(format!(
                "start sector {start_sector} is not a multiple of {step} (sector size {ss})"
            )));
        }
        Ok(())
    }

    fn run(&self, start_sector: u64, data: &mut [u8], dir: Direction) -> Result<()> {
        self.check_extent(start_sector, data.len())?;
        let ss = self.geometry.sector_size as usize;
        // Below this size the thread hand-off costs more than it saves.
        const PARALLEL_MIN: usize = 256 * 1024;
        const PER_TASK: usize = 64 * 1024;
        if data.len() < PARALLEL_MIN {
            self.run_units(start_sector, data, dir);
        } else {
            let per_task = PER_TASK.max(ss);
            let step = (per_task / 512) as u64;
            data.par_chunks_mut(per_task)
                .enumerate()
                .for_each(|(i, chunk)| {
                    self.run_units(start_sector.wrapping_add(i as u64 * step), chunk, dir)
                });
        }
        Ok(())
    }

    fn request(&self, cc_sector: u64, dir: Direction) -> IvRequest {
        let g = &self.geometry;
        let large = g.iv_large_sectors
            && !(self.fault.is(Fault::LargeSectorsIgnoredWithKeys) && self.keycount > 1);
        let iv_sector = if large {
            cc_sector >> g.shift()
        } else {
            cc_sector
        };
        let by = if self.fault.is(Fault::LargeSectorsPickInstance) {
            iv_sector
        } else {
            cc_sector
        };
        IvRequest {
            iv_sector,
            instance: (by & (self.keycount - 1)) as usize,
            dir,
        }
    }

    /// Sectors go to the mode in groups of up to LANES with their IVs, so a
    /// serial mode (CBC encryption) can run one block of every sector of the
    /// group per cipher call. The IV hooks still see one sector at a time.
    fn run_units(&self, start_sector: u64, data: &mut [u8], dir: Direction) {
        const LANES: usize = crate::mode::LANES;
        let g = &self.geometry;
        let ss = g.sector_size as usize;
        let step = u64::from(g.sector_size / 512);
        let n = self.iv_size;
        // The generator's IVs and the mode's working copies, as the kernel's
        // org_iv and iv: `post` sees each IV as generated.
        let mut org = Scratch::new();
        let mut work = Scratch::new();
        let mut cc_sector = start_sector.wrapping_add(g.iv_offset);
        // With several keys, neighbouring sectors use different instances.
        let lanes = if self.keycount == 1 { LANES } else { 1 };
        for group in data.chunks_mut(ss * lanes) {
            let units = group.len() / ss;
            org.touch(units * n);
            work.touch(units * n);
            let first = cc_sector;
            for (k, unit) in group.chunks_exact_mut(ss).enumerate() {
                let req = self.request(cc_sector, dir);
                let iv = &mut org[k * n..(k + 1) * n];
                iv.fill(0);
                if let Some(ivgen) = &self.ivgen {
                    ivgen.generate(&req, iv, unit);
                    if self.fault.is(Fault::ByteswapIv)
                        || (self.fault.is(Fault::ByteswapIvAbove4g) && req.iv_sector >> 32 != 0)
                    {
                        iv.reverse();
                    }
                }
                cc_sector = cc_sector.wrapping_add(step);
            }
            work[..units * n].copy_from_slice(&org[..units * n]);
            let mode = &self.instances[self.request(first, dir).instance];
            mode.crypt_sectors(&mut work[..units * n], group, ss, dir);
            if let Some(ivgen) = &self.ivgen {
                let mut c = first;
                for (k, unit) in group.chunks_exact_mut(ss).enumerate() {
                    ivgen.post(&self.request(c, dir), &mut org[k * n..(k + 1) * n], unit);
                    c = c.wrapping_add(step);
                }
            }
        }
    }
}

/// IV scratch for one group of sectors, wiped on drop as far as it was
/// used: IVs can carry key material (tcw's seed, lmk's), but wiping the
/// whole buffer byte by byte (zeroize's volatile writes) cost about a
/// fifth of a single-sector call.
struct Scratch {
    buf: [u8; crate::mode::LANES * 32],
    used: usize,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            buf: [0; crate::mode::LANES * 32],
            used: 0,
        }
    }

    /// Record that the first `n` bytes hold IVs.
    fn touch(&mut self, n: usize) {
        self.used = self.used.max(n);
    }
}

impl core::ops::Deref for Scratch {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl core::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let used = self.used.min(self.buf.len());
        zeroize::Zeroize::zeroize(&mut self.buf[..used]);
    }
}
