//! Configuration from the Worker's `[vars]` and secrets, read by the core's
//! [`settings::load_vars`] for [`Runtime::Workers`]: each core setting `name` is read from
//! `PORTCULLIS_<NAME>` (upper case, nested tables joined with `__`, e.g.
//! `PORTCULLIS_REGISTRATION__MODE`), `PORTCULLIS_CONFIG` holds a whole JSON document (seeds).
//! [`CryptoChoice::VARIABLE`] picks the ES256 provider.

use std::sync::Arc;

use portcullis_core::config::Config;
use portcullis_core::crypto::{CryptoProvider, RustCrypto};
use portcullis_core::host::settings::{self, CryptoChoice, Runtime, SettingsError};

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

/// Loads and checks the settings ([`settings::load_vars`]: a Worker must set the issuer) and
/// the crypto provider they name.
// A Worker isolate is single-threaded, so a provider that holds JavaScript objects (not
// `Send`) is fine in the core's `Arc` seam.
#[allow(clippy::arc_with_non_send_sync)]
pub fn load(env: &worker::Env) -> Result<(Config, Arc<dyn CryptoProvider>), SettingsError> {
    let crypto: Arc<dyn CryptoProvider> = match CryptoChoice::load(|name| read(env, name))? {
        CryptoChoice::WebCrypto => Arc::new(crate::webcrypto::WebCrypto::default()),
        CryptoChoice::RustCrypto => Arc::new(RustCrypto),
    };
    let core = settings::load_vars(Runtime::Workers, |name| read(env, name))?;
    Ok((core, crypto))
}
