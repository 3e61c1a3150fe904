//! The one way a mapping is made live and the one way its table changes,
//! used by real setups, the oracle and the kernel benchmark: create, load,
//! resume, and on any failure remove what was made (or, for a new table,
//! resume the old one).

use super::dm::{self, Control, Mapping};
use std::io;
use std::time::Duration;

/// Why a mapping was not made; nothing is left behind in any case.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    /// The name is one the kernel would refuse or cut.
    #[error("{0}")]
    Name(String),
    /// The device could not be created (a taken name, no permission).
    #[error("creating mapping {name}: {source}")]
    Create {
        /// The mapping's name.
        name: String,
        /// Why.
        source: io::Error,
    },
    /// The kernel refused the table (load or resume failed).
    #[error("the kernel refused the table: {0}")]
    Refused(io::Error),
}

/// Create mapping `name` with one `target` of `len` sectors whose
/// parameters are `params`, and make it live. The table carries keys: the
/// kernel is asked to wipe its copies (secure-data flag).
pub fn activate(
    ctl: &Control,
    name: &str,
    len: u64,
    target: &str,
    params: &str,
    read_only: bool,
) -> Result<Mapping, ActivateError> {
    let t = dm::Target {
        start: 0,
        len,
        kind: target,
        params,
    };
    activate_table(ctl, name, &[t], read_only)
}

/// As [`activate`], with a table of several targets (dmsetup's tables).
pub fn activate_table(
    ctl: &Control,
    name: &str,
    targets: &[dm::Target<'_>],
    read_only: bool,
) -> Result<Mapping, ActivateError> {
    activate_table_uuid(ctl, name, None, targets, read_only)
}

/// As [`activate_table`], the device given a device-mapper UUID.
pub fn activate_table_uuid(
    ctl: &Control,
    name: &str,
    uuid: Option<&str>,
    targets: &[dm::Target<'_>],
    read_only: bool,
) -> Result<Mapping, ActivateError> {
    dm::check_name(name).map_err(ActivateError::Name)?;
    let m = ctl
        .create_with_uuid(name, uuid)
        .map_err(|source| ActivateError::Create {
            name: name.to_string(),
            source,
        })?;
    if let Err(e) = ctl
        .load_targets(&m, targets, read_only)
        .and_then(|_| ctl.resume(&m))
    {
        let _ = deactivate(ctl, &m);
        return Err(ActivateError::Refused(e));
    }
    Ok(m)
}

/// Why a live mapping kept its old table.
#[derive(Debug, thiserror::Error)]
pub enum ReplaceError {
    #[error("suspending: {0}")]
    /// The device could not be suspended.
    Suspend(io::Error),
    /// The new table was refused; the old one is live again.
    #[error("the kernel refused the new table (the old one stays): {0}")]
    Refused(io::Error),
    #[error("resuming: {0}")]
    /// The new table loaded but did not resume.
    Resume(io::Error),
}

/// Swap the table of a live mapping: suspend, load, resume. A refused
/// table leaves the old one live.
pub fn replace_table(
    ctl: &Control,
    m: &Mapping,
    len: u64,
    target: &str,
    params: &str,
    read_only: bool,
) -> Result<(), ReplaceError> {
    ctl.suspend(m).map_err(ReplaceError::Suspend)?;
    if let Err(e) = ctl.load(m, 0, len, target, params, read_only) {
        let _ = ctl.resume(m);
        return Err(ReplaceError::Refused(e));
    }
    if let Err(e) = ctl.resume(m) {
        // Some tables load and are refused only when they would go live
        // (a device offset the queue limits do not allow): the kernel drops
        // the new table and leaves the device suspended on the old one.
        return match ctl.resume(m) {
            Ok(()) => Err(ReplaceError::Refused(e)),
            Err(again) => Err(ReplaceError::Resume(again)),
        };
    }
    Ok(())
}

/// Remove a mapping; udev may hold a new node open for a moment (EBUSY),
/// so this asks again for up to a second.
pub fn deactivate(ctl: &Control, m: &Mapping) -> io::Result<()> {
    let mut tries = 0;
    loop {
        match ctl.remove(m) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

/// A live mapping removed when dropped: for runs that must leave nothing.
pub struct Scoped<'a> {
    ctl: &'a Control,
    m: Option<Mapping>,
}

impl<'a> Scoped<'a> {
    /// As [`activate`], removed again on drop.
    pub fn activate(
        ctl: &'a Control,
        name: &str,
        len: u64,
        target: &str,
        params: &str,
        read_only: bool,
    ) -> Result<Self, ActivateError> {
        let m = activate(ctl, name, len, target, params, read_only)?;
        Ok(Scoped { ctl, m: Some(m) })
    }

    /// The live mapping.
    pub fn mapping(&self) -> &Mapping {
        self.m.as_ref().expect("present until drop")
    }
}

impl Drop for Scoped<'_> {
    fn drop(&mut self) {
        if let Some(m) = self.m.take() {
            let _ = deactivate(self.ctl, &m);
        }
    }
}
