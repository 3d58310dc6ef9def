//! The admin API's OpenAPI document (`core/src/admin/openapi.json`) names every route the
//! admin router dispatches, with the same methods, and nothing the router does not serve.
//! The routes are read from the router's source (`core/src/admin/mod.rs`, the match in
//! `dispatch`), so a new route without documentation fails here. The responses themselves
//! are checked against the document by the `admin_openapi_matches_responses` scenario.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One routed path, as segments below `/admin/`: `Some(literal)` or `None` for a parameter.
type Route = Vec<Option<String>>;

fn read(rel: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The alternatives of one match-pattern element: `"users"`, `name`, `action @ ("a" | "b")`.
fn alternatives(element: &str) -> Vec<Option<String>> {
    let e = element.trim();
    let lits: Vec<Option<String>> = e
        .split('"')
        .skip(1)
        .step_by(2)
        .map(|s| Some(s.to_owned()))
        .collect();
    if lits.is_empty() {
        vec![None]
    } else {
        lits
    }
}

/// Every (route, methods) of the router's `dispatch` match.
fn routed() -> BTreeMap<Route, BTreeSet<String>> {
    let src = read("core/src/admin/mod.rs");
    let start = src
        .find("async fn dispatch")
        .expect("the dispatch function");
    let end = start + src[start..].find("\nfn not_found").expect("its end");
    let body = &src[start..end];
    let mut out: BTreeMap<Route, BTreeSet<String>> = BTreeMap::new();
    let mut current: Vec<Route> = Vec::new();
    for line in body.lines() {
        let l = line.trim();
        if l.starts_with('[') && l.contains("] =>") {
            let inner = &l[1..l.find("] =>").unwrap()];
            let mut routes: Vec<Route> = vec![Vec::new()];
            for element in inner.split(',') {
                let alts = alternatives(element);
                routes = routes
                    .into_iter()
                    .flat_map(|r| {
                        alts.iter().map(move |a| {
                            let mut r = r.clone();
                            r.push(a.clone());
                            r
                        })
                    })
                    .collect();
            }
            current = routes;
        } else if let Some(rest) = l.strip_prefix("Method::") {
            let m = rest
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            for r in &current {
                out.entry(r.clone()).or_default().insert(m.clone());
            }
        }
    }
    out
}

#[test]
fn every_routed_path_and_method_is_documented() {
    let routes = routed();
    assert!(routes.len() >= 30, "the router was read: {routes:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&read("core/src/admin/openapi.json")).expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: BTreeMap<Route, BTreeSet<String>> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let rest = path.strip_prefix("/admin/").expect("paths under /admin/");
        if rest.starts_with("console/") {
            continue; // the console's own router, HTML
        }
        let route: Route = rest
            .split('/')
            .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
            .collect();
        let methods = ["get", "post", "put", "patch", "delete"]
            .into_iter()
            .filter(|m| item.get(*m).is_some())
            .map(str::to_owned)
            .collect();
        documented.insert(route, methods);
    }
    let show = |r: &Route| {
        r.iter()
            .map(|s| s.clone().unwrap_or_else(|| "{…}".into()))
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut problems = Vec::new();
    for (route, methods) in &routes {
        match documented.get(route) {
            None => problems.push(format!(
                "/admin/{} is routed but not documented",
                show(route)
            )),
            Some(d) if d != methods => problems.push(format!(
                "/admin/{}: routed {methods:?}, documented {d:?}",
                show(route)
            )),
            Some(_) => {}
        }
    }
    for route in documented.keys() {
        if !routes.contains_key(route) {
            problems.push(format!(
                "/admin/{} is documented but not routed",
                show(route)
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
