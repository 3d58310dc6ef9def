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
#[path = "seed_tests.rs"]
mod tests;
