//! Checks spin.toml without the `spin` CLI (which cannot be installed here): it is parsed
//! into serde structs mirroring Spin's manifest v2 schema with `deny_unknown_fields`, so a
//! misspelt field fails here instead of being ignored, and then checked for what matters:
//! every component variable references a declared application variable, keys are secret,
//! every setting the core reads can be set (and nothing else), the route covers every path,
//! the stores the component opens are granted, and the build command builds the production
//! component (no test features).

use std::collections::{BTreeMap, BTreeSet};

use portcullis_core::config::{setting_names, CONFIG_VAR};
use portcullis_tests::hosts::spin::{repo_root, spin_variable_name};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    spin_manifest_version: u32,
    application: Application,
    #[serde(default)]
    variables: BTreeMap<String, Variable>,
    #[serde(default)]
    trigger: Triggers,
    #[serde(default)]
    component: BTreeMap<String, Component>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // fields exist to be accepted, not all are checked
struct Application {
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    authors: Vec<String>,
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    trigger: BTreeMap<String, toml::Table>,
    #[serde(default)]
    tool: BTreeMap<String, toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Variable {
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    secret: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Triggers {
    #[serde(default)]
    http: Vec<HttpTrigger>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct HttpTrigger {
    #[serde(default)]
    id: Option<String>,
    route: toml::Value,
    component: String,
    #[serde(default)]
    executor: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Component {
    source: toml::Value,
    #[serde(default)]
    description: String,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<toml::Value>,
    #[serde(default)]
    exclude_files: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    ai_models: Vec<String>,
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    build: Option<Build>,
    #[serde(default)]
    tool: BTreeMap<String, toml::Table>,
    #[serde(default)]
    dependencies_inherit_configuration: bool,
    #[serde(default)]
    dependencies: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Build {
    command: String,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    watch: Vec<String>,
}

fn manifest() -> Manifest {
    let path = repo_root().join("spin.toml");
    let text = std::fs::read_to_string(&path).expect("spin.toml at the repository root");
    toml::from_str(&text).unwrap_or_else(|e| panic!("spin.toml is not a valid manifest: {e}"))
}

fn portcullis(m: &Manifest) -> &Component {
    m.component
        .get("portcullis")
        .expect("a component named portcullis")
}

/// Spin's variable name rule (spin-expressions `Key::validate`).
fn valid_spin_name(n: &str) -> bool {
    n.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && n.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !n.contains("__")
}

/// Settings Spin cannot honour (the component has no filesystem for a CA file): the core's
/// list, which refuses them on Spin.
fn not_on_spin() -> &'static [&'static str] {
    portcullis_core::host::Runtime::Spin.unsupported()
}

/// Every variable the core reads through `Config::from_vars`.
fn core_settings() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = setting_names().into_iter().collect();
    names.insert(CONFIG_VAR.to_owned());
    names
}

#[test]
fn manifest_parses_as_v2() {
    let m = manifest();
    assert_eq!(m.spin_manifest_version, 2);
    assert_eq!(m.application.name, "portcullis");
    assert_eq!(m.component.len(), 1, "one component");
}

#[test]
fn component_variables_reference_declared_variables() {
    let m = manifest();
    for (name, template) in &portcullis(&m).variables {
        assert!(
            valid_spin_name(name),
            "{name} is not a valid Spin variable name"
        );
        let mut rest = template.as_str();
        while let Some(start) = rest.find("{{") {
            let end = rest[start..]
                .find("}}")
                .unwrap_or_else(|| panic!("{name}: unclosed {{{{ in {template:?}"));
            let var = rest[start + 2..start + end].trim();
            assert!(
                m.variables.contains_key(var),
                "{name} references undeclared application variable {var}"
            );
            rest = &rest[start + end + 2..];
        }
    }
    for (name, v) in &m.variables {
        assert!(
            valid_spin_name(name),
            "{name} is not a valid Spin variable name"
        );
        assert!(
            v.required != v.default.is_some(),
            "{name}: a variable is either required or has a default"
        );
    }
}

#[test]
fn keys_and_seeds_are_secret_and_required_where_needed() {
    let m = manifest();
    for name in ["admin_api_key", "master_key", "config", "users", "clients"] {
        assert!(m.variables[name].secret, "{name} must be secret = true");
    }
    for name in ["issuer", "admin_api_key", "master_key"] {
        assert!(m.variables[name].required, "{name} must be required");
    }
    // Nothing secret may have a real default value in the manifest.
    for (name, v) in &m.variables {
        if v.secret {
            assert!(
                v.default.as_deref().is_none_or(str::is_empty),
                "{name} is secret and must not have a default"
            );
        }
    }
}

#[test]
fn every_core_setting_is_settable_and_nothing_else() {
    let m = manifest();
    let declared: BTreeSet<&String> = portcullis(&m).variables.keys().collect();
    let settings = core_settings();
    assert!(settings.contains("issuer"), "{settings:?}");
    let mut expected = BTreeSet::new();
    for s in &settings {
        if not_on_spin().contains(&s.as_str()) {
            continue;
        }
        let v = spin_variable_name(s);
        assert!(
            declared.contains(&v),
            "the core setting {s} cannot be set on Spin: declare {v} in spin.toml"
        );
        expected.insert(v);
    }
    for d in declared {
        assert!(
            expected.contains(d),
            "spin.toml declares {d}, which is no core setting"
        );
    }
}

#[test]
fn route_stores_and_outbound_hosts() {
    let m = manifest();
    let http = &m.trigger.http;
    assert_eq!(http.len(), 1);
    assert_eq!(http[0].component, "portcullis");
    assert_eq!(
        http[0].route.as_str(),
        Some("/..."),
        "every path reaches the core"
    );
    let c = portcullis(&m);
    assert_eq!(c.sqlite_databases, ["default"]);
    assert_eq!(c.key_value_stores, ["default"]);
    for host in &c.allowed_outbound_hosts {
        assert!(
            host.starts_with("https://"),
            "{host}: outbound fetches are https only"
        );
    }
    assert!(c.files.is_empty() && c.environment.is_empty());
}

/// L7: the shipped manifest allows no wildcard outbound destination. Spin resolves names in
/// the host, so the component cannot refuse a name that resolves to a private address; the
/// default must therefore name every host it may reach (none by default), never `*`, `self`,
/// a template or an IP literal (docs/spin.md, "Outbound hosts and SSRF").
#[test]
fn l7_spin_default_outbound_hosts_are_not_wildcards() {
    let m = manifest();
    let c = portcullis(&m);
    for entry in &c.allowed_outbound_hosts {
        let rest = entry
            .strip_prefix("https://")
            .unwrap_or_else(|| panic!("{entry}: https only"));
        let (host, port) = rest.split_once(':').unwrap_or((rest, "443"));
        assert_eq!(port, "443", "{entry}: port 443 only");
        assert!(
            !host.is_empty()
                && !host.contains(['*', '{', '}', '/', '[', ']'])
                && host != "self"
                && host.parse::<std::net::IpAddr>().is_err()
                && host.contains('.'),
            "{entry}: name each trusted host; no wildcard, template, self or IP literal"
        );
    }
    // The exposure and the opt-in are documented where the operator looks.
    let doc = std::fs::read_to_string(repo_root().join("docs/spin.md")).unwrap();
    assert!(doc.contains("allowed_outbound_hosts = []"), "docs/spin.md");
    assert!(doc.contains("https://*:443"), "docs/spin.md");
}

#[test]
fn build_command_builds_the_production_component() {
    let m = manifest();
    let c = portcullis(&m);
    let build = c.build.as_ref().expect("a build command");
    let cmd = &build.command;
    for part in [
        "cargo build",
        "--release",
        "--target wasm32-wasip2",
        "--manifest-path adapters/spin/Cargo.toml",
    ] {
        assert!(
            cmd.contains(part),
            "the build command lacks {part:?}: {cmd}"
        );
    }
    assert!(
        !cmd.contains("sql-bridge")
            && !cmd.contains("--features")
            && !cmd.contains("--all-features"),
        "the production build must not enable test features: {cmd}"
    );
    // The source is where that command puts the component.
    let dir = cmd
        .split("--target-dir ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("target");
    assert_eq!(
        c.source.as_str(),
        Some(format!("{dir}/wasm32-wasip2/release/portcullis_spin.wasm").as_str())
    );
    // And the adapter's own manifest keeps the bridge behind a feature that is off by default.
    let cargo: toml::Table = toml::from_str(
        &std::fs::read_to_string(repo_root().join("adapters/spin/Cargo.toml")).unwrap(),
    )
    .unwrap();
    let features = cargo["features"].as_table().expect("[features]");
    assert!(features
        .get("default")
        .and_then(|d| d.as_array())
        .is_none_or(|d| d.iter().all(|f| f.as_str() != Some("sql-bridge"))));
}
