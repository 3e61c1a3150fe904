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
    /// A Debian kernel line by name: `debian:6.12`, `debian:sid`, ...
    Debian(DebianLine),
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

/// A Debian kernel line: the name a user gives, the suite whose archive
/// holds it, and the version its package names start with (`None`: the
/// newest kernel of the suite).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebianLine {
    /// As given after `debian:`.
    pub name: &'static str,
    /// The suite to search; `None`: the system's own apt lists.
    pub suite: Option<&'static str>,
    /// The kernel version the package name starts with, e.g. `6.1.0-`.
    pub version: Option<&'static str>,
}

/// Every Debian kernel line dmch knows by name (checked 2026-12-04: the
/// docs/oracle.md's table says what each resolved to then).
pub const DEBIAN_LINES: &[DebianLine] = &[
    DebianLine {
        name: "5.10",
        suite: Some("bullseye"),
        version: Some("5.10.0-"),
    },
    DebianLine {
        name: "6.1",
        suite: None,
        version: Some("6.1.0-"),
    },
    DebianLine {
        name: "6.12",
        suite: None,
        version: Some("6.12."),
    },
    DebianLine {
        name: "7.2",
        suite: Some("sid"),
        version: Some("7.2."),
    },
    DebianLine {
        name: "7.3",
        suite: Some("experimental"),
        version: Some("7.3"),
    },
    DebianLine {
        name: "bullseye",
        suite: Some("bullseye"),
        version: None,
    },
    DebianLine {
        name: "bookworm-backports",
        suite: Some("bookworm-backports"),
        version: None,
    },
    DebianLine {
        name: "trixie",
        suite: Some("trixie"),
        version: None,
    },
    DebianLine {
        name: "sid",
        suite: Some("sid"),
        version: None,
    },
    DebianLine {
        name: "experimental",
        suite: Some("experimental"),
        version: None,
    },
];

impl DebianLine {
    /// The line called `name`.
    pub fn named(name: &str) -> Option<DebianLine> {
        DEBIAN_LINES.iter().find(|l| l.name == name).copied()
    }

    /// Whether `pkg` (a linux-image package name) belongs to this line:
    /// a versioned cloud image, never a meta package or debug symbols.
    fn matches(&self, pkg: &str) -> bool {
        let Some(rest) = pkg.strip_prefix("linux-image-") else {
            return false;
        };
        let Some(ver) = rest.strip_suffix("-cloud-amd64") else {
            return false;
        };
        let versioned = ver.starts_with(|c: char| c.is_ascii_digit());
        versioned
            && match self.version {
                // `7.3` must not take `7.30`: the next character ends the number.
                Some(v) => ver.strip_prefix(v).is_some_and(|r| {
                    v.ends_with(['.', '-']) || r.is_empty() || r.starts_with(['.', '-', '+', '~'])
                }),
                None => true,
            }
    }
}

impl std::str::FromStr for KernelSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let names = || {
            DEBIAN_LINES
                .iter()
                .map(|l| l.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match s.strip_prefix("debian:") {
            Some(v) => DebianLine::named(v)
                .map(KernelSource::Debian)
                .ok_or_else(|| format!("unknown Debian kernel '{v}' (known: {})", names())),
            None => Err(format!(
                "kernel '{s}' is not debian:NAME (NAME one of {}; use --kernel-deb or --kernel-image for others)",
                names()
            )),
        }
    }
}

impl std::fmt::Display for KernelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelSource::Debian(l) => write!(f, "debian:{}", l.name),
            KernelSource::Deb(p) => write!(f, "{}", p.display()),
            KernelSource::Image { bzimage, .. } => write!(f, "{}", bzimage.display()),
        }
    }
}

impl KernelSource {
    /// The dmch arguments that name this kernel (for reproduce lines).
    pub fn to_args(&self) -> String {
        match self {
            KernelSource::Debian(l) => format!("--kernel debian:{}", l.name),
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

/// The Debian archive this machine's apt uses: the first `deb` source
/// (one-line or deb822) with a main component that is not a security
/// archive. Other suites are fetched from the same mirror, through the same
/// apt configuration (its proxy too): never a host written into dmch.
/// `DMCH_DEBIAN_MIRROR` names another (a runner whose apt is Ubuntu's).
pub fn debian_mirror() -> Result<String, VmError> {
    if let Some(m) = std::env::var_os("DMCH_DEBIAN_MIRROR").filter(|m| !m.is_empty()) {
        return Ok(m.to_string_lossy().trim_end_matches('/').to_string());
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    let mut parts: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    parts.sort();
    files.extend(parts);
    for f in files {
        let name = f.to_string_lossy();
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let found = if name.ends_with(".sources") {
            mirror_in_deb822(&text)
        } else if name.ends_with(".list") {
            mirror_in_one_line(&text)
        } else {
            None
        };
        if let Some(m) = found {
            return Ok(m);
        }
    }
    Err(VmError::Setup(
        "no Debian archive in this machine's apt sources (a 'deb URI SUITE main' line); set DMCH_DEBIAN_MIRROR=URI to a Debian mirror".into(),
    ))
}

/// Whether `uri` serves Debian's main archive for `suite` (not security,
/// not a third-party repository such as nodesource's `nodistro`).
fn debian_archive(uri: &str, suite: &str) -> bool {
    let known = [
        "bullseye", "bookworm", "trixie", "forky", "sid", "unstable", "testing", "stable",
    ];
    !uri.contains("security")
        && !suite.contains("security")
        && known.iter().any(|k| suite.split('-').next() == Some(*k))
}

fn mirror_in_one_line(text: &str) -> Option<String> {
    for line in text.lines().map(str::trim) {
        let mut w = line.split_whitespace();
        if w.next() != Some("deb") {
            continue;
        }
        let mut w = w.skip_while(|x| x.starts_with('[') || x.ends_with(']') && !x.contains("://"));
        let (Some(uri), Some(suite)) = (w.next(), w.next()) else {
            continue;
        };
        if w.any(|c| c == "main") && debian_archive(uri, suite) {
            return Some(uri.trim_end_matches('/').to_string());
        }
    }
    None
}

fn mirror_in_deb822(text: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let types = field("Types").unwrap_or("");
        let comps = field("Components").unwrap_or("");
        if field("Enabled") == Some("no")
            || !types.split_whitespace().any(|t| t == "deb")
            || !comps.split_whitespace().any(|c| c == "main")
        {
            continue;
        }
        let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) else {
            continue;
        };
        for uri in uris.split_whitespace() {
            if suites.split_whitespace().any(|s| debian_archive(uri, s)) {
                return Some(uri.trim_end_matches('/').to_string());
            }
        }
    }
    None
}

/// apt options for a suite the host's sources may lack (bullseye, sid,
/// ...): a private apt state under the cache, made from the system's own
/// mirror, so the system's apt configuration is never touched. `None`: the
/// system's own lists.
fn apt_options(suite: Option<&str>, cache: &Path) -> Result<Vec<String>, VmError> {
    let Some(suite) = suite else {
        return Ok(Vec::new());
    };
    let d = cache.join(format!("apt-{suite}"));
    for sub in ["lists/partial", "cache/archives/partial", "etc"] {
        std::fs::create_dir_all(d.join(sub)).map_err(io("creating the private apt state"))?;
    }
    let list = d.join("etc/sources.list");
    let line = format!("deb {} {suite} main\n", debian_mirror()?);
    let old = std::fs::read_to_string(&list).unwrap_or_default();
    if old != line {
        std::fs::write(&list, &line).map_err(io("writing the private sources.list"))?;
        // Lists of another mirror are not this one's.
        let _ = std::fs::remove_dir_all(d.join("lists"));
        std::fs::create_dir_all(d.join("lists/partial")).map_err(io("creating apt lists"))?;
    }
    let opts: Vec<String> = vec![
        format!("-oDir::Etc::sourcelist={}", list.display()),
        "-oDir::Etc::sourceparts=-".into(),
        format!("-oDir::State::Lists={}", d.join("lists").display()),
        format!("-oDir::Cache={}", d.join("cache").display()),
        "-oAPT::Sandbox::User=root".into(),
    ];
    // Suites that move (sid, experimental) are refreshed once a day.
    let fresh = std::fs::read_dir(d.join("lists"))
        .map(|r| {
            r.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().contains("Packages"))
                .any(|e| {
                    e.metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age < std::time::Duration::from_secs(86_400))
                        || matches!(suite, "bullseye")
                })
        })
        .unwrap_or(false);
    if !fresh {
        run(
            Command::new("apt-get").args(&opts).args(["-q", "update"]),
            &format!("apt-get update ({suite}, private state)"),
        )?;
    }
    Ok(opts)
}

/// The newest linux-image package of `line` in the apt lists `opts` name.
fn debian_package(line: &DebianLine, opts: &[String]) -> Result<String, VmError> {
    let out = run(
        Command::new("apt-cache").args(opts).args([
            "search",
            "--names-only",
            "^linux-image-[0-9].*-cloud-amd64$",
        ]),
        "apt-cache search",
    )?;
    out.lines()
        .filter_map(|l| l.split(' ').next())
        .filter(|n| line.matches(n))
        .max_by_key(|n| version_key(n))
        .map(String::from)
        .ok_or_else(|| {
            VmError::Setup(format!(
                "no package for debian:{} in the apt sources{}",
                line.name,
                match line.suite {
                    Some(s) => format!(" ({s})"),
                    None => " (run apt-get update)".into(),
                }
            ))
        })
}

/// The packages holding the files of `image`: itself when it carries the
/// kernel (up to 6.x), or the linux-binary and linux-modules packages its
/// Depends name (Debian's 7.x layout, where linux-image is a meta package).
fn package_set(image: &str, opts: &[String]) -> Result<Vec<String>, VmError> {
    let out = run(
        Command::new("apt-cache").args(opts).args(["show", image]),
        &format!("apt-cache show {image}"),
    )?;
    let depends = out
        .lines()
        .find_map(|l| l.strip_prefix("Depends:"))
        .unwrap_or("");
    let mut set = vec![image.to_string()];
    for dep in depends.split([',', '|']) {
        let name = dep.split_whitespace().next().unwrap_or("");
        if name.starts_with("linux-binary-") || name.starts_with("linux-modules-") {
            set.push(name.to_string());
        }
    }
    set.dedup();
    Ok(set)
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

/// Locate the kernel image and modules of an unpacked package: the image
/// in boot/ (up to 6.x) or beside the modules (7.x), the modules under
/// lib/ or usr/lib/.
fn locate(dir: &Path) -> Result<(PathBuf, PathBuf), VmError> {
    let modules_dir = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|d| dir.join(d))
        .find(|d| d.is_dir())
        .ok_or_else(|| VmError::Setup("the package has no modules".into()))?;
    let version = std::fs::read_dir(&modules_dir)
        .map_err(io("reading lib/modules of the package"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .ok_or_else(|| VmError::Setup("the package has no modules".into()))?;
    let modules_root = modules_dir.join(version);
    let is_image = |p: &PathBuf| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz"))
    };
    let vmlinuz = [dir.join("boot"), modules_root.clone()]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .find(is_image)
        .ok_or_else(|| VmError::Setup(format!("{} has no vmlinuz", dir.display())))?;
    Ok((vmlinuz, modules_root))
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

/// Unpack .debs into `dir` (through a private partial directory, renamed
/// into place only when depmod has run and the manifest is written).
fn unpack(debs: &[PathBuf], dir: &Path, label: String) -> Result<PreparedKernel, VmError> {
    if let Some(k) = cached(dir, &label) {
        return Ok(k);
    }
    let tmp = dir.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    let made = (|| {
        for deb in debs {
            run(
                Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tmp),
                "dpkg-deb -x",
            )?;
        }
        let (vmlinuz, modules_root) = locate(&tmp)?;
        // Debian packages ship no modules.dep; depmod makes it inside the cache.
        if !modules_root.join("modules.dep").exists() {
            let version = modules_root
                .file_name()
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default();
            // The base is what holds lib/modules: the package root, or its
            // usr/ in 7.x's layout.
            let base = modules_root
                .ancestors()
                .nth(3)
                .unwrap_or(&tmp)
                .to_path_buf();
            run(
                Command::new("depmod").arg("-b").arg(&base).arg(&version),
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
        // Unpacked kernels, in either layout (7.x keeps vmlinuz under
        // usr/lib); not apt state, not a partial unpack.
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            e.path().is_dir() && name.starts_with("linux-image-") && !name.contains(".partial-")
        })
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
    for line in DEBIAN_LINES {
        let Some(suite) = line.suite else { continue };
        let private = cache_dir().join(format!("apt-{suite}/lists"));
        if private.exists() && !v.iter().any(|l| l.contains(&format!("private {suite} "))) {
            v.push(format!(
                "private {suite} state: {} package lists in {}",
                count(&private),
                private.display()
            ));
        }
    }
    v
}

/// What each Debian kernel name resolves to with the apt lists already on
/// this machine (nothing is fetched): (name, package or why not known).
pub fn debian_resolutions() -> Vec<(String, Result<String, String>)> {
    let cache = cache_dir();
    DEBIAN_LINES
        .iter()
        .map(|line| {
            let opts: Option<Vec<String>> = match line.suite {
                None => Some(Vec::new()),
                Some(suite) => {
                    let d = cache.join(format!("apt-{suite}"));
                    d.join("lists").exists().then(|| {
                        vec![
                            format!(
                                "-oDir::Etc::sourcelist={}",
                                d.join("etc/sources.list").display()
                            ),
                            "-oDir::Etc::sourceparts=-".into(),
                            format!("-oDir::State::Lists={}", d.join("lists").display()),
                            format!("-oDir::Cache={}", d.join("cache").display()),
                        ]
                    })
                }
            };
            let r = match opts {
                None => Err(format!(
                    "{}: lists not fetched yet (the first use fetches them)",
                    line.suite.unwrap_or("system")
                )),
                Some(o) => debian_package(line, &o).map_err(|e| e.to_string()),
            };
            (format!("debian:{}", line.name), r)
        })
        .collect()
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
        KernelSource::Debian(line) => {
            let generic = "linux-image-<version>-cloud-amd64";
            let hint = |e: VmError| VmError::Setup(format!("{e}; {}", offline_hint(generic)));
            let opts = apt_options(line.suite, &cache).map_err(hint)?;
            let pkg = debian_package(line, &opts).map_err(hint)?;
            let dir = cache.join(&pkg);
            let label = format!("debian:{} ({pkg})", line.name);
            if let Some(k) = cached(&dir, &label) {
                return Ok(k);
            }
            let set = package_set(&pkg, &opts).map_err(hint)?;
            // Download into a private directory: a killed download leaves
            // nothing another run could take for a whole package.
            let dl = tempfile::Builder::new()
                .prefix(".download-")
                .tempdir_in(&cache)
                .map_err(io("creating a download directory in the cache"))?;
            run(
                Command::new("apt-get")
                    .args(&opts)
                    .args(["download", "-q"])
                    .args(&set)
                    .current_dir(dl.path()),
                &format!("apt-get download {}", set.join(" ")),
            )
            .map_err(|e| {
                VmError::Setup(format!(
                    "cannot download {pkg} (no reachable package archive?): {e}; {}",
                    offline_hint(&pkg)
                ))
            })?;
            let debs: Vec<PathBuf> = std::fs::read_dir(dl.path())
                .map_err(io("reading the download directory"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "deb"))
                .collect();
            if debs.len() != set.len() {
                return Err(VmError::Setup(format!(
                    "apt-get download left {} of the {} packages of {pkg}",
                    debs.len(),
                    set.len()
                )));
            }
            unpack(&debs, &dir, label)
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
            unpack(
                std::slice::from_ref(deb),
                &cache.join(&stem),
                format!("deb:{stem}"),
            )
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
