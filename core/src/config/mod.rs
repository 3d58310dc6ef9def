//! The configuration schema, the same on every runtime (native TOML + `PORTCULLIS_*`
//! environment, Workers `[vars]`, Spin variables), with the declarative seeds of resources,
//! clients and users, and the start-up checks that refuse unsafe combinations.

mod connectors;
mod kms;
mod machine;
mod providers;
mod vars;

use serde::{Deserialize, Serialize};

use crate::crypto::password::PasswordCost;
use crate::secret::Secret;

pub use connectors::{ClaimNames, ConnectorInput, GroupScopes};
pub use kms::{KmsConfig, KmsKind};
pub use machine::{MachineClientsConfig, MachineRegistration, SeedClientPolicy};
pub use providers::ProviderInput;
pub use vars::{setting_names, CONFIG_VAR};

/// The master key of a development server started without one (loopback issuers only): what
/// it protects is not protected.
const DEVELOPMENT_MASTER_KEY: &[u8] = b"portcullis insecure development master key";

/// Every setting. Field names are the TOML keys; environment variables are
/// `PORTCULLIS_` + the upper-cased key (nested tables joined with `__`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The issuer identifier (RFC 8414 §2): an https URL, or http on loopback.
    pub issuer: String,
    /// Admin API key (`Authorization: Bearer …`). Without one, every admin request is refused.
    pub admin_api_key: Option<Secret>,
    /// Read-only bearer token for `GET /admin/metrics` (the admin API key works too).
    pub metrics_token: Option<Secret>,
    /// Master secret from which the key-encryption key is derived (HKDF-SHA256).
    pub master_key: Option<Secret>,
    /// Master keys rotated out: values sealed under them still open until `portcullis rekey`
    /// (`POST /admin/rekey`) has sealed them again under `master_key`.
    pub previous_master_keys: Vec<Secret>,
    /// Access token lifetime for user grants, seconds (default 900).
    pub access_token_ttl: i64,
    /// Access token lifetime for `client_credentials`, seconds (default 3600).
    pub client_credentials_ttl: i64,
    /// Refresh token lifetime, seconds (default 30 days).
    pub refresh_token_ttl: i64,
    /// Authorization code lifetime, seconds (at most 600).
    pub code_ttl: i64,
    /// Browser login session lifetime, seconds (default 12 hours).
    pub session_ttl: i64,
    /// Signing key lifetime before scheduled rotation, seconds (0 disables; default 90 days).
    pub key_rotation_interval: i64,
    /// Dynamic client registration (RFC 7591).
    pub registration: RegistrationConfig,
    /// Client ID metadata documents.
    pub cimd: CimdConfig,
    /// Login throttling (H4).
    pub login: LoginConfig,
    /// DPoP (RFC 9449).
    pub dpop: DpopConfig,
    /// Token exchange (RFC 8693).
    pub token_exchange: TokenExchangeConfig,
    /// Bounded storage: purge of expired rows, audit retention, pending-request caps.
    pub storage: StorageConfig,
    /// Seconds a new signing key is published in the JWKS before it signs (0: at once).
    pub key_prepublish_secs: i64,
    /// Clock skew tolerated by every JWT check (our access tokens, client assertions, ID-JAG
    /// assertions, connector ID tokens, DPoP proofs), seconds: [`JWT_CLOCK_SKEW_RANGE`].
    pub jwt_clock_skew_seconds: i64,
    /// Trusted enterprise IdPs for the JWT bearer / ID-JAG grant, created or updated on start.
    pub idps: Vec<SeedIdp>,
    /// Which IdP / client / resource / scope combinations the JWT bearer grant allows.
    pub idp_policies: Vec<SeedIdpPolicy>,
    /// Trusted workload issuers (workload identity federation), created or updated on start.
    pub workload_issuers: Vec<SeedWorkloadIssuer>,
    /// Which workloads of which issuer get tokens for which resource, client and scopes.
    pub workload_rules: Vec<SeedWorkloadRule>,
    /// Users created on start if missing.
    pub users: Vec<SeedUser>,
    /// Resources (MCP servers) created or updated on start.
    pub resources: Vec<SeedResource>,
    /// Static clients created or updated on start.
    pub clients: Vec<SeedClient>,
    /// Machine clients: `client_credentials` for self-registered clients, limits.
    pub machine_clients: MachineClientsConfig,
    /// Per-client policies (machine grant, limits) applied on start.
    pub client_policies: Vec<SeedClientPolicy>,
    /// Upstream providers of the token vault, created or updated on start.
    pub providers: Vec<ProviderInput>,
    /// OIDC connectors people may sign in through, created or updated on start.
    pub connectors: Vec<ConnectorInput>,
    /// Which IdP groups may consent to which scopes at which resource.
    pub group_scopes: Vec<GroupScopes>,
    /// Where signing keys and the data keys sealing secrets are kept (docs/kms.md).
    pub kms: KmsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:9000".into(),
            admin_api_key: None,
            metrics_token: None,
            master_key: None,
            previous_master_keys: Vec::new(),
            access_token_ttl: 900,
            client_credentials_ttl: 3600,
            refresh_token_ttl: 30 * 24 * 3600,
            code_ttl: 600,
            session_ttl: 12 * 3600,
            key_rotation_interval: 90 * 24 * 3600,
            registration: RegistrationConfig::default(),
            cimd: CimdConfig::default(),
            login: LoginConfig::default(),
            dpop: DpopConfig::default(),
            token_exchange: TokenExchangeConfig::default(),
            storage: StorageConfig::default(),
            key_prepublish_secs: 0,
            jwt_clock_skew_seconds: 60,
            idps: Vec::new(),
            idp_policies: Vec::new(),
            workload_issuers: Vec::new(),
            workload_rules: Vec::new(),
            users: Vec::new(),
            resources: Vec::new(),
            clients: Vec::new(),
            machine_clients: MachineClientsConfig::default(),
            client_policies: Vec::new(),
            providers: Vec::new(),
            connectors: Vec::new(),
            group_scopes: Vec::new(),
            kms: KmsConfig::default(),
        }
    }
}

/// Who may register clients dynamically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// Anyone (rate limited per IP).
    Open,
    /// Anyone, but every redirect URI must start with one of `allowed_redirect_prefixes`.
    AllowList,
    /// Only with the admin API key as a bearer token.
    AdminOnly,
}

/// RFC 7591 settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Registration mode (default `open`).
    pub mode: RegistrationMode,
    /// Redirect URI prefixes allowed in `allow_list` mode.
    pub allowed_redirect_prefixes: Vec<String>,
    /// Registrations per client IP per minute (0 disables the limit).
    pub rate_limit_per_minute: u32,
    /// Private-use redirect schemes without a dot that self-registered clients may use
    /// anyway (O2; e.g. `["cursor"]`). Reverse-domain schemes need no entry.
    pub extra_redirect_schemes: Vec<String>,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            mode: RegistrationMode::Open,
            allowed_redirect_prefixes: Vec::new(),
            rate_limit_per_minute: 20,
            extra_redirect_schemes: Vec::new(),
        }
    }
}

/// Client ID metadata document settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CimdConfig {
    /// Accept URL-shaped `client_id`s (default true).
    pub enabled: bool,
    /// Allow documents on loopback hosts (only honoured when the issuer is loopback; for tests).
    pub allow_loopback: bool,
    /// PEM file of an extra CA trusted for loopback documents (native host only).
    pub extra_ca_file: Option<String>,
    /// Largest document, bytes.
    pub max_bytes: usize,
    /// Cache lifetime floor and ceiling, seconds.
    pub min_cache_secs: i64,
    /// Cache lifetime ceiling, seconds.
    pub max_cache_secs: i64,
    /// How long a failed fetch is remembered, seconds.
    pub failure_cache_secs: i64,
}

impl Default for CimdConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_loopback: false,
            extra_ca_file: None,
            max_bytes: 5 * 1024,
            min_cache_secs: 60,
            max_cache_secs: 24 * 3600,
            failure_cache_secs: 10,
        }
    }
}

/// Login throttling.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// Failures per username (and per IP) allowed within `window_secs` before refusing.
    pub max_failures: u32,
    /// The throttling window, seconds.
    pub window_secs: i64,
    /// Whether the sign-in page offers local usernames and passwords (switch off when every
    /// person signs in through a connector).
    pub local_passwords: bool,
    /// argon2id memory of new password hashes, KiB.
    pub password_memory_kib: u32,
    /// argon2id passes of new password hashes.
    pub password_iterations: u32,
}

impl Default for LoginConfig {
    fn default() -> Self {
        let cost = PasswordCost::default();
        Self {
            max_failures: 5,
            window_secs: 300,
            local_passwords: true,
            password_memory_kib: cost.memory_kib,
            password_iterations: cost.iterations,
        }
    }
}

/// `login.password_memory_kib`: argon2's floor (8 KiB) to 64 MiB, which every host can hold
/// (a Worker isolate has 128 MB).
const PASSWORD_MEMORY_KIB_RANGE: std::ops::RangeInclusive<u32> = 8..=65_536;
/// `login.password_iterations`.
const PASSWORD_ITERATIONS_RANGE: std::ops::RangeInclusive<u32> = 1..=10;

impl LoginConfig {
    /// The argon2id cost of new password hashes.
    pub fn password_cost(&self) -> PasswordCost {
        PasswordCost {
            memory_kib: self.password_memory_kib,
            iterations: self.password_iterations,
        }
    }
}

/// DPoP settings (RFC 9449).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpopConfig {
    /// Require a server-issued nonce in every proof (RFC 9449 §8).
    pub require_nonce: bool,
    /// How far a proof's `iat` may be from now, seconds.
    pub proof_max_age_secs: i64,
    /// How long a server nonce stays valid, seconds.
    pub nonce_lifetime_secs: i64,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self {
            require_nonce: false,
            proof_max_age_secs: 300,
            nonce_lifetime_secs: 300,
        }
    }
}

/// Token exchange settings (RFC 8693).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenExchangeConfig {
    /// Longest delegation (`act`) chain; deeper exchanges are refused.
    pub max_delegation_depth: usize,
}

impl Default for TokenExchangeConfig {
    fn default() -> Self {
        Self {
            max_delegation_depth: 5,
        }
    }
}

/// Bounded storage (docs/security.md): how expired rows are purged, how long
/// audit events are kept, and how many pending authorization requests one caller may hold.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Audit events older than this many days are purged (0 keeps them forever; default 90).
    pub audit_retention_days: i64,
    /// Seconds between purges: the native host's periodic task and the Spin component's
    /// amortised purge (Workers use the cron trigger in wrangler.toml). Default 600.
    pub purge_interval_secs: i64,
    /// Rows one purge statement deletes at most (default 100: the writer is held for a
    /// millisecond or two per delete on a large store, so requests waiting behind a purge do
    /// not notice it; 500 raised token p99 from 11 to 42 ms with 10^7 audit events).
    pub purge_batch_size: i64,
    /// Delete statements one purge runs at most, shared fairly between the tables (default
    /// 42: four per table); what is left waits for the next purge (natively one second later).
    pub purge_max_statements: i64,
    /// Milliseconds a replica may serve a client, client policy or resource record from its
    /// cache after reading it (`store::record_cache`); writes made through this replica take
    /// effect at once, other replicas' within this time (0: no cache; default 1000).
    pub record_cache_ms: i64,
    /// Live pending authorization requests one client may hold (0: no cap; default 1000).
    pub max_pending_requests_per_client: u32,
    /// Live pending authorization requests one client address (an IPv6 /64) may hold (0: no
    /// cap; default 200).
    pub max_pending_requests_per_ip: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            audit_retention_days: 90,
            purge_interval_secs: 600,
            purge_batch_size: 100,
            purge_max_statements: 42,
            record_cache_ms: 1000,
            max_pending_requests_per_client: 1000,
            max_pending_requests_per_ip: 200,
        }
    }
}

/// A trusted enterprise IdP (issuer of ID-JAG assertions).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedIdp {
    /// The IdP's issuer identifier (`iss` of its assertions).
    pub issuer: String,
    /// Where its JWKS is (fetched through the SSRF-safe fetcher).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Its JWKS inline, instead of a URI.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
}

/// A trusted workload issuer (workload identity federation).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedWorkloadIssuer {
    /// The issuer identifier (`iss` of its workload JWTs): an https URL or `spiffe://<trust domain>`.
    pub issuer: String,
    /// Where its JWKS is (else OpenID Connect discovery from the issuer).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Its JWKS inline, instead of a URI.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// The `aud` values accepted from it (default: the token endpoint URL).
    #[serde(default)]
    pub audiences: Vec<String>,
}

/// A workload rule: workloads of `issuer` whose `sub` matches `subject` (`*` for any run
/// of characters) get tokens for `resource` as `client_id`, with at most `scopes`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedWorkloadRule {
    /// The workload issuer.
    pub issuer: String,
    /// The subject pattern.
    pub subject: String,
    /// The resource URI.
    pub resource: String,
    /// The client the tokens are issued to.
    pub client_id: String,
    /// The largest scope set granted.
    pub scopes: Vec<String>,
}

/// A JWT bearer policy: which client may get tokens for which resource and scopes on the
/// strength of an IdP's assertion.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedIdpPolicy {
    /// The IdP issuer.
    pub issuer: String,
    /// The client.
    pub client_id: String,
    /// The resource.
    pub resource: String,
    /// The largest scope set granted.
    pub scopes: Vec<String>,
    /// Conditions on its scopes: groups, authentication age, `acr` ([`crate::idp_policy`]).
    #[serde(default)]
    pub rules: Vec<crate::idp_policy::Rule>,
}

/// A user declared in configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    /// Login name.
    pub username: String,
    /// Plain password (hashed with argon2id on start).
    pub password: Secret,
}

/// A resource (MCP server) declared in configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedResource {
    /// The resource URI (RFC 8707), e.g. `https://mcp.example.com/mcp`.
    pub uri: String,
    /// Its scope catalog.
    pub scopes: Vec<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Confidential clients allowed to introspect tokens issued for this resource.
    #[serde(default)]
    pub introspection_clients: Vec<String>,
    /// Clients allowed to exchange (RFC 8693) another client's token, or a token for another
    /// resource, into a token for this one. Empty: only a token's own client, keeping its
    /// audience.
    #[serde(default)]
    pub exchange_clients: Vec<String>,
}

/// A static client declared in configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedClient {
    /// The client id.
    pub client_id: String,
    /// The client secret (confidential clients); stored hashed.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Display name.
    #[serde(default)]
    pub client_name: Option<String>,
    /// Registered redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Grant types (default `authorization_code`, plus `refresh_token`).
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Scope ceiling (space separated); empty means any scope of the resource.
    #[serde(default)]
    pub scope: Option<String>,
    /// `none`, `client_secret_basic`, `client_secret_post` or `private_key_jwt` (default by
    /// secret presence).
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    /// Public keys for `private_key_jwt` (a JWK Set), instead of `jwks_uri`.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// Where the public keys for `private_key_jwt` are published (https).
    #[serde(default)]
    pub jwks_uri: Option<String>,
}

/// The accepted values of `jwt_clock_skew_seconds` (J5: a bounded skew).
pub const JWT_CLOCK_SKEW_RANGE: std::ops::RangeInclusive<i64> = 0..=300;

/// A refused configuration, naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error in '{setting}': {message}")]
pub struct ConfigError {
    /// The setting at fault.
    pub setting: String,
    /// What is wrong.
    pub message: String,
}

fn cfg_err(setting: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.into(),
        message: message.into(),
    }
}

/// Refuses a `value` outside `range`, naming the setting: "must be between A and B", then the
/// `unit` (" seconds", " KiB", or "" for a count).
fn check_range<T>(
    setting: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if range.contains(&value) {
        return Ok(());
    }
    let (low, high) = range.into_inner();
    Err(cfg_err(
        setting,
        format!("must be between {low} and {high}{unit}"),
    ))
}

impl Config {
    /// The issuer parsed, without a trailing slash.
    pub fn issuer_url(&self) -> Result<url::Url, ConfigError> {
        url::Url::parse(&self.issuer).map_err(|e| cfg_err("issuer", e.to_string()))
    }

    /// The issuer string exactly as published (no trailing slash).
    pub fn issuer(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    /// The master secret's bytes, or a fixed development key when none is configured (which
    /// `validate` allows only on a loopback issuer). Every key derived from the master key
    /// (key encryption, DPoP nonces, the seed marker) starts here.
    pub fn master_key_bytes(&self) -> &[u8] {
        self.master_key
            .as_ref()
            .map_or(DEVELOPMENT_MASTER_KEY, |k| k.expose().as_bytes())
    }

    /// The master key ring: [`Self::master_key_bytes`] seals, `previous_master_keys` open.
    pub fn master_key_ring(&self) -> crate::crypto::master::MasterKeyRing {
        crate::crypto::master::MasterKeyRing::new(
            self.master_key_bytes(),
            self.previous_master_keys
                .iter()
                .map(|k| k.expose().as_bytes()),
        )
    }

    /// Whether the issuer's host is loopback.
    pub fn issuer_is_loopback(&self) -> bool {
        self.issuer_url()
            .map(|u| crate::redirect::is_loopback_host(&u))
            .unwrap_or(false)
    }

    /// Refuses unsafe or malformed combinations, naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.issuer_url()?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(cfg_err("issuer", "must not have a query or fragment"));
        }
        let loopback = self.issuer_is_loopback();
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(cfg_err(
                "issuer",
                "plain http is only allowed for a loopback issuer (127.0.0.1, [::1], localhost)",
            )),
            _ => return Err(cfg_err("issuer", "must be an https URL")),
        }
        if !loopback {
            if self.admin_api_key.is_none() {
                return Err(cfg_err(
                    "admin_api_key",
                    "a public issuer needs an admin API key (PORTCULLIS_ADMIN_API_KEY)",
                ));
            }
            if self.master_key.is_none() {
                return Err(cfg_err(
                    "master_key",
                    "a public issuer needs a master key to encrypt signing keys (PORTCULLIS_MASTER_KEY)",
                ));
            }
        }
        if let Some(k) = &self.admin_api_key {
            if k.expose().len() < 16 {
                return Err(cfg_err("admin_api_key", "must be at least 16 characters"));
            }
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|k| k.expose().len() < 16)
        {
            return Err(cfg_err("metrics_token", "must be at least 16 characters"));
        }
        if self
            .previous_master_keys
            .iter()
            .any(|k| k.expose().len() < 16)
        {
            return Err(cfg_err(
                "previous_master_keys",
                "every key must be at least 16 characters",
            ));
        }
        if let Some(k) = &self.master_key {
            if k.expose().len() < 16 {
                return Err(cfg_err("master_key", "must be at least 16 characters"));
            }
        }
        self.kms.validate()?;
        check_range("code_ttl", self.code_ttl, 1..=600, " seconds")?;
        for (name, v) in [
            ("access_token_ttl", self.access_token_ttl),
            ("client_credentials_ttl", self.client_credentials_ttl),
            ("refresh_token_ttl", self.refresh_token_ttl),
            ("session_ttl", self.session_ttl),
        ] {
            if v <= 0 {
                return Err(cfg_err(name, "must be positive"));
            }
        }
        for (name, v) in [
            ("dpop.proof_max_age_secs", self.dpop.proof_max_age_secs),
            ("dpop.nonce_lifetime_secs", self.dpop.nonce_lifetime_secs),
        ] {
            if v <= 0 {
                return Err(cfg_err(name, "must be positive"));
            }
        }
        for (name, v) in [
            (
                "machine_clients.rate_limit_per_minute",
                self.machine_clients.rate_limit_per_minute,
            ),
            (
                "machine_clients.daily_token_quota",
                self.machine_clients.daily_token_quota,
            ),
        ] {
            if v < 0 {
                return Err(cfg_err(name, "must be 0 (no limit) or positive"));
            }
        }
        if self.storage.audit_retention_days < 0 {
            return Err(cfg_err(
                "storage.audit_retention_days",
                "must be 0 (keep forever) or a number of days",
            ));
        }
        for (name, v, max) in [
            (
                "storage.purge_interval_secs",
                self.storage.purge_interval_secs,
                7 * 24 * 3600,
            ),
            (
                "storage.purge_batch_size",
                self.storage.purge_batch_size,
                10_000,
            ),
            (
                "storage.purge_max_statements",
                self.storage.purge_max_statements,
                1_000,
            ),
        ] {
            check_range(name, v, 1..=max, "")?;
        }
        check_range(
            "login.password_memory_kib",
            self.login.password_memory_kib,
            PASSWORD_MEMORY_KIB_RANGE,
            " KiB",
        )?;
        check_range(
            "login.password_iterations",
            self.login.password_iterations,
            PASSWORD_ITERATIONS_RANGE,
            "",
        )?;
        if !(0..=60_000).contains(&self.storage.record_cache_ms) {
            return Err(cfg_err(
                "storage.record_cache_ms",
                "must be between 0 (no cache) and 60000 milliseconds",
            ));
        }
        check_range(
            "jwt_clock_skew_seconds",
            self.jwt_clock_skew_seconds,
            JWT_CLOCK_SKEW_RANGE,
            " seconds",
        )?;
        if self.cimd.allow_loopback && !loopback {
            return Err(cfg_err(
                "cimd.allow_loopback",
                "only allowed when the issuer itself is loopback",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_issuer_off_loopback_is_refused() {
        let cfg = Config {
            issuer: "http://auth.example.com".into(),
            ..Config::default()
        };
        assert_eq!(cfg.validate().unwrap_err().setting, "issuer");
    }

    #[test]
    fn public_issuer_needs_admin_and_master_keys() {
        let mut cfg = Config {
            issuer: "https://auth.example.com".into(),
            ..Config::default()
        };
        assert_eq!(cfg.validate().unwrap_err().setting, "admin_api_key");
        cfg.admin_api_key = Some(Secret::new("0123456789abcdef0123"));
        assert_eq!(cfg.validate().unwrap_err().setting, "master_key");
        cfg.master_key = Some(Secret::new("0123456789abcdef0123"));
        cfg.validate().unwrap();
    }

    #[test]
    fn jwt_clock_skew_is_bounded() {
        for ok in [0, 60, 300] {
            let cfg = Config {
                jwt_clock_skew_seconds: ok,
                ..Config::default()
            };
            cfg.validate().unwrap();
        }
        for bad in [-1, 301, i64::MAX] {
            let cfg = Config {
                jwt_clock_skew_seconds: bad,
                ..Config::default()
            };
            let err = cfg.validate().unwrap_err();
            assert_eq!(err.setting, "jwt_clock_skew_seconds");
            assert!(err.to_string().contains("between 0 and 300"), "{err}");
        }
    }

    #[test]
    fn password_cost_is_bounded_to_what_argon2_accepts() {
        let with = |m: u32, t: u32| {
            let mut cfg = Config::default();
            cfg.login.password_memory_kib = m;
            cfg.login.password_iterations = t;
            cfg
        };
        for (m, t) in [(8, 1), (19_456, 2), (65_536, 10)] {
            let cfg = with(m, t);
            cfg.validate().unwrap();
            assert!(cfg.login.password_cost().is_valid());
        }
        for (m, t, setting) in [
            (7, 2, "login.password_memory_kib"),
            (65_537, 2, "login.password_memory_kib"),
            (19_456, 0, "login.password_iterations"),
            (19_456, 11, "login.password_iterations"),
        ] {
            assert_eq!(with(m, t).validate().unwrap_err().setting, setting);
        }
        assert_eq!(
            Config::default().login.password_cost(),
            crate::crypto::password::PasswordCost::default()
        );
    }

    #[test]
    fn loopback_default_is_valid() {
        Config::default().validate().unwrap();
    }
}
