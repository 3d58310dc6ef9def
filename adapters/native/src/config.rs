//! Native configuration loading (DESIGN.md "Configuration"): an optional TOML file, then
//! `PORTCULLIS_*` environment overrides for every setting of the core's [`Config`] (nested
//! tables joined with `__`, e.g. `PORTCULLIS_REGISTRATION__MODE`), plus the host-only
//! settings of the `[server]` table (listen addresses, database URL, log format).

use std::net::SocketAddr;
use std::path::Path;

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, Context};
use portcullis_core::config::{setting_names, CONFIG_VAR};
use portcullis_core::host::{Deployment, Runtime};
use portcullis_core::Config;
use toml::{Table, Value};

use crate::listener::{
    Limits, DEFAULT_HEADER_READ_TIMEOUT_SECS, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_REQUESTS_PER_CONNECTION,
};

/// The environment prefix.
pub const PREFIX: &str = "PORTCULLIS_";

/// Host-only settings (`[server]` table; `PORTCULLIS_<KEY>` in the environment).
const HOST_KEYS: &[&str] = &[
    "listen",
    "admin_listen",
    "database_url",
    "log_format",
    "trusted_proxies",
    "header_read_timeout_secs",
    "max_requests_per_connection",
    "max_connections",
];

/// `PORTCULLIS_*` variables that are not settings (read by the CLI itself).
const NOT_SETTINGS: &[&str] = &["CONFIG", "USER_PASSWORD", "LOG"];

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Settings that only the native host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Public listener (default `127.0.0.1:9000`).
    pub listen: SocketAddr,
    /// Admin listener (default `127.0.0.1:9001`).
    pub admin_listen: SocketAddr,
    /// `sqlite://…` (default `sqlite://portcullis.db`) or `postgres://…`.
    pub database_url: String,
    /// Log format; `None` means JSON unless stderr is a terminal.
    pub log_format: Option<LogFormat>,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed for
    /// the client address (rate limits, login throttling); empty: the peer address is used.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Connection limits of each listener (`header_read_timeout_secs`,
    /// `max_requests_per_connection`, `max_connections`).
    pub limits: Limits,
}

/// The whole native configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The core's settings.
    pub core: Config,
    /// The host's settings.
    pub host: HostConfig,
}

impl Settings {
    /// The native host's checks of the core's settings ([`Runtime::Native`]), the listeners
    /// included when `listening` (L6: a loopback issuer served on a listener that is not
    /// loopback needs the keys of a public issuer), then the core's own validation.
    pub fn check(&self, listening: bool) -> anyhow::Result<()> {
        let listeners = [
            ("server.listen", self.host.listen),
            ("server.admin_listen", self.host.admin_listen),
        ];
        let deployment = Deployment {
            issuer_set: true,
            listeners: if listening { &listeners } else { &[] },
        };
        Runtime::Native.check(&self.core, &deployment)?;
        Ok(())
    }
}

/// Loads the file at `path` (if any) and applies the process environment.
pub fn load(path: Option<&Path>) -> anyhow::Result<Settings> {
    let text = match path {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading configuration file {}", p.display()))?,
        ),
        None => None,
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    load_from(text.as_deref(), &env)
}

/// Builds the settings from TOML text and environment pairs (pure; for tests). The core's
/// settings are read through [`Config::from_vars`], the same mapping the edge hosts use: the
/// file is the whole document, each `PORTCULLIS_<SETTING>` variable overrides one setting.
pub fn load_from(toml_text: Option<&str>, env: &[(String, String)]) -> anyhow::Result<Settings> {
    let mut table: Table = match toml_text {
        Some(t) => t.parse().context("configuration file is not valid TOML")?,
        None => Table::new(),
    };
    let mut server = match table.remove("server") {
        Some(Value::Table(t)) => t,
        Some(_) => bail!("configuration: 'server' must be a table"),
        None => Table::new(),
    };
    let settings: HashSet<String> = setting_names().into_iter().collect();
    // Settings that hold arrays (seeds, redirect prefixes), from the defaults' shape.
    let defaults = serde_json::to_value(Config::default()).context("configuration schema")?;
    let lists: HashSet<&String> = settings
        .iter()
        .filter(|s| {
            defaults
                .pointer(&format!("/{}", s.replace("__", "/")))
                .is_some_and(serde_json::Value::is_array)
        })
        .collect();
    let mut vars: HashMap<String, (String, String)> = HashMap::new();
    let mut port = None;
    for (name, raw) in env {
        if name == "PORT" {
            port = Some(raw.as_str());
            continue;
        }
        let Some(key) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if NOT_SETTINGS.contains(&key) || key.is_empty() {
            continue;
        }
        let setting = key.to_ascii_lowercase();
        if HOST_KEYS.contains(&setting.as_str()) {
            server.insert(setting, Value::String(raw.clone()));
        } else if settings.contains(&setting) {
            let value = if lists.contains(&setting) {
                inline_toml_as_json(raw).with_context(|| format!("environment variable {name}"))?
            } else {
                raw.clone()
            };
            vars.insert(setting, (name.clone(), value));
        } else {
            bail!("environment variable {name}: unknown setting '{setting}'");
        }
    }
    let host = host_config(
        server,
        env.iter().any(|(k, _)| k == "PORTCULLIS_LISTEN"),
        port,
    )?;
    if !table.contains_key("issuer") && !vars.contains_key("issuer") {
        table.insert(
            "issuer".into(),
            Value::String(format!("http://{}", host.listen)),
        );
    }
    let document = serde_json::to_string(&table).context("configuration file")?;
    let core = Config::from_vars(|setting| {
        if setting == CONFIG_VAR {
            Some(document.clone())
        } else {
            vars.get(setting).map(|(_, value)| value.clone())
        }
    })
    .map_err(|e| match vars.get(&e.setting) {
        Some((name, _)) => anyhow!("environment variable {name}: {}", e.message),
        None if e.setting == CONFIG_VAR => anyhow!("configuration: {}", e.message),
        None => anyhow!("{e}"),
    })?;
    Ok(Settings { core, host })
}

/// Array settings may be given in the environment as inline TOML, the file's syntax
/// (`[{ username = "alice", password = "…" }]`), or as JSON, or comma-separated; the core
/// reads JSON or commas, so inline TOML is converted.
fn inline_toml_as_json(raw: &str) -> anyhow::Result<String> {
    let trimmed = raw.trim_start();
    if !trimmed.starts_with('[') && !trimmed.starts_with('{') {
        return Ok(raw.to_owned());
    }
    if serde_json::from_str::<serde_json::Value>(raw).is_ok() {
        return Ok(raw.to_owned());
    }
    let mut t: Table = format!("v = {raw}")
        .parse()
        .map_err(|e| anyhow!("expected an inline TOML or JSON value: {e}"))?;
    let value = t.remove("v").unwrap_or(Value::String(String::new()));
    serde_json::to_string(&value).context("converting to JSON")
}

fn host_config(
    mut server: Table,
    listen_from_env: bool,
    port: Option<&str>,
) -> anyhow::Result<HostConfig> {
    let mut text = |key: &str| -> anyhow::Result<Option<String>> {
        match server.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => bail!("configuration error in 'server.{key}': must be a string"),
        }
    };
    let addr = |key: &str, v: Option<String>, default: &str| -> anyhow::Result<SocketAddr> {
        v.as_deref().unwrap_or(default).parse().map_err(|_| {
            anyhow!("configuration error in 'server.{key}': not an address like 127.0.0.1:9000")
        })
    };
    let mut listen = addr("listen", text("listen")?, "127.0.0.1:9000")?;
    if let (false, Some(port)) = (listen_from_env, port) {
        let port: u16 = port
            .trim()
            .parse()
            .map_err(|_| anyhow!("environment variable PORT: not a port number"))?;
        listen = SocketAddr::from(([127, 0, 0, 1], port));
    }
    let admin_listen = addr("admin_listen", text("admin_listen")?, "127.0.0.1:9001")?;
    let database_url = text("database_url")?.unwrap_or_else(|| "sqlite://portcullis.db".into());
    let log_format = match text("log_format")?.as_deref() {
        None | Some("") => None,
        Some("json") => Some(LogFormat::Json),
        Some("text") => Some(LogFormat::Text),
        Some(_) => bail!("configuration error in 'server.log_format': must be json or text"),
    };
    let trusted_proxies = proxies(server.remove("trusted_proxies"))?;
    let mut number = |key: &str, default: u64, max: u64| -> anyhow::Result<u64> {
        let n = match server.remove(key) {
            None => return Ok(default),
            Some(Value::Integer(n)) => u64::try_from(n).ok(),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(default),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(_) => None,
        };
        n.filter(|n| (1..=max).contains(n)).ok_or_else(|| {
            anyhow!("configuration error in 'server.{key}': must be a whole number from 1 to {max}")
        })
    };
    let limits = Limits {
        header_read_timeout: std::time::Duration::from_secs(number(
            "header_read_timeout_secs",
            DEFAULT_HEADER_READ_TIMEOUT_SECS,
            3600,
        )?),
        max_requests_per_connection: number(
            "max_requests_per_connection",
            u64::from(DEFAULT_MAX_REQUESTS_PER_CONNECTION),
            1_000_000,
        )? as u32,
        max_connections: number(
            "max_connections",
            u64::from(DEFAULT_MAX_CONNECTIONS),
            1_000_000,
        )? as u32,
    };
    if let Some(k) = server.keys().next() {
        bail!("configuration error in 'server.{k}': unknown setting");
    }
    Ok(HostConfig {
        listen,
        admin_listen,
        database_url,
        log_format,
        trusted_proxies,
        limits,
    })
}

/// `trusted_proxies`: an array, or a comma-separated string (from the environment).
fn proxies(v: Option<Value>) -> anyhow::Result<Vec<ipnet::IpNet>> {
    let items: Vec<String> = match v {
        None => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_owned()).collect(),
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => bail!(
                    "configuration error in 'server.trusted_proxies': entries must be strings"
                ),
            })
            .collect::<anyhow::Result<_>>()?,
        Some(_) => bail!("configuration error in 'server.trusted_proxies': must be a list"),
    };
    items
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| anyhow!("configuration error in 'server.trusted_proxies': {s:?} is not an address or CIDR range"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use portcullis_core::config::RegistrationMode;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_without_file_or_env() {
        let s = load_from(None, &env(&[("HOME", "/root")])).unwrap();
        assert_eq!(s.core.issuer, "http://127.0.0.1:9000");
        assert_eq!(s.host.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(s.host.admin_listen.to_string(), "127.0.0.1:9001");
        assert_eq!(s.host.database_url, "sqlite://portcullis.db");
        assert_eq!(s.host.log_format, None);
        assert_eq!(s.core.access_token_ttl, 900);
    }

    #[test]
    fn clock_skew_and_policy_rules_from_the_file() {
        let file = r#"
            jwt_clock_skew_seconds = 30
            [[idp_policies]]
            issuer = "https://acme.okta.com/oauth2/aus1"
            client_id = "agent-platform"
            resource = "https://mcp.example.com/mcp"
            scopes = ["mcp:read", "mcp:write"]
            [[idp_policies.rules]]
            scopes = ["mcp:write"]
            groups = ["mcp-writers"]
            max_auth_age = 900
            acr_values = ["urn:okta:loa:2fa:any", "phr"]
        "#;
        let s = load_from(Some(file), &env(&[])).unwrap();
        assert_eq!(s.core.jwt_clock_skew_seconds, 30);
        let rule = &s.core.idp_policies[0].rules[0];
        assert_eq!(rule.groups, ["mcp-writers"]);
        assert_eq!(rule.max_auth_age, Some(900));
        let env_skew = load_from(
            Some(file),
            &env(&[("PORTCULLIS_JWT_CLOCK_SKEW_SECONDS", "10")]),
        )
        .unwrap();
        assert_eq!(env_skew.core.jwt_clock_skew_seconds, 10);
        // Out of range: refused when the server starts (Config::validate), naming the setting.
        let out = load_from(None, &env(&[("PORTCULLIS_JWT_CLOCK_SKEW_SECONDS", "301")])).unwrap();
        let err = out.core.validate().unwrap_err();
        assert_eq!(err.setting, "jwt_clock_skew_seconds", "{err}");
    }

    #[test]
    fn file_then_env_overrides() {
        let file = r#"
            issuer = "https://auth.example.com"
            access_token_ttl = 300
            [registration]
            mode = "allow_list"
            [server]
            listen = "0.0.0.0:8080"
            database_url = "postgres://db/portcullis"
            [[resources]]
            uri = "https://mcp.example.com/mcp"
            scopes = ["mcp:tools"]
        "#;
        let s = load_from(
            Some(file),
            &env(&[
                ("PORTCULLIS_ACCESS_TOKEN_TTL", "120"),
                ("PORTCULLIS_REGISTRATION__MODE", "admin_only"),
                ("PORTCULLIS_REGISTRATION__RATE_LIMIT_PER_MINUTE", "7"),
                (
                    "PORTCULLIS_REGISTRATION__ALLOWED_REDIRECT_PREFIXES",
                    "https://a/, https://b/",
                ),
                ("PORTCULLIS_CIMD__ENABLED", "false"),
                ("PORTCULLIS_CIMD__EXTRA_CA_FILE", "/ca.pem"),
                ("PORTCULLIS_ADMIN_API_KEY", "0123456789abcdef0123"),
                ("PORTCULLIS_MASTER_KEY", "12345678901234567890"),
                ("PORTCULLIS_ADMIN_LISTEN", "127.0.0.1:7001"),
                ("PORTCULLIS_LOG_FORMAT", "text"),
                ("PORTCULLIS_USER_PASSWORD", "not a setting"),
            ]),
        )
        .unwrap();
        assert_eq!(s.core.issuer, "https://auth.example.com");
        assert_eq!(s.core.access_token_ttl, 120);
        assert_eq!(s.core.registration.mode, RegistrationMode::AdminOnly);
        assert_eq!(s.core.registration.rate_limit_per_minute, 7);
        assert_eq!(
            s.core.registration.allowed_redirect_prefixes,
            vec!["https://a/", "https://b/"]
        );
        assert!(!s.core.cimd.enabled);
        assert_eq!(s.core.cimd.extra_ca_file.as_deref(), Some("/ca.pem"));
        assert_eq!(
            s.core.admin_api_key.unwrap().expose(),
            "0123456789abcdef0123"
        );
        // A numeric-looking secret stays text.
        assert_eq!(s.core.master_key.unwrap().expose(), "12345678901234567890");
        assert_eq!(s.core.resources.len(), 1);
        assert_eq!(s.host.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(s.host.admin_listen.to_string(), "127.0.0.1:7001");
        assert_eq!(s.host.database_url, "postgres://db/portcullis");
        assert_eq!(s.host.log_format, Some(LogFormat::Text));
    }

    #[test]
    fn issuer_defaults_to_the_listen_address() {
        let s = load_from(None, &env(&[("PORTCULLIS_LISTEN", "127.0.0.1:7000")])).unwrap();
        assert_eq!(s.core.issuer, "http://127.0.0.1:7000");
        let s = load_from(None, &env(&[("PORTCULLIS_ISSUER", "http://localhost:1")])).unwrap();
        assert_eq!(s.core.issuer, "http://localhost:1");
        assert_eq!(s.host.listen.to_string(), "127.0.0.1:9000");
    }

    #[test]
    fn port_applies_only_without_portcullis_listen() {
        let s = load_from(None, &env(&[("PORT", "8123")])).unwrap();
        assert_eq!(s.host.listen.to_string(), "127.0.0.1:8123");
        assert_eq!(s.core.issuer, "http://127.0.0.1:8123");
        let s = load_from(
            None,
            &env(&[("PORT", "8123"), ("PORTCULLIS_LISTEN", "127.0.0.1:9100")]),
        )
        .unwrap();
        assert_eq!(s.host.listen.to_string(), "127.0.0.1:9100");
        assert!(load_from(None, &env(&[("PORT", "http")])).is_err());
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = load_from(None, &env(&[("PORTCULLIS_CODE_TTL", "ten")])).unwrap_err();
        assert!(
            format!("{err:#}").contains("PORTCULLIS_CODE_TTL"),
            "{err:#}"
        );
        let err = load_from(None, &env(&[("PORTCULLIS_LISTEN", "nowhere")])).unwrap_err();
        assert!(format!("{err:#}").contains("server.listen"), "{err:#}");
        let err = load_from(None, &env(&[("PORTCULLIS_LOG_FORMAT", "xml")])).unwrap_err();
        assert!(format!("{err:#}").contains("log_format"), "{err:#}");
        let err = load_from(Some("[server]\nport = 1\n"), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("server.port"), "{err:#}");
    }

    #[test]
    fn unknown_settings_are_refused() {
        let err = load_from(None, &env(&[("PORTCULLIS_ISSUR", "x")])).unwrap_err();
        assert!(format!("{err:#}").contains("issur"), "{err:#}");
        let err = load_from(Some("isuer = \"https://a\"\n"), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("isuer"), "{err:#}");
        assert!(load_from(Some("not toml ="), &[]).is_err());
    }

    #[test]
    fn trusted_proxies_from_file_or_env() {
        let s = load_from(
            Some("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n"),
            &[],
        )
        .unwrap();
        assert_eq!(s.host.trusted_proxies.len(), 2);
        assert_eq!(s.host.trusted_proxies[1].to_string(), "::1/128");
        let s = load_from(
            None,
            &env(&[("PORTCULLIS_TRUSTED_PROXIES", "192.168.0.0/16, 127.0.0.1")]),
        )
        .unwrap();
        assert_eq!(s.host.trusted_proxies.len(), 2);
        let err =
            load_from(None, &env(&[("PORTCULLIS_TRUSTED_PROXIES", "lb.internal")])).unwrap_err();
        assert!(format!("{err:#}").contains("trusted_proxies"), "{err:#}");
        assert!(load_from(None, &[])
            .unwrap()
            .host
            .trusted_proxies
            .is_empty());
    }

    #[test]
    fn text_settings_that_look_like_toml_stay_text() {
        let s = load_from(
            None,
            &env(&[
                ("PORTCULLIS_ADMIN_API_KEY", "[not-a-list]-0123456789"),
                (
                    "PORTCULLIS_USERS",
                    r#"[{"username":"bob","password":"correct horse"}]"#,
                ),
                (
                    "PORTCULLIS_REGISTRATION__ALLOWED_REDIRECT_PREFIXES",
                    "https://a/, https://b/",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.core.admin_api_key.unwrap().expose(),
            "[not-a-list]-0123456789"
        );
        assert_eq!(s.core.users[0].username, "bob", "JSON works too");
        assert_eq!(
            s.core.registration.allowed_redirect_prefixes,
            vec!["https://a/", "https://b/"]
        );
    }

    #[test]
    fn listener_limits_have_safe_defaults_and_are_settable() {
        let s = load_from(None, &[]).unwrap();
        assert_eq!(s.host.limits, Limits::default());
        assert_eq!(s.host.limits.header_read_timeout.as_secs(), 10);
        let s = load_from(
            Some("[server]\nmax_connections = 64\n"),
            &env(&[
                ("PORTCULLIS_HEADER_READ_TIMEOUT_SECS", "3"),
                ("PORTCULLIS_MAX_REQUESTS_PER_CONNECTION", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(s.host.limits.header_read_timeout.as_secs(), 3);
        assert_eq!(s.host.limits.max_requests_per_connection, 5);
        assert_eq!(s.host.limits.max_connections, 64);
        for (k, v) in [
            ("PORTCULLIS_MAX_CONNECTIONS", "0"),
            ("PORTCULLIS_MAX_CONNECTIONS", "-1"),
            ("PORTCULLIS_HEADER_READ_TIMEOUT_SECS", "ten"),
            ("PORTCULLIS_MAX_REQUESTS_PER_CONNECTION", "99999999999"),
        ] {
            let err = load_from(None, &env(&[(k, v)])).unwrap_err();
            let setting = k.trim_start_matches(PREFIX).to_ascii_lowercase();
            assert!(format!("{err:#}").contains(&setting), "{k}={v}: {err:#}");
        }
    }

    #[test]
    fn l6_loopback_issuer_on_a_public_listener_needs_the_keys() {
        let exposed = [
            ("PORTCULLIS_ISSUER", "http://localhost:9000"),
            ("PORTCULLIS_LISTEN", "0.0.0.0:9000"),
        ];
        let s = load_from(None, &env(&exposed)).unwrap();
        let err = s.check(true).unwrap_err();
        assert!(format!("{err:#}").contains("'admin_api_key'"), "{err:#}");
        assert!(format!("{err:#}").contains("0.0.0.0:9000"), "{err:#}");
        let mut with_admin = exposed.to_vec();
        with_admin.push(("PORTCULLIS_ADMIN_API_KEY", "0123456789abcdef0123"));
        let err = load_from(None, &env(&with_admin))
            .unwrap()
            .check(true)
            .unwrap_err();
        assert!(format!("{err:#}").contains("'master_key'"), "{err:#}");
        let mut both = with_admin.clone();
        both.push(("PORTCULLIS_MASTER_KEY", "fedcba9876543210fedcba"));
        load_from(None, &env(&both)).unwrap().check(true).unwrap();
        // The admin listener counts too.
        let admin_exposed = [
            ("PORTCULLIS_ISSUER", "http://127.0.0.1:9000"),
            ("PORTCULLIS_ADMIN_LISTEN", "[::]:9001"),
        ];
        let err = load_from(None, &env(&admin_exposed))
            .unwrap()
            .check(true)
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("server.admin_listen"),
            "{err:#}"
        );
        // Loopback everywhere (the defaults, scripts/run-native, the test harness): accepted.
        load_from(None, &[]).unwrap().check(true).unwrap();
        let example = include_str!("../../../examples/portcullis.toml");
        load_from(Some(example), &[]).unwrap().check(true).unwrap();
    }

    #[test]
    fn seeds_can_come_from_the_environment_as_inline_toml() {
        let s = load_from(
            None,
            &env(&[(
                "PORTCULLIS_USERS",
                r#"[{ username = "alice", password = "correct horse" }]"#,
            )]),
        )
        .unwrap();
        assert_eq!(s.core.users.len(), 1);
        assert_eq!(s.core.users[0].username, "alice");
    }
}
