//! Configuration from named string variables, for hosts whose configuration is a flat set of
//! strings: Workers `[vars]` and secrets, Spin variables. Every setting of [`Config`] has a
//! name (its path in lower snake case, nested tables joined with `__`: `issuer`,
//! `registration__mode`, `dpop__require_nonce`); a value is parsed by the type of the setting
//! it names. The variable [`CONFIG_VAR`] may hold a whole JSON document (for the seeded
//! users, resources and clients); single settings override it.

use serde_json::{Map, Value};

use super::{cfg_err, Config, ConfigError};

/// The variable holding a whole configuration document as JSON.
pub const CONFIG_VAR: &str = "config";

/// The schema: the default configuration as JSON (its shape gives every setting's type).
fn schema() -> Map<String, Value> {
    match serde_json::to_value(Config::default()) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Every setting's variable name, in schema order (tables are walked, not named).
pub fn setting_names() -> Vec<String> {
    fn walk(prefix: &str, map: &Map<String, Value>, out: &mut Vec<String>) {
        for (k, v) in map {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}__{k}")
            };
            match v {
                Value::Object(inner) => walk(&name, inner, out),
                _ => out.push(name),
            }
        }
    }
    let mut out = Vec::new();
    walk("", &schema(), &mut out);
    out
}

/// The schema value of the setting `name` (`None`: not a setting; `Some(Null)`: an optional
/// setting, taken as text).
fn schema_value<'a>(schema: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let mut parts = name.split("__");
    let mut value = schema.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// Why an environment variable's value does not parse as its setting's type. `Display` is
/// the message of the [`ConfigError`] for that setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum VarParseError {
    /// Carries the raw value, shown quoted.
    #[error("expected true or false, got {0:?}")]
    Bool(String),
    #[error("expected a number, got {0:?}")]
    Number(String),
    #[error("expected an integer, got {0:?}")]
    Integer(String),
    /// Carries the JSON parser's message.
    #[error("expected a JSON array: {0}")]
    Array(String),
}

/// Parses `raw` by the type of `expected`.
fn parse(expected: &Value, raw: &str) -> Result<Value, VarParseError> {
    let trimmed = raw.trim();
    Ok(match expected {
        Value::Bool(_) => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => return Err(VarParseError::Bool(raw.to_owned())),
        },
        Value::Number(n) if n.is_f64() => trimmed
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| VarParseError::Number(raw.to_owned()))?,
        Value::Number(_) => Value::Number(
            trimmed
                .parse::<i64>()
                .map_err(|_| VarParseError::Integer(raw.to_owned()))?
                .into(),
        ),
        Value::Array(_) if trimmed.starts_with('[') => {
            serde_json::from_str(trimmed).map_err(|e| VarParseError::Array(e.to_string()))?
        }
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => Value::String(raw.to_owned()),
    })
}

/// Sets `name` (a `__`-joined path) in `doc`, creating tables on the way.
fn insert(doc: &mut Map<String, Value>, name: &str, value: Value) -> Result<(), ConfigError> {
    let parts: Vec<&str> = name.split("__").collect();
    let Some((last, parents)) = parts.split_last() else {
        return Ok(());
    };
    let mut table = doc;
    for p in parents {
        let entry = table
            .entry((*p).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        table = entry
            .as_object_mut()
            .ok_or_else(|| cfg_err(name, format!("'{p}' is not a table in {CONFIG_VAR}")))?;
    }
    table.insert((*last).to_owned(), value);
    Ok(())
}

impl Config {
    /// Builds the configuration from named variables: `lookup` is asked for [`CONFIG_VAR`]
    /// (a JSON document) and then for every name of [`setting_names`]; what it answers
    /// overrides the document. Unset settings keep their defaults. A value that does not parse
    /// as its setting's type is refused, naming the variable.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut doc = match lookup(CONFIG_VAR) {
            Some(text) if !text.trim().is_empty() => match serde_json::from_str(&text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(cfg_err(CONFIG_VAR, "must be a JSON object")),
                Err(e) => return Err(cfg_err(CONFIG_VAR, format!("not valid JSON: {e}"))),
            },
            _ => Map::new(),
        };
        let schema = schema();
        for name in setting_names() {
            let Some(raw) = lookup(&name) else { continue };
            let expected = schema_value(&schema, &name).unwrap_or(&Value::Null);
            let value = parse(expected, &raw).map_err(|m| cfg_err(name.clone(), m.to_string()))?;
            insert(&mut doc, &name, value)?;
        }
        serde_json::from_value(Value::Object(doc)).map_err(|e| cfg_err(CONFIG_VAR, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::RegistrationMode;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn names_cover_nested_settings_and_only_leaves() {
        let names = setting_names();
        for n in [
            "issuer",
            "admin_api_key",
            "master_key",
            "registration__mode",
            "registration__rate_limit_per_minute",
            "dpop__require_nonce",
            "cimd__allow_loopback",
            "users",
            "clients",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        assert!(!names.iter().any(|x| x == "registration" || x == "dpop"));
    }

    #[test]
    fn no_variables_give_the_defaults() {
        let cfg = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(cfg.issuer, Config::default().issuer);
        assert_eq!(cfg.access_token_ttl, 900);
    }

    #[test]
    fn values_are_parsed_by_type_and_override_the_document() {
        let cfg = Config::from_vars(vars(&[
            (
                "config",
                r#"{"issuer":"https://doc.example","access_token_ttl":60,
                    "users":[{"username":"ada","password":"correct horse battery"}]}"#,
            ),
            ("issuer", "https://as.example"),
            ("admin_api_key", "an-admin-key-of-enough-length"),
            ("registration__mode", "admin_only"),
            ("registration__rate_limit_per_minute", " 0 "),
            (
                "registration__allowed_redirect_prefixes",
                "https://a/, https://b/",
            ),
            ("dpop__require_nonce", "yes"),
        ]))
        .unwrap();
        assert_eq!(cfg.issuer, "https://as.example");
        assert_eq!(cfg.access_token_ttl, 60);
        assert_eq!(cfg.users.len(), 1);
        assert_eq!(
            cfg.admin_api_key.as_ref().map(|k| k.expose().to_owned()),
            Some("an-admin-key-of-enough-length".to_owned())
        );
        assert_eq!(cfg.registration.mode, RegistrationMode::AdminOnly);
        assert_eq!(cfg.registration.rate_limit_per_minute, 0);
        assert_eq!(
            cfg.registration.allowed_redirect_prefixes,
            vec!["https://a/", "https://b/"]
        );
        assert!(cfg.dpop.require_nonce);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_vars(vars(&[("code_ttl", "ten")])).unwrap_err();
        assert_eq!(err.setting, "code_ttl");
        let err = Config::from_vars(vars(&[("dpop__require_nonce", "maybe")])).unwrap_err();
        assert_eq!(err.setting, "dpop__require_nonce");
        let err = Config::from_vars(vars(&[("config", "[1]")])).unwrap_err();
        assert_eq!(err.setting, "config");
        let err = Config::from_vars(vars(&[("config", "{not json")])).unwrap_err();
        assert_eq!(err.setting, "config");
        let err = Config::from_vars(vars(&[("registration__mode", "whoever")])).unwrap_err();
        assert!(err.message.contains("whoever"), "{err}");
        let err = Config::from_vars(vars(&[("config", r#"{"issuer_typo":"x"}"#)])).unwrap_err();
        assert!(err.message.contains("issuer_typo"), "{err}");
    }

    #[test]
    fn json_arrays_of_tables_are_accepted_in_a_single_variable() {
        let cfg = Config::from_vars(vars(&[(
            "resources",
            r#"[{"uri":"https://mcp.example/mcp","scopes":["tools"]}]"#,
        )]))
        .unwrap();
        assert_eq!(cfg.resources.len(), 1);
        assert_eq!(cfg.resources[0].scopes, vec!["tools"]);
    }
}
