//! Keeps every source file small enough to read in one sitting: no file of code, scripts,
//! schema or documentation in the repository is longer than 800 lines (issue 10's "no file
//! over 800 lines"). Lock files and generated data (`*.json`, fuzz corpora, images) are not
//! read; build output and dependencies are skipped.

use std::path::Path;

/// The longest a file may be.
const MAX_LINES: usize = 800;

/// Extensions of the files written by hand.
const READ: &[&str] = &[
    "rs", "js", "mjs", "ts", "py", "sh", "lua", "wit", "sql", "toml", "md", "yaml", "yml",
];

/// Directories that hold build output, dependencies or generated inputs.
const SKIP_DIRS: &[&str] = &[
    ".git",
    "target",
    "node_modules",
    "build",
    "corpus",
    "artifacts",
    ".wrangler",
    ".spin",
];

/// Whether `path` is a hand-written file this check reads: one of [`READ`]'s extensions, or a
/// script under `scripts/` or `.ci/` (they have none).
fn is_source(path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => READ.contains(&ext),
        None => path
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|d| d == "scripts" || d == ".ci"),
    }
}

/// `(lines, path)` of every source file under `dir` longer than [`MAX_LINES`].
fn too_long(dir: &Path, out: &mut Vec<(usize, String)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) {
                too_long(&path, out);
            }
        } else if is_source(&path) {
            // A file that is not UTF-8 is not one of ours to read: skip it.
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let lines = text.lines().count();
            if lines > MAX_LINES {
                out.push((lines, path.display().to_string()));
            }
        }
    }
}

#[test]
fn no_source_file_is_over_800_lines() {
    let root = portcullis_tests::repo_root();
    let mut long = Vec::new();
    too_long(&root, &mut long);
    long.sort();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (split them by what they hold): {long:#?}"
    );
}

#[test]
fn the_check_reads_the_files_it_means_to() {
    assert!(is_source(Path::new("core/src/lib.rs")));
    assert!(is_source(Path::new("docs/security.md")));
    assert!(is_source(Path::new("scripts/test")));
    assert!(is_source(Path::new(".ci/run")));
    assert!(!is_source(Path::new("core/src/admin/openapi.json")));
    assert!(!is_source(Path::new("Cargo.lock")));
    assert!(!is_source(Path::new("docs/screenshots/console.png")));
}
