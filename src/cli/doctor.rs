//! `dmch doctor`: what this machine offers and which path each job takes.

use anyhow::Result;
use clap::Args;
use dmcrypt_harness::doctor::{KvmProbe, Report};
use std::process::ExitCode;

#[derive(Args)]
pub struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Do not boot a cached guest kernel to prove KVM; only open /dev/kvm.
    #[arg(long)]
    no_probe: bool,
    /// Only ask whether the host's device-mapper can run dm-crypt: one line,
    /// exit status 0 if it can (for scripts such as ci/check.sh).
    #[arg(long, conflicts_with_all = ["json", "no_probe"])]
    host_dm: bool,
}

pub fn run(a: DoctorArgs) -> Result<ExitCode> {
    if a.host_dm {
        return Ok(match dmcrypt_harness::sys::probe::host_dm() {
            Ok(h) => {
                println!("host device-mapper: usable: {}", h.describe());
                ExitCode::SUCCESS
            }
            Err(why) => {
                println!("host device-mapper: unusable: {why}");
                ExitCode::FAILURE
            }
        });
    }
    let probe = if a.no_probe {
        KvmProbe::DeviceOnly
    } else {
        KvmProbe::Boot
    };
    dmcrypt_harness::interrupt::install();
    let r = Report::gather(probe);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r.to_json())?);
    } else {
        print!("{}", r.to_text());
    }
    Ok(ExitCode::SUCCESS)
}
