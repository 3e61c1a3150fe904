//! What a figure depends on besides the workload, recorded with every run:
//! the CPU and the flags of it that the kernel's ciphers use, the kernel
//! release, the driver the crypto API picks for a spec, the CPU
//! vulnerability mitigations in force.

use serde_json::{Value, json};

/// CPU flags that decide which kernel cipher driver can load.
pub const CIPHER_FLAGS: &[&str] = &[
    "aes",
    "pclmulqdq",
    "avx",
    "avx2",
    "avx512f",
    "avx512vl",
    "avx512bw",
    "vaes",
    "vpclmulqdq",
    "gfni",
    "sha_ni",
];

/// One /proc/crypto entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Driver {
    /// The algorithm name (`xts(aes)`).
    pub name: String,
    /// The implementation (`xts-aes-vaes-avx10_512`).
    pub driver: String,
    /// Higher wins when several implement a name.
    pub priority: i64,
    /// `skcipher`, `cipher`, `shash`, ...
    pub kind: String,
    /// IV bytes (skciphers).
    pub ivsize: usize,
    /// Whether its self-test passed (entries without one count as passed).
    pub tested: bool,
}

/// Every entry of a /proc/crypto text.
pub fn parse_proc_crypto(text: &str) -> Vec<Driver> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut d = Driver {
            name: String::new(),
            driver: String::new(),
            priority: 0,
            kind: String::new(),
            ivsize: 0,
            tested: true,
        };
        for line in block.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim() {
                "name" => d.name = v.into(),
                "driver" => d.driver = v.into(),
                "priority" => d.priority = v.parse().unwrap_or(0),
                "type" => d.kind = v.into(),
                "ivsize" => d.ivsize = v.parse().unwrap_or(0),
                "selftest" => d.tested = v == "passed",
                _ => {}
            }
        }
        if !d.name.is_empty() {
            out.push(d);
        }
    }
    out
}

/// The entry the crypto API gives for `name`: the tested skcipher of the
/// highest priority (what crypto_alloc_skcipher picks).
pub fn chosen(drivers: &[Driver], name: &str) -> Option<Driver> {
    drivers
        .iter()
        .filter(|d| d.name == name && d.kind == "skcipher" && d.tested)
        .max_by_key(|d| d.priority)
        .cloned()
}

/// The crypto API name dm-crypt allocates for `spec` (ESSIV is a template
/// around the data transform since 5.4).
pub fn api_name(spec: &crate::spec::CipherSpec) -> String {
    match (spec.effective_ivmode(), &spec.ivopts) {
        (Some("essiv"), Some(hash)) => format!("essiv({},{hash})", spec.api_name()),
        _ => spec.api_name(),
    }
}

/// The flags of [`CIPHER_FLAGS`] a /proc/cpuinfo text shows.
pub fn cipher_flags(cpuinfo: &str) -> Vec<String> {
    let flags: std::collections::HashSet<&str> = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, f)| f.split_whitespace().collect())
        .unwrap_or_default();
    CIPHER_FLAGS
        .iter()
        .filter(|f| flags.contains(**f))
        .map(|f| f.to_string())
        .collect()
}

/// `name: state` for each file of /sys/devices/system/cpu/vulnerabilities.
pub fn mitigations() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir("/sys/devices/system/cpu/vulnerabilities")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let state = std::fs::read_to_string(e.path()).unwrap_or_default();
            (
                e.file_name().to_string_lossy().into_owned(),
                state.trim().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The machine as JSON: CPU, kernel, mitigations.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "cpu_model": crate::cpu::model(),
        "cpu_flags": cipher_flags(&cpuinfo),
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "kernel": release.trim(),
        "mitigations": mitigations().into_iter().map(|(k, v)| (k, json!(v))).collect::<serde_json::Map<_, _>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shape of /proc/crypto on a 6.12 kernel with VAES (abridged).
    const SAMPLE: &str = "name         : xts(aes)
driver       : xts-aes-vaes-avx10_512
module       : aesni_intel
priority     : 800
refcnt       : 1
selftest     : passed
internal     : no
type         : skcipher
async        : yes
blocksize    : 16
min keysize  : 32
max keysize  : 64
ivsize       : 16

name         : xts(aes)
driver       : xts-aes-aesni
module       : aesni_intel
priority     : 401
selftest     : passed
type         : skcipher
ivsize       : 16

name         : xts(aes)
driver       : xts-aes-broken
priority     : 900
selftest     : unknown
type         : skcipher
ivsize       : 16

name         : aes
driver       : aes-aesni
priority     : 300
type         : cipher
";

    #[test]
    fn the_tested_skcipher_of_highest_priority_is_chosen() {
        let d = parse_proc_crypto(SAMPLE);
        assert_eq!(d.len(), 4);
        let c = chosen(&d, "xts(aes)").unwrap();
        assert_eq!(c.driver, "xts-aes-vaes-avx10_512");
        assert_eq!((c.priority, c.ivsize), (800, 16));
        assert!(chosen(&d, "aes").is_none(), "a bare cipher is no skcipher");
        assert!(chosen(&d, "cbc(serpent)").is_none());
    }

    #[test]
    fn dm_crypt_allocates_essiv_as_a_template() {
        let p = |s| api_name(&crate::spec::CipherSpec::parse(s).unwrap());
        assert_eq!(p("aes-xts-plain64"), "xts(aes)");
        assert_eq!(p("aes-cbc-essiv:sha256"), "essiv(cbc(aes),sha256)");
        assert_eq!(p("capi:cbc(aes)-essiv:sha256"), "essiv(cbc(aes),sha256)");
        assert_eq!(p("serpent-cbc-plain64"), "cbc(serpent)");
    }

    #[test]
    fn cipher_flags_come_from_the_flags_line() {
        let info = "processor : 0\nflags\t\t: fpu sse2 aes avx2 vaes gfni other\n";
        assert_eq!(cipher_flags(info), ["aes", "avx2", "vaes", "gfni"]);
        assert!(cipher_flags("").is_empty());
    }

    #[test]
    fn the_machine_record_names_cpu_and_kernel() {
        let m = machine();
        assert!(m["cpu_model"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(m["kernel"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(m["mitigations"].is_object());
    }
}
