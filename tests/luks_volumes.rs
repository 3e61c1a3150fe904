//! Protects `dmch luks` as a tool: the data path (a volume's data equals
//! the offline engine's sectors for its segment), key management, the
//! table `open --type luks` would load, the refusal to overwrite what a
//! device holds, and every bad input: one line, a non-zero exit, nothing
//! written.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DMCH: &str = env!("CARGO_BIN_EXE_dmch");
const FAST: &[&str] = &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"];

fn dmch(args: &[&str], stdin: &[u8]) -> (bool, String, String) {
    let mut c = Command::new(DMCH)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let _ = c.stdin.take().unwrap().write_all(stdin);
    let o = c.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("internal error"), "{args:?} panicked: {err}");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        err,
    )
}

/// A refusal: one line naming `what`.
fn refused(args: &[&str], stdin: &[u8], what: &str) {
    let (ok, _, err) = dmch(args, stdin);
    assert!(!ok, "{args:?} succeeded");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.contains(what), "{args:?}: want '{what}' in {err}");
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 4096) as u8).collect()
}

#[test]
fn a_volumes_data_is_the_engines_sectors_for_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = file(d, "pw", b"pass");
    let plain = file(d, "plain", &data(3 << 20));
    let vk64 = file(d, "vk64", &(100..164u8).collect::<Vec<_>>());
    let vk32 = file(d, "vk32", &(100..132u8).collect::<Vec<_>>());
    for (kind, cipher, key, ss) in [
        ("luks2", "aes-xts-plain64", &vk64, "4096"),
        ("luks2", "aes-xts-plain64", &vk64, "512"),
        ("luks2", "serpent-xts-plain64", &vk64, "4096"),
        ("luks2", "twofish-cbc-essiv:sha256", &vk32, "1024"),
        ("luks1", "aes-cbc-essiv:sha256", &vk32, "512"),
        ("luks1", "serpent-xts-plain64", &vk64, "512"),
    ] {
        let what = format!("{kind} {cipher} {ss}");
        let img = d.join(format!("{kind}-{cipher}-{ss}.img"));
        let bits = (std::fs::metadata(key).unwrap().len() * 8).to_string();
        let mut args = vec![
            "luks",
            "format",
            s(&img),
            "--type",
            kind,
            "-c",
            cipher,
            "-s",
            &bits,
            "-d",
            s(&pw),
            "--volume-key-file",
            s(key),
            "--from",
            s(&plain),
        ];
        if kind == "luks2" {
            args.extend(["--sector-size", ss]);
        }
        args.extend_from_slice(FAST);
        let (ok, _, err) = dmch(&args, b"");
        assert!(ok, "{what}: {err}");
        let (_, dump, _) = dmch(&["luks", "dump", "--json", s(&img)], b"");
        let j: serde_json::Value = serde_json::from_str(&dump).unwrap();
        let offset: u64 = match kind {
            "luks1" => j["payload_offset"].as_u64().unwrap() * 512,
            _ => j["metadata"]["segments"]["0"]["offset"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        };
        let bytes = std::fs::read(&img).unwrap();
        assert_eq!(bytes.len() as u64, offset + (3 << 20), "{what}");
        // The same sectors through the plain offline path.
        let ct = d.join("ct");
        let (ok, _, err) = dmch(
            &[
                "encrypt",
                "--cipher",
                cipher,
                "--key-file",
                s(key),
                "--sector-size",
                ss,
                s(&plain),
                s(&ct),
            ],
            b"",
        );
        assert!(ok, "{err}");
        assert!(
            bytes[offset as usize..] == std::fs::read(&ct).unwrap()[..],
            "{what}: data differs from dmch encrypt's"
        );
        // And back.
        let out = d.join("out");
        let (ok, _, err) = dmch(&["luks", "decrypt", s(&img), s(&out), "-d", s(&pw)], b"");
        assert!(ok, "{what}: {err}");
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(&plain).unwrap(),
            "{what}: decrypt"
        );
        // encrypt into the formatted image: the same bytes again.
        let other = file(
            d,
            "other",
            &data(1 << 20).iter().map(|b| b ^ 0x5a).collect::<Vec<_>>(),
        );
        let (ok, _, err) = dmch(&["luks", "encrypt", s(&other), s(&img), "-d", s(&pw)], b"");
        assert!(ok, "{what}: {err}");
        let (ok, _, _) = dmch(&["luks", "decrypt", s(&img), s(&out), "-d", s(&pw)], b"");
        assert!(
            ok && std::fs::read(&out).unwrap() == std::fs::read(&other).unwrap(),
            "{what}: encrypt then decrypt"
        );
        // The table open would load, key hidden.
        let (ok, table, err) = dmch(
            &[
                "open",
                "--type",
                "luks",
                s(&img),
                "vol",
                "-d",
                s(&pw),
                "--dry-run",
            ],
            b"",
        );
        assert!(ok, "{err}");
        let want_ss = if ss == "512" {
            String::new()
        } else {
            format!(" 1 sector_size:{ss}")
        };
        assert!(
            table.starts_with(&format!("0 {} crypt {cipher} ", (1u64 << 20) / 512)),
            "{table}"
        );
        assert!(
            table
                .trim_end()
                .ends_with(&format!(" 0 {} {}{want_ss}", s(&img), offset / 512)),
            "{what}: {table}"
        );
        assert!(
            !table.contains(&hex::encode(std::fs::read(key).unwrap())),
            "the key shows"
        );
    }
}

#[test]
fn key_slots_are_added_changed_removed_and_killed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = file(d, "pw", b"one");
    let pw2 = file(d, "pw2", b"two");
    let pw3 = file(d, "pw3", b"three");
    for kind in ["luks1", "luks2"] {
        let img = d.join(format!("{kind}.img"));
        std::fs::File::create(&img)
            .unwrap()
            .set_len(20 << 20)
            .unwrap();
        let mut f = vec!["luks", "format", s(&img), "--type", kind, "-d", s(&pw)];
        f.extend_from_slice(FAST);
        assert!(dmch(&f, b"").0);
        let vk = |p: &Path| {
            let (ok, out, err) = dmch(
                &["luks", "dump", "--dump-volume-key", "-d", s(p), s(&img)],
                b"",
            );
            let mk = out
                .find("MK dump:")
                .map(|at| out[at..].to_string())
                .unwrap_or_default();
            (ok, mk, err)
        };
        let key = vk(&pw).1;
        let mut add = vec!["luks", "add-key", s(&img), s(&pw2), "-d", s(&pw)];
        add.extend_from_slice(FAST);
        let before = std::fs::read(&img).unwrap();
        let mut wrong = vec!["luks", "add-key", s(&img), s(&pw2), "-d", s(&pw3)];
        wrong.extend_from_slice(FAST);
        refused(&wrong, b"", "no key slot opens with this passphrase");
        assert!(
            std::fs::read(&img).unwrap() == before,
            "{kind}: a refused add-key wrote"
        );
        assert!(dmch(&add, b"").0);
        assert_eq!(
            vk(&pw2).1,
            key,
            "{kind}: the new slot opens to the same key"
        );
        let mut change = vec!["luks", "change-key", s(&img), s(&pw3), "-d", s(&pw2)];
        change.extend_from_slice(FAST);
        assert!(dmch(&change, b"").0, "{kind}: change-key");
        assert!(!vk(&pw2).0, "{kind}: the old passphrase still opens");
        assert_eq!(vk(&pw3).1, key);
        // kill-slot wants the passphrase of a slot that stays.
        let (_, dump, _) = dmch(&["luks", "dump", "--json", s(&img)], b"");
        let slot_of_pw3 = if kind == "luks1" { "2" } else { "1" };
        let _ = dump;
        refused(
            &["luks", "kill-slot", s(&img), slot_of_pw3, "-d", s(&pw3)],
            b"",
            "opens no key slot but",
        );
        assert!(
            dmch(
                &["luks", "kill-slot", s(&img), slot_of_pw3, "-d", s(&pw)],
                b""
            )
            .0,
            "{kind}: kill-slot"
        );
        assert!(!vk(&pw3).0);
        refused(
            &["luks", "remove-key", s(&img), "-d", s(&pw)],
            b"",
            "is the last one in use",
        );
        assert_eq!(vk(&pw).1, key, "{kind}: a refused remove-key removed");
        assert!(
            dmch(
                &["luks", "remove-key", s(&img), "-d", s(&pw), "--force"],
                b""
            )
            .0
        );
        assert!(!vk(&pw).0);
    }
}

#[test]
fn format_refuses_what_a_device_holds_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = file(d, "pw", b"pass");
    let mut ext4 = vec![0u8; 20 << 20];
    ext4[1080] = 0x53;
    ext4[1081] = 0xef;
    let img = file(d, "fs.img", &ext4);
    let mut f = vec!["luks", "format", s(&img), "-d", s(&pw)];
    f.extend_from_slice(FAST);
    refused(&f, b"", "holds ext2/3/4; --force overwrites it");
    assert!(
        std::fs::read(&img).unwrap() == ext4,
        "a refused format wrote"
    );
    let mut forced = f.clone();
    forced.push("--force");
    assert!(dmch(&forced, b"").0);
    refused(&f, b"", "holds LUKS; --force overwrites it");
}

#[test]
fn bad_luks_input_gets_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = file(d, "pw", b"pass");
    let img = d.join("v.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(20 << 20)
        .unwrap();
    let mut f = vec!["luks", "format", s(&img), "-d", s(&pw)];
    f.extend_from_slice(FAST);
    assert!(dmch(&f, b"").0);
    let v1 = d.join("v1.img");
    std::fs::File::create(&v1)
        .unwrap()
        .set_len(4 << 20)
        .unwrap();
    let mut f1 = vec!["luks", "format", s(&v1), "--type", "luks1", "-d", s(&pw)];
    f1.extend_from_slice(FAST);
    assert!(dmch(&f1, b"").0);
    let good = std::fs::read(&img).unwrap();
    let cut = |name: &str, src: &[u8], n: usize| file(d, name, &src[..n]);
    let c1 = cut("cut1.img", &good, 20000);
    let c2 = cut("cut2.img", &good, 100);
    let c3 = cut("cut3.img", &std::fs::read(&v1).unwrap(), 300 * 512);
    let mut both = good.clone();
    both[5000] ^= 1;
    both[16384 + 5000] ^= 1;
    let both = file(d, "both.img", &both);
    let noise = file(d, "noise.img", &data(1 << 20));
    for (args, what) in [
        (
            vec!["luks", "dump", "/nonexistent.img"],
            "opening /nonexistent.img",
        ),
        (
            vec!["luks", "dump", s(d)],
            "neither a regular file nor a block device",
        ),
        (vec!["luks", "dump", s(&noise)], "not a LUKS volume"),
        (vec!["luks", "dump", s(&c1)], "truncated image"),
        (vec!["luks", "dump", s(&c2)], "truncated image"),
        (vec!["luks", "dump", s(&c3)], "truncated image"),
        (
            vec!["luks", "dump", s(&both)],
            "both LUKS2 headers are damaged",
        ),
        (
            vec![
                "luks",
                "dump",
                "--dump-volume-key",
                "-d",
                "/nonexistent",
                s(&img),
            ],
            "cannot open key file",
        ),
        (
            vec![
                "luks",
                "dump",
                "--dump-volume-key",
                "--key-slot",
                "9",
                "-d",
                s(&pw),
                s(&img),
            ],
            "key slot 9 is not in use",
        ),
        (
            vec![
                "luks",
                "format",
                s(&img),
                "--force",
                "-d",
                s(&pw),
                "--uuid",
                "not-a-uuid",
            ],
            "--uuid not-a-uuid is not a UUID",
        ),
        (
            vec![
                "luks",
                "format",
                s(&img),
                "--force",
                "-d",
                s(&pw),
                "--type",
                "luks3",
            ],
            "--type luks3: luks1 or luks2",
        ),
        (
            vec![
                "luks",
                "format",
                s(&img),
                "--force",
                "-d",
                s(&pw),
                "-c",
                "rot13-xts-plain64",
            ],
            "rot13",
        ),
        (
            vec![
                "luks",
                "format",
                s(&img),
                "--force",
                "-d",
                s(&pw),
                "-s",
                "128",
            ],
            "aes-xts-plain64",
        ),
        (
            vec![
                "luks",
                "format",
                s(&img),
                "--force",
                "-d",
                s(&pw),
                "-s",
                "100",
            ],
            "--key-size 100 is not a whole number",
        ),
        (
            vec![
                "luks",
                "format",
                s(&img),
                "--force",
                "-d",
                s(&pw),
                "--sector-size",
                "3000",
            ],
            "--sector-size 3000",
        ),
        (
            vec![
                "luks",
                "format",
                s(&img),
                "--force",
                "-d",
                s(&pw),
                "--luks2-metadata-size",
                "5000",
            ],
            "--luks2-metadata-size 5000",
        ),
        (
            vec![
                "luks",
                "format",
                s(&img),
                "--force",
                "-d",
                s(&pw),
                "--volume-key-file",
                s(&pw),
            ],
            "the volume key has 4 bytes",
        ),
        (
            vec![
                "luks",
                "format",
                s(&img),
                "--force",
                "-d",
                s(&pw),
                "--type",
                "luks1",
                "--pbkdf",
                "argon2id",
            ],
            "LUKS1 key slots use pbkdf2",
        ),
        (
            vec!["luks", "format", s(&c2), "--force", "-d", s(&pw)],
            "its header alone takes",
        ),
        (
            vec!["luks", "decrypt", s(&img), "-", "-d", s(&noise)],
            "no key slot opens with this passphrase",
        ),
        (
            vec!["luks", "encrypt", s(&noise), s(&img), "-d", s(&noise)],
            "no key slot opens with this passphrase",
        ),
        (
            vec!["luks", "kill-slot", s(&img), "7", "--force"],
            "key slot 7 is not in use",
        ),
        (
            vec![
                "open",
                "--type",
                "luks2",
                s(&v1),
                "x",
                "-d",
                s(&pw),
                "--dry-run",
            ],
            "is LUKS1, not luks2",
        ),
    ] {
        let before: Vec<Vec<u8>> = [&img, &v1]
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        let mut a = args.clone();
        if a[1] == "format" && !a.contains(&"--pbkdf") {
            a.extend_from_slice(FAST);
        }
        refused(&a, b"", what);
        let after: Vec<Vec<u8>> = [&img, &v1]
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        assert!(before == after, "{args:?} wrote to an image");
    }
    // A damaged primary header: the secondary is used, said once.
    let mut one = good.clone();
    one[5000] ^= 1;
    let one = file(d, "one.img", &one);
    let (ok, out, _) = dmch(&["luks", "dump", s(&one)], b"");
    assert!(ok && out.contains("the primary header is damaged"), "{out}");
    // The key never shows without --dump-volume-key.
    let (_, vk, _) = dmch(
        &["luks", "dump", "--dump-volume-key", "-d", s(&pw), s(&img)],
        b"",
    );
    let hexkey: String = vk[vk.find("MK dump:").unwrap() + 8..]
        .split_whitespace()
        .collect();
    let (_, plain_dump, _) = dmch(&["luks", "dump", s(&img)], b"");
    let (_, json_dump, _) = dmch(&["luks", "dump", "--json", s(&img)], b"");
    assert!(!plain_dump.contains(&hexkey[..16]) && !json_dump.contains(&hexkey[..16]));
}

/// A LUKS2 segment's iv_tweak is the table's iv_offset: the data of a
/// volume whose metadata says iv_tweak 2048 is `dmch encrypt --iv-offset
/// 2048`'s sectors, and open would load iv_offset 2048.
#[test]
fn a_luks2_iv_tweak_is_the_tables_iv_offset() {
    use dmcrypt_harness::luks::luks2;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = file(d, "pw", b"pass");
    let vk = file(d, "vk", &(7..71u8).collect::<Vec<_>>());
    let plain = file(d, "plain", &data(1 << 20));
    let img = d.join("t.img");
    let mut f = vec![
        "luks",
        "format",
        s(&img),
        "-d",
        s(&pw),
        "--volume-key-file",
        s(&vk),
        "--from",
        s(&plain),
    ];
    f.extend_from_slice(FAST);
    assert!(dmch(&f, b"").0);
    // Rewrite both copies of the metadata with iv_tweak 2048.
    let mut bytes = std::fs::read(&img).unwrap();
    let h = luks2::Header::read(
        |at, n| Ok(bytes[at as usize..at as usize + n].to_vec()),
        bytes.len() as u64,
    )
    .unwrap();
    let mut doc = h.meta.doc.clone();
    doc["segments"]["0"]["iv_tweak"] = serde_json::json!("2048");
    let text = serde_json::to_vec(&doc).unwrap();
    let n = h.bin.hdr_size as usize;
    let mut area = vec![0u8; n - 4096];
    area[..text.len()].copy_from_slice(&text);
    bytes[..n].copy_from_slice(&luks2::copy(&h.bin, false, &area).unwrap());
    bytes[n..2 * n].copy_from_slice(&luks2::copy(&h.bin, true, &area).unwrap());
    std::fs::write(&img, &bytes).unwrap();
    let out = d.join("out");
    assert!(dmch(&["luks", "decrypt", s(&img), s(&out), "-d", s(&pw)], b"").0);
    let want = d.join("want");
    let region = file(d, "region", &bytes[16 << 20..]);
    let (ok, _, err) = dmch(
        &[
            "decrypt",
            "--cipher",
            "aes-xts-plain64",
            "--key-file",
            s(&vk),
            "--sector-size",
            "4096",
            "--iv-offset",
            "2048",
            s(&region),
            s(&want),
        ],
        b"",
    );
    assert!(ok, "{err}");
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&want).unwrap());
    let (_, table, _) = dmch(
        &[
            "open",
            "--type",
            "luks",
            s(&img),
            "v",
            "-d",
            s(&pw),
            "--dry-run",
        ],
        b"",
    );
    assert!(
        table.contains(&format!(" 2048 {} 32768 1 sector_size:4096", s(&img))),
        "{table}"
    );
}
