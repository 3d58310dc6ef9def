//! Admin API: trusted enterprise IdPs for the JWT bearer grant (RFC 7523 §2.1 with ID-JAG,
//! draft-ietf-oauth-identity-assertion-authz-grant): the registry (`/admin/idps`), the
//! policies deciding which IdP / client / resource combinations get tokens and with which
//! scopes at most, under which conditions (`/admin/idp-policies`, [`crate::idp_policy`]), and explicit subject mappings
//! (`/admin/idp-subjects`). Also applies the `idps` and `idp_policies` configuration seeds.

use bytes::Bytes;
use http::Request;
use serde::Deserialize;
use serde_json::{json, Value};

use super::trusted_issuers::{
    bad, check_id, check_resource_scopes, jwks_view, key_material, MAX_ID_LEN,
};
use super::{deleted, ok, page, query, record, resources, upserted};
use crate::context::Context;
use crate::error::Result;
use crate::error::StartError;
use crate::idp;
use crate::idp_policy::{self, Rule};
use crate::request::json_body;
use crate::store::repo::idps::{self as repo, IdpRow, PolicyRow, SubjectRow};
use crate::store::StoreError;
use crate::text::truncate;

/// Most entries in `allowed_audiences`.
const MAX_AUDIENCES: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewIdp {
    issuer: String,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    jwks: Option<Value>,
    #[serde(default)]
    allowed_audiences: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPolicy {
    issuer: String,
    client_id: String,
    resource: String,
    scopes: Vec<String>,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSubject {
    issuer: String,
    external_subject: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

/// A validated IdP row: a well-formed issuer, and keys from exactly one of inline `jwks`
/// (public keys, at least one P-256), a `jwks_uri` allowed by the fetch policy (S1), or
/// neither (OpenID Connect discovery from the issuer).
pub(crate) fn prepare_idp(
    server: &Context,
    issuer: &str,
    jwks_uri: Option<&str>,
    jwks: Option<&Value>,
    allowed_audiences: &[String],
) -> Result<IdpRow> {
    idp::validate_issuer(issuer).map_err(bad)?;
    let jwks = key_material(server, jwks_uri, jwks)?;
    if allowed_audiences.len() > MAX_AUDIENCES {
        return Err(bad(format!(
            "allowed_audiences may hold at most {MAX_AUDIENCES} resources"
        )));
    }
    let mut audiences: Vec<String> = Vec::with_capacity(allowed_audiences.len());
    for a in allowed_audiences {
        resources::validate_uri(a)?;
        if !audiences.contains(a) {
            audiences.push(a.clone());
        }
    }
    Ok(IdpRow {
        issuer: issuer.to_owned(),
        jwks_uri: jwks_uri.map(str::to_owned),
        jwks,
        allowed_audiences: audiences,
        created_at: server.now(),
    })
}

/// A validated policy row (a new id; an existing policy for the same issuer, client and
/// resource keeps its own when stored); its rules are checked by [`idp_policy::validate`].
pub(crate) fn prepare_policy(
    server: &Context,
    issuer: &str,
    client_id: &str,
    resource: &str,
    scopes: &[String],
    rules: &[Rule],
) -> Result<PolicyRow> {
    idp::validate_issuer(issuer).map_err(bad)?;
    check_id("client_id", client_id)?;
    resources::validate_uri(resource)?;
    let scopes = resources::validate_scopes(scopes)?;
    idp_policy::validate(rules, &scopes).map_err(bad)?;
    Ok(PolicyRow {
        id: crate::runtime::random_token(server.env().rng.as_ref(), 12),
        issuer: issuer.to_owned(),
        client_id: client_id.to_owned(),
        resource: resource.to_owned(),
        scopes,
        rules: rules.to_vec(),
        created_at: server.now(),
    })
}

fn key_source(r: &IdpRow) -> &'static str {
    super::trusted_issuers::key_source(r.jwks.as_deref(), r.jwks_uri.as_deref())
}

fn idp_view(r: &IdpRow) -> Value {
    json!({
        "issuer": r.issuer,
        "jwks_uri": r.jwks_uri,
        "jwks": jwks_view(r.jwks.as_deref()),
        "key_source": key_source(r),
        "allowed_audiences": r.allowed_audiences,
        "created_at": r.created_at,
    })
}

fn same_settings(a: &IdpRow, b: &IdpRow) -> bool {
    a.jwks_uri == b.jwks_uri && a.jwks == b.jwks && a.allowed_audiences == b.allowed_audiences
}

/// `POST /admin/idps`: registers a trusted IdP (201) or replaces the keys and audiences of
/// a registered one (200). Its cached keys are forgotten.
pub(super) async fn create(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let body: NewIdp = json_body(req.headers(), req.body())?;
    let row = prepare_idp(
        server,
        &body.issuer,
        body.jwks_uri.as_deref(),
        body.jwks.as_ref(),
        &body.allowed_audiences,
    )?;
    let db = server.env().sql.as_ref();
    let existed = repo::get(db, &row.issuer).await?.is_some();
    repo::upsert(db, &row).await?;
    idp::forget(server, &row.issuer).await;
    let stored = repo::get(db, &row.issuer).await?.unwrap_or(row);
    let detail = json!({ "issuer": stored.issuer, "key_source": key_source(&stored) });
    let view = idp_view(&stored);
    Ok(upserted(server, req, "admin.idp", !existed, None, detail, view).await)
}

/// `GET /admin/idps`.
pub(super) async fn list(server: &Context) -> Result<http::Response<Bytes>> {
    let all = repo::list(server.env().sql.as_ref()).await?;
    Ok(ok(
        json!({ "idps": all.iter().map(idp_view).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /admin/idps?issuer=...`: removes the IdP with its policies and subject mappings.
pub(super) async fn delete(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let params = query(req)?;
    let issuer = params.require("issuer")?;
    let removed = repo::delete(server.env().sql.as_ref(), issuer).await?;
    if removed {
        idp::forget(server, issuer).await;
    }
    let missing = || format!("no trusted IdP '{}'", truncate(issuer, 256));
    let detail = json!({ "issuer": issuer });
    deleted(server, req, removed, missing, "admin.idp.deleted", detail).await
}

fn policy_view(p: &PolicyRow) -> Value {
    json!({
        "id": p.id,
        "issuer": p.issuer,
        "client_id": p.client_id,
        "resource": p.resource,
        "scopes": p.scopes,
        "rules": p.rules,
        "created_at": p.created_at,
    })
}

/// `POST /admin/idp-policies`: allows `client_id` to get tokens for `resource` with at most
/// `scopes` on the strength of `issuer`'s assertions. The IdP and the resource must be
/// registered and the scopes in the resource's catalog. A policy for the same issuer,
/// client and resource is replaced (200, same id); a new one is 201.
pub(super) async fn create_policy(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let body: NewPolicy = json_body(req.headers(), req.body())?;
    let row = prepare_policy(
        server,
        &body.issuer,
        &body.client_id,
        &body.resource,
        &body.scopes,
        &body.rules,
    )?;
    let db = server.env().sql.as_ref();
    if repo::get(db, &row.issuer).await?.is_none() {
        return Err(bad(format!(
            "no trusted IdP '{}' is registered",
            truncate(&row.issuer, 256)
        )));
    }
    check_resource_scopes(db, &row.resource, &row.scopes).await?;
    let stored = repo::upsert_policy(db, &row).await?;
    let is_new = stored.id == row.id;
    let client = Some(stored.client_id.as_str());
    let view = policy_view(&stored);
    Ok(upserted(
        server,
        req,
        "admin.idp_policy",
        is_new,
        client,
        view.clone(),
        view,
    )
    .await)
}

/// `GET /admin/idp-policies[?issuer=...]`.
pub(super) async fn list_policies(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let params = query(req)?;
    let all = repo::list_policies(server.env().sql.as_ref(), params.get("issuer")).await?;
    Ok(ok(
        json!({ "policies": all.iter().map(policy_view).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /admin/idp-policies/{id}`.
pub(super) async fn delete_policy(
    server: &Context,
    req: &Request<Bytes>,
    id: &str,
) -> Result<http::Response<Bytes>> {
    let removed = repo::delete_policy(server.env().sql.as_ref(), id).await?;
    let missing = || format!("no IdP policy '{}'", truncate(id, 64));
    let detail = json!({ "id": id });
    deleted(
        server,
        req,
        removed,
        missing,
        "admin.idp_policy.deleted",
        detail,
    )
    .await
}

fn subject_view(s: &SubjectRow) -> Value {
    json!({
        "issuer": s.issuer,
        "external_subject": s.external_subject,
        "subject": s.subject,
    })
}

/// `POST /admin/idp-subjects`: maps an IdP's `sub` to a local subject, given directly
/// (`subject`) or as a user's login name (`username`, stored as that user's id).
pub(super) async fn create_subject(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let body: NewSubject = json_body(req.headers(), req.body())?;
    let db = server.env().sql.as_ref();
    idp::validate_issuer(&body.issuer).map_err(bad)?;
    if repo::get(db, &body.issuer).await?.is_none() {
        return Err(bad(format!(
            "no trusted IdP '{}' is registered",
            truncate(&body.issuer, 256)
        )));
    }
    let subject = match (&body.subject, &body.username) {
        (Some(s), None) => s.clone(),
        (None, Some(name)) => crate::store::repo::users::by_username(db, name)
            .await?
            .map(|u| u.id)
            .ok_or_else(|| bad(format!("no user '{}'", truncate(name, 64))))?,
        _ => return Err(bad("give exactly one of subject or username")),
    };
    for (name, v) in [
        ("external_subject", body.external_subject.as_str()),
        ("subject", subject.as_str()),
    ] {
        if v.is_empty() || v.len() > MAX_ID_LEN || v.chars().any(char::is_control) {
            return Err(bad(format!(
                "{name} must be 1 to {MAX_ID_LEN} bytes without control characters"
            )));
        }
    }
    let row = SubjectRow {
        issuer: body.issuer,
        external_subject: body.external_subject,
        subject,
    };
    repo::put_subject(db, &row).await?;
    record(
        server,
        req,
        "admin.idp_subject.set",
        None,
        Some(&row.subject),
        json!({ "issuer": row.issuer, "external_subject": row.external_subject }),
    )
    .await;
    Ok(ok(subject_view(&row)))
}

/// `GET /admin/idp-subjects[?issuer=...&limit=&offset=]`.
pub(super) async fn list_subjects(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let params = query(req)?;
    let (limit, offset) = page(&params, 100)?;
    let all = repo::list_subjects(
        server.env().sql.as_ref(),
        params.get("issuer"),
        limit,
        offset,
    )
    .await?;
    Ok(ok(
        json!({ "subjects": all.iter().map(subject_view).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /admin/idp-subjects?issuer=...&external_subject=...`.
pub(super) async fn delete_subject(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let params = query(req)?;
    let issuer = params.require("issuer")?;
    let external = params.require("external_subject")?;
    let removed = repo::delete_subject(server.env().sql.as_ref(), issuer, external).await?;
    let missing = || "no such subject mapping".to_owned();
    let detail = json!({ "issuer": issuer, "external_subject": external });
    deleted(
        server,
        req,
        removed,
        missing,
        "admin.idp_subject.deleted",
        detail,
    )
    .await
}

/// The validated `idps` and `idp_policies` seeds.
pub(crate) struct Seeds {
    idps: Vec<IdpRow>,
    policies: Vec<PolicyRow>,
}

/// Validates the `idps` and `idp_policies` seeds (before anything is written).
pub(crate) fn prepare_seeds(server: &Context) -> std::result::Result<Seeds, StartError> {
    let cfg = server.config();
    let mut seen = std::collections::HashSet::new();
    let mut idps = Vec::with_capacity(cfg.idps.len());
    for s in &cfg.idps {
        if !seen.insert(s.issuer.as_str()) {
            return Err(StartError::Init(format!(
                "seed idps: issuer '{}' is declared more than once",
                s.issuer
            )));
        }
        let row = prepare_idp(
            server,
            &s.issuer,
            s.jwks_uri.as_deref(),
            s.jwks.as_ref(),
            &[],
        )
        .map_err(|e| StartError::Init(format!("seed idp '{}': {}", s.issuer, e.description)))?;
        idps.push(row);
    }
    let mut policies = Vec::with_capacity(cfg.idp_policies.len());
    for p in &cfg.idp_policies {
        let row = prepare_policy(
            server,
            &p.issuer,
            &p.client_id,
            &p.resource,
            &p.scopes,
            &p.rules,
        )
        .map_err(|e| {
            StartError::Init(format!(
                "seed idp_policy '{}' / '{}' / '{}': {}",
                p.issuer, p.client_id, p.resource, e.description
            ))
        })?;
        policies.push(row);
    }
    Ok(Seeds { idps, policies })
}

/// Writes the prepared seeds: IdPs are upserted (their cached keys forgotten when their
/// settings changed), policies upserted by issuer, client and resource. Idempotent.
pub(crate) async fn write_seeds(
    server: &Context,
    seeds: &Seeds,
) -> std::result::Result<(), StartError> {
    let db = server.env().sql.as_ref();
    for row in &seeds.idps {
        let existing = repo::get(db, &row.issuer).await?;
        if existing.as_ref().is_some_and(|e| same_settings(e, row)) {
            continue;
        }
        if let Err(StoreError::Conflict(_)) = repo::upsert(db, row).await {
            repo::upsert(db, row).await?;
        }
        idp::forget(server, &row.issuer).await;
    }
    for p in &seeds.policies {
        repo::upsert_policy(db, p).await?;
    }
    Ok(())
}
