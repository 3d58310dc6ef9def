//! Keeps `docs/security.md` honest: every check ID in its tables names at least one test, and
//! every test it names exists as a function somewhere in the repository's Rust sources.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    portcullis_tests::repo_root()
}

/// Every `fn name` in the Rust files under `dir` (skipping build output and dependencies).
fn functions(dir: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | "node_modules" | "build" | ".git") {
                functions(&path, out);
            }
        } else if name.ends_with(".rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for piece in text.split("fn ").skip(1) {
                let ident: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !ident.is_empty() {
                    out.insert(ident);
                }
            }
        }
    }
}

#[test]
fn every_check_id_names_tests_that_exist() {
    let root = root();
    let doc = std::fs::read_to_string(root.join("docs/security.md")).expect("docs/security.md");
    let mut known = BTreeSet::new();
    for dir in ["core", "adapters", "tests"] {
        functions(&root.join(dir), &mut known);
    }
    let mut ids = 0;
    for line in doc.lines() {
        let cells: Vec<&str> = line.split(" | ").collect();
        let Some(id) = line.strip_prefix("| ").and_then(|l| l.split(' ').next()) else {
            continue;
        };
        if !(id.len() >= 2
            && id.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && id[1..].chars().all(|c| c.is_ascii_digit()))
        {
            continue;
        }
        ids += 1;
        let tests = cells.last().copied().unwrap_or_default();
        let named: Vec<&str> = tests
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .collect();
        assert!(!named.is_empty(), "{id} names no test: {line}");
        for name in named {
            assert!(
                known.contains(name),
                "{id}: docs/security.md names `{name}`, which is not a function in the repository"
            );
        }
    }
    assert!(ids >= 80, "docs/security.md lists only {ids} check IDs");
}
