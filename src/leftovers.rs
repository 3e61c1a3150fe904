//! Files and directories named `<prefix><pid>-*` belong to a running dmch
//! while that pid lives; those of killed runs are recognised by a dead pid
//! and removed by the next run that looks in the same place.

// Whether a pid lives is asked with kill(pid, 0).
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only asks whether the pid exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Remove `dir`'s entries named `<prefix><pid>-*` whose pid is gone.
pub fn sweep(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut gone = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return gone;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid <= 0 || alive(pid) {
            continue;
        }
        let p = e.path();
        let removed = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        if removed.is_ok() {
            gone.push(p);
        }
    }
    gone
}
