//! Real setups in the original cryptsetup's syntax:
//! `dmch [OPTIONS] create|remove|reload|resize|status <name> [<device>]`,
//! today's `open --type plain <device> <name>` / `close <name>`, and
//! `derive-key`. Options may stand before or after the action, so this has
//! its own small parser rather than clap (whose `-h` is help, not hash).

use anyhow::{Context, Result, anyhow, bail};
use dmcrypt_harness::engine::SectorCrypt;
use dmcrypt_harness::key::Key;
use dmcrypt_harness::keyderive::{self, HashSpec, Limits, Source};
use dmcrypt_harness::spec::CipherSpec;
use dmcrypt_harness::sys::dm::{Control, Mapping};
use dmcrypt_harness::sys::loopdev::LoopDevice;
use dmcrypt_harness::table::{CryptParams, Table};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

const ACTIONS: &[&str] = &[
    "create",
    "remove",
    "reload",
    "resize",
    "status",
    "open",
    "close",
    "derive-key",
];

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Opts {
    pub cipher: Option<String>,
    pub hash: Option<String>,
    pub verify: bool,
    pub key_file: Option<String>,
    pub key_bits: Option<usize>,
    pub size: Option<u64>,
    pub offset: u64,
    pub skip: u64,
    pub readonly: bool,
    pub sector_size: Option<u32>,
    pub iv_large_sectors: bool,
    pub legacy: bool,
    pub keyfile_size: usize,
    pub keyfile_offset: u64,
    pub kind: Option<String>,
    pub dry_run: bool,
    pub flags: Vec<&'static str>,
}

/// Is this command line one for the setup syntax?
pub fn wants(args: &[std::ffi::OsString]) -> bool {
    let lossy: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    positionals(&lossy)
        .first()
        .is_some_and(|a| ACTIONS.contains(&a.as_str()))
}

/// Run with OS-string arguments: every one must be UTF-8 here (names,
/// specs, paths of this syntax); one that is not is named by position only.
pub fn run_os(args: &[std::ffi::OsString]) -> Result<ExitCode> {
    let mut text = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        match a.to_str() {
            Some(s) => text.push(s.to_string()),
            None => bail!("argument {} is not valid UTF-8", i + 1),
        }
    }
    run(&text)
}

/// Options that take a value (short and long spellings).
fn takes_value(o: &str) -> bool {
    matches!(
        o,
        "-c" | "--cipher"
            | "-h"
            | "--hash"
            | "-d"
            | "--key-file"
            | "-s"
            | "--key-size"
            | "-b"
            | "--size"
            | "-o"
            | "--offset"
            | "-p"
            | "--skip"
            | "--sector-size"
            | "--keyfile-size"
            | "-l"
            | "--keyfile-offset"
            | "--type"
            | "-M"
    )
}

fn positionals(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a.starts_with('-') && a.len() > 1 {
            if takes_value(a) {
                i += 1;
            }
        } else {
            out.push(a.clone());
        }
        i += 1;
    }
    out
}

fn num<T: std::str::FromStr>(opt: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| anyhow!("option {opt}: '{v}' is not a number"))
}

/// Parse options (anywhere) and positionals.
pub fn parse(args: &[String]) -> Result<(Opts, Vec<String>)> {
    let mut o = Opts::default();
    let mut pos = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let raw = &args[i];
        i += 1;
        if !(raw.starts_with('-') && raw.len() > 1) {
            pos.push(raw.clone());
            continue;
        }
        // --opt=value and -cVALUE spellings.
        let (opt, inline): (String, Option<String>) = if let Some((k, v)) = raw.split_once('=') {
            (k.to_string(), Some(v.to_string()))
        } else if !raw.starts_with("--") && raw.chars().count() > 2 {
            // -cVALUE: the option is the first two characters, not bytes.
            let cut = raw.char_indices().nth(2).map_or(raw.len(), |(i, _)| i);
            (raw[..cut].to_string(), Some(raw[cut..].to_string()))
        } else {
            (raw.clone(), None)
        };
        let mut value = || -> Result<String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            let v = args
                .get(i)
                .cloned()
                .ok_or_else(|| anyhow!("option {opt} needs a value"))?;
            i += 1;
            Ok(v)
        };
        match opt.as_str() {
            "-c" | "--cipher" => o.cipher = Some(value()?),
            "-h" | "--hash" => o.hash = Some(value()?),
            "-d" | "--key-file" => o.key_file = Some(value()?),
            "-s" | "--key-size" => o.key_bits = Some(num(&opt, &value()?)?),
            "-b" | "--size" => o.size = Some(num(&opt, &value()?)?),
            "-o" | "--offset" => o.offset = num(&opt, &value()?)?,
            "-p" | "--skip" => o.skip = num(&opt, &value()?)?,
            "--sector-size" => o.sector_size = Some(num(&opt, &value()?)?),
            "-l" | "--keyfile-size" => o.keyfile_size = num(&opt, &value()?)?,
            "--keyfile-offset" => o.keyfile_offset = num(&opt, &value()?)?,
            "-M" | "--type" => o.kind = Some(value()?),
            "-y" | "--verify-passphrase" => o.verify = true,
            "-r" | "--readonly" => o.readonly = true,
            "--iv-large-sectors" => o.iv_large_sectors = true,
            "--legacy" => o.legacy = true,
            "--dry-run" => o.dry_run = true,
            "--allow-discards" => o.flags.push("allow_discards"),
            "--perf-same_cpu_crypt" => o.flags.push("same_cpu_crypt"),
            "--perf-submit_from_crypt_cpus" => o.flags.push("submit_from_crypt_cpus"),
            "--perf-no_read_workqueue" => o.flags.push("no_read_workqueue"),
            "--perf-no_write_workqueue" => o.flags.push("no_write_workqueue"),
            "--perf-high_priority" => o.flags.push("high_priority"),
            "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option {other} (dmch --help lists them)"),
        }
    }
    if let Some(b) = o.key_bits
        && (b == 0 || b % 8 != 0 || b / 8 > dmcrypt_harness::key::MAX_KEY_BYTES)
    {
        bail!(
            "key size {b} bits is not a positive multiple of 8 up to {} bits",
            dmcrypt_harness::key::MAX_KEY_BYTES * 8
        );
    }
    Ok((o, pos))
}

pub const USAGE: &str = "\
dmch [OPTIONS] create <name> <device>     map <device> (a block device or a regular file) as /dev/mapper/<name>
dmch [OPTIONS] remove <name>              remove the mapping (and its loop device)
dmch [OPTIONS] reload <name> [<device>]   load a new table into a live mapping
dmch [OPTIONS] resize <name>              resize to -b sectors, or to the device
dmch status <name>                        show the mapping (never the key)
dmch open --type plain <device> <name>    today's spelling of create; close <name> of remove
dmch derive-key [-h HASH[:N]] [-s BITS] [-d FILE]   print the key create would load
Options (before or after the action):
  -c CIPHER   cipher spec (default aes-xts-plain64; --legacy: aes = aes-cbc-plain)
  -h HASH     passphrase hash: plain, plain:N, HASH or HASH:N (default sha256; --legacy: ripemd160)
  -y          ask for the passphrase twice
  -d FILE     key file, used raw (- reads stdin, hashed); -d /dev/urandom for swap
  -s BITS     key size in bits (default 256)
  -b SECTORS  size; -o SECTORS device offset; -p SECTORS skip (the IV offset)
  -r          read-only; --sector-size N; --iv-large-sectors; --allow-discards;
  --perf-same_cpu_crypt --perf-submit_from_crypt_cpus --perf-no_read_workqueue
  --perf-no_write_workqueue --perf-high_priority; --keyfile-size N --keyfile-offset N;
  --dry-run (print the table with the key hidden, touch nothing)
";

fn defaults(o: &Opts) -> (String, String, usize) {
    let cipher = o
        .cipher
        .clone()
        .unwrap_or_else(|| if o.legacy { "aes" } else { "aes-xts-plain64" }.into());
    let hash = o
        .hash
        .clone()
        .unwrap_or_else(|| if o.legacy { "ripemd160" } else { "sha256" }.into());
    (cipher, hash, o.key_bits.unwrap_or(256) / 8)
}

/// Read a passphrase from the terminal without echo.
fn read_passphrase(prompt: &str) -> Result<Zeroizing<Vec<u8>>> {
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    // SAFETY: termios calls on fd 0, restored before returning.
    let old = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        libc::tcgetattr(0, &mut t);
        let old = t;
        t.c_lflag &= !libc::ECHO;
        libc::tcsetattr(0, libc::TCSANOW, &t);
        old
    };
    let mut line = Zeroizing::new(String::new());
    let r = stdin.read_line(&mut line);
    unsafe {
        libc::tcsetattr(0, libc::TCSANOW, &old);
    }
    eprintln!();
    r.context("reading the passphrase")?;
    let trimmed = line.trim_end_matches(['\n', '\r']).as_bytes().to_vec();
    Ok(Zeroizing::new(trimmed))
}

/// The volume key from -d / the passphrase, as create would load it.
fn volume_key(o: &Opts, hash: &str, key_size: usize) -> Result<Zeroizing<Vec<u8>>> {
    let limits = Limits {
        offset: o.keyfile_offset,
        size: o.keyfile_size,
    };
    Ok(match o.key_file.as_deref() {
        Some("-") => {
            let spec = HashSpec::parse(hash)?;
            keyderive::derive(
                &Source::KeyFileStdin,
                &spec,
                &mut std::io::stdin().lock(),
                limits,
                key_size,
            )?
        }
        Some(f) => {
            let mut file =
                std::fs::File::open(f).with_context(|| format!("cannot open key file {f}"))?;
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
            .with_context(|| format!("key file {f}"))?
        }
        None => {
            let spec = HashSpec::parse(hash)?;
            if !std::io::stdin().is_terminal() {
                // Piped: the library's passphrase rules (first line, --keyfile-*).
                return Ok(keyderive::derive(
                    &Source::Passphrase,
                    &spec,
                    &mut std::io::stdin().lock(),
                    limits,
                    key_size,
                )?);
            }
            let pass = read_passphrase("Enter passphrase: ")?;
            if o.verify {
                let again = read_passphrase("Verify passphrase: ")?;
                if again != pass {
                    bail!("passphrases do not match");
                }
            }
            // Typed: the same rules over what was typed (cryptsetup caps a
            // terminal passphrase at 512 bytes).
            if pass.len() > keyderive::TERMINAL_PASSPHRASE_MAX {
                bail!(
                    "the passphrase is over {} bytes",
                    keyderive::TERMINAL_PASSPHRASE_MAX
                );
            }
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
    })
}

/// Size of a block device or file in 512-byte sectors.
fn device_sectors(path: &Path) -> Result<u64> {
    let f = std::fs::File::open(path)
        .with_context(|| format!("cannot open device {}", path.display()))?;
    let meta = f.metadata()?;
    use std::os::unix::fs::FileTypeExt;
    if meta.file_type().is_block_device() {
        let mut bytes: u64 = 0;
        use std::os::fd::AsRawFd;
        // SAFETY: BLKGETSIZE64 writes one u64.
        let r = unsafe { libc::ioctl(f.as_raw_fd(), 0x8008_1272u64 as _, &mut bytes) };
        if r < 0 {
            bail!(
                "cannot read the size of {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(bytes / 512)
    } else if meta.is_file() {
        Ok(meta.len() / 512)
    } else {
        bail!("{} is not a block device or a regular file", path.display())
    }
}

/// The crypt parameters for these options, checked by the reference first.
fn build_params(
    o: &Opts,
    key: &[u8],
    device: &str,
    device_sectors: u64,
) -> Result<(u64, CryptParams)> {
    let (cipher, _, _) = defaults(o);
    let mut opts: Vec<String> = o.flags.iter().map(|s| s.to_string()).collect();
    if let Some(ss) = o.sector_size {
        opts.push(format!("sector_size:{ss}"));
    }
    if o.iv_large_sectors {
        opts.push("iv_large_sectors".into());
    }
    let size = match o.size {
        Some(s) => s,
        None => device_sectors
            .checked_sub(o.offset)
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                anyhow!(
                    "device {device} has {device_sectors} sectors, nothing after offset {}",
                    o.offset
                )
            })?,
    };
    if o.offset
        .checked_add(size)
        .is_none_or(|end| end > device_sectors)
    {
        bail!(
            "offset {} + size {size} sectors is past the end of {device} ({device_sectors} sectors)",
            o.offset
        );
    }
    let key_text = Zeroizing::new(Key::from_bytes(key).table_form());
    let mut line = Zeroizing::new(format!(
        "0 {size} crypt {cipher} {} {} {device} {}",
        *key_text, o.skip, o.offset
    ));
    if !opts.is_empty() {
        line.push_str(&format!(" {} {}", opts.len(), opts.join(" ")));
    }
    let t = Table::parse(&line)?;
    SectorCrypt::new(&t.params.cipher, &t.params.key, t.params.geometry())?;
    Ok((size, t.params))
}

fn warn_weak(spec: &CipherSpec) {
    if spec.chain == "ecb" {
        eprintln!("dmch: warning: ecb leaks identical blocks; do not use it for a new volume");
    }
    if spec.effective_ivmode() == Some("plain") {
        eprintln!(
            "dmch: warning: the 32-bit plain IV repeats after 2 TiB; use plain64 for a new volume"
        );
    }
}

/// A device the mapping sits on; a regular file goes through a loop device.
struct Backing {
    path: String,
    lo: Option<LoopDevice>,
}

fn backing(device: &str, readonly: bool) -> Result<Backing> {
    let meta =
        std::fs::metadata(device).with_context(|| format!("device {device} does not exist"))?;
    if meta.is_file() {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(!readonly)
            .open(device)
            .with_context(|| format!("cannot open {device}"))?;
        let lo = LoopDevice::attach_autoclear(&f)
            .with_context(|| format!("attaching {device} to a loop device"))?;
        return Ok(Backing {
            path: lo.path.clone(),
            lo: Some(lo),
        });
    }
    use std::os::unix::fs::FileTypeExt;
    if !meta.file_type().is_block_device() {
        bail!("{device} is neither a block device nor a regular file");
    }
    // In use by another mapping?
    let real = std::fs::canonicalize(device)?;
    let name = real
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let holders = Path::new("/sys/class/block").join(&name).join("holders");
    if std::fs::read_dir(&holders)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        bail!("device {device} is in use by another mapping");
    }
    Ok(Backing {
        path: device.to_string(),
        lo: None,
    })
}

fn mapper_node(m: &Mapping) -> PathBuf {
    PathBuf::from("/dev/mapper").join(&m.name)
}

/// Without udev, make /dev/mapper/<name> ourselves.
fn make_node(m: &Mapping) {
    let p = mapper_node(m);
    if p.exists() {
        return;
    }
    let _ = std::fs::create_dir_all("/dev/mapper");
    let (maj, min) = m.major_minor();
    let c = std::ffi::CString::new(p.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: mknod with a valid path.
    unsafe {
        libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(maj, min));
    }
}

fn create(o: &Opts, name: &str, device: &str) -> Result<()> {
    let (cipher, hash, key_size) = defaults(o);
    let spec = CipherSpec::parse(&cipher)?;
    dmcrypt_harness::sys::dm::check_name(name).map_err(|e| anyhow!("{e}"))?;
    let ctl = if o.dry_run {
        None
    } else {
        Some(host_control()?)
    };
    if let Some(ctl) = &ctl
        && ctl.find(name)?.is_some()
    {
        bail!("a mapping named {name} exists already");
    }
    let key = volume_key(o, &hash, key_size)?;
    let sectors = device_sectors(Path::new(device)).map_err(|e| {
        if Path::new(device).exists() {
            e
        } else {
            anyhow!("device {device} does not exist")
        }
    })?;
    // Validate everything against the reference before touching the kernel.
    let (size, p) = build_params(o, &key, device, sectors)?;
    warn_weak(&spec);
    let Some(ctl) = ctl else {
        println!("0 {size} crypt {}", p.redacted());
        return Ok(());
    };
    let b = backing(device, o.readonly)?;
    let made = (|| -> Result<Mapping> {
        let (size, p) = build_params(o, &key, &b.path, sectors)?;
        let m = ctl
            .create(name)
            .with_context(|| format!("creating mapping {name}"))?;
        let params = Zeroizing::new(p.to_string());
        if let Err(e) = ctl
            .load(&m, 0, size, "crypt", &params, o.readonly)
            .and_then(|_| ctl.resume(&m))
        {
            let _ = ctl.remove(&m);
            return Err(anyhow!("the kernel refused the table: {e}"));
        }
        Ok(m)
    })();
    match made {
        Ok(m) => {
            make_node(&m);
            // Autoclear detaches the loop device when the mapping goes.
            if let Some(lo) = b.lo {
                std::mem::forget(lo);
            }
            Ok(())
        }
        Err(e) => {
            if let Some(lo) = b.lo {
                let _ = lo.detach();
            }
            Err(e)
        }
    }
}

fn existing(ctl: &Control, name: &str) -> Result<(Mapping, bool, u64, CryptParams)> {
    let (m, ro) = ctl
        .find(name)?
        .ok_or_else(|| anyhow!("no mapping named {name}"))?;
    let table = ctl.table(&m)?;
    let (_, len, ty, params) = table
        .first()
        .ok_or_else(|| anyhow!("mapping {name} has no table"))?;
    if ty != "crypt" {
        bail!("mapping {name} is a {ty} target, not crypt");
    }
    let args: Vec<&str> = params.split_whitespace().collect();
    let mut p = CryptParams::parse_args(&args)?;
    p.device = device_path(&p.device);
    Ok((m, ro, *len, p))
}

/// The kernel names devices "major:minor" in tables; find the node.
fn device_path(dev: &str) -> String {
    let numeric = dev.split_once(':').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && (a.to_string() + b).bytes().all(|c| c.is_ascii_digit())
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

fn swap_table(ctl: &Control, m: &Mapping, size: u64, params: &CryptParams, ro: bool) -> Result<()> {
    let text = Zeroizing::new(params.to_string());
    ctl.suspend(m).context("suspending")?;
    if let Err(e) = ctl.load(m, 0, size, "crypt", &text, ro) {
        // Roll back: the old table is still active once resumed.
        let _ = ctl.resume(m);
        bail!("the kernel refused the new table (the old one stays): {e}");
    }
    ctl.resume(m).context("resuming")?;
    Ok(())
}

fn status(name: &str) -> Result<()> {
    let ctl = host_control()?;
    let (m, ro, len, p) = existing(&ctl, name)?;
    let g = p.geometry();
    println!("/dev/mapper/{name} is active.");
    println!("  type:        PLAIN");
    println!("  cipher:      {}", p.cipher.text);
    println!("  keysize:     {} bits", p.key.size() * 8);
    println!("  device:      {}", p.device);
    let loop_file = Path::new("/sys/class/block")
        .join(Path::new(&p.device).file_name().unwrap_or_default())
        .join("loop/backing_file");
    if let Ok(f) = std::fs::read_to_string(loop_file) {
        println!("  loop:        {}", f.trim());
    }
    println!("  sector size: {}", g.sector_size);
    println!("  offset:      {} sectors", p.offset);
    println!("  skip:        {} sectors", p.iv_offset);
    println!("  size:        {len} sectors");
    println!(
        "  mode:        {}",
        if ro { "readonly" } else { "read/write" }
    );
    let flags: Vec<String> = p
        .options
        .to_args()
        .into_iter()
        .filter(|f| !f.starts_with("sector_size"))
        .collect();
    if !flags.is_empty() {
        println!("  flags:       {}", flags.join(" "));
    }
    let _ = m;
    Ok(())
}

fn remove(name: &str) -> Result<()> {
    let ctl = host_control()?;
    let (m, _) = ctl
        .find(name)?
        .ok_or_else(|| anyhow!("no mapping named {name}"))?;
    ctl.remove(&m).with_context(|| format!("removing {name}"))?;
    let _ = std::fs::remove_file(mapper_node(&m));
    Ok(())
}

fn reload(o: &Opts, name: &str, device: Option<&str>) -> Result<()> {
    let ctl = host_control()?;
    let (m, ro, _, old) = existing(&ctl, name)?;
    let device = device.unwrap_or(&old.device).to_string();
    let (_, hash, key_size) = defaults(o);
    let key = volume_key(o, &hash, key_size)?;
    let sectors = device_sectors(Path::new(&device))?;
    let (size, p) = build_params(o, &key, &device, sectors)?;
    swap_table(&ctl, &m, size, &p, ro || o.readonly)
}

fn resize(o: &Opts, name: &str) -> Result<()> {
    let ctl = host_control()?;
    let (m, ro, _, p) = existing(&ctl, name)?;
    let size = match o.size {
        Some(s) => s,
        None => device_sectors(Path::new(&p.device))?
            .checked_sub(p.offset)
            .ok_or_else(|| anyhow!("the device is smaller than the offset"))?,
    };
    let line = Zeroizing::new(format!("0 {size} crypt {p}"));
    Table::parse(&line)?;
    swap_table(&ctl, &m, size, &p, ro)
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let (o, pos) = parse(args)?;
    let action = pos[0].as_str();
    let arg = |i: usize, what: &str| -> Result<&str> {
        pos.get(i)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("{action} needs <{what}> (dmch --help)"))
    };
    let max = match action {
        "create" | "open" | "reload" => 3,
        "derive-key" => 1,
        _ => 2,
    };
    if pos.len() > max {
        bail!("{action}: unexpected argument '{}'", pos[max]);
    }
    match action {
        "create" => create(&o, arg(1, "name")?, arg(2, "device")?)?,
        "open" => {
            match o.kind.as_deref() {
                Some("plain") => {}
                Some(t) => bail!("open --type {t}: only plain mappings are supported"),
                None => bail!("open needs --type plain"),
            }
            create(&o, arg(2, "name")?, arg(1, "device")?)?
        }
        "remove" | "close" => remove(arg(1, "name")?)?,
        "status" => status(arg(1, "name")?)?,
        "reload" => reload(&o, arg(1, "name")?, pos.get(2).map(String::as_str))?,
        "resize" => resize(&o, arg(1, "name")?)?,
        "derive-key" => {
            let (_, hash, key_size) = defaults(&o);
            let key = volume_key(&o, &hash, key_size)?;
            let hexkey = Zeroizing::new(hex::encode(&key[..]));
            println!("{}", *hexkey);
        }
        _ => unreachable!("checked by wants()"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The device-mapper control handle, or one line saying what the host lacks.
fn host_control() -> Result<Control> {
    dmcrypt_harness::sys::probe::control()
        .map_err(|why| anyhow!("this host cannot set up dm-crypt mappings: {why}"))
}
