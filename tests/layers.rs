//! Protects the architecture (ARCHITECTURE.md): every top-level module of
//! `src/` is in one layer, a module uses only its own layer and the ones
//! above it, and the layout ARCHITECTURE.md draws is the tree's.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, first to last; a module may use its own and earlier ones.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &[
            "error",
            "fault",
            "kver",
            "redact",
            "interrupt",
            "leftovers",
            "hash",
            "cpu",
        ],
    ),
    (
        "text",
        &["spec", "key", "table", "keyderive", "kdf", "signature"],
    ),
    ("reference", &["cipher", "mode", "iv", "engine"]),
    (
        "sectors and system",
        &["transform", "output", "throughput", "vectors", "sys"],
    ),
    (
        "volumes and formats",
        &["plain", "dmsetup", "luks", "reencrypt"],
    ),
    (
        "oracle and guests",
        &["protocol", "oracle", "kbench", "vm", "guest", "doctor"],
    ),
];

/// Upward imports that exist today, each with why; this list may only
/// shrink (an edge that is gone must be taken out, so it cannot return).
const DEBT: &[(&str, &str, &str)] = &[(
    "cpu",
    "cipher",
    "a unit test checks that cpu's implementation table names every registered cipher",
)];

const BINARY: &[&str] = &["main", "lib", "cli"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The `crate::X` paths of code, not of comments (doc links may point
/// anywhere).
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

#[test]
fn every_module_is_in_one_layer_and_imports_only_upward_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found_debt = BTreeSet::new();
    let mut wrong = Vec::new();
    let mut modules = BTreeSet::new();
    for f in &files {
        let top = top_module(&src, f);
        if BINARY.contains(&top.as_str()) {
            continue;
        }
        modules.insert(top.clone());
        let Some(mine) = layer_of(&top) else {
            wrong.push(format!("{top} ({}) is in no layer", f.display()));
            continue;
        };
        for used in crate_paths(&fs::read_to_string(f).unwrap()) {
            let Some(theirs) = layer_of(&used) else {
                continue; // Error, Result and other root re-exports.
            };
            if theirs <= mine {
                continue;
            }
            if DEBT.iter().any(|(a, b, _)| *a == top && *b == used) {
                found_debt.insert((top.clone(), used));
                continue;
            }
            wrong.push(format!(
                "{} ({}, layer {}) uses crate::{used} (layer {}, {}): downward in ARCHITECTURE.md's list",
                f.display(),
                top,
                LAYERS[mine].0,
                LAYERS[theirs].0,
                theirs
            ));
        }
    }
    for (a, b, why) in DEBT {
        assert!(
            found_debt.contains(&(a.to_string(), b.to_string())),
            "the debt {a} -> {b} ({why}) is paid: take it out of DEBT"
        );
    }
    for (_, ms) in LAYERS {
        for m in *ms {
            assert!(modules.contains(*m), "layer lists {m}, which src/ lacks");
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn architecture_md_draws_the_tree_and_names_every_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let block = text
        .split("```")
        .find(|b| b.trim_start().starts_with("src/"))
        .expect("ARCHITECTURE.md has a layout block starting with src/");
    // Every src/ entry is in the drawing ...
    for e in fs::read_dir(root.join("src")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let drawn = if name.ends_with(".rs") {
            name.clone()
        } else {
            format!("{name}/")
        };
        assert!(
            block.contains(&drawn),
            "src/{name} is not in ARCHITECTURE.md's layout"
        );
    }
    // ... and every file or folder the drawing names at the top exists.
    for line in block.lines().skip(1) {
        let first = line.split_whitespace().next().unwrap_or("");
        if line.starts_with("  ") && !line.starts_with("   ") {
            for name in first.trim_end_matches(',').split(',') {
                let name = name.trim();
                if name.ends_with(".rs") || name.ends_with('/') {
                    assert!(
                        root.join("src").join(name).exists(),
                        "ARCHITECTURE.md draws src/{name}, which does not exist"
                    );
                }
            }
        } else if !line.starts_with(' ') && first.ends_with('/') {
            assert!(
                root.join(first).exists(),
                "ARCHITECTURE.md draws {first}, which does not exist"
            );
        }
    }
    for (name, ms) in LAYERS {
        assert!(
            text.contains(name),
            "ARCHITECTURE.md does not name the {name} layer"
        );
        for m in *ms {
            assert!(
                text.contains(&format!("`{m}`")),
                "ARCHITECTURE.md's layer table lacks `{m}`"
            );
        }
    }
}
