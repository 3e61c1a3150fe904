//! The LUKS scenario, run inside the guest: the real kernel opens volumes
//! (`dmch open --type luks`) that cryptsetup made on the host and that
//! dmch made here, reads what `dmch luks encrypt` wrote, and writes the
//! ciphertext `dmch luks encrypt` writes; closing leaves nothing behind.

use super::scenario::{check, clean, dmch, pattern, read_dev, write_dev};
use std::path::Path;

const DATA: usize = 1 << 20;

/// The data region of an image (after `offset` bytes).
fn data_of(path: &str, offset: usize) -> Vec<u8> {
    std::fs::read(path)
        .map(|b| b[offset.min(b.len())..].to_vec())
        .unwrap_or_default()
}

fn offset_of(img: &str) -> usize {
    let (_, out, _) = dmch(&["luks", "dump", "--json", img], b"");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    match j["version"].as_u64() {
        Some(1) => j["payload_offset"].as_u64().unwrap_or(0) as usize * 512,
        _ => j["metadata"]["segments"]["0"]["offset"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    }
}

/// Both directions through the kernel for one volume.
fn volume(label: &str, img: &str, pass: &str) {
    let offset = offset_of(img);
    let plain = pattern(DATA, 3);
    let _ = std::fs::write("/tmp/plain", &plain);
    let (c, _, e) = dmch(&["luks", "encrypt", "/tmp/plain", img, "-d", pass], b"");
    check(&format!("{label}: dmch luks encrypt"), c == 0, &e);
    let (c, _, e) = dmch(&["open", "--type", "luks", img, "lk", "-d", pass], b"");
    check(
        &format!("{label}: the kernel opens it (open --type luks)"),
        c == 0,
        &e,
    );
    let got = read_dev("/dev/mapper/lk", DATA);
    check(
        &format!("{label}: the kernel reads what dmch luks encrypt wrote"),
        got.as_ref().is_ok_and(|g| *g == plain),
        &format!("{:?}", got.as_ref().err()),
    );
    // The table is the one cryptsetup loads: cipher, volume key, iv_tweak
    // as iv_offset, the data offset, the sector size.
    let (_, j, _) = dmch(
        &[
            "luks",
            "dump",
            "--json",
            "--dump-volume-key",
            "-d",
            pass,
            img,
        ],
        b"",
    );
    let j: serde_json::Value = serde_json::from_str(&j).unwrap_or_default();
    let (cipher, ss, iv) = match j["version"].as_u64() {
        Some(1) => (
            format!(
                "{}-{}",
                j["cipher_name"].as_str().unwrap_or(""),
                j["cipher_mode"].as_str().unwrap_or("")
            ),
            512,
            "0".to_string(),
        ),
        _ => {
            let s = &j["metadata"]["segments"]["0"];
            (
                s["encryption"].as_str().unwrap_or("").to_string(),
                s["sector_size"].as_u64().unwrap_or(0),
                s["iv_tweak"].as_str().unwrap_or("").to_string(),
            )
        }
    };
    let (_, table, _) = dmch(&["dmsetup", "table", "--showkeys", "lk"], b"");
    let f: Vec<&str> = table.split_whitespace().collect();
    let want_opts: Vec<String> = if ss == 512 {
        vec![]
    } else {
        vec!["1".into(), format!("sector_size:{ss}")]
    };
    check(
        &format!("{label}: the kernel's table is cryptsetup's"),
        f.len() >= 8
            && f[2] == "crypt"
            && f[3] == cipher
            && f[4] == j["volume_key"].as_str().unwrap_or("?")
            && f[5] == iv
            && f[7] == (offset / 512).to_string()
            && f[8..] == want_opts.iter().map(String::as_str).collect::<Vec<_>>()[..],
        &table.replace(j["volume_key"].as_str().unwrap_or("-"), "<key>"),
    );
    let (c, out, e) = dmch(&["status", "lk"], b"");
    check(
        &format!("{label}: status names a LUKS volume"),
        c == 0 && out.contains("type:        LUKS"),
        &format!("{out}{e}"),
    );
    let other = pattern(DATA, 77);
    let wrote = write_dev("/dev/mapper/lk", &other);
    let (c, _, e) = dmch(&["close", "lk"], b"");
    check(
        &format!("{label}: write through the kernel, close"),
        wrote.is_ok() && c == 0,
        &format!("{wrote:?} {e}"),
    );
    // The ciphertext the kernel wrote is dmch luks encrypt's of the same data.
    let _ = std::fs::copy(img, "/tmp/copy.img");
    let _ = std::fs::write("/tmp/other", &other);
    let (c, _, e) = dmch(
        &["luks", "encrypt", "/tmp/other", "/tmp/copy.img", "-d", pass],
        b"",
    );
    let kernel = data_of(img, offset);
    let ours = data_of("/tmp/copy.img", offset);
    check(
        &format!("{label}: the kernel's ciphertext is dmch luks encrypt's"),
        c == 0
            && !kernel.is_empty()
            && kernel[..DATA.min(kernel.len())] == ours[..DATA.min(ours.len())],
        &e,
    );
    let (c, _, e) = dmch(&["luks", "decrypt", img, "/tmp/back", "-d", pass], b"");
    let back = std::fs::read("/tmp/back").unwrap_or_default();
    check(
        &format!("{label}: dmch luks decrypt reads what the kernel wrote"),
        c == 0 && back.len() >= DATA && back[..DATA] == other[..],
        &e,
    );
    let _ = std::fs::remove_file("/tmp/copy.img");
    clean(label);
}

/// Run the scenario over the host's images in `dir` and volumes made here.
pub fn run(dir: &Path) {
    let mut host: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().to_string_lossy().into_owned())
                .filter(|p| p.ends_with(".img"))
                .collect()
        })
        .unwrap_or_default();
    host.sort();
    check(
        "LUKS images made by cryptsetup on the host",
        true,
        &format!("{} shipped", host.len()),
    );
    for img in &host {
        let pass = img.trim_end_matches(".img").to_string() + ".pass";
        let name = Path::new(img)
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        volume(&format!("cryptsetup {name}"), img, &pass);
    }
    // Volumes dmch formats here, for ciphers cryptsetup could not format
    // on a host without them in its kernel's crypto API.
    let _ = std::fs::write("/tmp/pass", b"made in the guest");
    for (i, (kind, cipher, ss)) in [
        ("luks2", "serpent-xts-plain64", "4096"),
        ("luks2", "twofish-xts-plain64", "512"),
        ("luks1", "serpent-cbc-essiv:sha256", "512"),
    ]
    .into_iter()
    .enumerate()
    {
        let img = format!("/tmp/dmch{i}.img");
        let _ = std::fs::write("/tmp/zeros", vec![0u8; DATA]);
        let mut args = vec![
            "luks",
            "format",
            &img,
            "--type",
            kind,
            "-c",
            cipher,
            "-d",
            "/tmp/pass",
            "--from",
            "/tmp/zeros",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--offset",
            "4096",
        ];
        if kind == "luks2" {
            args.extend(["--sector-size", ss]);
        }
        let (c, _, e) = dmch(&args, b"");
        check(
            &format!("dmch {kind} {cipher}: luks format --from"),
            c == 0,
            &e,
        );
        volume(&format!("dmch {kind} {cipher}"), &img, "/tmp/pass");
        let _ = std::fs::remove_file(&img);
    }
    // Refusals leave nothing behind.
    let img = host
        .first()
        .cloned()
        .unwrap_or_else(|| "/tmp/dmch-r.img".into());
    if !Path::new(&img).exists() {
        let _ = std::fs::write("/tmp/zeros", vec![0u8; DATA]);
        dmch(
            &[
                "luks",
                "format",
                &img,
                "-d",
                "/tmp/pass",
                "--from",
                "/tmp/zeros",
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
                "--offset",
                "4096",
            ],
            b"",
        );
    }
    let _ = std::fs::write("/tmp/wrong", b"not the passphrase");
    let (c, _, e) = dmch(
        &["open", "--type", "luks", &img, "bad", "-d", "/tmp/wrong"],
        b"",
    );
    check(
        "a wrong LUKS passphrase fails with one line",
        c != 0 && e.lines().count() == 1 && e.contains("no key slot opens"),
        &e,
    );
    clean("wrong LUKS passphrase");
}
