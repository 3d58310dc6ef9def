//! Keeps `docs/errors.md` complete: every OAuth `error` code the core can emit (each
//! `ErrorCode`, read from `core/src/error.rs`, and each code the resource-server check puts in
//! a `WWW-Authenticate` challenge, read from `core/src/resource_server.rs`) and every problem
//! `type` (`urn:portcullis:error:<code>`) must appear in the catalogue.

use std::collections::BTreeSet;

fn read(rel: &str) -> String {
    let root = portcullis_tests::repo_root();
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The source before its unit tests.
fn without_tests(src: &str) -> &str {
    src.split("#[cfg(test)]").next().unwrap_or(src)
}

/// The codes of `ErrorCode::as_str`.
fn error_codes() -> BTreeSet<String> {
    let src = read("core/src/error.rs");
    let start = src.find("fn as_str").expect("ErrorCode::as_str");
    let end = start + src[start..].find("\n    }\n").expect("its end");
    src[start..end]
        .lines()
        .filter_map(|l| l.split("=> \"").nth(1))
        .map(|rest| rest.trim_end_matches("\",").to_owned())
        .collect()
}

/// The string literals of Rust source (skipping comments and char literals; escapes kept
/// as the escaped character).
fn string_literals(src: &str) -> Vec<String> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            '/' if b.get(i + 1) == Some(&'/') => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            '\'' if b.get(i + 1) == Some(&'\\') => {
                i += 3;
                while i < b.len() && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            '\'' if b.get(i + 2) == Some(&'\'') => i += 3,
            '"' => {
                let mut s = String::new();
                i += 1;
                while i < b.len() && b[i] != '"' {
                    if b[i] == '\\' {
                        i += 1;
                    }
                    if let Some(c) = b.get(i) {
                        s.push(*c);
                    }
                    i += 1;
                }
                i += 1;
                out.push(s);
            }
            _ => i += 1,
        }
    }
    out
}

/// Error-shaped string literals (`snake_case`) of the resource-server check.
fn resource_server_codes() -> BTreeSet<String> {
    let src = read("core/src/resource_server.rs");
    let mut out = BTreeSet::new();
    for lit in string_literals(without_tests(&src)) {
        let lit = lit.as_str();
        let shaped = lit.contains('_')
            && lit.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && !lit.starts_with('_');
        // JSON member names, not codes.
        if shaped && !matches!(lit, "error_description") {
            out.insert(lit.to_owned());
        }
    }
    out
}

#[test]
fn every_emitted_error_code_and_problem_type_is_catalogued() {
    let doc = read("docs/errors.md");
    let codes = error_codes();
    assert!(codes.len() >= 20, "ErrorCode::as_str was read: {codes:?}");
    assert!(codes.contains("invalid_grant"));
    let mut missing = Vec::new();
    for code in &codes {
        if !doc.contains(&format!("| `{code}` |")) {
            missing.push(format!("error `{code}`"));
        }
        let ty = format!("`urn:portcullis:error:{code}`");
        if !doc.contains(&ty) {
            missing.push(format!("problem type {ty}"));
        }
    }
    let rs = resource_server_codes();
    assert!(
        rs.contains("invalid_token") && rs.contains("insufficient_scope"),
        "{rs:?}"
    );
    let section = doc
        .split("## Protected resources")
        .nth(1)
        .expect("a section for protected resources");
    for code in &rs {
        if !section.contains(&format!("| `{code}` |")) {
            missing.push(format!("resource-server error `{code}`"));
        }
    }
    // The only problem types are the ErrorCode URNs.
    let core = read("core/src/error.rs");
    assert!(
        core.contains("format!(\"urn:portcullis:error:{}\", self.code.as_str())"),
        "the problem type is still urn:portcullis:error:<code>; update docs/errors.md if not"
    );
    assert!(missing.is_empty(), "not in docs/errors.md: {missing:#?}");
}
