//! Protects the documents: a README short enough to read, whose quick
//! start is the two commands CI and users run, and whose links (and the
//! documents' links to each other) all lead to files that exist.

use std::fs;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_readme_is_short_and_its_quick_start_is_the_two_commands() {
    let text = fs::read_to_string(root().join("README.md")).unwrap();
    let lines = text.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; move detail into docs/"
    );
    let quick = text
        .split("## Quick start")
        .nth(1)
        .and_then(|s| s.split("```sh").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("a quick start with a sh block");
    let commands: Vec<&str> = quick
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(commands, ["ci/check.sh", "ci/test.sh"], "{quick}");
    for c in commands {
        assert!(root().join(c).exists(), "{c} does not exist");
    }
    let ci = fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(
        ci.contains("ci/test.sh"),
        ".ci/run does not call the README's test command"
    );
}

#[test]
fn every_relative_link_in_the_documents_leads_to_a_file() {
    let mut docs = vec![
        root().join("README.md"),
        root().join("ARCHITECTURE.md"),
        root().join("CONTRIBUTING.md"),
    ];
    for e in fs::read_dir(root().join("docs")).unwrap() {
        docs.push(e.unwrap().path());
    }
    let mut checked = 0;
    for doc in &docs {
        let text = fs::read_to_string(doc).unwrap();
        for part in text.split("](").skip(1) {
            let target = part.split(')').next().unwrap();
            let file = target.split('#').next().unwrap();
            if file.is_empty() || file.contains("://") {
                continue;
            }
            let path = doc.parent().unwrap().join(file);
            assert!(
                path.exists(),
                "{} links to {target}, which does not exist",
                doc.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 15,
        "only {checked} links found: the check reads nothing"
    );
}
