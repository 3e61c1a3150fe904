//! Test support: compile and run a small C program against the system's
//! kernel headers, so struct layouts and ioctl numbers written once in Rust
//! are checked against the C definitions where the toolchain exists.

/// The program's output, or `None` after printing why it could not run
/// (no C compiler, no kernel headers), so the skip is never silent.
pub(crate) fn run(what: &str, program: &str) -> Option<String> {
    let dir = tempfile::tempdir().ok()?;
    let src = dir.path().join("probe.c");
    let exe = dir.path().join("probe");
    std::fs::write(&src, program).ok()?;
    let cc = std::process::Command::new("cc")
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output();
    match cc {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            println!(
                "SKIPPED: {what} layout check: cc failed (kernel headers missing? install linux-libc-dev): {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
            );
            return None;
        }
        Err(e) => {
            println!("SKIPPED: {what} layout check: no C compiler ({e})");
            return None;
        }
    }
    let out = std::process::Command::new(&exe).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}
