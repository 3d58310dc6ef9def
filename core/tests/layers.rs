//! Imports in the core point downward. The routers (`endpoints/`, `admin/`) sit on top;
//! `server.rs` and `lib.rs` wire them in. No other module may import `crate::endpoints` or
//! `crate::admin`, and no production code may import a test-only module (one declared under
//! `#[cfg(test)]`). Test-only code (test files, `#[cfg(test)]` items and `mod tests` blocks)
//! may import anything.
//!
//! The check is text-based: it walks the module tree from `src/lib.rs` following `mod`
//! declarations, blanks comments and string literals, drops `#[cfg(test)]` items and reads
//! every `crate::…` path (including `use crate::{…}` groups) that remains.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules only the routing layer may import.
const ROUTERS: &[&str] = &["endpoints", "admin"];

/// Files (relative to `src/`, `/`-separated) allowed to import the routers.
fn may_import_routers(rel: &str) -> bool {
    rel.starts_with("endpoints/")
        || rel.starts_with("admin/")
        || rel == "server.rs"
        || rel == "lib.rs"
}

/// One source file of the module tree.
struct Module {
    /// The module path from the crate root (`["store", "test_store"]`).
    path: Vec<String>,
    /// Whether the whole file is test-only.
    test_only: bool,
}

/// Replaces comments, string, byte-string, raw-string and char literals with spaces, keeping
/// newlines so line numbers survive.
fn blank(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let keep_nl = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(k).copied().unwrap_or('\0');
        // Line comment.
        if c[i] == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
            continue;
        }
        // Block comment (nested).
        if c[i] == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(keep_nl(c[i]));
                    i += 1;
                }
            }
            continue;
        }
        let prev_ident = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        // Raw (byte) string: r"..", r#".."#, br#".."#.
        if !prev_ident && (c[i] == 'r' || (c[i] == 'b' && at(i + 1) == 'r')) {
            let mut j = if c[i] == 'b' { i + 2 } else { i + 1 };
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            if at(j) == '"' {
                out.extend(std::iter::repeat_n(' ', j + 1 - i));
                i = j + 1;
                loop {
                    if i >= c.len() {
                        break;
                    }
                    if c[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#') {
                        out.extend(std::iter::repeat_n(' ', hashes + 1));
                        i += hashes + 1;
                        break;
                    }
                    out.push(keep_nl(c[i]));
                    i += 1;
                }
                continue;
            }
        }
        // String or byte string.
        if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(keep_nl(c[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
            continue;
        }
        // Char literal ('x', '\n', '\u{7f}'); a lifetime ('a) has no closing quote.
        if c[i] == '\'' {
            let end = if at(i + 1) == '\\' {
                (i + 2..c.len().min(i + 12)).find(|&k| c[k] == '\'')
            } else if at(i + 2) == '\'' {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                out.extend(std::iter::repeat_n(' ', end + 1 - i));
                i = end + 1;
                continue;
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// Blanks every item carrying `#[cfg(test)]` (a `mod tests { … }` block, a `use`, a `fn`, a
/// `mod x;` declaration). Works on already [`blank`]ed text.
fn strip_cfg_test(code: &str) -> String {
    let mut c: Vec<char> = code.chars().collect();
    let pat: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + pat.len() <= c.len() {
        if c[i..i + pat.len()] != pat[..] {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + pat.len();
        // Skip further attributes and whitespace up to the item.
        loop {
            while j < c.len() && c[j].is_whitespace() {
                j += 1;
            }
            if j < c.len() && c[j] == '#' {
                let mut depth = 0;
                while j < c.len() {
                    match c[j] {
                        '[' => depth += 1,
                        ']' => {
                            depth -= 1;
                            if depth == 0 {
                                j += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
            } else {
                break;
            }
        }
        // The item ends at the first `;` outside brackets, or at the `}` closing its body.
        let mut nest = 0i32;
        while j < c.len() {
            match c[j] {
                '(' | '[' => nest += 1,
                ')' | ']' => nest -= 1,
                ';' if nest == 0 => break,
                '{' if nest == 0 => {
                    let mut depth = 0;
                    while j < c.len() {
                        match c[j] {
                            '{' => depth += 1,
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let end = (j + 1).min(c.len());
        for ch in &mut c[start..end] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        i = end;
    }
    c.into_iter().collect()
}

/// Every `crate::…` path in `code` as (line, segments); a `crate::{a, b::c}` group yields one
/// path per leaf.
fn crate_paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let c: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let pat: Vec<char> = "crate::".chars().collect();
    let mut i = 0;
    while i + pat.len() <= c.len() {
        let boundary = i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        if boundary && c[i..i + pat.len()] == pat[..] {
            let line = c[..i].iter().filter(|&&ch| ch == '\n').count() + 1;
            let mut j = i + pat.len();
            let mut leaves = Vec::new();
            use_tree(&c, &mut j, Vec::new(), &mut leaves);
            found.extend(leaves.into_iter().map(|p| (line, p)));
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

/// Parses a use tree (`a::b::{c, d::e}`) at `*j`, pushing each leaf path onto `out`.
fn use_tree(c: &[char], j: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let skip_ws = |j: &mut usize| {
        while *j < c.len() && c[*j].is_whitespace() {
            *j += 1;
        }
    };
    loop {
        skip_ws(j);
        if *j < c.len() && c[*j] == '{' {
            *j += 1;
            loop {
                skip_ws(j);
                if *j >= c.len() {
                    return;
                }
                if c[*j] == '}' {
                    *j += 1;
                    return;
                }
                if c[*j] == ',' {
                    *j += 1;
                    continue;
                }
                let before = *j;
                use_tree(c, j, prefix.clone(), out);
                if *j == before {
                    *j += 1;
                }
            }
        }
        let start = *j;
        while *j < c.len() && (c[*j].is_alphanumeric() || c[*j] == '_') {
            *j += 1;
        }
        if *j > start {
            prefix.push(c[start..*j].iter().collect());
        }
        let mut k = *j;
        while k < c.len() && c[k].is_whitespace() {
            k += 1;
        }
        if *j > start && c.get(k) == Some(&':') && c.get(k + 1) == Some(&':') {
            *j = k + 2;
            continue;
        }
        if !prefix.is_empty() {
            out.push(prefix);
        }
        return;
    }
}

/// `mod name;` declarations in `code` as (name, is `#[cfg(test)]`, `#[path]` value).
fn mod_decls(raw: &str) -> Vec<(String, bool, Option<String>)> {
    let mut decls = Vec::new();
    let mut attrs: Vec<String> = Vec::new();
    for line in raw.lines() {
        let t = line.trim();
        if t.starts_with("#[") {
            attrs.push(t.to_owned());
            continue;
        }
        let decl = t
            .strip_prefix("pub(crate) mod ")
            .or_else(|| t.strip_prefix("pub(super) mod "))
            .or_else(|| t.strip_prefix("pub mod "))
            .or_else(|| t.strip_prefix("mod "))
            .and_then(|rest| rest.strip_suffix(';'));
        if let Some(name) = decl {
            let test = attrs.iter().any(|a| a.contains("cfg(test)"));
            let path = attrs.iter().find_map(|a| {
                a.strip_prefix("#[path = \"")
                    .and_then(|p| p.strip_suffix("\"]"))
                    .map(str::to_owned)
            });
            decls.push((name.trim().to_owned(), test, path));
        }
        if !t.is_empty() && !t.starts_with("//") {
            attrs.clear();
        }
    }
    decls
}

/// Walks the module tree from `lib.rs`.
fn module_tree(src: &Path) -> BTreeMap<PathBuf, Module> {
    let mut files = BTreeMap::new();
    let mut todo = vec![(src.join("lib.rs"), Vec::<String>::new(), false)];
    while let Some((file, path, test_only)) = todo.pop() {
        let raw = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let test_only = test_only || raw.contains("#![cfg(test)]");
        let dir = file.parent().unwrap().to_path_buf();
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let child_dir = if matches!(stem, "lib" | "mod") {
            dir.clone()
        } else {
            dir.join(stem)
        };
        for (name, test, explicit) in mod_decls(&raw) {
            let child = match explicit {
                Some(p) => dir.join(p),
                None if child_dir.join(format!("{name}.rs")).exists() => {
                    child_dir.join(format!("{name}.rs"))
                }
                None => child_dir.join(&name).join("mod.rs"),
            };
            let mut child_path = path.clone();
            child_path.push(name);
            todo.push((child, child_path, test_only || test));
        }
        files.insert(file, Module { path, test_only });
    }
    files
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The violations in one production file's source.
fn violations(rel: &str, raw: &str, test_modules: &BTreeSet<Vec<String>>) -> Vec<String> {
    let code = strip_cfg_test(&blank(raw));
    let mut problems = Vec::new();
    for (line, path) in crate_paths(&code) {
        let shown = format!("crate::{}", path.join("::"));
        if ROUTERS.contains(&path[0].as_str()) && !may_import_routers(rel) {
            problems.push(format!(
                "core/src/{rel}:{line}: `{shown}` reaches up into the `{}` router; move what it \
                 needs below the routers (and re-export it from the old path if others use it)",
                path[0]
            ));
        }
        if let Some(m) = test_modules.iter().find(|m| path.starts_with(m)) {
            problems.push(format!(
                "core/src/{rel}:{line}: `{shown}` imports the test-only module `crate::{}` from \
                 code that is not `#[cfg(test)]`",
                m.join("::")
            ));
        }
    }
    problems
}

/// The core's directory: the `CARGO_MANIFEST_DIR` cargo sets when it runs the test, so a
/// binary reused from a build cache shared with another checkout reads this checkout.
fn crate_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

#[test]
fn core_imports_point_downward() {
    let src = crate_dir().join("src");
    let tree = module_tree(&src);

    let mut all = Vec::new();
    rs_files(&src, &mut all);
    let unreached: Vec<_> = all.iter().filter(|f| !tree.contains_key(*f)).collect();
    assert!(
        unreached.is_empty(),
        "the layering check could not place these files in the module tree (fix the check or \
         the `mod` declaration): {unreached:?}"
    );

    let test_modules: BTreeSet<Vec<String>> = tree
        .values()
        .filter(|m| m.test_only)
        .map(|m| m.path.clone())
        .collect();
    assert!(
        test_modules.contains(&vec!["store".to_owned(), "test_store".to_owned()]),
        "expected store::test_store to be a test-only module; found {test_modules:?}"
    );

    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, module) in &tree {
        if module.test_only {
            continue;
        }
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let raw = fs::read_to_string(file).unwrap();
        problems.extend(violations(&rel, &raw, &test_modules));
        checked += 1;
    }
    assert!(
        checked > 20,
        "only {checked} production files found under {}",
        src.display()
    );
    assert!(
        problems.is_empty(),
        "core imports must point downward:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_paths_and_skips_test_code() {
    let tests: BTreeSet<Vec<String>> = [vec!["store".to_owned(), "test_store".to_owned()]].into();
    let src = r##"
use crate::{error::Error, endpoints::paths};
// use crate::admin::x;  (a comment)
const S: &str = "crate::admin::presents_key";
const R: &str = r#"crate::admin::y"#;
fn f<'a>(x: &'a str) -> char { let _ = crate::admin::presents_key; '{' }
use crate::store::{bridge, test_store::TestSql};
#[cfg(test)]
mod tests {
    use crate::admin::test_store::TestSql;
    use crate::endpoints::token;
    fn g() { let _ = "}"; }
}
#[cfg(test)]
use crate::store::test_store::TEST_NOW;
fn h() { crate::endpoints::token::issue::access_token(); }
"##;
    let found = violations("dpop/mod.rs", src, &tests);
    let lines: Vec<&str> = found
        .iter()
        .map(|p| p.split(": `").nth(1).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "crate::endpoints::paths` reaches up into the `endpoints` router; move what it needs \
             below the routers (and re-export it from the old path if others use it)",
            "crate::admin::presents_key` reaches up into the `admin` router; move what it needs \
             below the routers (and re-export it from the old path if others use it)",
            "crate::store::test_store::TestSql` imports the test-only module \
             `crate::store::test_store` from code that is not `#[cfg(test)]`",
            "crate::endpoints::token::issue::access_token` reaches up into the `endpoints` \
             router; move what it needs below the routers (and re-export it from the old path \
             if others use it)",
        ]
    );
    assert!(
        found[0].starts_with("core/src/dpop/mod.rs:2: "),
        "{}",
        found[0]
    );
    assert!(violations(
        "endpoints/token/mod.rs",
        "use crate::admin::presents_key;",
        &tests
    )
    .is_empty());
}

/// The top-level module a source file belongs to (`dpop/nonce.rs` → `dpop`, `lib.rs` → `lib`).
fn top_module(rel: &str) -> String {
    let first = rel.split('/').next().unwrap_or(rel);
    first.trim_end_matches(".rs").to_owned()
}

/// The crate root's `pub use module::{A, B};` re-exports, as name → module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in blank(lib).lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        let names = names.trim_start_matches('{').trim_end_matches('}');
        for name in names.split(',') {
            let name = name.split("::").last().unwrap_or(name).trim();
            if !name.is_empty() {
                out.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    out
}

/// Production imports between top-level modules: `from → {to}` (self-imports left out).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let tree = module_tree(src);
    let reexports = root_reexports(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, module) in &tree {
        if module.test_only {
            continue;
        }
        let rel = file
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let from = top_module(&rel);
        let code = strip_cfg_test(&blank(&fs::read_to_string(file).unwrap()));
        let entry = graph.entry(from.clone()).or_default();
        for (_, path) in crate_paths(&code) {
            // A root re-export (`crate::Config`) counts as an import of its module.
            let to = reexports.get(&path[0]).unwrap_or(&path[0]);
            if *to != from && to.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                entry.insert(to.clone());
            }
        }
    }
    graph
}

/// The groups of modules that import each other in a circle (strongly connected components of
/// more than one module), each sorted.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let names: Vec<&String> = graph.keys().collect();
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for next in graph.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        names.iter().map(|n| (*n, reach(n))).collect();
    let mut groups: BTreeSet<Vec<String>> = BTreeSet::new();
    for n in &names {
        let mut group: Vec<String> = names
            .iter()
            .filter(|m| reaches[*n].contains(**m) && reaches[*m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        if group.len() > 1 {
            group.sort();
            groups.insert(group);
        }
    }
    groups.into_iter().collect()
}

#[test]
fn core_modules_import_each_other_without_cycles() {
    let src = crate_dir().join("src");
    let graph = module_graph(&src);
    assert!(
        graph.len() > 20,
        "only {} top-level modules found",
        graph.len()
    );
    let found = cycles(&graph);
    for (k, v) in &graph {
        eprintln!("EDGE {k} -> {v:?}");
    }
    assert!(
        found.is_empty(),
        "top-level core modules import each other in a circle (move the shared piece into a \
         module below both): {found:?}"
    );
    // The server object is wired in by lib.rs only: protocol modules and routers take
    // `crate::context::Context`.
    let upward: Vec<&String> = graph
        .iter()
        .filter(|(from, to)| to.contains("server") && from.as_str() != "lib")
        .map(|(from, _)| from)
        .collect();
    assert!(
        upward.is_empty(),
        "these modules import `crate::server`; take `crate::context::Context` instead: {upward:?}"
    );
}

#[test]
fn the_cycle_finder_finds_circles_and_only_circles() {
    let g = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            graph.entry((*a).into()).or_default().insert((*b).into());
            graph.entry((*b).into()).or_default();
        }
        graph
    };
    assert!(cycles(&g(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
    assert_eq!(
        cycles(&g(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
        [vec!["a".to_owned(), "b".into(), "c".into()]]
    );
    assert_eq!(top_module("dpop/nonce.rs"), "dpop");
    assert_eq!(top_module("keys.rs"), "keys");
    let re = root_reexports("pub use server::{Portcullis, StartError};\npub use config::Config;");
    assert_eq!(re["Portcullis"], "server");
    assert_eq!(re["Config"], "config");
}
