//! Protects the choice of path on every kind of runner: KVM that exits,
//! aborts, hangs in firmware or stays silent falls back to TCG with QEMU's
//! reason; working KVM is used; a control node without device-mapper behind
//! it is refused by asking the kernel, and the guest is chosen instead.
//! QEMU is a stand-in script on PATH; the guest kernel is a dummy file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A stand-in for qemu-system-x86_64. Under `-accel kvm` it behaves as
/// `STANDIN_KVM` says; under TCG (and under working KVM) it prints what the
/// guest agent prints for a one-check scenario and exits.
const STANDIN: &str = r#"#!/bin/sh
echo "$*" >> "$STANDIN_LOG"
accel=
prev=
for a in "$@"; do
  [ "$prev" = "-accel" ] && accel=$a
  prev=$a
done
if [ "$accel" = kvm ]; then
  case "$STANDIN_KVM" in
    exit) echo "qemu-system-x86_64: -accel kvm: failed to initialize kvm: Operation not permitted" >&2; exit 1 ;;
    abort) echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69" >&2; kill -ABRT $$ ;;
    firmware) echo "SeaBIOS (version 1.16.2-debian)"; echo "Booting from ROM.."; exec sleep 60 ;;
    silent) exec sleep 60 ;;
  esac
fi
printf 'DMCH-GUEST\tstandin-%s\nDMCH-ALGS\taes\nDMCH-CHECK\tstandin boot\tPASS\tran under %s\nDMCH-DONE\t0\n' "$accel" "$accel"
exit 0
"#;

struct Rig {
    dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let qemu = bin.join("qemu-system-x86_64");
        std::fs::write(&qemu, STANDIN).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("bzImage"), b"not a kernel").unwrap();
        std::fs::create_dir(dir.path().join("modules")).unwrap();
        std::fs::write(dir.path().join("modules/modules.dep"), b"").unwrap();
        // A node that opens, standing in for a working /dev/kvm.
        std::fs::write(dir.path().join("kvm"), b"").unwrap();
        Rig { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn dmch(&self, kvm_mode: &str, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(env!("CARGO_BIN_EXE_dmch"))
            .args(args)
            .env("PATH", path)
            .env("STANDIN_LOG", self.path("qemu.log"))
            .env("STANDIN_KVM", kvm_mode)
            .env("DMCH_KVM_DEVICE", self.path("kvm"))
            .env("DMCH_KVM_FIRST_LINE_SECS", "2")
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("TMPDIR", self.dir.path())
            .env_remove("DMCH_ACCEL")
            .output()
            .unwrap()
    }

    fn setups(&self, kvm_mode: &str) -> Output {
        let image = self.path("bzImage");
        let modules = self.path("modules");
        self.dmch(
            kvm_mode,
            &[
                "kernel",
                "setups",
                "--kernel-image",
                image.to_str().unwrap(),
                "--modules",
                modules.to_str().unwrap(),
            ],
        )
    }

    /// The accelerators QEMU was started with, in order.
    fn accels(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("qemu.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let w: Vec<&str> = l.split(' ').collect();
                let i = w.iter().position(|a| *a == "-accel").expect("-accel given");
                w[i + 1].to_string()
            })
            .collect()
    }

    /// No work directory of the run is left in the temporary directory.
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("dmch-vm-"))
            .collect()
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// One boot under KVM that fails as `mode` says, then TCG, with the reason
/// named in one line on stderr.
fn falls_back(mode: &str, reason: &str) {
    let rig = Rig::new();
    let o = rig.setups(mode);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert_eq!(rig.accels(), ["kvm", "tcg"], "{err}");
    let note: Vec<&str> = err.lines().filter(|l| l.contains("kvm unusable")).collect();
    assert_eq!(note.len(), 1, "one line about the fallback: {err}");
    assert!(note[0].ends_with("; using tcg"), "{}", note[0]);
    assert!(
        note[0].contains(reason),
        "expected '{reason}' in: {}",
        note[0]
    );
    assert!(out.contains("ok    standin boot"), "{out}");
    assert!(out.contains("standin-tcg"), "{out}");
    assert!(rig.leftovers().is_empty(), "{:?}", rig.leftovers());
}

#[test]
fn kvm_that_exits_at_once_falls_back_to_tcg_with_qemus_reason() {
    falls_back("exit", "failed to initialize kvm: Operation not permitted");
}

#[test]
fn kvm_that_aborts_falls_back_to_tcg_with_qemus_reason() {
    falls_back("abort", "failed to set MSR 0x10a to 0x69");
}

#[test]
fn kvm_that_prints_firmware_then_hangs_falls_back_to_tcg() {
    falls_back("firmware", "only firmware output");
}

#[test]
fn kvm_that_stays_silent_falls_back_to_tcg() {
    falls_back("silent", "no output at all");
}

#[test]
fn working_kvm_is_used() {
    let rig = Rig::new();
    let o = rig.setups("works");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert_eq!(rig.accels(), ["kvm"]);
    assert!(!err.contains("kvm unusable"), "{err}");
    assert!(out.contains("standin-kvm"), "{out}");
}

#[test]
fn without_a_kvm_device_tcg_is_used_and_the_reason_named() {
    let rig = Rig::new();
    std::fs::remove_file(rig.path("kvm")).unwrap();
    let o = rig.setups("works");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert_eq!(rig.accels(), ["tcg"]);
    assert!(
        err.contains("No such file or directory") && err.contains("; using tcg"),
        "{err}"
    );
}

#[test]
fn a_guest_that_never_starts_under_tcg_reports_qemus_stderr() {
    let rig = Rig::new();
    // Under TCG too the stand-in now fails: the error carries QEMU's words.
    std::fs::write(
        rig.path("bin/qemu-system-x86_64"),
        "#!/bin/sh\necho \"$*\" >> \"$STANDIN_LOG\"\necho 'qemu-system-x86_64: could not load kernel' >&2\nexit 1\n",
    )
    .unwrap();
    let o = rig.setups("works");
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert_eq!(err.lines().count(), 1, "one error line: {err}");
    assert!(err.contains("could not load kernel"), "{err}");
    assert!(rig.leftovers().is_empty(), "{:?}", rig.leftovers());
}

#[test]
fn stale_work_directories_of_killed_runs_are_swept() {
    let rig = Rig::new();
    // pid 2^22+1 is above the kernel's pid limit: never alive.
    let stale = rig.path("dmch-vm-4194305-abcdef");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("initrd.cpio"), b"x").unwrap();
    let o = rig.setups("works");
    assert!(o.status.success());
    assert!(!stale.exists(), "the stale work directory is still there");
}

/// A control node with no device-mapper behind it: a regular file (opens,
/// but does not answer DM_VERSION), or a missing path.
fn refuses(control: &Path, why: &str) {
    let rig = Rig::new();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_dmch"))
            .args(args)
            .env("DMCH_DM_CONTROL", control)
            .env("XDG_CACHE_HOME", rig.path("cache"))
            .output()
            .unwrap();
        let (out, err) = text(&o);
        (o.status.success(), out, err)
    };
    let (ok, out, _) = run(&["doctor", "--host-dm"]);
    assert!(!ok, "{out}");
    assert!(out.contains("unusable") && out.contains(why), "{out}");
    let (ok, out, err) = run(&["check", "--vectors", "vectors/nist-sp800-38a-aes.vec"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("kernel: not run: the host cannot run it"),
        "{out}"
    );
    assert!(out.contains(why), "{out}");
    let (ok, _, err) = run(&["kernel", "check", "--backend", "auto"]);
    assert!(!ok);
    assert!(
        err.contains(why) && err.contains("--kernel debian:6.12"),
        "{err}"
    );
    let (ok, _, err) = run(&["kernel", "check", "--backend", "host"]);
    assert!(!ok);
    assert!(err.contains(why), "{err}");
    let key = rig.path("key");
    std::fs::write(&key, [7u8; 64]).unwrap();
    let vol = rig.path("vol.img");
    std::fs::write(&vol, vec![0u8; 1 << 20]).unwrap();
    let (ok, _, err) = run(&[
        "-d",
        key.to_str().unwrap(),
        "create",
        "dmch-test-stale",
        vol.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot set up dm-crypt mappings") && err.contains(why),
        "{err}"
    );
    let (ok, out, _) = run(&["doctor", "--json", "--no-probe"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["host"]["device_mapper"]["usable"], false);
    let jobs = v["jobs"].as_array().unwrap();
    assert!(
        jobs[0]["path"].as_str().unwrap().contains("QEMU guest")
            || jobs[0]["path"].as_str().unwrap().contains("QEMU missing"),
        "{out}"
    );
}

#[test]
fn a_control_node_that_does_not_answer_dm_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("control");
    std::fs::write(&node, b"").unwrap();
    refuses(&node, "does not answer the DM_VERSION ioctl");
}

#[test]
fn a_missing_control_node_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    refuses(&dir.path().join("control"), "does not exist");
}

#[test]
fn a_stale_character_node_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIPPED: mknod of a stand-in control node needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("control");
    let c = std::ffi::CString::new(node.to_str().unwrap()).unwrap();
    // 10:236 is device-mapper's misc minor; a character node with no
    // driver behind it fails to open (ENODEV/ENXIO) on kernels without dm.
    // SAFETY: mknod with a valid path.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(10, 236)) };
    assert_eq!(r, 0, "mknod: {}", std::io::Error::last_os_error());
    if dmcrypt_harness::sys::probe::host_dm().is_ok() {
        println!("SKIPPED: this host has device-mapper, so 10:236 is live, not stale");
        return;
    }
    // On a nodev temporary file system the node cannot even be opened:
    // refused all the same, for that reason.
    let why = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&node)
    {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => "cannot be opened",
        _ => "stale node",
    };
    refuses(&node, why);
}

#[test]
fn doctor_reports_every_section_as_json() {
    let o = Command::new(env!("CARGO_BIN_EXE_dmch"))
        .args(["doctor", "--json", "--no-probe"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in ["cpu", "implementations", "host", "vm", "jobs"] {
        assert!(!v[key].is_null(), "{key} missing");
    }
    let imps = v["implementations"].as_array().unwrap();
    let aes = imps.iter().find(|i| i["cipher"] == "aes").unwrap();
    assert!(aes["implementation"].as_str().unwrap().len() > 3);
    // With SIMD forced off, every SIMD cipher reports its fallback and why.
    let o = Command::new(env!("CARGO_BIN_EXE_dmch"))
        .args(["doctor", "--json", "--no-probe"])
        .env("DMCH_PORTABLE", "1")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let aes = v["implementations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["cipher"] == "aes")
        .unwrap()
        .clone();
    assert!(
        aes["implementation"].as_str().unwrap().contains("crate"),
        "{aes}"
    );
    assert!(aes["fallback_reason"].as_str().is_some(), "{aes}");
}
