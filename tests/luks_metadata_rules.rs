//! Protects the LUKS2 header reader: cryptsetup's validation rules, class
//! by class (the classes of its luks2-validation-test: checksums and which
//! copy wins, the JSON area's form, references between objects, integer
//! limits, segments, areas, config sizes, object types). Each case is a
//! valid dmch-made image with one rule broken (both header copies, correct
//! checksums); `dmch luks dump` must accept or refuse it as cryptsetup
//! does: refused in one line, never a panic. Where cryptsetup is installed
//! its `luksDump` runs on the same image and must agree.

use dmcrypt_harness::luks::luks2::{self, BinHeader};
use dmcrypt_harness::luks::manage::{self, DataSize, FormatOptions, KdfChoice};
use dmcrypt_harness::luks::{Header, Image};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");
const DATA: u64 = 1 << 20;

fn options(metadata: u64) -> FormatOptions {
    FormatOptions {
        version: 2,
        cipher: "aes-xts-plain64".into(),
        key_bytes: 64,
        sector_size: Some(4096),
        kdf: KdfChoice {
            kind: "pbkdf2".into(),
            hash: "sha256".into(),
            iter_time_ms: 1,
            force_iterations: Some(1000),
            memory_kib: None,
            parallel: None,
        },
        uuid: None,
        label: String::new(),
        subsystem: String::new(),
        volume_key: None,
        offset: Some(2 * metadata + (2 << 20)),
        metadata_size: metadata,
        flags: Vec::new(),
    }
}

/// A valid image with two key slots, and its metadata size.
fn base(dir: &Path, metadata: u64) -> Vec<u8> {
    let o = options(metadata);
    let total = o.offset.unwrap() + DATA;
    let f = manage::format(&o, b"first", DataSize::Device(total)).unwrap();
    let mut img = f.bytes.to_vec();
    img.resize(total as usize, 0);
    let p = dir.join(format!("base-{metadata}.img"));
    std::fs::write(&p, &img).unwrap();
    let image = Image::open(&p, true).unwrap();
    manage::add_key(&image, &f.volume_key, b"second", None, &o.kdf).unwrap();
    std::fs::read(&p).unwrap()
}

fn parts(img: &[u8]) -> (BinHeader, Value) {
    let h = luks2::Header::read(
        |at, n| Ok(img[at as usize..at as usize + n].to_vec()),
        img.len() as u64,
    )
    .unwrap();
    (h.bin, h.meta.doc)
}

/// Both copies rewritten with `doc` (checksums correct).
fn with_doc(img: &[u8], f: &dyn Fn(&mut Value)) -> Vec<u8> {
    let (bin, mut doc) = parts(img);
    f(&mut doc);
    let text = serde_json::to_vec(&doc).unwrap();
    with_area(img, &bin, &|area: &mut Vec<u8>| {
        area.fill(0);
        area[..text.len()].copy_from_slice(&text);
    })
}

/// Both JSON areas edited raw, checksums recomputed.
fn with_area(img: &[u8], bin: &BinHeader, f: &dyn Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = img.to_vec();
    let n = bin.hdr_size as usize;
    let mut area = img[4096..n].to_vec();
    f(&mut area);
    out[..n].copy_from_slice(&luks2::copy(bin, false, &area).unwrap());
    out[n..2 * n].copy_from_slice(&luks2::copy(bin, true, &area).unwrap());
    out
}

fn cryptsetup_present() -> bool {
    Command::new("cryptsetup")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// dmch's verdict (and its one error line), then cryptsetup's when present.
fn verdicts(dir: &Path, name: &str, img: &[u8]) -> (bool, String, Option<bool>) {
    let p = dir.join(format!("{}.img", name.replace([' ', '/'], "-")));
    std::fs::write(&p, img).unwrap();
    let o = Command::new(DMCH)
        .args(["luks", "dump"])
        .arg(&p)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !err.contains("internal error"),
        "{name}: dmch panicked: {err}"
    );
    if !o.status.success() {
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
    }
    let cs = cryptsetup_present().then(|| {
        // luksDump may repair a copy it finds damaged: it works on its own copy.
        let c = dir.join("cryptsetup-copy.img");
        std::fs::write(&c, img).unwrap();
        Command::new("cryptsetup")
            .args(["luksDump", "--batch-mode"])
            .arg(&c)
            .output()
            .unwrap()
            .status
            .success()
    });
    (o.status.success(), err, cs)
}

type Edit = Box<dyn Fn(&[u8]) -> Vec<u8>>;

fn doc(f: impl Fn(&mut Value) + 'static) -> Edit {
    Box::new(move |img| with_doc(img, &f))
}

fn raw(f: impl Fn(&mut Vec<u8>) + 'static) -> Edit {
    Box::new(move |img| {
        let (bin, _) = parts(img);
        with_area(img, &bin, &f)
    })
}

fn json_len(area: &[u8]) -> usize {
    area.iter().position(|&b| b == 0).unwrap()
}

#[test]
fn luks2_headers_are_accepted_and_refused_as_cryptsetup_does() {
    let dir = tempfile::tempdir().unwrap();
    let img = base(dir.path(), 16384);
    let (_, d) = parts(&img);
    let area0 = d["keyslots"]["0"]["area"]["offset"]
        .as_str()
        .unwrap()
        .to_string();
    let seg_off: u64 = d["segments"]["0"]["offset"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut cases: Vec<(&str, bool, Edit)> = vec![
        // Checksums, and which copy wins.
        ("valid image", true, Box::new(|i: &[u8]| i.to_vec())),
        (
            "primary checksum broken",
            true,
            Box::new(|i: &[u8]| {
                let mut o = i.to_vec();
                o[5000] ^= 1;
                o
            }),
        ),
        (
            "secondary checksum broken",
            true,
            Box::new(|i: &[u8]| {
                let mut o = i.to_vec();
                o[16384 + 5000] ^= 1;
                o
            }),
        ),
        (
            "both checksums broken",
            false,
            Box::new(|i: &[u8]| {
                let mut o = i.to_vec();
                o[5000] ^= 1;
                o[16384 + 5000] ^= 1;
                o
            }),
        ),
        (
            "primary JSON broken under a correct checksum",
            true,
            Box::new(|i: &[u8]| {
                let (bin, _) = parts(i);
                let mut o = i.to_vec();
                let mut area = i[4096..16384].to_vec();
                area[..9].copy_from_slice(b"{\"broken\"");
                o[..16384].copy_from_slice(&luks2::copy(&bin, false, &area).unwrap());
                o
            }),
        ),
        (
            "binary header size not one LUKS2 allows",
            false,
            Box::new(|i: &[u8]| {
                let (mut bin, _) = parts(i);
                bin.hdr_size = 8192;
                let mut o = i.to_vec();
                let area = i[4096..8192].to_vec();
                o[..8192].copy_from_slice(&luks2::copy(&bin, false, &area).unwrap());
                o[16384..16384 + 8192].copy_from_slice(&luks2::copy(&bin, true, &area).unwrap());
                o
            }),
        ),
        // The JSON area's form.
        (
            "a byte after the JSON",
            false,
            raw(|a| {
                let n = json_len(a);
                a[n + 1] = b'x';
            }),
        ),
        (
            "no NUL after the JSON",
            false,
            raw(|a| {
                let n = json_len(a);
                let body = a[..n - 1].to_vec();
                let len = a.len();
                a[..n - 1].copy_from_slice(&body);
                for b in &mut a[n - 1..len - 1] {
                    *b = b' ';
                }
                a[len - 1] = b'}';
            }),
        ),
        (
            "a space before the JSON",
            false,
            raw(|a| {
                let n = json_len(a);
                a.copy_within(0..n, 1);
                a[0] = b' ';
            }),
        ),
        (
            "the JSON is not an object",
            false,
            raw(|a| {
                let n = json_len(a);
                let mut t = b"[".to_vec();
                t.extend_from_slice(&a[..n]);
                t.push(b']');
                a.fill(0);
                a[..t.len()].copy_from_slice(&t);
            }),
        ),
        // References between objects.
        (
            "digest names a missing keyslot",
            false,
            doc(|d| d["digests"]["0"]["keyslots"] = json!(["0", "1", "7"])),
        ),
        (
            "digest names a missing segment",
            false,
            doc(|d| d["digests"]["0"]["segments"] = json!(["0", "3"])),
        ),
        (
            "token names a missing keyslot",
            false,
            doc(|d| {
                d["tokens"]["0"] =
                    json!({"type": "luks2-keyring", "keyslots": ["9"], "key_description": "k"})
            }),
        ),
        (
            "keyslot in no digest",
            false,
            doc(|d| d["digests"]["0"]["keyslots"] = json!(["0"])),
        ),
        (
            "keyslot in two digests",
            false,
            doc(|d| d["digests"]["1"] = d["digests"]["0"].clone()),
        ),
        (
            "a valid token",
            true,
            doc(|d| {
                d["tokens"]["0"] =
                    json!({"type": "luks2-keyring", "keyslots": ["1"], "key_description": "k"})
            }),
        ),
        // Integer limits.
        (
            "segment size at the largest 4 KiB multiple",
            true,
            doc(|d| d["segments"]["0"]["size"] = json!("18446744073709547520")),
        ),
        (
            "segment size past 2^64",
            false,
            doc(|d| d["segments"]["0"]["size"] = json!("18446744073709551616")),
        ),
        (
            "negative segment size",
            false,
            doc(|d| d["segments"]["0"]["size"] = json!("-512")),
        ),
        (
            "area size at 2^64 - 1",
            false,
            doc(|d| d["keyslots"]["0"]["area"]["size"] = json!("18446744073709551615")),
        ),
        // Segments.
        (
            "segment without type",
            false,
            doc(|d| {
                d["segments"]["0"].as_object_mut().unwrap().remove("type");
            }),
        ),
        (
            "segment type not a string",
            false,
            doc(|d| d["segments"]["0"]["type"] = json!(42)),
        ),
        (
            "segment without offset",
            false,
            doc(|d| {
                d["segments"]["0"].as_object_mut().unwrap().remove("offset");
            }),
        ),
        (
            "segment offset not a number",
            false,
            doc(|d| d["segments"]["0"]["offset"] = json!("0x400000")),
        ),
        (
            "segment without size",
            false,
            doc(|d| {
                d["segments"]["0"].as_object_mut().unwrap().remove("size");
            }),
        ),
        (
            "segment size a JSON number",
            false,
            doc(|d| d["segments"]["0"]["size"] = json!(4096)),
        ),
        (
            "segment size automatic",
            false,
            doc(|d| d["segments"]["0"]["size"] = json!("automatic")),
        ),
        (
            "segment size not whole sectors",
            false,
            doc(|d| d["segments"]["0"]["size"] = json!("511")),
        ),
        (
            "crypt segment without encryption",
            false,
            doc(|d| {
                d["segments"]["0"]
                    .as_object_mut()
                    .unwrap()
                    .remove("encryption");
            }),
        ),
        (
            "crypt segment encryption not a string",
            false,
            doc(|d| d["segments"]["0"]["encryption"] = json!(42)),
        ),
        (
            "crypt segment encryption empty",
            false,
            doc(|d| d["segments"]["0"]["encryption"] = json!("")),
        ),
        (
            "crypt segment without iv_tweak",
            false,
            doc(|d| {
                d["segments"]["0"]
                    .as_object_mut()
                    .unwrap()
                    .remove("iv_tweak");
            }),
        ),
        (
            "crypt segment iv_tweak dynamic",
            false,
            doc(|d| d["segments"]["0"]["iv_tweak"] = json!("dynamic")),
        ),
        (
            "crypt segment without sector_size",
            false,
            doc(|d| {
                d["segments"]["0"]
                    .as_object_mut()
                    .unwrap()
                    .remove("sector_size");
            }),
        ),
        (
            "crypt segment sector_size 1023",
            false,
            doc(|d| d["segments"]["0"]["sector_size"] = json!(1023)),
        ),
        (
            "crypt segment sector_size a string",
            false,
            doc(|d| d["segments"]["0"]["sector_size"] = json!("4096")),
        ),
        (
            "crypt segment sector_size negative",
            false,
            doc(|d| d["segments"]["0"]["sector_size"] = json!(-1024)),
        ),
        (
            "segment of an unknown type",
            true,
            doc(|d| d["segments"]["0"]["type"] = json!("someday")),
        ),
        (
            "segment flags not an array",
            false,
            doc(|d| d["segments"]["0"]["flags"] = json!("hello")),
        ),
        (
            "segment flags not strings",
            false,
            doc(|d| d["segments"]["0"]["flags"] = json!(["hello", 1])),
        ),
        (
            "a gap before a backup segment",
            false,
            doc(|d| {
                d["segments"]["5"] =
                    json!({"type": "linear", "offset": "512", "size": "512", "flags": ["backup-x"]})
            }),
        ),
        // Key slot areas.
        (
            "two keyslots on one area",
            false,
            doc(move |d| {
                let a = d["keyslots"]["0"]["area"].clone();
                d["keyslots"]["1"]["area"] = a;
            }),
        ),
        (
            "keyslot areas that intersect",
            false,
            doc(move |d| {
                let o: u64 = d["keyslots"]["0"]["area"]["offset"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                d["keyslots"]["1"]["area"]["offset"] = json!((o + 4096).to_string());
            }),
        ),
        (
            "keyslot area in the header space",
            false,
            doc(|d| d["keyslots"]["0"]["area"]["offset"] = json!("16384")),
        ),
        // Config.
        (
            "keyslots_size running into the data",
            false,
            doc(move |d| {
                d["config"]["keyslots_size"] = json!((seg_off - 2 * 16384 + 4096).to_string())
            }),
        ),
        (
            "keyslots_size not 4 KiB aligned",
            false,
            doc(|d| d["config"]["keyslots_size"] = json!("2093057")),
        ),
        (
            "keyslots_size short of an area",
            false,
            doc(|d| d["config"]["keyslots_size"] = json!("8192")),
        ),
        (
            "json_size not a number",
            false,
            doc(|d| d["config"]["json_size"] = json!("twelve")),
        ),
        (
            "json_size not the binary header's",
            false,
            doc(|d| d["config"]["json_size"] = json!("28672")),
        ),
        // Object types.
        (
            "tokens not an object",
            false,
            doc(|d| d["tokens"] = json!(42)),
        ),
        (
            "top-level objects of the wrong types",
            false,
            doc(|d| {
                d["digests"] = json!(42);
                d["keyslots"] = json!([]);
                d["segments"] = json!("hi");
            }),
        ),
        (
            "keyslot kdf and af not objects",
            false,
            doc(|d| {
                d["keyslots"]["0"]["kdf"] = json!(42);
                d["keyslots"]["0"]["af"] = json!(42);
            }),
        ),
        (
            "keyslot af type not a string",
            false,
            doc(|d| d["keyslots"]["0"]["af"]["type"] = json!(42)),
        ),
        (
            "pbkdf2 kdf with argon2 leftovers",
            true,
            doc(|d| {
                d["keyslots"]["0"]["kdf"]["time"] = json!(4);
                d["keyslots"]["0"]["kdf"]["memory"] = json!(32);
                d["keyslots"]["0"]["kdf"]["cpus"] = json!(1);
            }),
        ),
        (
            "argon2 kdf with pbkdf2 leftovers",
            true,
            doc(|d| {
                let k = &mut d["keyslots"]["0"]["kdf"];
                k["type"] = json!("argon2id");
                k["time"] = json!(4);
                k["memory"] = json!(32);
                k["cpus"] = json!(1);
            }),
        ),
    ];
    let _ = &area0;
    // Every metadata size LUKS2 allows, from a header formatted with it.
    let mut sized = Vec::new();
    for m in [
        32768u64, 65536, 131072, 262144, 524288, 1048576, 2097152, 4194304,
    ] {
        sized.push((m, base(dir.path(), m)));
    }
    let mut disagreements = Vec::new();
    let mut checked_by_cryptsetup = 0;
    for (name, want, edit) in cases.drain(..) {
        let (ok, err, cs) = verdicts(dir.path(), name, &edit(&img));
        assert_eq!(
            ok,
            want,
            "{name}: dmch {}: {err}",
            if ok { "accepted" } else { "refused" }
        );
        if let Some(cs) = cs {
            checked_by_cryptsetup += 1;
            if cs != ok {
                disagreements.push(format!("{name}: dmch {ok}, cryptsetup {cs}"));
            }
        }
    }
    for (m, img) in &sized {
        let name = format!("metadata size {m}");
        let (ok, err, cs) = verdicts(dir.path(), &name, img);
        assert!(ok, "{name}: {err}");
        if cs == Some(false) {
            disagreements.push(format!("{name}: cryptsetup refuses"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "dmch and cryptsetup disagree: {disagreements:#?}"
    );
    if checked_by_cryptsetup == 0 {
        println!(
            "SKIPPED the cryptsetup half: cryptsetup is not installed (ci/test.sh installs cryptsetup-bin)"
        );
    } else {
        println!("{checked_by_cryptsetup} cases: dmch and cryptsetup luksDump agree on every one");
    }
}

/// A header read from any image never panics, never reads or allocates
/// past what the header may hold (4 MiB of metadata): random damage to a
/// valid image, with and without the checksums made right again.
#[test]
fn damaged_headers_never_panic_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let img = base(dir.path(), 16384);
    let (bin, _) = parts(&img);
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let cases: usize = std::env::var("DMCH_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut refused = 0;
    for i in 0..cases {
        let mut o = img.clone();
        let flips = 1 + next() % 8;
        for _ in 0..flips {
            // Mostly the headers, sometimes the key slot areas.
            let span = if next() % 4 == 0 { 1 << 20 } else { 2 * 16384 };
            let at = (next() % span) as usize;
            o[at] = next() as u8;
        }
        if i % 2 == 0 {
            // Checksums right again: the damage reaches the JSON checks.
            let area = o[4096..16384].to_vec();
            o[..16384].copy_from_slice(&luks2::copy(&bin, false, &area).unwrap());
            let area = o[16384 + 4096..32768].to_vec();
            o[16384..32768].copy_from_slice(&luks2::copy(&bin, true, &area).unwrap());
        }
        let len = if next() % 8 == 0 {
            next() % o.len() as u64
        } else {
            o.len() as u64
        };
        let f = dir.path().join("fuzz.img");
        std::fs::write(&f, &o[..len as usize]).unwrap();
        let file = std::fs::File::open(&f).unwrap();
        if Header::read(&file, len).is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0, "no damage was ever refused");
    println!("{cases} damaged headers read, {refused} refused, none panicked");
}
