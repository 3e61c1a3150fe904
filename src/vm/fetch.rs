//! Where guest kernels come from: Debian's cloud kernels fetched with
//! `apt-get download` and unpacked (never installed), a local .deb, or a
//! kernel developer's own bzImage and modules tree. Unpacked kernels are
//! cached under the user's cache directory.

use super::{VmError, io};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelSource {
    /// `debian:6.1`, `debian:6.12`, `debian:5.10`.
    Debian(String),
    /// A linux-image .deb file.
    Deb(PathBuf),
    /// Own build: bzImage and a lib/modules/<version> directory.
    Image { bzimage: PathBuf, modules: PathBuf },
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

/// A kernel ready to boot.
#[derive(Clone, Debug)]
pub struct PreparedKernel {
    pub label: String,
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

/// Unpack a .deb into `dir` and locate its kernel and modules.
fn unpack(deb: &Path, dir: &Path, label: String) -> Result<PreparedKernel, VmError> {
    if !dir.join("boot").exists() {
        let tmp = dir.with_extension("partial");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
        run(
            Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tmp),
            "dpkg-deb -x",
        )?;
        std::fs::rename(&tmp, dir).map_err(io("moving the unpacked kernel into the cache"))?;
    }
    let vmlinuz = std::fs::read_dir(dir.join("boot"))
        .map_err(io("reading boot/ of the package"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz"))
        })
        .ok_or_else(|| VmError::Setup(format!("{} has no boot/vmlinuz", deb.display())))?;
    let modules_dir = dir.join("lib/modules");
    let version = std::fs::read_dir(&modules_dir)
        .map_err(io("reading lib/modules of the package"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .ok_or_else(|| VmError::Setup("the package has no modules".into()))?;
    let modules_root = modules_dir.join(&version);
    // Debian packages ship no modules.dep; depmod makes it inside the cache.
    if !modules_root.join("modules.dep").exists() {
        run(
            Command::new("depmod").arg("-b").arg(dir).arg(&version),
            "depmod (install kmod)",
        )?;
    }
    Ok(PreparedKernel {
        label,
        vmlinuz,
        modules_root,
    })
}

/// Fetch (or find in the cache) and unpack a kernel.
pub fn prepare(source: &KernelSource) -> Result<PreparedKernel, VmError> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).map_err(io(format!("creating {}", cache.display())))?;
    match source {
        KernelSource::Debian(v) => {
            let opts = apt_options(v, &cache)?;
            let pkg = debian_package(v, &opts)?;
            let dir = cache.join(&pkg);
            let label = format!("debian:{v} ({pkg})");
            if dir.join("boot").exists() {
                return unpack(Path::new(""), &dir, label);
            }
            run(
                Command::new("apt-get")
                    .args(&opts)
                    .args(["download", "-q", &pkg])
                    .current_dir(&cache),
                &format!("apt-get download {pkg}"),
            )?;
            let deb = std::fs::read_dir(&cache)
                .map_err(io("reading the kernel cache"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| {
                    p.extension().is_some_and(|x| x == "deb")
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{pkg}_")))
                })
                .ok_or_else(|| VmError::Setup(format!("apt-get download left no {pkg} .deb")))?;
            let k = unpack(&deb, &dir, label)?;
            let _ = std::fs::remove_file(&deb);
            Ok(k)
        }
        KernelSource::Deb(deb) => {
            let stem = deb
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "kernel".into());
            unpack(deb, &cache.join(&stem), format!("deb:{stem}"))
        }
        KernelSource::Image { bzimage, modules } => {
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
