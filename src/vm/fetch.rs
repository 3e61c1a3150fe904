//! Where guest kernels come from: Debian's cloud kernels fetched with
//! `apt-get download` and unpacked (never installed), a local .deb, or a
//! kernel developer's own bzImage and modules tree. Unpacked kernels are
//! cached under the user's cache directory.

use super::{VmError, io};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Debug, PartialEq, Eq)]
/// Where a guest kernel comes from.
pub enum KernelSource {
    /// `debian:6.1`, `debian:6.12`, `debian:5.10`.
    Debian(String),
    /// A linux-image .deb file.
    Deb(PathBuf),
    /// Own build: bzImage and a lib/modules/<version> directory.
    Image {
        /// The kernel image.
        bzimage: PathBuf,
        /// Its lib/modules/<version>, with modules.dep.
        modules: PathBuf,
    },
}

impl std::str::FromStr for KernelSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("debian:") {
            Some(v @ ("5.10" | "6.1" | "6.12")) => Ok(KernelSource::Debian(v.into())),
            Some(v) => Err(format!(
                "unknown Debian kernel '{v}' (known: 5.10, 6.1, 6.12)"
            )),
            None => Err(format!(
                "kernel '{s}' is not debian:<5.10|6.1|6.12> (use --kernel-deb or --kernel-image for others)"
            )),
        }
    }
}

impl KernelSource {
    /// The dmch arguments that name this kernel (for reproduce lines).
    pub fn to_args(&self) -> String {
        match self {
            KernelSource::Debian(v) => format!("--kernel debian:{v}"),
            KernelSource::Deb(p) => format!("--kernel-deb {}", p.display()),
            KernelSource::Image { bzimage, modules } => format!(
                "--kernel-image {} --modules {}",
                bzimage.display(),
                modules.display()
            ),
        }
    }
}

/// A kernel ready to boot.
#[derive(Clone, Debug)]
pub struct PreparedKernel {
    /// Shown in reports, e.g. `debian:6.12 (linux-image-...)`.
    pub label: String,
    /// The kernel image to boot.
    pub vmlinuz: PathBuf,
    /// lib/modules/<version>, with modules.dep.
    pub modules_root: PathBuf,
}

impl PreparedKernel {
    /// `template:<name>` for every crypto/<name> module, loadable or built
    /// in: how the host tells a mode the kernel lacks from one it refuses.
    pub fn crypto_templates(&self) -> std::collections::BTreeSet<String> {
        let mut set = std::collections::BTreeSet::new();
        for f in ["modules.dep", "modules.builtin"] {
            let text = std::fs::read_to_string(self.modules_root.join(f)).unwrap_or_default();
            for line in text.lines() {
                let path = line.split(':').next().unwrap_or("");
                if let Some(rest) = path.strip_prefix("kernel/crypto/")
                    && !rest.contains('/')
                {
                    let name = rest.split(".ko").next().unwrap_or(rest);
                    set.insert(format!("template:{name}"));
                }
            }
        }
        set
    }
}

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("dmch").join("kernels")
}

fn run(cmd: &mut Command, what: &str) -> Result<String, VmError> {
    let out = cmd.output().map_err(io(format!("running {what}")))?;
    if !out.status.success() {
        return Err(VmError::Setup(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Compare package versions embedded in names numerically, field by field.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// apt options for a release the host's sources lack: 5.10 lives in
/// bullseye, reached through a private apt state under the cache, so the
/// system's apt configuration is never touched.
fn apt_options(version: &str, cache: &Path) -> Result<Vec<String>, VmError> {
    if version != "5.10" {
        return Ok(Vec::new());
    }
    let d = cache.join("apt-bullseye");
    for sub in ["lists/partial", "cache/archives/partial", "etc"] {
        std::fs::create_dir_all(d.join(sub)).map_err(io("creating the private apt state"))?;
    }
    let list = d.join("etc/sources.list");
    std::fs::write(&list, "deb http://deb.debian.org/debian bullseye main\n")
        .map_err(io("writing the private sources.list"))?;
    let opts: Vec<String> = vec![
        format!("-oDir::Etc::sourcelist={}", list.display()),
        "-oDir::Etc::sourceparts=-".into(),
        format!("-oDir::State::Lists={}", d.join("lists").display()),
        format!("-oDir::Cache={}", d.join("cache").display()),
        "-oAPT::Sandbox::User=root".into(),
    ];
    let has_lists = std::fs::read_dir(d.join("lists"))
        .map(|r| {
            r.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().contains("Packages"))
        })
        .unwrap_or(false);
    if !has_lists {
        run(
            Command::new("apt-get").args(&opts).args(["-q", "update"]),
            "apt-get update (bullseye, private state)",
        )?;
    }
    Ok(opts)
}

fn debian_package(version: &str, opts: &[String]) -> Result<String, VmError> {
    let pattern = match version {
        "6.1" => r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64$",
        "6.12" => r"^linux-image-6\.12\.[0-9]+\+deb[0-9]+-cloud-amd64$",
        _ => r"^linux-image-5\.10\.0-[0-9]+-cloud-amd64$",
    };
    let out = run(
        Command::new("apt-cache")
            .args(opts)
            .args(["search", "--names-only", pattern]),
        "apt-cache search",
    )?;
    out.lines()
        .filter_map(|l| l.split(' ').next())
        .max_by_key(|n| version_key(n))
        .map(String::from)
        .ok_or_else(|| {
            VmError::Setup(format!(
                "no package for debian:{version} in the apt sources{}",
                if version == "5.10" {
                    " (bullseye)"
                } else {
                    " (run apt-get update)"
                }
            ))
        })
}

/// The file that marks a cache entry complete: SHA-256 of the kernel image
/// and of modules.dep, written last. An entry without it, or whose files no
/// longer match it (a killed unpack, a damaged disk), is made again.
const MANIFEST: &str = "dmch-complete";

fn manifest_of(vmlinuz: &Path, modules_root: &Path) -> Option<String> {
    let k = std::fs::read(vmlinuz).ok()?;
    let d = std::fs::read(modules_root.join("modules.dep")).ok()?;
    Some(format!(
        "vmlinuz {}\nmodules.dep {}\n",
        hex::encode(crate::hash::sha256(&k)),
        hex::encode(crate::hash::sha256(&d))
    ))
}

/// Locate the kernel image and modules of an unpacked package.
fn locate(dir: &Path) -> Result<(PathBuf, PathBuf), VmError> {
    let vmlinuz = std::fs::read_dir(dir.join("boot"))
        .map_err(io(format!("reading {}/boot", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz"))
        })
        .ok_or_else(|| VmError::Setup(format!("{} has no boot/vmlinuz", dir.display())))?;
    let modules_dir = dir.join("lib/modules");
    let version = std::fs::read_dir(&modules_dir)
        .map_err(io("reading lib/modules of the package"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .ok_or_else(|| VmError::Setup("the package has no modules".into()))?;
    Ok((vmlinuz, modules_dir.join(version)))
}

/// A complete cache entry, or `None` (then it is removed, to be made again).
fn cached(dir: &Path, label: &str) -> Option<PreparedKernel> {
    if !dir.exists() {
        return None;
    }
    let good = (|| {
        let want = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
        let (vmlinuz, modules_root) = locate(dir).ok()?;
        (manifest_of(&vmlinuz, &modules_root)? == want).then_some(PreparedKernel {
            label: label.to_string(),
            vmlinuz,
            modules_root,
        })
    })();
    if good.is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
    good
}

/// Unpack a .deb into `dir` (through a private partial directory, renamed
/// into place only when depmod has run and the manifest is written).
fn unpack(deb: &Path, dir: &Path, label: String) -> Result<PreparedKernel, VmError> {
    if let Some(k) = cached(dir, &label) {
        return Ok(k);
    }
    let tmp = dir.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    let made = (|| {
        run(
            Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tmp),
            "dpkg-deb -x",
        )?;
        let (vmlinuz, modules_root) = locate(&tmp)?;
        // Debian packages ship no modules.dep; depmod makes it inside the cache.
        if !modules_root.join("modules.dep").exists() {
            let version = modules_root
                .file_name()
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default();
            run(
                Command::new("depmod").arg("-b").arg(&tmp).arg(&version),
                "depmod (install kmod)",
            )?;
        }
        let m = manifest_of(&vmlinuz, &modules_root)
            .ok_or_else(|| VmError::Setup("the unpacked kernel cannot be read back".into()))?;
        std::fs::write(tmp.join(MANIFEST), m).map_err(io("writing the cache manifest"))?;
        std::fs::rename(&tmp, dir).map_err(io("moving the unpacked kernel into the cache"))
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let (vmlinuz, modules_root) = locate(dir)?;
    Ok(PreparedKernel {
        label,
        vmlinuz,
        modules_root,
    })
}

/// Held while a kernel is fetched or unpacked: two runs at once share the
/// cache without one reading what the other is still writing.
struct CacheLock {
    _held: std::fs::File,
}

impl CacheLock {
    fn take(cache: &Path) -> Result<Self, VmError> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(cache.join(".lock"))
            .map_err(io("opening the kernel cache lock"))?;
        // Released when the file closes.
        f.lock().map_err(io("locking the kernel cache"))?;
        Ok(CacheLock { _held: f })
    }
}

/// The way around a package archive that cannot be reached.
fn offline_hint(pkg: &str) -> String {
    format!(
        "give the kernel yourself: --kernel-deb {pkg}_<version>_amd64.deb, or --kernel-image BZIMAGE --modules DIR"
    )
}

/// Kernels in the cache: (package directory, complete?).
pub fn cache_entries() -> Vec<(String, bool)> {
    let cache = cache_dir();
    let mut v: Vec<(String, bool)> = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir() && e.path().join("boot").exists())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.path().join(MANIFEST).exists())
        })
        .collect();
    v.sort();
    v
}

/// A complete kernel from the cache, newest first, for probes that need
/// something to boot but should not download anything.
pub fn any_cached() -> Option<PreparedKernel> {
    let cache = cache_dir();
    let mut names: Vec<String> = cache_entries()
        .into_iter()
        .filter(|e| e.1)
        .map(|e| e.0)
        .collect();
    names.sort_by_key(|n| std::cmp::Reverse(version_key(n)));
    names
        .into_iter()
        .find_map(|n| cached(&cache.join(&n), &format!("cached:{n}")))
}

/// The apt state the fetcher uses: the system's lists, and the private
/// bullseye state for 5.10 when it exists.
pub fn apt_state() -> Vec<String> {
    let count = |d: &Path| {
        std::fs::read_dir(d)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().contains("_Packages"))
                    .count()
            })
            .unwrap_or(0)
    };
    let mut v = vec![format!(
        "system apt lists: {} package lists in /var/lib/apt/lists{}",
        count(Path::new("/var/lib/apt/lists")),
        if which("apt-get") {
            ""
        } else {
            " (no apt-get)"
        }
    )];
    let private = cache_dir().join("apt-bullseye/lists");
    if private.exists() {
        v.push(format!(
            "private bullseye state (debian:5.10): {} package lists in {}",
            count(&private),
            private.display()
        ));
    }
    v
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Fetch (or find in the cache) and unpack a kernel.
pub fn prepare(source: &KernelSource) -> Result<PreparedKernel, VmError> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).map_err(io(format!("creating {}", cache.display())))?;
    let _lock = CacheLock::take(&cache)?;
    match source {
        KernelSource::Debian(v) => {
            let generic = format!("linux-image-{v}-cloud-amd64");
            let opts = apt_options(v, &cache)
                .map_err(|e| VmError::Setup(format!("{e}; {}", offline_hint(&generic))))?;
            let pkg = debian_package(v, &opts)
                .map_err(|e| VmError::Setup(format!("{e}; {}", offline_hint(&generic))))?;
            let dir = cache.join(&pkg);
            let label = format!("debian:{v} ({pkg})");
            if let Some(k) = cached(&dir, &label) {
                return Ok(k);
            }
            // Download into a private directory: a killed download leaves
            // nothing another run could take for a whole package.
            let dl = tempfile::Builder::new()
                .prefix(".download-")
                .tempdir_in(&cache)
                .map_err(io("creating a download directory in the cache"))?;
            run(
                Command::new("apt-get")
                    .args(&opts)
                    .args(["download", "-q", &pkg])
                    .current_dir(dl.path()),
                &format!("apt-get download {pkg}"),
            )
            .map_err(|e| {
                VmError::Setup(format!(
                    "cannot download {pkg} (no reachable package archive?): {e}; {}",
                    offline_hint(&pkg)
                ))
            })?;
            let deb = std::fs::read_dir(dl.path())
                .map_err(io("reading the download directory"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == "deb"))
                .ok_or_else(|| VmError::Setup(format!("apt-get download left no {pkg} .deb")))?;
            unpack(&deb, &dir, label)
        }
        KernelSource::Deb(deb) => {
            let stem = deb
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "kernel".into());
            if !deb.is_file() {
                return Err(VmError::Setup(format!(
                    "--kernel-deb {}: no such file",
                    deb.display()
                )));
            }
            unpack(deb, &cache.join(&stem), format!("deb:{stem}"))
        }
        KernelSource::Image { bzimage, modules } => {
            if !bzimage.is_file() {
                return Err(VmError::Setup(format!(
                    "--kernel-image {}: no such file",
                    bzimage.display()
                )));
            }
            if !modules.join("modules.dep").exists() {
                return Err(VmError::Setup(format!(
                    "{} has no modules.dep (point --modules at lib/modules/<version> after modules_install)",
                    modules.display()
                )));
            }
            Ok(PreparedKernel {
                label: format!("image:{}", bzimage.display()),
                vmlinuz: bzimage.clone(),
                modules_root: modules.clone(),
            })
        }
    }
}
