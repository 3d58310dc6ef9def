//! Configuration from the Worker's `[vars]` and secrets, read by the core's
//! [`settings::load_vars`] for [`Runtime::Workers`]: each core setting `name` is read from
//! `PORTCULLIS_<NAME>` (upper case, nested tables joined with `__`, e.g.
//! `PORTCULLIS_REGISTRATION__MODE`), `PORTCULLIS_CONFIG` holds a whole JSON document (seeds).
//! `PORTCULLIS_CRYPTO_PROVIDER` picks the signing provider of this adapter.

use std::sync::Arc;

use portcullis_core::config::Config;
use portcullis_core::crypto::{CryptoProvider, RustCrypto};
use portcullis_core::host::settings::{self, Runtime, SettingsError};

/// The variable choosing the crypto provider (this adapter's only own setting).
const CRYPTO_VAR: &str = "PORTCULLIS_CRYPTO_PROVIDER";

/// Which ES256 implementation signs and verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoChoice {
    /// `crypto.subtle` (the runtime's native code; the default).
    WebCrypto,
    /// The core's pure-Rust provider, compiled into the Worker.
    RustCrypto,
}

impl CryptoChoice {
    /// Parses [`CRYPTO_VAR`].
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim).map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("webcrypto") => Ok(Self::WebCrypto),
            Some("rustcrypto") => Ok(Self::RustCrypto),
            Some(other) => Err(format!(
                "must be \"webcrypto\" or \"rustcrypto\" (got {:?})",
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

/// Loads and checks the settings ([`settings::load_vars`]: a Worker must set the issuer).
pub fn load(env: &worker::Env) -> Result<Settings, SettingsError> {
    let crypto =
        CryptoChoice::parse(read(env, CRYPTO_VAR).as_deref()).map_err(|message| SettingsError {
            variable: CRYPTO_VAR.to_owned(),
            message,
        })?;
    let core = settings::load_vars(Runtime::Workers, |name| read(env, name))?;
    Ok(Settings { core, crypto })
}
