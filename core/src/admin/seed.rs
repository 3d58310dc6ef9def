//! Declarative seeds (in the style of Dex's static clients and passwords): the users,
//! resources (RFC 8707) and static clients (RFC 7591 §2 metadata) declared in configuration
//! are created or updated on every start. Every seed is validated before anything is
//! written, by the same rules as the admin API, and a bad one refuses to start with a message
//! naming it. Applying the same seeds twice changes nothing: users keep their hash while the
//! configured password still verifies (so a changed seed password takes effect), resources
//! and clients are upserted (their creation time is kept).
//!
//! Hosts that start the server for every request (Spin makes an instance per request) would
//! pay for that on every request, argon2 verifications of seeded users included; so a marker
//! in the cache (an HMAC of the seeds under a key derived from the master key) records that
//! exactly these seeds were applied, and a start that finds it skips them for
//! [`SEED_MARKER_TTL`]. Seeds changed in configuration are applied at once (another marker);
//! seeded records changed through the admin API are put back within that time.

use crate::clients::ClientMetadata;
use crate::config::{SeedClient, SeedResource, SeedUser};
use crate::context::Context;
use crate::error::Error;
use crate::error::StartError;
use crate::store::repo::clients::{self as client_repo, ClientRow};
use crate::store::repo::resources::{self as resource_repo, ResourceRow};
use crate::store::repo::users as user_repo;
use crate::store::StoreError;

use super::{clients, resources, users};

/// Shortest seeded client secret: it is stored as a fast SHA-256 hash, so it must carry
/// enough entropy on its own.
const MIN_SECRET_LEN: usize = 16;

/// How long a start skips seeds that an earlier start applied unchanged, seconds.
pub const SEED_MARKER_TTL: i64 = 300;

/// The cache key recording that exactly the configured seeds were applied; `None` when
/// there are no seeds.
fn marker(server: &Context) -> Option<String> {
    use hkdf::hmac::{Hmac, Mac};
    let cfg = server.config();
    if cfg.users.is_empty()
        && cfg.resources.is_empty()
        && cfg.clients.is_empty()
        && cfg.idps.is_empty()
        && cfg.idp_policies.is_empty()
        && cfg.workload_issuers.is_empty()
        && cfg.workload_rules.is_empty()
        && cfg.client_policies.is_empty()
        && cfg.providers.is_empty()
        && cfg.connectors.is_empty()
    {
        return None;
    }
    let seeds = serde_json::to_vec(&(
        &cfg.users,
        &cfg.resources,
        &cfg.clients,
        &cfg.idps,
        &cfg.idp_policies,
        &cfg.client_policies,
        &cfg.providers,
        // Providers' client secrets are write-only (not serialized above); a changed secret
        // must still re-apply the seeds.
        cfg.providers
            .iter()
            .map(|p| p.client_secret.as_ref().map(|s| s.expose().to_owned()))
            .collect::<Vec<_>>(),
        &cfg.connectors,
        cfg.connectors
            .iter()
            .map(|c| c.client_secret.as_ref().map(|s| s.expose().to_owned()))
            .collect::<Vec<_>>(),
        (&cfg.workload_issuers, &cfg.workload_rules),
    ))
    .ok()?;
    let key = crate::crypto::kek::derive_key(cfg.master_key_bytes(), "seed-marker");
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).ok()?;
    mac.update(&seeds);
    Some(format!(
        "seeds-applied:{}",
        crate::crypto::b64(mac.finalize().into_bytes())
    ))
}

/// Applies the configured seeds.
pub async fn apply(server: &Context) -> Result<(), StartError> {
    let marker = marker(server);
    let now = server.now();
    if let Some(key) = &marker {
        if let Ok(Some(_)) = server.env().kv.get(key, now).await {
            return Ok(());
        }
    }
    apply_all(server).await?;
    if let Some(key) = marker {
        // A cache failure only means the next start applies the seeds again.
        let _ = server
            .env()
            .kv
            .put(&key, b"1".to_vec(), now + SEED_MARKER_TTL)
            .await;
    }
    Ok(())
}

async fn apply_all(server: &Context) -> Result<(), StartError> {
    let cfg = server.config();
    unique(
        "users",
        "username",
        cfg.users.iter().map(|u| u.username.as_str()),
    )?;
    unique(
        "resources",
        "uri",
        cfg.resources.iter().map(|r| r.uri.as_str()),
    )?;
    unique(
        "clients",
        "client_id",
        cfg.clients.iter().map(|c| c.client_id.as_str()),
    )?;

    // Validate everything first, so a bad seed leaves storage untouched.
    for u in &cfg.users {
        check_user(u)?;
    }
    let resource_rows = cfg
        .resources
        .iter()
        .map(|r| prepare_resource(server, r))
        .collect::<Result<Vec<_>, _>>()?;
    let client_rows = cfg
        .clients
        .iter()
        .map(|c| prepare_client(server, c))
        .collect::<Result<Vec<_>, _>>()?;
    let idp_seeds = super::idps::prepare_seeds(server)?;
    let workload_seeds = super::workloads::prepare_seeds(server)?;
    unique(
        "client_policies",
        "client_id",
        cfg.client_policies.iter().map(|p| p.client_id.as_str()),
    )?;
    let policies = cfg
        .client_policies
        .iter()
        .map(|p| prepare_policy(server, p))
        .collect::<Result<Vec<_>, _>>()?;
    unique(
        "providers",
        "name",
        cfg.providers.iter().map(|p| p.name.as_str()),
    )?;
    let loopback = crate::remote::allow_loopback(cfg);
    for p in &cfg.providers {
        crate::vault::provider::validate(p, loopback).map_err(|e| init("provider", &p.name, e))?;
    }
    unique(
        "connectors",
        "id",
        cfg.connectors.iter().map(|c| c.id.as_str()),
    )?;
    for c in &cfg.connectors {
        crate::federation::connector::validate(c, loopback)
            .map_err(|e| init("connector", &c.id, e))?;
    }

    for u in &cfg.users {
        seed_user(server, u).await?;
    }
    let db = server.env().sql.as_ref();
    for r in &resource_rows {
        // A concurrent start may insert between our update and insert: retry once.
        if let Err(StoreError::Conflict(_)) = resource_repo::upsert(db, r).await {
            resource_repo::upsert(db, r).await?;
        }
    }
    for c in &client_rows {
        if let Err(StoreError::Conflict(_)) = client_repo::upsert(db, c).await {
            client_repo::upsert(db, c).await?;
        }
    }
    super::idps::write_seeds(server, &idp_seeds).await?;
    super::workloads::write_seeds(server, &workload_seeds).await?;
    for p in &policies {
        crate::store::repo::client_policies::put(db, p).await?;
    }
    for p in &cfg.providers {
        crate::vault::providers::declare(server, p, "seed")
            .await
            .map_err(|e| init("provider", &p.name, e))?;
    }
    for c in &cfg.connectors {
        crate::federation::connectors::declare(server, c, "seed")
            .await
            .map_err(|e| init("connector", &c.id, e))?;
    }
    Ok(())
}

/// A seeded client policy, checked like the admin API's.
fn prepare_policy(
    server: &Context,
    p: &crate::config::SeedClientPolicy,
) -> Result<crate::store::repo::client_policies::ClientPolicy, StartError> {
    super::client_policy::validate(&super::client_policy::PolicyBody {
        client_credentials: p.client_credentials,
        rate_limit_per_minute: p.rate_limit_per_minute,
        daily_token_quota: p.daily_token_quota,
    })
    .map_err(init_err("client_policy", &p.client_id))?;
    if p.client_id.is_empty() || p.client_id.len() > 2048 {
        return Err(init(
            "client_policy",
            &p.client_id,
            "client_id must be 1 to 2048 bytes",
        ));
    }
    Ok(crate::store::repo::client_policies::ClientPolicy {
        client_id: p.client_id.clone(),
        client_credentials: p.client_credentials,
        rate_limit_per_minute: p.rate_limit_per_minute,
        daily_token_quota: p.daily_token_quota,
        suspended_at: None,
        updated_at: server.now(),
    })
}

fn init(kind: &str, name: &str, message: impl std::fmt::Display) -> StartError {
    StartError::Init(format!("seed {kind} '{name}': {message}"))
}

fn init_err<'a>(kind: &'static str, name: &'a str) -> impl Fn(Error) -> StartError + 'a {
    move |e: Error| init(kind, name, e.description)
}

fn unique<'a>(
    list: &str,
    key: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), StartError> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(StartError::Init(format!(
                "seed {list}: {key} '{n}' is declared more than once"
            )));
        }
    }
    Ok(())
}

fn check_user(u: &SeedUser) -> Result<(), StartError> {
    let err = init_err("user", &u.username);
    users::validate_username(&u.username).map_err(&err)?;
    users::validate_password(u.password.expose()).map_err(&err)
}

/// Creates the user if missing; re-hashes only when the configured password no longer
/// verifies against the stored hash.
async fn seed_user(server: &Context, u: &SeedUser) -> Result<(), StartError> {
    let db = server.env().sql.as_ref();
    let password = u.password.expose();
    let hash = || async {
        users::hash_password(server, password)
            .await
            .map_err(init_err("user", &u.username))
    };
    // Two rounds: a concurrent start may create the user between our read and insert.
    for _ in 0..2 {
        match user_repo::by_username(db, &u.username).await? {
            Some(existing) => {
                let crypto = &server.env().crypto;
                if !crypto
                    .password_verify(password, &existing.password_hash)
                    .await
                {
                    user_repo::set_password(db, &u.username, &hash().await?).await?;
                    record(
                        server,
                        "admin.user.password_changed",
                        &existing.id,
                        &u.username,
                    )
                    .await;
                }
                return Ok(());
            }
            None => match users::insert(server, &u.username, hash().await?).await {
                Ok(row) => {
                    record(server, "admin.user.created", &row.id, &u.username).await;
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            },
        }
    }
    Err(init(
        "user",
        &u.username,
        "could not be created (conflicting concurrent writes)",
    ))
}

async fn record(server: &Context, action: &str, id: &str, username: &str) {
    crate::audit::record(
        server.env(),
        crate::audit::Event {
            action,
            success: true,
            subject: Some(id),
            detail: Some(serde_json::json!({ "username": username, "source": "seed" })),
            ..Default::default()
        },
    )
    .await;
}

fn prepare_resource(server: &Context, r: &SeedResource) -> Result<ResourceRow, StartError> {
    resources::prepare(
        server,
        &r.uri,
        &r.scopes,
        r.name.as_deref(),
        &r.introspection_clients,
        &r.exchange_clients,
    )
    .map_err(init_err("resource", &r.uri))
}

/// The application type implied by redirect URIs when none is given, as for dynamic
/// registration: `native` when any uses a private-use scheme (RFC 8252 §7.1), else `web`.
pub(crate) fn implied_application_type(redirect_uris: &[String]) -> &'static str {
    let private_use = redirect_uris
        .iter()
        .any(|u| url::Url::parse(u).is_ok_and(|u| !matches!(u.scheme(), "http" | "https")));
    if private_use {
        "native"
    } else {
        "web"
    }
}

fn prepare_client(server: &Context, c: &SeedClient) -> Result<ClientRow, StartError> {
    let err = init_err("client", &c.client_id);
    clients::validate_client_id(&c.client_id).map_err(&err)?;
    let method = c.token_endpoint_auth_method.clone().unwrap_or_else(|| {
        if c.client_secret.is_some() {
            "client_secret_basic".into()
        } else if c.jwks.is_some() || c.jwks_uri.is_some() {
            "private_key_jwt".into()
        } else {
            "none".into()
        }
    });
    let grant_types = if c.grant_types.is_empty() {
        vec!["authorization_code".into(), "refresh_token".into()]
    } else {
        c.grant_types.clone()
    };
    let mut metadata = ClientMetadata {
        redirect_uris: c.redirect_uris.clone(),
        grant_types,
        token_endpoint_auth_method: method,
        client_name: c.client_name.clone(),
        scope: c.scope.clone(),
        application_type: implied_application_type(&c.redirect_uris).into(),
        jwks: c.jwks.clone(),
        jwks_uri: c.jwks_uri.clone(),
        ..ClientMetadata::default()
    };
    crate::registration::validate_metadata(&mut metadata).map_err(&err)?;
    let method = metadata.token_endpoint_auth_method.as_str();
    let secret_hash = match (&c.client_secret, clients::uses_secret(method)) {
        (Some(s), true) if s.expose().chars().count() < MIN_SECRET_LEN => {
            return Err(init(
                "client",
                &c.client_id,
                format!("client_secret must be at least {MIN_SECRET_LEN} characters"),
            ))
        }
        (Some(s), true) => Some(crate::crypto::token_hash(s.expose())),
        (None, true) => {
            return Err(init(
                "client",
                &c.client_id,
                format!("token_endpoint_auth_method '{method}' needs a client_secret"),
            ))
        }
        (Some(_), false) => {
            return Err(init(
                "client",
                &c.client_id,
                format!("a client_secret is set but token_endpoint_auth_method is '{method}'"),
            ))
        }
        (None, false) => None,
    };
    Ok(ClientRow {
        client_id: c.client_id.clone(),
        secret_hash,
        metadata,
        source: "seed".into(),
        created_at: server.now(),
        last_used_at: None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::secret::Secret;
    use crate::server::Portcullis;
    use crate::store::repo;
    use crate::store::test_store::{test_env_on, TestSql};

    fn seeded(password: &str) -> Config {
        Config {
            users: vec![SeedUser {
                username: "alice".into(),
                password: Secret::new(password),
            }],
            resources: vec![SeedResource {
                uri: "https://mcp.example.com/mcp".into(),
                scopes: vec!["tools:read".into(), "tools:call".into()],
                name: Some("Example MCP".into()),
                introspection_clients: vec![],
                exchange_clients: vec![],
            }],
            clients: vec![
                SeedClient {
                    client_id: "backend".into(),
                    client_secret: Some(Secret::new("backend-secret-0123456789")),
                    client_name: Some("Backend".into()),
                    redirect_uris: vec!["https://app.example.com/cb".into()],
                    grant_types: vec![],
                    scope: None,
                    token_endpoint_auth_method: None,
                    jwks: None,
                    jwks_uri: None,
                },
                SeedClient {
                    client_id: "desktop".into(),
                    client_secret: None,
                    client_name: None,
                    redirect_uris: vec!["http://127.0.0.1/callback".into()],
                    grant_types: vec![],
                    scope: Some("tools:read".into()),
                    token_endpoint_auth_method: None,
                    jwks: None,
                    jwks_uri: None,
                },
            ],
            ..Config::default()
        }
    }

    async fn start(db: &Arc<TestSql>, cfg: Config, advance: i64) -> Result<Portcullis, StartError> {
        let (env, clock) = test_env_on(db.clone());
        clock.advance(advance);
        Portcullis::start(env, cfg).await
    }

    type Edit = Box<dyn Fn(&mut Config)>;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn seeds_are_idempotent_across_restarts() {
        run(async {
            let db = Arc::new(TestSql::memory());
            let s1 = start(&db, seeded("correct horse"), 0).await.unwrap();
            let sql = s1.env().sql.as_ref();
            let user1 = repo::users::by_username(sql, "alice")
                .await
                .unwrap()
                .unwrap();
            let res1 = repo::resources::get(sql, "https://mcp.example.com/mcp")
                .await
                .unwrap()
                .unwrap();
            let backend1 = repo::clients::get(sql, "backend").await.unwrap().unwrap();
            assert_eq!(backend1.source, "seed");
            assert_eq!(
                backend1.metadata.token_endpoint_auth_method,
                "client_secret_basic"
            );
            assert_eq!(
                backend1.secret_hash.as_deref(),
                Some(crate::crypto::token_hash("backend-secret-0123456789").as_str())
            );
            assert_eq!(
                backend1.metadata.grant_types,
                ["authorization_code", "refresh_token"]
            );
            let desktop = repo::clients::get(sql, "desktop").await.unwrap().unwrap();
            assert_eq!(desktop.metadata.token_endpoint_auth_method, "none");
            assert_eq!(desktop.secret_hash, None);

            // A second start on the same database, later, with the same seeds.
            let s2 = start(&db, seeded("correct horse"), 3600).await.unwrap();
            let sql = s2.env().sql.as_ref();
            let user2 = repo::users::by_username(sql, "alice")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(user2, user1, "same id, same hash: nothing re-hashed");
            assert_eq!(repo::users::list(sql, 100, 0).await.unwrap().len(), 1);
            let res2 = repo::resources::get(sql, "https://mcp.example.com/mcp")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(res2, res1, "creation time kept");
            assert_eq!(repo::resources::list(sql).await.unwrap().len(), 1);
            let backend2 = repo::clients::get(sql, "backend").await.unwrap().unwrap();
            assert_eq!(backend2, backend1);
            assert_eq!(repo::clients::list(sql, 100, 0).await.unwrap().len(), 2);
            let created = repo::audit::list(
                sql,
                &repo::audit::AuditFilter {
                    action: Some("admin.user.created".into()),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(created.len(), 1);
        });
    }

    #[test]
    fn a_start_skips_seeds_applied_unchanged_within_the_marker_ttl() {
        run(async {
            let db = Arc::new(TestSql::memory());
            let kv: Arc<dyn crate::store::KvStore> = Arc::new(crate::store::MemoryKv::default());
            let start_with = |cfg: Config, advance: i64| {
                let (mut env, clock) = test_env_on(db.clone());
                env.kv = kv.clone();
                clock.advance(advance);
                Portcullis::start(env, cfg)
            };
            let s1 = start_with(seeded("correct horse"), 0).await.unwrap();
            let sql = s1.env().sql.as_ref();
            assert!(repo::clients::delete(sql, "desktop").await.unwrap());
            // Same seeds, within the TTL: skipped, the deleted client stays deleted.
            start_with(seeded("correct horse"), 10).await.unwrap();
            assert!(repo::clients::get(sql, "desktop").await.unwrap().is_none());
            // Changed seeds: applied at once.
            start_with(seeded("another password"), 20).await.unwrap();
            assert!(repo::clients::get(sql, "desktop").await.unwrap().is_some());
            assert!(repo::clients::delete(sql, "desktop").await.unwrap());
            // After the TTL, the same seeds are applied again.
            start_with(seeded("another password"), 20 + SEED_MARKER_TTL + 1)
                .await
                .unwrap();
            assert!(repo::clients::get(sql, "desktop").await.unwrap().is_some());
        });
    }

    #[test]
    fn changed_seed_password_takes_effect_on_restart() {
        run(async {
            let db = Arc::new(TestSql::memory());
            start(&db, seeded("correct horse"), 0).await.unwrap();
            let s = start(&db, seeded("battery staple"), 60).await.unwrap();
            let u = repo::users::by_username(s.env().sql.as_ref(), "alice")
                .await
                .unwrap()
                .unwrap();
            assert!(crate::crypto::password::verify(
                "battery staple",
                &u.password_hash
            ));
            assert!(!crate::crypto::password::verify(
                "correct horse",
                &u.password_hash
            ));
        });
    }

    /// [`seeded`] with a trusted IdP (inline keys) and a policy for the backend client.
    fn with_idp() -> Config {
        let scalar =
            crate::crypto::rustcrypto::generate_scalar(&crate::runtime::SeededRng::new(101));
        let public = crate::crypto::rustcrypto::public_key_sec1(&scalar).unwrap();
        let mut key = crate::keys::public_jwk(&public);
        key["kid"] = "idp-key-1".into();
        let mut cfg = seeded("correct horse");
        cfg.idps.push(crate::config::SeedIdp {
            issuer: "https://idp.example.com".into(),
            jwks_uri: None,
            jwks: Some(serde_json::json!({ "keys": [key] })),
        });
        cfg.idp_policies.push(crate::config::SeedIdpPolicy {
            issuer: "https://idp.example.com".into(),
            client_id: "backend".into(),
            resource: "https://mcp.example.com/mcp".into(),
            scopes: vec!["tools:read".into()],
            rules: Vec::new(),
        });
        cfg
    }

    #[test]
    fn idp_seeds_are_idempotent_and_validated() {
        run(async {
            let db = Arc::new(TestSql::memory());
            start(&db, with_idp(), 0).await.unwrap();
            let mut stepped_up = with_idp();
            let rule = crate::idp_policy::Rule {
                groups: vec!["ops".into()],
                max_auth_age: Some(600),
                acr_values: vec!["urn:mfa".into()],
                ..Default::default()
            };
            stepped_up.idp_policies[0].rules = vec![rule.clone()];
            start(&db, stepped_up, 3600).await.unwrap();
            let sql: &dyn crate::store::SqlStore = db.as_ref();
            assert_eq!(repo::idps::list(sql).await.unwrap().len(), 1);
            let policies = repo::idps::list_policies(sql, None).await.unwrap();
            assert_eq!(policies.len(), 1);
            assert_eq!(
                policies[0].rules,
                [rule],
                "seeded rules replace the old ones"
            );

            let cases: Vec<(Edit, &str)> = vec![
                (
                    Box::new(|c| c.idps[0].issuer = "http://idp.example.com".into()),
                    "seed idp 'http://idp.example.com'",
                ),
                (
                    Box::new(|c| c.idps.push(c.idps[0].clone())),
                    "more than once",
                ),
                (Box::new(|c| c.idp_policies[0].scopes.clear()), ""),
                (
                    Box::new(|c| {
                        c.idp_policies[0].rules = vec![crate::idp_policy::Rule {
                            scopes: vec!["tools:write".into()],
                            groups: vec!["ops".into()],
                            ..Default::default()
                        }]
                    }),
                    "rule 0: scope 'tools:write' is not one of the policy's scopes",
                ),
                (
                    Box::new(|c| c.idp_policies[0].rules = vec![Default::default()]),
                    "rule 0: needs at least one condition",
                ),
            ];
            for (edit, want) in cases {
                let mut cfg = with_idp();
                edit(&mut cfg);
                let err = start(&Arc::new(TestSql::memory()), cfg, 0)
                    .await
                    .err()
                    .expect("start refused")
                    .to_string();
                assert!(err.contains(want), "{err:?} should contain {want:?}");
            }
        });
    }

    /// [`seeded`] with a GitHub-Actions-like workload issuer (discovery) and a rule.
    fn with_workloads() -> Config {
        let mut cfg = seeded("correct horse");
        cfg.workload_issuers
            .push(crate::config::SeedWorkloadIssuer {
                issuer: "https://token.actions.githubusercontent.com".into(),
                jwks_uri: None,
                jwks: None,
                audiences: vec!["portcullis".into()],
            });
        cfg.workload_rules.push(crate::config::SeedWorkloadRule {
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "repo:acme/agent:*".into(),
            resource: "https://mcp.example.com/mcp".into(),
            client_id: "backend".into(),
            scopes: vec!["tools:read".into()],
        });
        cfg
    }

    #[test]
    fn workload_seeds_are_idempotent_and_validated() {
        run(async {
            let db = Arc::new(TestSql::memory());
            start(&db, with_workloads(), 0).await.unwrap();
            start(&db, with_workloads(), 3600).await.unwrap();
            let sql: &dyn crate::store::SqlStore = db.as_ref();
            assert_eq!(repo::workloads::list_issuers(sql).await.unwrap().len(), 1);
            assert_eq!(
                repo::workloads::list_rules(sql, None).await.unwrap().len(),
                1
            );
            let cases: Vec<(Edit, &str)> = vec![
                (
                    Box::new(|c| c.workload_rules[0].subject = "*".into()),
                    "seed workload_rule",
                ),
                (
                    Box::new(|c| c.workload_rules[0].client_id = "nobody".into()),
                    "no client 'nobody'",
                ),
                (
                    Box::new(|c| c.workload_rules[0].issuer = "https://other.example.com".into()),
                    "not among workload_issuers",
                ),
                (
                    Box::new(|c| c.workload_issuers[0].issuer = "spiffe://example.org".into()),
                    "give jwks or jwks_uri",
                ),
            ];
            for (edit, want) in cases {
                let mut cfg = with_workloads();
                edit(&mut cfg);
                let err = start(&Arc::new(TestSql::memory()), cfg, 0)
                    .await
                    .err()
                    .expect("start refused")
                    .to_string();
                assert!(err.contains(want), "{err:?} should contain {want:?}");
            }
        });
    }

    #[test]
    fn invalid_seeds_refuse_to_start_naming_the_seed() {
        run(async {
            let cases: Vec<(Edit, &str)> = vec![
                (
                    Box::new(|c| c.resources[0].uri = "http://mcp.example.com/mcp".into()),
                    "seed resource 'http://mcp.example.com/mcp'",
                ),
                (Box::new(|c| c.resources[0].scopes.clear()), "seed resource"),
                (
                    Box::new(|c| c.clients[0].redirect_uris = vec!["javascript:alert(1)".into()]),
                    "seed client 'backend'",
                ),
                (
                    Box::new(|c| c.clients[0].client_secret = Some(Secret::new("short"))),
                    "at least 16",
                ),
                (
                    Box::new(|c| {
                        c.clients[0].client_secret = None;
                        c.clients[0].token_endpoint_auth_method = Some("client_secret_post".into());
                    }),
                    "needs a client_secret",
                ),
                (
                    Box::new(|c| c.clients[1].token_endpoint_auth_method = Some("none".into())),
                    "",
                ),
                (
                    Box::new(|c| {
                        c.clients[0].token_endpoint_auth_method = Some("client_secret_post".into())
                    }),
                    "",
                ),
                (
                    Box::new(|c| c.clients[1].redirect_uris = vec!["com.example.app:/cb".into()]),
                    "",
                ),
                (
                    Box::new(|c| {
                        c.clients[1].client_secret = Some(Secret::new("desktop-secret-0123456789"));
                        c.clients[1].token_endpoint_auth_method = Some("none".into());
                    }),
                    "token_endpoint_auth_method is 'none'",
                ),
                (
                    Box::new(|c| c.clients[1].client_id = "https://x.example/c".into()),
                    "seed client",
                ),
                (
                    Box::new(|c| c.users[0].password = Secret::new("short")),
                    "seed user 'alice'",
                ),
                (
                    Box::new(|c| c.users[0].username = "has space".into()),
                    "seed user",
                ),
                (
                    Box::new(|c| c.users.push(c.users[0].clone())),
                    "username 'alice' is declared more than once",
                ),
                (
                    Box::new(|c| c.clients.push(c.clients[0].clone())),
                    "client_id 'backend' is declared more than once",
                ),
            ];
            for (edit, want) in cases {
                let mut cfg = seeded("correct horse");
                edit(&mut cfg);
                let db = Arc::new(TestSql::memory());
                let result = start(&db, cfg, 0).await;
                if want.is_empty() {
                    // Controls: valid variations start fine.
                    result.unwrap();
                    continue;
                }
                let err = result.err().expect("start refused").to_string();
                assert!(err.contains(want), "{err:?} should contain {want:?}");
                // Nothing was written before the refusal.
                let sql: &dyn crate::store::SqlStore = db.as_ref();
                assert!(
                    repo::users::list(sql, 10, 0).await.unwrap().is_empty(),
                    "{err}"
                );
            }
        });
    }
}
