//! What `kernel check` and `kernel fuzz` write beside their verdicts: the
//! known-faults lists they judge by, JUnit, KTAP and reproducer scripts.

use anyhow::{Context, Result};
use clap::Args;
use dmcrypt_harness::oracle::known::{self, KnownFault};
use dmcrypt_harness::oracle::{Evaluation, reproducer};
use std::path::PathBuf;

#[derive(Args, Clone, Default)]
pub struct ReportArgs {
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a KTAP report (as kselftest emits), for KernelCI and LKFT.
    #[arg(long, value_name = "FILE")]
    pub ktap: Option<PathBuf>,
    /// Write a standalone shell reproducer (dmsetup, dd, sha256sum) per
    /// failing or faulting case into DIR.
    #[arg(long, value_name = "DIR")]
    pub reproducer: Option<PathBuf>,
    /// More expected kernel faults (repeatable; the built-in list always
    /// applies): they are reported as known and do not fail the run.
    #[arg(long = "known-faults", value_name = "FILE")]
    pub known_faults: Vec<PathBuf>,
}

impl ReportArgs {
    /// The built-in known faults and those of every `--known-faults` file.
    pub fn known(&self) -> Result<Vec<KnownFault>> {
        let mut v = known::builtin();
        for f in &self.known_faults {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading the known-faults file {}", f.display()))?;
            v.extend(known::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?);
        }
        Ok(v)
    }

    /// Write the JUnit and KTAP reports and the reproducers asked for.
    pub fn write(&self, e: &Evaluation) -> Result<()> {
        if let Some(f) = &self.junit {
            std::fs::write(f, &e.junit).with_context(|| format!("writing {}", f.display()))?;
        }
        if let Some(f) = &self.ktap {
            std::fs::write(f, &e.ktap).with_context(|| format!("writing {}", f.display()))?;
        }
        if let Some(dir) = &self.reproducer {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for f in &e.findings {
                let path = dir.join(reproducer::file_name(&f.kernel, &f.case));
                std::fs::write(&path, reproducer::script(&f.case, &f.kernel, &f.verdict))
                    .with_context(|| format!("writing {}", path.display()))?;
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
            }
            if !e.findings.is_empty() {
                eprintln!(
                    "dmch: {} reproducers in {}",
                    e.findings.len(),
                    dir.display()
                );
            }
        }
        Ok(())
    }
}
