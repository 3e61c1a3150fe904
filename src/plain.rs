//! Plain dm-crypt mappings, as cryptsetup's plain mode (and the seed's
//! cryptsetup 0.1) makes them: typed options with their defaults, the
//! volume key from a passphrase or key file, a loop device for a regular
//! file, and create / reload / resize / remove / status. Every table is
//! built typed, checked by the reference engine, and only then made text
//! for the kernel; any failure removes what was made.

use crate::engine::SectorCrypt;
use crate::key::Key;
use crate::keyderive::{self, HashSpec, Limits, Source};
use crate::spec::CipherSpec;
use crate::sys::activate::{self, ActivateError, ReplaceError};
use crate::sys::dm::{self, Control, Mapping};
use crate::sys::loopdev::LoopDevice;
use crate::sys::probe::Unusable;
use crate::table::{CryptParams, Options, Table};
use std::io::Read;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Why a plain setup did not happen; nothing was left behind.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("this host cannot set up dm-crypt mappings: {0}")]
    /// The host has no usable device-mapper.
    Host(#[from] Unusable),
    #[error("{0}")]
    /// An option, name, size or device is not acceptable.
    Invalid(String),
    #[error(transparent)]
    /// The reference refuses the spec, key or table.
    Reference(#[from] crate::Error),
    #[error("a mapping named {0} exists already")]
    /// The name is taken.
    Exists(String),
    #[error("no mapping named {0}")]
    /// No mapping has this name.
    Missing(String),
    #[error(transparent)]
    /// The kernel did not make the mapping.
    Activate(#[from] ActivateError),
    #[error(transparent)]
    /// The kernel kept the old table.
    Replace(#[from] ReplaceError),
    #[error("{what}: {source}")]
    /// A system call failed.
    Io {
        /// The step that failed.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, SetupError>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SetupError {
    let what = what.into();
    move |source| SetupError::Io { what, source }
}

/// The options of a plain mapping; `None` means the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlainOptions {
    /// Cipher spec (`-c`).
    pub cipher: Option<String>,
    /// Passphrase hash (`-h`).
    pub hash: Option<String>,
    /// Key size in bits (`-s`).
    pub key_bits: Option<usize>,
    /// Size in 512-byte sectors (default: the device after the offset).
    pub size: Option<u64>,
    /// Device offset in 512-byte sectors (`-o`).
    pub offset: u64,
    /// Skip, the table's iv_offset (`-p`).
    pub skip: u64,
    /// Map read-only (`-r`).
    pub read_only: bool,
    /// Encryption sector size in bytes (`--sector-size`).
    pub sector_size: Option<u32>,
    /// IV sectors in sector-size units (`--iv-large-sectors`).
    pub iv_large_sectors: bool,
    /// The seed's defaults: aes (= aes-cbc-plain) and ripemd160.
    pub legacy: bool,
    /// allow_discards and the perf flags (the other fields are ignored).
    pub flags: Options,
}

impl PlainOptions {
    /// The cipher spec, default applied.
    pub fn cipher(&self) -> &str {
        match (&self.cipher, self.legacy) {
            (Some(c), _) => c,
            (None, true) => "aes",
            (None, false) => "aes-xts-plain64",
        }
    }

    /// The passphrase hash, default applied.
    pub fn hash(&self) -> &str {
        match (&self.hash, self.legacy) {
            (Some(h), _) => h,
            (None, true) => "ripemd160",
            (None, false) => "sha256",
        }
    }

    /// The key size in bytes (default 256 bits).
    pub fn key_size(&self) -> Result<usize> {
        let b = self.key_bits.unwrap_or(256);
        if b == 0 || !b.is_multiple_of(8) || b / 8 > crate::key::MAX_KEY_BYTES {
            return Err(SetupError::Invalid(format!(
                "key size {b} bits is not a positive multiple of 8 up to {} bits",
                crate::key::MAX_KEY_BYTES * 8
            )));
        }
        Ok(b / 8)
    }

    /// Warnings for choices no new volume should make.
    pub fn warnings(&self) -> Result<Vec<&'static str>> {
        let spec = CipherSpec::parse(self.cipher())?;
        let mut w = Vec::new();
        if spec.chain == "ecb" {
            w.push("ecb leaks identical blocks; do not use it for a new volume");
        }
        if spec.effective_ivmode() == Some("plain") {
            w.push("the 32-bit plain IV repeats after 2 TiB; use plain64 for a new volume");
        }
        Ok(w)
    }
}

/// Where the volume key comes from; the caller prompts, this derives.
pub enum KeyInput<'a> {
    /// A passphrase typed at a terminal (without its newline).
    Typed(&'a [u8]),
    /// A passphrase piped on stdin: read to the first newline.
    Piped(&'a mut dyn Read),
    /// `-d FILE`: raw, never hashed, exactly the key size.
    KeyFile(&'a Path),
    /// `-d -`: binary from stdin, hashed.
    KeyFileStdin(&'a mut dyn Read),
}

/// The volume key, by cryptsetup's plain-mode rules and limits.
pub fn volume_key(
    o: &PlainOptions,
    input: KeyInput<'_>,
    limits: Limits,
) -> Result<Zeroizing<Vec<u8>>> {
    let key_size = o.key_size()?;
    let key = match input {
        KeyInput::KeyFile(path) => {
            let shown = path.display().to_string();
            let mut file = std::fs::File::open(path)
                .map_err(|e| SetupError::Invalid(format!("cannot open key file {shown}: {e}")))?;
            // --keyfile-offset seeks in a real file rather than reading through it.
            use std::io::Seek;
            let skipped = file.seek(std::io::SeekFrom::Start(limits.offset)).is_ok();
            let limits = Limits {
                offset: if skipped { 0 } else { limits.offset },
                ..limits
            };
            keyderive::derive(
                &Source::KeyFile,
                &HashSpec::Plain(None),
                &mut file,
                limits,
                key_size,
            )
            .map_err(|e| SetupError::Invalid(format!("key file {shown}: {e}")))?
        }
        KeyInput::KeyFileStdin(r) => {
            let spec = HashSpec::parse(o.hash())?;
            keyderive::derive(&Source::KeyFileStdin, &spec, r, limits, key_size)?
        }
        KeyInput::Piped(r) => {
            let spec = HashSpec::parse(o.hash())?;
            keyderive::derive(&Source::Passphrase, &spec, r, limits, key_size)?
        }
        KeyInput::Typed(pass) => {
            let spec = HashSpec::parse(o.hash())?;
            if pass.len() > keyderive::TERMINAL_PASSPHRASE_MAX {
                return Err(SetupError::Invalid(format!(
                    "the passphrase is over {} bytes",
                    keyderive::TERMINAL_PASSPHRASE_MAX
                )));
            }
            // The same rules over what was typed, as if piped.
            let mut typed = Zeroizing::new(pass.to_vec());
            typed.push(b'\n');
            keyderive::derive(
                &Source::Passphrase,
                &spec,
                &mut &typed[..],
                limits,
                key_size,
            )?
        }
    };
    Ok(key)
}

/// Size of a block device or regular file in 512-byte sectors.
pub fn device_sectors(path: &Path) -> Result<u64> {
    let shown = path.display();
    let f = std::fs::File::open(path).map_err(|e| {
        SetupError::Invalid(if path.exists() {
            format!("cannot open device {shown}: {e}")
        } else {
            format!("device {shown} does not exist")
        })
    })?;
    let meta = f.metadata().map_err(io(format!("stat {shown}")))?;
    use std::os::unix::fs::FileTypeExt;
    if meta.file_type().is_block_device() {
        let bytes = crate::sys::blockdev::size(&f)
            .map_err(io(format!("cannot read the size of {shown}")))?;
        Ok(bytes / 512)
    } else if meta.is_file() {
        Ok(meta.len() / 512)
    } else {
        Err(SetupError::Invalid(format!(
            "{shown} is not a block device or a regular file"
        )))
    }
}

/// The table for these options on `device` (of `device_sectors`), built
/// typed and checked by the reference before any kernel sees it.
pub fn plan(o: &PlainOptions, key: &[u8], device: &str, device_sectors: u64) -> Result<Table> {
    let size = match o.size {
        Some(s) => s,
        None => device_sectors
            .checked_sub(o.offset)
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                SetupError::Invalid(format!(
                    "device {device} has {device_sectors} sectors, nothing after offset {}",
                    o.offset
                ))
            })?,
    };
    if o.offset
        .checked_add(size)
        .is_none_or(|end| end > device_sectors)
    {
        return Err(SetupError::Invalid(format!(
            "offset {} + size {size} sectors is past the end of {device} ({device_sectors} sectors)",
            o.offset
        )));
    }
    let options = Options {
        sector_size: o.sector_size,
        iv_large_sectors: o.iv_large_sectors,
        ..o.flags.clone()
    };
    let params = CryptParams::new(CipherSpec::parse(o.cipher())?, Key::from_bytes(key), device)
        .with_iv_offset(o.skip)
        .with_offset(o.offset)
        .with_options(options);
    let table = Table::new(0, size, params)?;
    let p = &table.params;
    SectorCrypt::new(&p.cipher, &p.key, p.geometry())?;
    Ok(table)
}

/// The device a mapping sits on; a regular file goes through a loop device
/// with autoclear, so removing the mapping detaches it.
struct Backing {
    path: String,
    lo: Option<LoopDevice>,
}

fn backing(device: &str, read_only: bool) -> Result<Backing> {
    let meta = std::fs::metadata(device)
        .map_err(|_| SetupError::Invalid(format!("device {device} does not exist")))?;
    if meta.is_file() {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(device)
            .map_err(io(format!("cannot open {device}")))?;
        let lo = LoopDevice::attach_autoclear(&f)
            .map_err(io(format!("attaching {device} to a loop device")))?;
        return Ok(Backing {
            path: lo.path.clone(),
            lo: Some(lo),
        });
    }
    use std::os::unix::fs::FileTypeExt;
    if !meta.file_type().is_block_device() {
        return Err(SetupError::Invalid(format!(
            "{device} is neither a block device nor a regular file"
        )));
    }
    let real = std::fs::canonicalize(device).map_err(io(format!("resolving {device}")))?;
    let name = real.file_name().unwrap_or_default();
    let holders = Path::new("/sys/class/block").join(name).join("holders");
    if std::fs::read_dir(&holders).is_ok_and(|mut d| d.next().is_some()) {
        return Err(SetupError::Invalid(format!(
            "device {device} is in use by another mapping"
        )));
    }
    Ok(Backing {
        path: device.to_string(),
        lo: None,
    })
}

fn mapper_node(name: &str) -> PathBuf {
    PathBuf::from("/dev/mapper").join(name)
}

/// Check the name and that it is free, before any key is asked for.
pub fn check_new_name(ctl: Option<&Control>, name: &str) -> Result<()> {
    dm::check_name(name).map_err(SetupError::Invalid)?;
    if let Some(ctl) = ctl
        && ctl
            .find(name)
            .map_err(io(format!("looking up {name}")))?
            .is_some()
    {
        return Err(SetupError::Exists(name.to_string()));
    }
    Ok(())
}

/// Map the device of `table` (made by [`plan`], so checked by the
/// reference) as /dev/mapper/`name`; a regular file goes through a loop
/// device, which the table then names.
pub fn create(ctl: &Control, name: &str, table: Table, read_only: bool) -> Result<Mapping> {
    create_with_uuid(ctl, name, None, table, read_only)
}

/// As [`create`], the mapping given a device-mapper UUID (LUKS volumes:
/// `CRYPT-LUKS2-<uuid without dashes>-<name>`, as cryptsetup names them).
pub fn create_with_uuid(
    ctl: &Control,
    name: &str,
    uuid: Option<&str>,
    mut table: Table,
    read_only: bool,
) -> Result<Mapping> {
    check_new_name(Some(ctl), name)?;
    let b = backing(&table.params.device, read_only)?;
    table.params.device = b.path.clone();
    let text = Zeroizing::new(table.params.to_string());
    let t = crate::sys::dm::Target {
        start: 0,
        len: table.len,
        kind: "crypt",
        params: &text,
    };
    let made =
        activate::activate_table_uuid(ctl, name, uuid, &[t], read_only).map_err(SetupError::from);
    match made {
        Ok(m) => {
            dm::make_node(&m);
            // Autoclear detaches the loop device when the mapping goes.
            if let Some(lo) = b.lo {
                std::mem::forget(lo);
            }
            Ok(m)
        }
        Err(e) => {
            if let Some(lo) = b.lo {
                let _ = lo.detach();
            }
            Err(e)
        }
    }
}

/// A live crypt mapping, read back from the kernel.
struct Live {
    m: Mapping,
    read_only: bool,
    len: u64,
    params: CryptParams,
}

fn live(ctl: &Control, name: &str) -> Result<Live> {
    let (m, read_only) = ctl
        .find(name)
        .map_err(io(format!("looking up {name}")))?
        .ok_or_else(|| SetupError::Missing(name.to_string()))?;
    let table = ctl
        .table(&m)
        .map_err(io(format!("reading the table of {name}")))?;
    let (_, len, ty, params) = table
        .first()
        .ok_or_else(|| SetupError::Invalid(format!("mapping {name} has no table")))?;
    if ty != "crypt" {
        return Err(SetupError::Invalid(format!(
            "mapping {name} is a {ty} target, not crypt"
        )));
    }
    let args: Vec<&str> = params.split_whitespace().collect();
    let mut p = CryptParams::parse_args(&args)?;
    p.device = device_path(&p.device);
    Ok(Live {
        m,
        read_only,
        len: *len,
        params: p,
    })
}

/// The kernel names devices "major:minor" in tables; find the node.
pub(crate) fn device_path(dev: &str) -> String {
    let numeric = dev.split_once(':').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    });
    if !numeric {
        return dev.to_string();
    }
    std::fs::read_link(format!("/sys/dev/block/{dev}"))
        .ok()
        .and_then(|l| {
            l.file_name()
                .map(|n| format!("/dev/{}", n.to_string_lossy()))
        })
        .unwrap_or_else(|| dev.to_string())
}

/// What `status` shows: everything but the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The cipher spec as the kernel echoes it.
    pub cipher: String,
    /// The key size in bits.
    pub key_bits: usize,
    /// The device the mapping sits on.
    pub device: String,
    /// The file behind a loop device, when the device is one.
    pub loop_file: Option<String>,
    /// The encryption sector size in bytes.
    pub sector_size: u32,
    /// Device offset in 512-byte sectors.
    pub offset: u64,
    /// Skip (the IV offset) in 512-byte sectors.
    pub skip: u64,
    /// Size of the mapping in 512-byte sectors.
    pub size: u64,
    /// Whether the mapping is read-only.
    pub read_only: bool,
    /// Flags in the kernel's status order (sector_size shown apart).
    pub flags: Vec<String>,
    /// What the mapping is, from its device-mapper UUID: PLAIN, LUKS1, LUKS2.
    pub kind: String,
    /// The volume UUID (LUKS), from the device-mapper UUID.
    pub volume_uuid: Option<String>,
}

/// A live mapping as `status` shows it, never with its key.
pub fn status(ctl: &Control, name: &str) -> Result<Status> {
    let l = live(ctl, name)?;
    let p = &l.params;
    let loop_file = Path::new("/sys/class/block")
        .join(Path::new(&p.device).file_name().unwrap_or_default())
        .join("loop/backing_file");
    let dm_uuid = ctl
        .info(name)
        .map_err(io(format!("looking up {name}")))?
        .map(|i| i.uuid)
        .unwrap_or_default();
    let (kind, volume_uuid) = match dm_uuid.strip_prefix("CRYPT-") {
        Some(rest) => match rest.split_once('-') {
            Some((k, u)) if k.starts_with("LUKS") => {
                let hexid: String = u.chars().take(32).collect();
                let v = (hexid.len() == 32).then(|| {
                    format!(
                        "{}-{}-{}-{}-{}",
                        &hexid[..8],
                        &hexid[8..12],
                        &hexid[12..16],
                        &hexid[16..20],
                        &hexid[20..]
                    )
                });
                (k.to_string(), v)
            }
            Some((k, _)) => (k.to_string(), None),
            None => (rest.to_string(), None),
        },
        None => ("PLAIN".to_string(), None),
    };
    Ok(Status {
        kind,
        volume_uuid,
        cipher: p.cipher.text.clone(),
        key_bits: p.key.size() * 8,
        device: p.device.clone(),
        loop_file: std::fs::read_to_string(loop_file)
            .ok()
            .map(|f| f.trim().to_string()),
        sector_size: p.geometry().sector_size,
        offset: p.offset,
        skip: p.iv_offset,
        size: l.len,
        read_only: l.read_only,
        flags: p
            .options
            .to_args()
            .into_iter()
            .filter(|f| !f.starts_with("sector_size"))
            .collect(),
    })
}

/// Remove the mapping (its loop device goes with it: autoclear).
pub fn remove(ctl: &Control, name: &str) -> Result<()> {
    let (m, _) = ctl
        .find(name)
        .map_err(io(format!("looking up {name}")))?
        .ok_or_else(|| SetupError::Missing(name.to_string()))?;
    activate::deactivate(ctl, &m).map_err(io(format!("removing {name}")))?;
    let _ = std::fs::remove_file(mapper_node(name));
    Ok(())
}

/// Load a new table (new options and key, on `device` or the same one)
/// into a live mapping; a refused table leaves the old one live.
pub fn reload(
    ctl: &Control,
    name: &str,
    o: &PlainOptions,
    key: &[u8],
    device: Option<&str>,
) -> Result<()> {
    let l = live(ctl, name)?;
    let device = device.unwrap_or(&l.params.device).to_string();
    let sectors = device_sectors(Path::new(&device))?;
    let t = plan(o, key, &device, sectors)?;
    let text = Zeroizing::new(t.params.to_string());
    activate::replace_table(ctl, &l.m, t.len, "crypt", &text, l.read_only || o.read_only)?;
    Ok(())
}

/// Resize a live mapping to `size` sectors, or to its device after the offset.
pub fn resize(ctl: &Control, name: &str, size: Option<u64>) -> Result<()> {
    let l = live(ctl, name)?;
    let size = match size {
        Some(s) => s,
        None => device_sectors(Path::new(&l.params.device))?
            .checked_sub(l.params.offset)
            .ok_or_else(|| SetupError::Invalid("the device is smaller than the offset".into()))?,
    };
    let t = Table::new(0, size, l.params)?;
    let text = Zeroizing::new(t.params.to_string());
    activate::replace_table(ctl, &l.m, size, "crypt", &text, l.read_only)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_todays_cryptsetup_and_the_seed_with_legacy() {
        let o = PlainOptions::default();
        assert_eq!(
            (o.cipher(), o.hash(), o.key_size().unwrap()),
            ("aes-xts-plain64", "sha256", 32)
        );
        let l = PlainOptions {
            legacy: true,
            ..Default::default()
        };
        assert_eq!((l.cipher(), l.hash()), ("aes", "ripemd160"));
    }

    #[test]
    fn plan_builds_the_table_the_kernel_will_get() {
        let o = PlainOptions {
            cipher: Some("aes-cbc-essiv:sha256".into()),
            key_bits: Some(128),
            offset: 8,
            skip: 8,
            sector_size: Some(4096),
            flags: Options {
                allow_discards: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let t = plan(&o, &[7u8; 16], "/dev/loop9", 2048).unwrap();
        assert_eq!(
            t.redacted(),
            format!(
                "0 2040 crypt aes-cbc-essiv:sha256 {} 8 /dev/loop9 8 2 allow_discards sector_size:4096",
                "0".repeat(32)
            )
        );
    }
}
