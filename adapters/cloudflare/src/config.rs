//! Configuration from the Worker's `[vars]` and secrets: each core setting `name` is read
//! from `PORTCULLIS_<NAME>` (upper case, nested tables joined with `__`, e.g.
//! `PORTCULLIS_REGISTRATION__MODE`), `PORTCULLIS_CONFIG` holds a whole JSON document (seeds),
//! and `PORTCULLIS_CRYPTO_PROVIDER` picks the signing provider of this adapter.

use std::sync::Arc;

use portcullis_core::config::{Config, ConfigError};
use portcullis_core::crypto::{CryptoProvider, RustCrypto};

/// The prefix of every variable.
const PREFIX: &str = "PORTCULLIS_";

/// Which ES256 implementation signs and verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoChoice {
    /// `crypto.subtle` (the runtime's native code; the default).
    WebCrypto,
    /// The core's pure-Rust provider, compiled into the Worker.
    RustCrypto,
}

impl CryptoChoice {
    /// Parses `PORTCULLIS_CRYPTO_PROVIDER`.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim).map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("webcrypto") => Ok(Self::WebCrypto),
            Some("rustcrypto") => Ok(Self::RustCrypto),
            Some(other) => Err(format!(
                "PORTCULLIS_CRYPTO_PROVIDER must be \"webcrypto\" or \"rustcrypto\" (got {:?})",
                portcullis_core::text::truncate(other, 32)
            )),
        }
    }

    /// The provider object.
    // The core's seams are `Arc`s; a Worker isolate is single-threaded, so a provider that
    // holds JavaScript objects (not `Send`) is fine in one.
    #[allow(clippy::arc_with_non_send_sync)]
    pub fn provider(self) -> Arc<dyn CryptoProvider> {
        match self {
            Self::WebCrypto => Arc::new(crate::webcrypto::WebCrypto::default()),
            Self::RustCrypto => Arc::new(RustCrypto),
        }
    }
}

/// Everything read from the environment.
pub struct Settings {
    /// The core configuration.
    pub core: Config,
    /// The crypto provider.
    pub crypto: CryptoChoice,
}

/// The variable name of a core setting (`registration__mode` -> `PORTCULLIS_REGISTRATION__MODE`).
pub fn var_name(setting: &str) -> String {
    format!("{PREFIX}{}", setting.to_ascii_uppercase())
}

/// Reads one variable: a plain-text var or secret, or a JSON value from `[vars]` (a TOML
/// table such as `PORTCULLIS_CONFIG = { users = [...] }` arrives as an object).
fn read(env: &worker::Env, name: &str) -> Option<String> {
    if let Ok(v) = env.var(name) {
        return Some(v.to_string());
    }
    if let Ok(v) = env.secret(name) {
        return Some(v.to_string());
    }
    env.object_var::<serde_json::Value>(name)
        .ok()
        .filter(|v| !v.is_null())
        .map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        })
}

/// A configuration error naming the Worker variable at fault.
fn describe(e: ConfigError) -> String {
    format!("{}: {}", var_name(&e.setting.replace('.', "__")), e.message)
}

/// Whether a `PORTCULLIS_CONFIG` document sets the issuer.
fn json_sets_issuer(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .is_some_and(|v| v.get("issuer").is_some_and(|i| i.is_string()))
}

/// Loads and checks the settings.
pub fn load(env: &worker::Env) -> Result<Settings, String> {
    let crypto = CryptoChoice::parse(read(env, "PORTCULLIS_CRYPTO_PROVIDER").as_deref())?;
    // A Worker has no sensible default issuer (the core's is a loopback URL): require one.
    let issuer_given = std::cell::Cell::new(false);
    let core = Config::from_vars(|setting| {
        let value = read(env, &var_name(setting));
        if setting == "issuer" && value.is_some() {
            issuer_given.set(true);
        }
        if setting == "config" && value.as_deref().is_some_and(json_sets_issuer) {
            issuer_given.set(true);
        }
        value
    })
    .map_err(describe)?;
    if !issuer_given.get() {
        return Err(format!(
            "{}: must be set (the public https URL of this Worker)",
            var_name("issuer")
        ));
    }
    core.validate().map_err(describe)?;
    Ok(Settings { core, crypto })
}
