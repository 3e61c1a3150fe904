//! What this machine offers and which path each job will take: the facts
//! behind `dmch doctor`. Every answer comes from asking (an ioctl, a boot, a
//! feature bit), not from the presence of a file.

use crate::sys::probe;
use crate::vm;
use serde_json::{Value, json};

/// A yes/no finding with its detail (what was found, or why not).
#[derive(Clone, Debug)]
pub struct Finding {
    /// Whether the thing is usable here.
    pub ok: bool,
    /// What was found, or why it is not usable.
    pub detail: String,
}

impl Finding {
    fn from<T, E: ToString>(r: Result<T, E>, ok: impl FnOnce(T) -> String) -> Finding {
        match r {
            Ok(v) => Finding {
                ok: true,
                detail: ok(v),
            },
            Err(e) => Finding {
                ok: false,
                detail: e.to_string(),
            },
        }
    }

    fn json(&self) -> Value {
        json!({"usable": self.ok, "detail": self.detail})
    }
}

/// Everything `dmch doctor` reports.
pub struct Report {
    /// The CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// Each feature the SIMD backends look at, and whether the CPU has it.
    pub features: Vec<(&'static str, bool)>,
    /// DMCH_PORTABLE is set: every SIMD backend is off.
    pub portable: bool,
    /// The instruction tiers this CPU can run (`DMCH_CPU` values).
    pub tiers: Vec<String>,
    /// The highest tier backends may use here.
    pub tier_cap: String,
    /// Per cipher: the implementation in use, and why not the SIMD one.
    pub implementations: Vec<(&'static str, String, Option<String>)>,
    /// The running kernel's release.
    pub kernel_release: String,
    /// Whether dmch runs as root.
    pub root: bool,
    /// The host's device-mapper, asked of the kernel.
    pub device_mapper: Finding,
    /// Loop devices (LOOP_CTL_GET_FREE).
    pub loop_devices: Finding,
    /// QEMU and its version.
    pub qemu: Finding,
    /// KVM, probed by a boot when a guest kernel is cached.
    pub kvm: Finding,
    /// Guest kernels in the cache, and whether each is complete.
    pub cached_kernels: Vec<(String, bool)>,
    /// The apt state the kernel fetcher uses.
    pub apt: Vec<String>,
    /// The archive other suites are fetched from (this machine's own).
    pub mirror: Result<String, String>,
    /// What each `debian:NAME` resolves to with the lists at hand.
    pub kernel_names: Vec<(String, Result<String, String>)>,
}

/// How `dmch doctor` may find out whether KVM works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvmProbe {
    /// Boot a cached kernel under KVM up to the agent's first line.
    Boot,
    /// Only check that /dev/kvm opens.
    DeviceOnly,
}

fn qemu_version() -> Result<String, String> {
    let out = std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .map_err(|e| format!("qemu-system-x86_64 not found ({e}); install qemu-system-x86"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string())
}

fn kvm(probe: KvmProbe, qemu_ok: bool) -> Finding {
    if let Some(why) = vm::kvm_device_problem() {
        return Finding {
            ok: false,
            detail: why,
        };
    }
    if probe == KvmProbe::DeviceOnly {
        return Finding {
            ok: true,
            detail: "/dev/kvm opens; not probed (--no-probe): guests try it first".into(),
        };
    }
    if !qemu_ok {
        return Finding {
            ok: false,
            detail: "/dev/kvm opens; not probed: no QEMU".into(),
        };
    }
    let Some(kernel) = vm::any_cached() else {
        return Finding {
            ok: true,
            detail: "/dev/kvm opens; not probed: no guest kernel in the cache yet (the first guest run probes it)".into(),
        };
    };
    let probed = (|| {
        let dir = vm::work_dir().map_err(|e| e.to_string())?;
        let initrd = dir.path().join("probe.cpio");
        vm::build_probe_initramfs(&initrd).map_err(|e| e.to_string())?;
        vm::probe_kvm(&kernel, &initrd)
    })();
    Finding::from(probed, |_| {
        format!(
            "a guest ({}) reached the agent under KVM",
            kernel.label.trim_start_matches("cached:")
        )
    })
}

impl Report {
    /// Ask the machine; `probe` says whether KVM may be proven by a boot.
    pub fn gather(probe: KvmProbe) -> Report {
        let qemu = Finding::from(qemu_version(), |v| v);
        let kvm = kvm(probe, qemu.ok);
        Report {
            cpu_model: crate::cpu::model(),
            features: crate::cpu::REPORTED_FEATURES
                .iter()
                .map(|f| (*f, crate::cpu::has(f)))
                .collect(),
            portable: !crate::cpu::simd_allowed(),
            tiers: crate::cpu::Tier::available()
                .iter()
                .map(|t| t.name().to_string())
                .collect(),
            tier_cap: crate::cpu::tier_cap().name().to_string(),
            implementations: crate::cpu::implementations(),
            kernel_release: probe::release(),
            root: probe::is_root(),
            device_mapper: Finding::from(probe::host_dm(), |h| h.describe()),
            loop_devices: Finding::from(probe::loop_devices(), |s| s),
            qemu,
            kvm,
            cached_kernels: vm::cache_entries(),
            apt: vm::apt_state(),
            mirror: vm::debian_mirror().map_err(|e| e.to_string()),
            kernel_names: vm::debian_resolutions(),
        }
    }

    fn guest_accel(&self) -> &'static str {
        if self.kvm.ok {
            "kvm if it boots, else tcg"
        } else {
            "tcg"
        }
    }

    /// Which path each job takes here: (job, path).
    pub fn jobs(&self) -> Vec<(&'static str, String)> {
        let dm = &self.device_mapper;
        let guest = if self.qemu.ok {
            format!("a QEMU guest under {}", self.guest_accel())
        } else {
            "no guest (QEMU missing)".to_string()
        };
        let host_or = |otherwise: String| {
            if dm.ok {
                "the host's device-mapper".to_string()
            } else {
                otherwise
            }
        };
        vec![
            (
                "ci/check.sh (dmch check)",
                host_or(format!(
                    "reference vectors, then the kernel matrix in {guest}"
                )),
            ),
            (
                "dmch kernel check --backend auto",
                host_or(format!("{guest}; name one with --kernel debian:6.12")),
            ),
            (
                "dmch bench --kernel",
                host_or(format!(
                    "host N/A; --kernel debian:6.12 runs it in {guest}{}",
                    if self.guest_accel() == "tcg" {
                        " (figures marked emulated)"
                    } else {
                        ""
                    }
                )),
            ),
            (
                "dmch create|open|remove|...",
                host_or(format!("unavailable: {}", dm.detail)),
            ),
        ]
    }

    /// The report as JSON (`dmch doctor --json`).
    pub fn to_json(&self) -> Value {
        json!({
            "cpu": {
                "model": self.cpu_model,
                "features": self.features.iter().map(|(f, h)| (f.to_string(), json!(h))).collect::<serde_json::Map<_, _>>(),
                "portable_forced": self.portable,
                "tiers": self.tiers,
                "tier_cap": self.tier_cap,
            },
            "implementations": self.implementations.iter().map(|(c, i, why)| json!({
                "cipher": c, "implementation": i, "fallback_reason": why,
            })).collect::<Vec<_>>(),
            "host": {
                "kernel": self.kernel_release,
                "root": self.root,
                "device_mapper": self.device_mapper.json(),
                "loop_devices": self.loop_devices.json(),
            },
            "vm": {
                "qemu": self.qemu.json(),
                "kvm": self.kvm.json(),
                "cached_kernels": self.cached_kernels.iter().map(|(n, ok)| json!({"package": n, "complete": ok})).collect::<Vec<_>>(),
                "apt": self.apt,
                "debian_mirror": match &self.mirror { Ok(m) => json!(m), Err(e) => json!({"error": e}) },
                "kernel_names": self.kernel_names.iter().map(|(n, r)| match r {
                    Ok(p) => json!({"name": n, "package": p}),
                    Err(e) => json!({"name": n, "unknown": e}),
                }).collect::<Vec<_>>(),
            },
            "jobs": self.jobs().into_iter().map(|(j, p)| json!({"job": j, "path": p})).collect::<Vec<_>>(),
        })
    }

    /// The report as text (`dmch doctor`).
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mark = |f: &Finding| if f.ok { "yes" } else { "no " };
        let mut t = String::new();
        let _ = writeln!(t, "cpu       {}", self.cpu_model);
        let feats: Vec<String> = self
            .features
            .iter()
            .map(|(f, h)| format!("{}{f}", if *h { "+" } else { "-" }))
            .collect();
        let _ = writeln!(t, "          {}", feats.join(" "));
        if self.portable {
            let _ = writeln!(
                t,
                "          DMCH_PORTABLE is set: SIMD implementations off"
            );
        }
        let _ = writeln!(
            t,
            "          tiers this CPU can run: {}; in use up to: {} ({})",
            self.tiers.join(" "),
            self.tier_cap,
            if std::env::var_os("DMCH_CPU").is_some_and(|v| !v.is_empty()) {
                "DMCH_CPU"
            } else {
                "the best it has; DMCH_CPU=TIER caps it"
            }
        );
        let _ = writeln!(t, "ciphers");
        for (c, i, why) in &self.implementations {
            match why {
                Some(w) => {
                    let _ = writeln!(t, "  {c:<14} {i} (because {w})");
                }
                None => {
                    let _ = writeln!(t, "  {c:<14} {i}");
                }
            }
        }
        let _ = writeln!(
            t,
            "host      kernel {}, {}",
            self.kernel_release,
            if self.root { "root" } else { "not root" }
        );
        let _ = writeln!(
            t,
            "  device-mapper  {} {}",
            mark(&self.device_mapper),
            self.device_mapper.detail
        );
        let _ = writeln!(
            t,
            "  loop devices   {} {}",
            mark(&self.loop_devices),
            self.loop_devices.detail
        );
        let _ = writeln!(t, "guests");
        let _ = writeln!(
            t,
            "  qemu           {} {}",
            mark(&self.qemu),
            self.qemu.detail
        );
        let _ = writeln!(
            t,
            "  kvm            {} {}",
            mark(&self.kvm),
            self.kvm.detail
        );
        if self.cached_kernels.is_empty() {
            let _ = writeln!(
                t,
                "  kernel cache   empty (kernels are fetched on first use)"
            );
        }
        for (n, ok) in &self.cached_kernels {
            let _ = writeln!(
                t,
                "  kernel cache   {n}{}",
                if *ok {
                    ""
                } else {
                    " (incomplete: fetched again on use)"
                }
            );
        }
        for a in &self.apt {
            let _ = writeln!(t, "  apt            {a}");
        }
        match &self.mirror {
            Ok(m) => {
                let _ = writeln!(
                    t,
                    "  mirror         {m} (this machine's apt sources; other suites come from it)"
                );
            }
            Err(e) => {
                let _ = writeln!(t, "  mirror         none: {e}");
            }
        }
        for (n, r) in &self.kernel_names {
            let _ = match r {
                Ok(p) => writeln!(t, "  kernel name    {n:<26} {p}"),
                Err(e) => writeln!(t, "  kernel name    {n:<26} ({e})"),
            };
        }
        let _ = writeln!(t, "jobs");
        for (j, p) in self.jobs() {
            let _ = writeln!(t, "  {j:<34} {p}");
        }
        t
    }
}
