//! Kernel versions: the rules of the reference that changed between kernel
//! releases take one, and the known-faults list names ranges of them.

/// A kernel's `major.minor` (the point release never changes a rule here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// 6 in 6.12.
    pub major: u32,
    /// 12 in 6.12.
    pub minor: u32,
}

impl KernelVersion {
    /// `major.minor`.
    pub const fn new(major: u32, minor: u32) -> KernelVersion {
        KernelVersion { major, minor }
    }

    /// The version of a release string (`7.2.13+deb14-cloud-amd64`,
    /// `6.1.0-57-cloud-amd64`, `7.3.0-rc7`, `6.12`).
    pub fn from_release(release: &str) -> Option<KernelVersion> {
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(KernelVersion { major, minor })
    }
}

impl std::fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl std::str::FromStr for KernelVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("kernel version '{s}' is not MAJOR.MINOR (e.g. 6.12)");
        let (a, b) = s.split_once('.').ok_or_else(bad)?;
        Ok(KernelVersion {
            major: a.parse().map_err(|_| bad())?,
            minor: b.parse().map_err(|_| bad())?,
        })
    }
}

/// An inclusive range of kernel versions; an open end is unbounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionRange {
    /// The first version it holds for.
    pub from: Option<KernelVersion>,
    /// The last version it holds for.
    pub to: Option<KernelVersion>,
}

impl VersionRange {
    /// Whether `v` is in the range.
    pub fn contains(&self, v: KernelVersion) -> bool {
        self.from.is_none_or(|f| v >= f) && self.to.is_none_or(|t| v <= t)
    }
}

impl std::str::FromStr for VersionRange {
    type Err = String;
    /// `6.1-7.3`, `7.2-` (and later), `-6.12` (and earlier), `7.2` (only).
    fn from_str(s: &str) -> Result<Self, String> {
        let end = |p: &str| -> Result<Option<KernelVersion>, String> {
            if p.is_empty() {
                Ok(None)
            } else {
                p.parse().map(Some)
            }
        };
        match s.split_once('-') {
            Some((a, b)) => Ok(VersionRange {
                from: end(a)?,
                to: end(b)?,
            }),
            None => {
                let v = s.parse()?;
                Ok(VersionRange {
                    from: Some(v),
                    to: Some(v),
                })
            }
        }
    }
}

impl std::fmt::Display for VersionRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.from, self.to) {
            (Some(a), Some(b)) if a == b => write!(f, "{a}"),
            (a, b) => write!(
                f,
                "{}-{}",
                a.map(|v| v.to_string()).unwrap_or_default(),
                b.map(|v| v.to_string()).unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_and_ranges() {
        let v = |s| KernelVersion::from_release(s).unwrap();
        assert_eq!(v("7.2.13+deb14-cloud-amd64"), KernelVersion::new(7, 2));
        assert_eq!(v("6.1.0-57-cloud-amd64"), KernelVersion::new(6, 1));
        assert_eq!(v("7.3.0-rc7-cloud-amd64"), KernelVersion::new(7, 3));
        assert!(v("6.12.117") > v("6.2.0"));
        let r: VersionRange = "6.1-7.2".parse().unwrap();
        assert!(r.contains(v("6.12.1")) && !r.contains(v("7.3")) && !r.contains(v("5.10")));
        let open: VersionRange = "7.2-".parse().unwrap();
        assert!(open.contains(v("8.0")) && !open.contains(v("7.1")));
        assert_eq!(open.to_string(), "7.2-");
        for bad in ["7", "x.y", "7.2-z"] {
            assert!(bad.parse::<VersionRange>().is_err(), "{bad}");
        }
    }
}
