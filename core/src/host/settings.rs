//! Settings per runtime: which settings each runtime requires or cannot honour, and how a
//! flat key/value source names a setting. The edge runtimes read the core's settings from
//! such a source (Workers `[vars]` and secrets: `PORTCULLIS_REGISTRATION__MODE`; Spin
//! variables, whose names allow no `__`: `registration_mode`), through [`load_vars`]; the
//! native host reads TOML and the environment itself and then calls [`Runtime::check`].
//!
//! The rules, the same wherever they apply:
//! - an edge deployment must set `issuer` (the core's default is a loopback URL, which is no
//!   deployment's public URL, and would waive the admin and master keys);
//! - the edge runtimes have no filesystem, so `cimd.extra_ca_file` is refused there;
//! - a native host serving a loopback issuer on a listener that is not loopback needs the
//!   keys of a public issuer (SECURITY-CHECKLIST L6);
//! - then the core's own checks ([`Config::validate`]).

use std::net::SocketAddr;

use serde_json::Value;

use crate::config::{setting_names, Config, ConfigError, CONFIG_VAR};

/// Where a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// The `portcullis` binary (tokio).
    Native,
    /// Cloudflare Workers.
    Workers,
    /// Fermyon Spin.
    Spin,
}

/// What a host knows about its deployment beyond the settings themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deployment<'a> {
    /// Whether `issuer` was set explicitly (not the core's default).
    pub issuer_set: bool,
    /// The listeners the host binds, by setting name (`server.listen`); none on the edge.
    pub listeners: &'a [(&'a str, SocketAddr)],
}

/// A refused setting of a flat source, naming the variable at fault. `Display`:
/// `VARIABLE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct SettingsError {
    /// The variable (`PORTCULLIS_CODE_TTL`, `code_ttl`).
    pub variable: String,
    /// What is wrong.
    pub message: String,
}

fn refused(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_owned(),
        message: message.into(),
    }
}

impl Runtime {
    /// The runtime's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "the native host",
            Self::Workers => "Cloudflare Workers",
            Self::Spin => "Spin",
        }
    }

    /// Whether this is an edge runtime (no listener or filesystem of its own).
    pub fn is_edge(self) -> bool {
        !matches!(self, Self::Native)
    }

    /// Settings (`__`-joined names) this runtime cannot honour: refused when set.
    pub fn unsupported(self) -> &'static [&'static str] {
        if self.is_edge() {
            &["cimd__extra_ca_file"]
        } else {
            &[]
        }
    }

    /// The variable of a flat source that holds `setting` (a `__`-joined name, or
    /// [`CONFIG_VAR`] for the whole JSON document): `PORTCULLIS_` and the name in upper case
    /// (the native environment, Workers), or the name with every run of underscores made
    /// one (Spin variable names allow lower-case letters, digits and single underscores).
    pub fn variable(self, setting: &str) -> String {
        match self {
            Self::Native | Self::Workers => format!("PORTCULLIS_{}", setting.to_ascii_uppercase()),
            Self::Spin => {
                let mut out = String::with_capacity(setting.len());
                for c in setting.chars().map(|c| c.to_ascii_lowercase()) {
                    if !(c == '_' && out.ends_with('_')) {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// Every variable [`load_vars`] reads: the whole document's, then each setting's.
    pub fn variables(self) -> Vec<String> {
        std::iter::once(CONFIG_VAR.to_owned())
            .chain(setting_names())
            .map(|s| self.variable(&s))
            .collect()
    }

    /// Refuses what this runtime requires and was not given, or cannot honour, then applies
    /// the core's validation; the error names the setting (dotted, as the core's do).
    pub fn check(self, cfg: &Config, deployment: &Deployment<'_>) -> Result<(), ConfigError> {
        if self.is_edge() && !deployment.issuer_set {
            return Err(refused(
                "issuer",
                format!(
                    "must be set on {} (this deployment's public https URL)",
                    self.name()
                ),
            ));
        }
        let set = serde_json::to_value(cfg).unwrap_or(Value::Null);
        let default = serde_json::to_value(Config::default()).unwrap_or(Value::Null);
        for setting in self.unsupported() {
            let pointer = format!("/{}", setting.replace("__", "/"));
            if set.pointer(&pointer) != default.pointer(&pointer) {
                return Err(refused(
                    &setting.replace("__", "."),
                    format!(
                        "not supported on {}: it has no filesystem (outbound TLS uses the \
                         platform's trust store)",
                        self.name()
                    ),
                ));
            }
        }
        if cfg.issuer_is_loopback() {
            check_exposed_loopback(cfg, deployment.listeners)?;
        }
        cfg.validate()
    }

    /// The [`SettingsError`] of a refused setting, naming this runtime's variable.
    fn named(self, e: ConfigError) -> SettingsError {
        SettingsError {
            variable: self.variable(&e.setting.replace('.', "__")),
            message: e.message,
        }
    }
}

/// L6: the core waives the admin and master keys for a loopback issuer (a developer's
/// laptop); that must not carry over to a listener reachable from other hosts (e.g.
/// `issuer = http://localhost:9000` on `0.0.0.0:9000` in a container with a published port).
fn check_exposed_loopback(
    cfg: &Config,
    listeners: &[(&str, SocketAddr)],
) -> Result<(), ConfigError> {
    let Some((listener, addr)) = listeners.iter().find(|(_, a)| !a.ip().is_loopback()) else {
        return Ok(());
    };
    let why = format!(
        "{listener} ({addr}) is not a loopback address, so this server is reachable from other \
         hosts even though the issuer {} is loopback",
        cfg.issuer
    );
    for (setting, present, variable, what) in [
        (
            "admin_api_key",
            cfg.admin_api_key.is_some(),
            "PORTCULLIS_ADMIN_API_KEY",
            "an admin API key",
        ),
        (
            "master_key",
            cfg.master_key.is_some(),
            "PORTCULLIS_MASTER_KEY",
            "a master key",
        ),
    ] {
        if !present {
            return Err(refused(
                setting,
                format!(
                    "{why}; set {what} ({variable}) as for a public issuer, or listen on 127.0.0.1"
                ),
            ));
        }
    }
    Ok(())
}

/// Builds and checks the configuration of an edge `runtime` from a flat source: `lookup`
/// answers by variable name ([`Runtime::variable`]); an empty value counts as unset (so a
/// manifest can declare optional settings with an empty default). The `issuer` counts as
/// set when its variable, or the whole document's `issuer`, is.
pub fn load_vars(
    runtime: Runtime,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Config, SettingsError> {
    let get = |setting: &str| lookup(&runtime.variable(setting)).filter(|v| !v.trim().is_empty());
    let cfg = Config::from_vars(get).map_err(|e| runtime.named(e))?;
    let issuer_set = get("issuer").is_some()
        || get(CONFIG_VAR)
            .and_then(|doc| serde_json::from_str::<Value>(&doc).ok())
            .is_some_and(|doc| doc.get("issuer").is_some_and(Value::is_string));
    let deployment = Deployment {
        issuer_set,
        listeners: &[],
    };
    runtime
        .check(&cfg, &deployment)
        .map_err(|e| runtime.named(e))?;
    Ok(cfg)
}

/// Which ES256 implementation the Worker signs and verifies with
/// ([`CryptoChoice::VARIABLE`]); AES-GCM and hashing are the core's either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoChoice {
    /// The runtime's `crypto.subtle` (native code in workerd; the default).
    WebCrypto,
    /// The core's pure-Rust provider, compiled into the Worker.
    RustCrypto,
}

impl CryptoChoice {
    /// The variable naming the provider.
    pub const VARIABLE: &'static str = "PORTCULLIS_CRYPTO_PROVIDER";

    /// Reads [`Self::VARIABLE`] through `lookup`; unset or empty is WebCrypto.
    pub fn load(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let value = lookup(Self::VARIABLE).map(|v| v.trim().to_ascii_lowercase());
        match value.as_deref() {
            None | Some("") | Some("webcrypto") => Ok(Self::WebCrypto),
            Some("rustcrypto") => Ok(Self::RustCrypto),
            Some(other) => Err(SettingsError {
                variable: Self::VARIABLE.to_owned(),
                message: format!(
                    "must be \"webcrypto\" or \"rustcrypto\" (got {:?})",
                    crate::text::truncate(other, 32)
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const KEYS: [(&str, &str); 2] = [
        ("admin_api_key", "k-0123456789abcdef0123456789abcdef"),
        ("master_key", "m-0123456789abcdef0123456789abcdef"),
    ];

    /// A flat source holding `pairs` (core setting names), named as `runtime` names them.
    fn source(runtime: Runtime, pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (runtime.variable(k), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn crypto_choice_defaults_to_webcrypto_and_names_the_variable_when_refused() {
        let from = |v: Option<&str>| CryptoChoice::load(|_| v.map(str::to_owned));
        assert_eq!(from(None), Ok(CryptoChoice::WebCrypto));
        assert_eq!(from(Some(" ")), Ok(CryptoChoice::WebCrypto));
        assert_eq!(from(Some("RustCrypto")), Ok(CryptoChoice::RustCrypto));
        let e = from(Some("bogus")).unwrap_err();
        assert_eq!(e.variable, "PORTCULLIS_CRYPTO_PROVIDER");
        assert!(e.message.contains("\"bogus\""), "{e}");
    }

    #[test]
    fn variable_names_per_runtime() {
        assert_eq!(
            Runtime::Workers.variable("registration__mode"),
            "PORTCULLIS_REGISTRATION__MODE"
        );
        assert_eq!(Runtime::Workers.variable(CONFIG_VAR), "PORTCULLIS_CONFIG");
        assert_eq!(Runtime::Spin.variable("issuer"), "issuer");
        assert_eq!(
            Runtime::Spin.variable("registration__rate_limit_per_minute"),
            "registration_rate_limit_per_minute"
        );
        assert_eq!(
            Runtime::Spin.variable("dpop__require_nonce"),
            "dpop_require_nonce"
        );
    }

    /// Spin's mapping must stay one-to-one over the settings the core has, and every name
    /// must be a valid Spin variable name.
    #[test]
    fn spin_names_are_injective_and_valid() {
        let names = Runtime::Spin.variables();
        assert!(names.iter().any(|n| n == "issuer") && names.iter().any(|n| n == "config"));
        let mut seen = std::collections::HashSet::new();
        for v in &names {
            assert!(
                v.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                    && v.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
                    && v.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    && !v.contains("__"),
                "{v} is not a valid Spin variable name"
            );
            assert!(seen.insert(v.clone()), "two settings map to {v}");
        }
    }

    #[test]
    fn an_edge_deployment_must_set_the_issuer() {
        for runtime in [Runtime::Workers, Runtime::Spin] {
            let err = load_vars(runtime, source(runtime, &KEYS)).unwrap_err();
            assert_eq!(err.variable, runtime.variable("issuer"), "{err}");
            assert!(err.message.contains("must be set"), "{err}");
            // Empty counts as unset.
            let mut empty = KEYS.to_vec();
            empty.push(("issuer", " "));
            assert!(load_vars(runtime, source(runtime, &empty)).is_err());
            // Set directly, or in the whole document.
            let mut direct = KEYS.to_vec();
            direct.push(("issuer", "https://auth.example.com"));
            let cfg = load_vars(runtime, source(runtime, &direct)).unwrap();
            assert_eq!(cfg.issuer, "https://auth.example.com");
            let mut doc = KEYS.to_vec();
            doc.push(("config", r#"{"issuer":"https://doc.example"}"#));
            assert_eq!(
                load_vars(runtime, source(runtime, &doc)).unwrap().issuer,
                "https://doc.example"
            );
        }
        // The native host has a default issuer of its own (its listen address).
        Runtime::Native
            .check(&Config::default(), &Deployment::default())
            .unwrap();
    }

    #[test]
    fn the_edge_refuses_a_ca_file() {
        let mut pairs = KEYS.to_vec();
        pairs.push(("issuer", "https://auth.example.com"));
        pairs.push(("cimd__extra_ca_file", "/etc/ca.pem"));
        for runtime in [Runtime::Workers, Runtime::Spin] {
            let err = load_vars(runtime, source(runtime, &pairs)).unwrap_err();
            assert_eq!(err.variable, runtime.variable("cimd__extra_ca_file"));
            assert!(err.message.contains("not supported"), "{err}");
        }
        let cfg = Config {
            cimd: crate::config::CimdConfig {
                extra_ca_file: Some("/etc/ca.pem".into()),
                ..Default::default()
            },
            ..Config::default()
        };
        Runtime::Native.check(&cfg, &Deployment::default()).unwrap();
    }

    #[test]
    fn refusals_name_the_runtime_variable() {
        let cases: [(&[(&str, &str)], &str); 3] = [
            (&[("code_ttl", "ten")], "code_ttl"),
            (
                &[("issuer", "https://auth.example.com"), ("master_key", "")],
                "master_key",
            ),
            (
                &[
                    ("issuer", "http://127.0.0.1:1"),
                    ("cimd__allow_loopback", "maybe"),
                ],
                "cimd__allow_loopback",
            ),
        ];
        for (pairs, setting) in cases {
            let mut all = vec![KEYS[0]];
            all.extend_from_slice(pairs);
            for runtime in [Runtime::Workers, Runtime::Spin] {
                let err = load_vars(runtime, source(runtime, &all)).unwrap_err();
                assert_eq!(err.variable, runtime.variable(setting), "{err}");
                assert!(
                    err.to_string().starts_with(&runtime.variable(setting)),
                    "{err}"
                );
            }
        }
        // A setting refused by the core's validation (dotted name) maps back too.
        let pairs = [
            ("issuer", "https://a.example"),
            KEYS[0],
            KEYS[1],
            ("cimd__allow_loopback", "true"),
        ];
        let err = load_vars(Runtime::Spin, source(Runtime::Spin, &pairs)).unwrap_err();
        assert_eq!(err.variable, "cimd_allow_loopback");
    }

    #[test]
    fn l6_a_loopback_issuer_on_an_exposed_listener_needs_the_keys() {
        let exposed: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let listeners = [("server.listen", exposed), ("server.admin_listen", local)];
        let deployment = Deployment {
            issuer_set: true,
            listeners: &listeners,
        };
        let mut cfg = Config::default();
        let err = Runtime::Native.check(&cfg, &deployment).unwrap_err();
        assert_eq!(err.setting, "admin_api_key");
        assert!(
            err.message.contains("server.listen (0.0.0.0:9000)"),
            "{err}"
        );
        cfg.admin_api_key = Some(crate::Secret::new("0123456789abcdef0123"));
        assert_eq!(
            Runtime::Native
                .check(&cfg, &deployment)
                .unwrap_err()
                .setting,
            "master_key"
        );
        cfg.master_key = Some(crate::Secret::new("fedcba9876543210fedcba"));
        Runtime::Native.check(&cfg, &deployment).unwrap();
        // Loopback listeners need nothing.
        let quiet = [("server.listen", local)];
        let deployment = Deployment {
            issuer_set: true,
            listeners: &quiet,
        };
        Runtime::Native
            .check(&Config::default(), &deployment)
            .unwrap();
    }
}
