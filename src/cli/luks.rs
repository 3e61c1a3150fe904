//! `dmch luks dump|decrypt|encrypt|format|add-key|remove-key|change-key|
//! kill-slot`: LUKS1 and LUKS2 volumes offline, no root and no
//! device-mapper. The work is `dmcrypt_harness::luks`'s; this file parses,
//! asks for passphrases and prints.

use super::luks_keys::{self, KdfOpts, KeyOpts};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use dmcrypt_harness::cipher::Direction;
use dmcrypt_harness::keyderive::Limits;
use dmcrypt_harness::luks::manage::{self, DataSize, FormatOptions};
use dmcrypt_harness::luks::{Image, dump};
use dmcrypt_harness::output::Output;
use dmcrypt_harness::transform::transform_region;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

#[derive(Subcommand)]
pub enum LuksCommand {
    /// Show a LUKS header (`cryptsetup luksDump`); keys only with --dump-volume-key.
    Dump(DumpArgs),
    /// Decrypt the data of IMAGE into OUTPUT.
    Decrypt(DataArgs),
    /// Encrypt INPUT as the data of IMAGE (after its header).
    Encrypt(DataArgs),
    /// Write a new LUKS header (and, with --from, the data) to IMAGE.
    Format(FormatArgs),
    /// Add a passphrase (NEW_KEY_FILE, or asked) to a free key slot.
    AddKey(AddArgs),
    /// Remove the key slot the passphrase opens.
    RemoveKey(RemoveArgs),
    /// Replace the passphrase of the key slot it opens.
    ChangeKey(AddArgs),
    /// Wipe key slot SLOT.
    KillSlot(KillArgs),
}

#[derive(Args)]
pub struct DumpArgs {
    image: PathBuf,
    /// The header as JSON (LUKS2: the metadata document itself).
    #[arg(long)]
    json: bool,
    /// Also print the volume key (asks for a passphrase): the one place a
    /// LUKS key is printed.
    #[arg(long)]
    dump_volume_key: bool,
    #[command(flatten)]
    key: KeyOpts,
}

#[derive(Args)]
pub struct DataArgs {
    #[command(flatten)]
    key: KeyOpts,
    /// Threads (0 = all cores).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// decrypt: IMAGE; encrypt: the plaintext INPUT.
    first: PathBuf,
    /// decrypt: OUTPUT (- for stdout); encrypt: IMAGE.
    second: PathBuf,
}

#[derive(Args)]
pub struct FormatArgs {
    image: PathBuf,
    /// luks1 or luks2.
    #[arg(long = "type", value_name = "TYPE", default_value = "luks2")]
    kind: String,
    /// Cipher spec of the data and the key slots.
    #[arg(short = 'c', long, default_value = "aes-xts-plain64")]
    cipher: String,
    /// Volume key size in bits (default 512 for xts, else 256).
    #[arg(short = 's', long = "key-size", value_name = "BITS")]
    key_bits: Option<usize>,
    /// LUKS2 encryption sector size (default 4096 when the data allows).
    #[arg(long, value_name = "BYTES")]
    sector_size: Option<u32>,
    #[command(flatten)]
    kdf: KdfOpts,
    #[arg(long)]
    uuid: Option<String>,
    /// LUKS2 label.
    #[arg(long, default_value = "")]
    label: String,
    /// LUKS2 subsystem.
    #[arg(long, default_value = "")]
    subsystem: String,
    /// Data offset in 512-byte sectors (default: 16 MiB for LUKS2, 2 MiB for LUKS1).
    #[arg(long, value_name = "SECTORS")]
    offset: Option<u64>,
    /// LUKS2 metadata size in bytes: 16384 to 4194304, a power of two.
    #[arg(long, value_name = "BYTES", default_value_t = 16384)]
    luks2_metadata_size: u64,
    /// Store this volume key (raw bytes) instead of a random one.
    #[arg(long, value_name = "FILE")]
    volume_key_file: Option<PathBuf>,
    /// Build IMAGE from this plaintext in one pass (header, then the data encrypted).
    #[arg(long, value_name = "PLAIN")]
    from: Option<PathBuf>,
    /// Overwrite a LUKS header or a file system that IMAGE already holds.
    #[arg(long)]
    force: bool,
    /// Ask for the passphrase twice.
    #[arg(short = 'y', long = "verify-passphrase")]
    verify: bool,
    /// The new passphrase from FILE (every byte; - for stdin).
    #[arg(short = 'd', long = "key-file", value_name = "FILE|-")]
    key_file: Option<PathBuf>,
    /// LUKS2 persistent flag (allow-discards, same-cpu-crypt, ...; repeatable).
    #[arg(long = "persistent-flag", value_name = "FLAG")]
    flags: Vec<String>,
    /// Threads for --from (0 = all cores).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
}

#[derive(Args)]
pub struct AddArgs {
    image: PathBuf,
    /// The new passphrase from this file (every byte); without it, asked
    /// (or the second line of a pipe).
    new_key_file: Option<PathBuf>,
    #[command(flatten)]
    key: KeyOpts,
    /// Unlock with this volume key file instead of a passphrase.
    #[arg(long, value_name = "FILE")]
    volume_key_file: Option<PathBuf>,
    /// The new key slot (add-key; default: the first free one).
    #[arg(long, value_name = "N")]
    new_key_slot: Option<u32>,
    #[command(flatten)]
    kdf: KdfOpts,
}

#[derive(Args)]
pub struct RemoveArgs {
    image: PathBuf,
    #[command(flatten)]
    key: KeyOpts,
    /// Also remove the last key slot in use.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct KillArgs {
    image: PathBuf,
    slot: u32,
    /// The passphrase of another key slot proves the volume stays openable.
    #[command(flatten)]
    key: KeyOpts,
    /// Kill without a passphrase (even the last key slot in use).
    #[arg(long)]
    force: bool,
}

fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    if threads > 1024 {
        bail!("--threads {threads} is over 1024");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting worker threads")
}

/// The volume key, from `--volume-key-file` or a passphrase.
fn unlock(
    image: &Image,
    k: &KeyOpts,
    vk_file: Option<&Path>,
) -> Result<(Option<u32>, Zeroizing<Vec<u8>>)> {
    if let Some(f) = vk_file {
        let vk =
            Zeroizing::new(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?);
        if !image.header.check_volume_key(&vk)? {
            bail!("{} does not hold this volume's key", f.display());
        }
        return Ok((None, vk));
    }
    let pass = k.passphrase(&format!("Enter passphrase for {}: ", image.shown()))?;
    let (slot, vk) = image.unlock(&pass, k.key_slot, k.pbkdf_memory_limit)?;
    Ok((Some(slot), vk))
}

fn dump_cmd(a: DumpArgs) -> Result<()> {
    let image = Image::open(&a.image, false)?;
    let vk = if a.dump_volume_key {
        Some(unlock(&image, &a.key, None)?.1)
    } else {
        None
    };
    if a.json {
        let mut j = dump::json(&image.header);
        if let Some(vk) = &vk {
            j["volume_key"] = hex::encode(&vk[..]).into();
        }
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(());
    }
    print!("{}", dump::text(&image.header, image.shown(), image.len));
    if let Some(vk) = vk {
        println!("MK bits:       \t{}", vk.len() * 8);
        let h = Zeroizing::new(hex::encode(&vk[..]));
        let lines: Vec<String> = h
            .as_bytes()
            .chunks(32)
            .map(|c| {
                c.chunks(2)
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        println!("MK dump:\t{}", lines.join("\n\t\t"));
    }
    Ok(())
}

fn decrypt_cmd(a: DataArgs) -> Result<()> {
    let image = Image::open(&a.first, false)?;
    let seg = image.segment()?;
    let (_, vk) = unlock(&image, &a.key, None)?;
    let engine = image.data_engine(&vk)?;
    dmcrypt_harness::interrupt::install();
    let pool = pool(a.threads)?;
    let mut out = Output::open(&a.second, Some(seg.size))?;
    match out.positioned() {
        Some(f) => {
            transform_region(
                &engine,
                &image.file,
                seg.offset,
                seg.size,
                f,
                0,
                0,
                Direction::Decrypt,
                &pool,
            )?;
            out.wrote(seg.size);
        }
        None => {
            let mut buf = vec![0u8; 8 << 20];
            let mut done = 0;
            while done < seg.size {
                let n = (seg.size - done).min(buf.len() as u64) as usize;
                image
                    .file
                    .read_exact_at(&mut buf[..n], seg.offset + done)
                    .context("reading the image")?;
                pool.install(|| engine.crypt(done / 512, &mut buf[..n], Direction::Decrypt))?;
                out.write(&buf[..n])?;
                done += n as u64;
            }
        }
    }
    out.commit()?;
    Ok(())
}

/// Encrypt `plain` (a regular file) behind the header of `image_path`: a
/// regular image is replaced by header + data when all went well, a
/// device written in place.
fn encrypt_into(
    image: &Image,
    image_path: &Path,
    plain: &Path,
    vk: &[u8],
    threads: usize,
) -> Result<u64> {
    let seg = image.segment()?;
    let input =
        std::fs::File::open(plain).with_context(|| format!("opening {}", plain.display()))?;
    let len = input.metadata()?.len();
    let m = input.metadata()?;
    if !m.is_file() {
        bail!("{} is not a regular file", plain.display());
    }
    let engine = image.data_engine(vk)?;
    dmcrypt_harness::interrupt::install();
    let pool = pool(threads)?;
    let mut out = Output::open(image_path, Some(seg.offset + len))?;
    let f = out
        .positioned()
        .context("the image must be a regular file or a block device")?;
    if out.kind() == dmcrypt_harness::output::Kind::Replace {
        // The header and key slots come along into the new file.
        let mut head = vec![0u8; seg.offset as usize];
        image
            .file
            .read_exact_at(&mut head, 0)
            .context("reading the header")?;
        f.write_all_at(&head, 0).context("writing the header")?;
    } else if len > seg.size {
        bail!(
            "{} holds {len} bytes; the volume's data segment holds {}",
            plain.display(),
            seg.size
        );
    }
    transform_region(
        &engine,
        &input,
        0,
        len,
        f,
        seg.offset,
        0,
        Direction::Encrypt,
        &pool,
    )?;
    out.wrote(seg.offset + len);
    out.commit()?;
    Ok(len)
}

fn encrypt_cmd(a: DataArgs) -> Result<()> {
    let image = Image::open(&a.second, false)?;
    let (_, vk) = unlock(&image, &a.key, None)?;
    encrypt_into(&image, &a.second, &a.first, &vk, a.threads)?;
    Ok(())
}

fn format_cmd(a: FormatArgs) -> Result<()> {
    let version = match a.kind.as_str() {
        "luks1" => 1,
        "luks2" | "luks" => 2,
        t => bail!("--type {t}: luks1 or luks2"),
    };
    let bits = a
        .key_bits
        .unwrap_or(if a.cipher.contains("-xts-") { 512 } else { 256 });
    if bits == 0 || !bits.is_multiple_of(8) || bits > 4096 {
        bail!("--key-size {bits} is not a whole number of bytes up to 4096 bits");
    }
    let volume_key = match &a.volume_key_file {
        Some(f) => Some(Zeroizing::new(
            std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        )),
        None => None,
    };
    let o = FormatOptions {
        version,
        cipher: a.cipher.clone(),
        key_bytes: bits / 8,
        sector_size: a.sector_size,
        kdf: a.kdf.choice(version),
        uuid: a.uuid.clone(),
        label: a.label.clone(),
        subsystem: a.subsystem.clone(),
        volume_key,
        offset: a.offset.map(|s| s * 512),
        metadata_size: a.luks2_metadata_size,
        flags: a.flags.clone(),
    };
    if version == 1 && o.kdf.kind != "pbkdf2" {
        bail!("LUKS1 key slots use pbkdf2 (--pbkdf pbkdf2)");
    }
    // What IMAGE holds now: refused unless --force.
    if let Ok(f) = std::fs::File::open(&a.image) {
        let mut head = vec![0u8; dmcrypt_harness::signature::PROBE_LEN];
        let n = f.read_at(&mut head, 0).unwrap_or(0);
        if let Some(what) = dmcrypt_harness::signature::identify(&head[..n])
            && !a.force
        {
            bail!("{} holds {what}; --force overwrites it", a.image.display());
        }
    }
    let size = match &a.from {
        Some(p) => DataSize::Plain(
            std::fs::metadata(p)
                .with_context(|| format!("reading {}", p.display()))?
                .len(),
        ),
        None => {
            let f = std::fs::File::open(&a.image).with_context(|| {
                format!(
                    "opening {} (without --from it must exist; make it with truncate -s)",
                    a.image.display()
                )
            })?;
            DataSize::Device(dmcrypt_harness::luks::length_of(
                &f,
                &a.image.display().to_string(),
            )?)
        }
    };
    let pass = luks_keys::from(
        a.key_file.as_deref(),
        Limits::default(),
        "Enter passphrase: ",
        a.verify,
    )?;
    let f = manage::format(&o, &pass, size)?;
    match &a.from {
        None => {
            let dev = std::fs::OpenOptions::new().write(true).open(&a.image)?;
            dev.write_all_at(&f.bytes, 0)
                .context("writing the header")?;
            dev.sync_all().context("syncing the image")?;
        }
        Some(plain) => {
            // Header and data in one new file, put in place when complete.
            let DataSize::Plain(len) = size else {
                unreachable!()
            };
            let input = std::fs::File::open(plain)
                .with_context(|| format!("opening {}", plain.display()))?;
            let engine = f.engine()?;
            dmcrypt_harness::interrupt::install();
            let pool = pool(a.threads)?;
            let mut out = Output::open(&a.image, Some(f.offset + len))?;
            let dst = out
                .positioned()
                .context("IMAGE must be a regular file or a block device")?;
            dst.write_all_at(&f.bytes, 0)
                .context("writing the header")?;
            transform_region(
                &engine,
                &input,
                0,
                len,
                dst,
                f.offset,
                0,
                Direction::Encrypt,
                &pool,
            )?;
            out.wrote(f.offset + len);
            out.commit()?;
        }
    }
    eprintln!(
        "dmch: formatted {} as LUKS{version}, UUID {}",
        a.image.display(),
        f.uuid
    );
    Ok(())
}

fn add_cmd(a: AddArgs, change: bool) -> Result<()> {
    let image = Image::open(&a.image, true)?;
    let (slot, vk) = unlock(&image, &a.key, a.volume_key_file.as_deref())?;
    let new = luks_keys::from(
        a.new_key_file.as_deref(),
        Limits::default(),
        "Enter new passphrase: ",
        true,
    )?;
    let choice = a.kdf.choice(image.header.version());
    let n = if change {
        let Some(old) = slot else {
            bail!("change-key needs the old passphrase, not a volume key file");
        };
        manage::change_key(&image, old, &vk, &new, &choice)?
    } else {
        manage::add_key(&image, &vk, &new, a.new_key_slot, &choice)?
    };
    eprintln!(
        "dmch: key slot {n} {}",
        if change { "changed" } else { "added" }
    );
    Ok(())
}

fn remove_cmd(a: RemoveArgs) -> Result<()> {
    let image = Image::open(&a.image, true)?;
    let (slot, _) = unlock(&image, &a.key, None)?;
    let slot = slot.expect("a passphrase names its slot");
    manage::kill_slot(&image, slot, a.force)?;
    eprintln!("dmch: key slot {slot} removed");
    Ok(())
}

fn kill_cmd(a: KillArgs) -> Result<()> {
    let image = Image::open(&a.image, true)?;
    if !image
        .header
        .slots()
        .iter()
        .any(|s| s.id == a.slot && s.active)
    {
        bail!("key slot {} is not in use", a.slot);
    }
    if !a.force {
        // As cryptsetup: prove another slot opens, so the volume stays openable.
        let pass = a.key.passphrase(&format!(
            "Enter any remaining passphrase for {}: ",
            image.shown()
        ))?;
        let mut opened = false;
        for s in image
            .header
            .slots()
            .iter()
            .filter(|s| s.active && s.id != a.slot)
        {
            if image
                .try_slot(s.id, &pass, a.key.pbkdf_memory_limit)?
                .is_some()
            {
                opened = true;
                break;
            }
        }
        if !opened {
            bail!(
                "the passphrase opens no key slot but {}: give one of a slot that stays (or --force)",
                a.slot
            );
        }
    }
    manage::kill_slot(&image, a.slot, a.force)?;
    eprintln!("dmch: key slot {} killed", a.slot);
    Ok(())
}

pub fn run(c: LuksCommand) -> Result<ExitCode> {
    match c {
        LuksCommand::Dump(a) => dump_cmd(a)?,
        LuksCommand::Decrypt(a) => decrypt_cmd(a)?,
        LuksCommand::Encrypt(a) => encrypt_cmd(a)?,
        LuksCommand::Format(a) => format_cmd(a)?,
        LuksCommand::AddKey(a) => add_cmd(a, false)?,
        LuksCommand::ChangeKey(a) => add_cmd(a, true)?,
        LuksCommand::RemoveKey(a) => remove_cmd(a)?,
        LuksCommand::KillSlot(a) => kill_cmd(a)?,
    }
    Ok(ExitCode::SUCCESS)
}
