//! Settings from Spin variables: the core asks for each setting by its path name
//! (`issuer`, `registration__mode`, …, and `config` for a whole JSON document); Spin variable
//! names may not contain `__` (spin-expressions `Key::validate`: lower-case letters, digits and
//! single underscores), so nested names use one underscore: `registration__mode` is the Spin
//! variable `registration_mode` (environment: `SPIN_VARIABLE_REGISTRATION_MODE`). An empty
//! value counts as unset, so spin.toml can declare optional settings with `default = ""`.

use std::collections::HashMap;
use std::future::Future;

use portcullis_core::config::{Config, ConfigError, CONFIG_VAR};

/// The Spin variable that holds the core setting `setting`.
pub fn spin_variable_name(setting: &str) -> String {
    let mut out = setting.to_ascii_lowercase();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    out
}

/// Every variable the core reads: the whole-document `config` and each setting.
pub fn setting_names() -> Vec<String> {
    let mut names = vec![CONFIG_VAR.to_owned()];
    names.extend(portcullis_core::config::setting_names());
    names
}

/// Builds the configuration, asking `get` (a Spin variable lookup) once for each setting.
pub async fn load<G, F>(get: G) -> Result<Config, ConfigError>
where
    G: Fn(String) -> F,
    F: Future<Output = Option<String>>,
{
    let mut values = HashMap::new();
    for name in setting_names() {
        if let Some(v) = get(spin_variable_name(&name))
            .await
            .filter(|v| !v.is_empty())
        {
            values.insert(name, v);
        }
    }
    Config::from_vars(|name| values.get(name).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_names_use_one_underscore() {
        assert_eq!(spin_variable_name("issuer"), "issuer");
        assert_eq!(
            spin_variable_name("registration__rate_limit_per_minute"),
            "registration_rate_limit_per_minute"
        );
        assert_eq!(
            spin_variable_name("dpop__require_nonce"),
            "dpop_require_nonce"
        );
    }

    /// The mapping must stay one-to-one over the settings the core actually has, and every
    /// mapped name must be a valid Spin variable name.
    #[test]
    fn mapping_is_injective_and_valid_for_spin() {
        let names = setting_names();
        assert!(names.iter().any(|n| n == "issuer"), "{names:?}");
        assert!(names.iter().any(|n| n == "config"), "{names:?}");
        let mut seen = HashMap::new();
        for n in &names {
            let v = spin_variable_name(n);
            assert!(
                v.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                    && v.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
                    && v.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    && !v.contains("__"),
                "{n} maps to {v}, not a valid Spin variable name"
            );
            if let Some(other) = seen.insert(v.clone(), n.clone()) {
                assert_eq!(&other, n, "{other} and {n} both map to {v}");
            }
        }
    }

    #[test]
    fn load_reads_mapped_variables_and_ignores_empty_ones() {
        let vars: HashMap<&str, &str> = HashMap::from([
            ("issuer", "https://auth.example.com"),
            ("admin_api_key", "k-0123456789abcdef0123456789abcdef"),
            ("master_key", "m-0123456789abcdef0123456789abcdef"),
            ("registration_rate_limit_per_minute", "7"),
            ("config", ""),
        ]);
        let cfg = futures::executor::block_on(load(|n: String| {
            let v = vars.get(n.as_str()).map(|v| (*v).to_owned());
            async move { v }
        }))
        .expect("valid settings");
        assert_eq!(cfg.issuer, "https://auth.example.com");
        assert_eq!(cfg.registration.rate_limit_per_minute, 7);
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        let err = futures::executor::block_on(load(|n: String| async move {
            match n.as_str() {
                "issuer" => Some("https://auth.example.com".to_owned()),
                "registration_rate_limit_per_minute" => Some("many".to_owned()),
                _ => None,
            }
        }))
        .expect_err("a non-numeric limit is refused");
        assert!(err.to_string().contains("rate_limit_per_minute"), "{err}");
    }
}
