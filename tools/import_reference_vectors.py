#!/usr/bin/env python3
"""One-time import of the public reference vectors into vectors/*.vec.

Run by hand, never at build, run or test time:
    python3 tools/import_reference_vectors.py <dir with the reference JSON files>
It only re-shapes published data (no value is computed here) and carries the
provenance of each source file into the header and each vector.
"""
import json
import os
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "../shared/reference-vectors"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors")

# Templates and ciphers whose data paths come with a later change; their
# vectors are imported then (listed in each header so nothing is silently lost).
DEFERRED_MODES = {"hctr2"}


def wrap(name, value):
    """Long hex values wrap at 64 characters with indented continuation lines."""
    if len(value) <= 64 or " " in value:
        return f"{name}: {value}\n"
    lines = [value[i:i + 64] for i in range(0, len(value), 64)]
    return f"{name}: {lines[0]}\n" + "".join(f"  {l}\n" for l in lines[1:])


def text(name, value):
    value = " ".join(str(value).split())
    return f"{name}: {value}\n"


class Writer:
    def __init__(self, fname, title):
        self.fname = fname
        self.out = [f"# {title}\n",
                    "# Imported once by tools/import_reference_vectors.py; format: vectors/README.md\n\n"]
        self.count = 0

    def header(self, **fields):
        self.out.append("[file]\n")
        for k, v in fields.items():
            self.out.append(text(k, v))
        self.out.append("\n")

    def vector(self, vid, fields):
        self.out.append(f"[vector {vid}]\n")
        for k, v in fields:
            if v is None:
                continue
            if k in ("key", "iv", "plaintext", "ciphertext", "ciphertext-sha256", "input",
                     "expected-key", "plaintext-sha256") and not str(v).startswith(("zeros", "-")):
                self.out.append(wrap(k, v))
            else:
                self.out.append(text(k, v))
        self.out.append("\n")
        self.count += 1

    def save(self):
        with open(os.path.join(OUT, self.fname), "w") as f:
            f.write("".join(self.out).rstrip("\n") + "\n")
        print(f"{self.fname}: {self.count} vectors")


def load(name):
    with open(os.path.join(SRC, name)) as f:
        return json.load(f)


def src_ref(src):
    where = src.get("commit") or src.get("version")
    return f"{src['repo']} {src['path']} @ {where}"


def verified(v):
    return "published; re-checked by " + ", ".join(v.get("verified_by", [])) if v.get("verified_by") else "published"


def nist():
    d = load("nist-sp800-38a-aes.json")
    w = Writer("nist-sp800-38a-aes.vec", "NIST SP 800-38A Appendix F: AES ECB and CBC")
    w.header(source=d["source"]["what"], retrieved=src_ref(d["source"]), semantics=d["semantics"])
    for v in d["vectors"]:
        w.vector(v["id"], [
            ("source", f"NIST SP 800-38A {v['id']} {v['name']}"),
            ("produced", verified(v)),
            ("kind", "cipher"),
            ("algorithm", f"{v['mode']}(aes)"),
            ("key", v["key"]),
            ("iv", v["iv"]),
            ("plaintext", v["plaintext"]),
            ("ciphertext", v["ciphertext"]),
        ])
    w.save()


def ieee():
    d = load("ieee1619-xts-aes.json")
    w = Writer("ieee1619-xts-aes.vec", "IEEE 1619 XTS-AES (via QEMU and the kernel's testmgr)")
    add = d["additional_sources"][0]
    w.header(source=d["source"]["what"], retrieved=src_ref(d["source"]),
             also=f"{add['repo']} {add['path']} {add['version']}: {add['what']}",
             semantics=d["semantics"])
    for v in d["vectors"]:
        origin = "QEMU tests/unit/test-crypto-xts.c" if v["origin"] == "qemu" else "Linux crypto/testmgr.h aes_xts_tv_template"
        common = [("source", f"IEEE P1619 {v['label']} ({origin})"), ("produced", verified(v))]
        w.vector(v["id"], common + [
            ("kind", "cipher"), ("algorithm", "xts(aes)"), ("key", v["key"]), ("iv", v["tweak"]),
            ("plaintext", v["plaintext"]), ("ciphertext", v["ciphertext"]),
        ])
        # A 512-byte data unit is a dm-crypt sector: aes-xts-plain64 with the
        # sequence number as iv_offset gives the same bytes (plain64 = le64 tweak).
        if v["length"] == 512 and v["data_unit_sequence_number"] < 2**64:
            w.vector(v["id"] + "/sector", common + [
                ("note", "the same data unit as a dm-crypt sector: plain64 IV = le64(sequence number)"),
                ("kind", "sector"), ("spec", "aes-xts-plain64"), ("key", v["key"]),
                ("iv-offset", v["data_unit_sequence_number"]), ("sector-size", 512),
                ("start-sector", 0),
                ("plaintext", v["plaintext"]), ("ciphertext", v["ciphertext"]),
            ])
    w.save()


def cryptsetup_iv():
    d = load("cryptsetup-cipher-iv-vectors.json")
    w = Writer("cryptsetup-cipher-iv.vec",
               "cryptsetup tests/crypto-vectors.c cipher_iv_test_vectors: sector-level AES-CBC with every IV generator")
    w.header(source=d["source"]["what"], retrieved=src_ref(d["source"]), semantics=d["semantics"],
             verified=d["verified"][0]["result"] + " - " + d["verified"][0]["method"])
    for i, v in enumerate(d["vectors"]):
        w.vector(v["id"], [
            ("source", f"cryptsetup tests/crypto-vectors.c cipher_iv_test_vectors[{i}] @ {d['source']['commit'][:12]}"),
            ("produced", "published SHA-256 of the output; re-checked by an independent python-cryptography model"),
            ("kind", "sector"),
            ("spec", v["dm_crypt_cipher_spec"]),
            ("key", v["key"]),
            ("iv-offset", v["iv_offset"]),
            ("sector-size", v["sector_size"]),
            ("flags", "iv_large_sectors" if v["large_iv"] else None),
            ("start-sector", 0),
            ("plaintext", f"zeros {v['data_length']}"),
            ("plaintext-sha256", v["plaintext_sha256"]),
            ("ciphertext-sha256", v["ciphertext_sha256"]),
        ])
    w.save()


def block_kats():
    d = load("block-cipher-kats.json")
    w = Writer("kernel-testmgr-block-ciphers.vec",
               "Linux crypto/testmgr.h ECB known answers for every dm-crypt block cipher")
    left = []
    for g in d["groups"]:
        if g["cipher"] == "tnepres":
            left.append("tnepres (byte-reversed serpent; gone from the kernel by 6.8, never a dm-crypt default)")
    left.append("des_tv_template[4] (weak-key setkey refusal under CRYPTO_TFM_REQ_FORBID_WEAK_KEYS, a flag dm-crypt does not set)")
    w.header(source=d["source"]["what"], retrieved=src_ref(d["source"]), semantics=d["semantics"],
             byte_order=d["byte_order_conventions"]["serpent"], left_out="; ".join(left))
    for g in d["groups"]:
        if g["cipher"] == "tnepres":
            continue
        for v in g["vectors"]:
            if v.get("setkey_must_fail"):
                continue
            w.vector(v["id"], [
                ("source", f"Linux {d['source']['version']} crypto/testmgr.h {v['id']}" + (f" ({v['label']})" if v.get("label") else "")),
                ("produced", verified(v)),
                ("kind", "cipher"),
                ("algorithm", g["kernel_algorithm"]),
                ("key", v["key"] or "-"),
                ("plaintext", v["plaintext"]),
                ("ciphertext", v["ciphertext"]),
            ])
    w.save()


def testmgr_modes():
    d = load("kernel-testmgr-modes.json")
    w = Writer("kernel-testmgr-modes.vec",
               "Linux crypto/testmgr.h chaining-mode templates: cbc, xts, lrw, essiv, adiantum")
    deferred = [t["kernel_algorithm"] for t in d["templates"]
                if t["kernel_algorithm"].split("(")[0] in DEFERRED_MODES]
    w.header(source=d["source"]["what"], retrieved=src_ref(d["source"]), semantics=d["semantics"],
             left_out="hctr2 (not built by Debian's kernels; its data path comes later): " + ", ".join(deferred))
    for t in d["templates"]:
        if t["kernel_algorithm"].split("(")[0] in DEFERRED_MODES:
            continue
        for v in t["vectors"]:
            w.vector(v["id"], [
                ("source", f"Linux {t['kernel_version_of_data']} crypto/testmgr.h {v['id']}" + (f" ({v['label']})" if v.get("label") else "")),
                ("produced", verified(v)),
                ("note", t["key_and_iv_semantics"]),
                ("kind", "cipher"),
                ("algorithm", t["kernel_algorithm"]),
                ("key", v["key"]),
                ("iv", v["iv"]),
                ("plaintext", v["plaintext"]),
                ("ciphertext", v["ciphertext"]),
            ])
    w.save()


def cryptsetup_ciphers():
    d = load("cryptsetup-cipher-vectors.json")
    w = Writer("cryptsetup-ciphers.vec",
               "cryptsetup tests/crypto-vectors.c cipher_test_vectors: aes, serpent, twofish, aria, camellia, sm4, adiantum")
    w.header(source=d["source"]["what"], retrieved=src_ref(d["source"]), semantics=d["semantics"])
    for v in d["vectors"]:
        if v["mode"] in DEFERRED_MODES:
            continue
        w.vector(v["id"], [
            ("source", f"cryptsetup tests/crypto-vectors.c cipher_test_vectors[{v['table_index']}] @ {d['source']['commit'][:12]}"
             + (f" ({v['comment']})" if v.get("comment") else "")),
            ("produced", verified(v)),
            ("kind", "cipher"),
            ("algorithm", f"{v['mode']}({v['cipher']})"),
            ("key", v["key"]),
            ("iv", v["iv"]),
            ("plaintext", v["plaintext"]),
            ("ciphertext", v["ciphertext"]),
        ])
    w.save()


def password_hash():
    d = load("cryptsetup-password-hash.json")
    w = Writer("cryptsetup-password-hash.vec",
               "cryptsetup tests/password-hash-test: plain-mode passphrase and key file to volume key")
    w.header(source=d["source"]["what"], retrieved=src_ref(d["source"]), semantics=d["semantics"],
             keyfile=d["keyfile_note"])
    modes = {"pwd": "passphrase", "stdin": "passphrase", "cat": "passphrase", "failpwd": "passphrase",
             "std-": "keyfile-stdin", "cat-": "keyfile-stdin", "file": "keyfile"}
    for v in d["vectors"]:
        inp = v.get("input_hex")
        if inp is None:
            inp = "zeros 4096"  # /dev/zero: unbounded zeros; 4096 is more than any read here
        elif inp == "":
            inp = "zeros 0"
        w.vector(f"password-hash-test[{v['id']}]", [
            ("source", f"cryptsetup tests/password-hash-test @ {d['source']['commit'][:12]}: {v['script_line']}"),
            ("produced", "published expected key; re-checked by " + ", ".join(v.get("verified_by", []))),
            ("note", "optional in the upstream test (non-sha256 hash or key over 256 bits)" if v.get("optional_in_upstream_test") else None),
            ("kind", "passphrase"),
            ("hash", v["hash"]),
            ("key-size", v["key_size_bytes"]),
            ("source-of-key", modes[v["input_mode"]]),
            ("input", inp),
            ("keyfile-size", v.get("keyfile_size_arg")),
            ("keyfile-offset", v.get("keyfile_offset_arg")),
            ("expected-key", v.get("expected_key")),
            ("expect", "failure" if v["input_mode"] == "failpwd" else None),
        ])
    w.save()


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    nist()
    ieee()
    cryptsetup_iv()
    block_kats()
    testmgr_modes()
    cryptsetup_ciphers()
    password_hash()
