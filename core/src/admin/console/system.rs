//! System: the version, the schema version (applied and known to this build), storage
//! health (the system of record and the cache answer), and the configuration in force with
//! every secret redacted (keys, passwords, secrets, credentials in URLs).

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::Value;

use super::layout::{self, t};
use super::Ctx;
use crate::error::Result;
use crate::store::migrations::{current_version, MIGRATIONS};

/// Replaces secret values in a serialized configuration: fields named like a secret, and the
/// password part of URLs.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                let k = k.to_ascii_lowercase();
                let secret = ["secret", "password", "private", "token", "credential"]
                    .iter()
                    .any(|w| k.contains(w))
                    || k.ends_with("key")
                    || k.ends_with("keys");
                if secret && !val.is_null() && !matches!(val, Value::Number(_) | Value::Bool(_)) {
                    *val = Value::String("[redacted]".into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) => {
            if let Ok(mut u) = url::Url::parse(s) {
                if u.password().is_some() {
                    let _ = u.set_password(Some("redacted"));
                    *s = u.to_string();
                }
            }
        }
        _ => {}
    }
}

/// `GET /admin/console/system`.
pub async fn page(cx: &Ctx<'_>) -> Result<Response<Bytes>> {
    let env = cx.server.env();
    let now = cx.server.now();
    let sql = match current_version(env.sql.as_ref()).await {
        Ok(v) => (format!("answers (schema version {v})"), v),
        Err(e) => {
            tracing::warn!(error = %e, "console: storage health check failed");
            ("does not answer".to_owned(), 0)
        }
    };
    let known = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    let kv = match env.kv.get("console_health_probe", now).await {
        Ok(_) => "answers",
        Err(_) => "does not answer",
    };
    let mut config = serde_json::to_value(cx.server.config()).unwrap_or(Value::Null);
    redact(&mut config);
    let shown = serde_json::to_string_pretty(&config).unwrap_or_default();
    let rows = vec![
        vec!["Version".into(), t(env!("CARGO_PKG_VERSION"))],
        vec![
            "Issuer".into(),
            format!("<code>{}</code>", t(cx.server.issuer())),
        ],
        vec![
            "Schema version".into(),
            t(&format!("{} applied, {known} known to this build", sql.1)),
        ],
        vec!["System of record (SQL)".into(), t(&sql.0)],
        vec!["Cache (key-value)".into(), t(kv)],
        vec![
            "Admin API key".into(),
            t(if cx.server.config().admin_api_key.is_some() {
                "configured"
            } else {
                "not configured"
            }),
        ],
        vec!["Key custody (kms.kind)".into(), t(cx.server.kms().kind())],
        vec![
            "Master key".into(),
            t(if cx.server.config().master_key.is_some() {
                "configured"
            } else {
                "not configured (development key in use)"
            }),
        ],
    ];
    let body = format!(
        "<h1>System</h1>{}<h2>Configuration in force</h2><p class=\"muted\">Secrets are redacted.</p><pre>{}</pre>",
        layout::table(&["", ""], &rows),
        t(&shown)
    );
    Ok(layout::page(
        &cx.frame("system"),
        StatusCode::OK,
        "System",
        None,
        &body,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_redacted() {
        let mut v = serde_json::json!({
            "admin_api_key": "k", "master_key": "m", "previous_master_keys": ["p"],
            "users": [{"username": "alice", "password": "pw"}],
            "providers": [{"client_secret": "s", "client_id": "c"}],
            "storage": {"database_url": "postgres://u:pw@db/x"},
            "access_token_ttl": 300,
        });
        super::redact(&mut v);
        let s = v.to_string();
        for secret in ["\"k\"", "\"m\"", "\"p\"", "\"pw\"", "\"s\"", "u:pw@"] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
        assert!(
            s.contains("alice") && s.contains("300") && s.contains("\"c\""),
            "{s}"
        );
    }
}
