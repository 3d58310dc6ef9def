//! Admin API: workload identity federation (MCP ext-auth draft "Workload Identity
//! Federation", SEP-1933): the trusted workload issuers (`/admin/workload-issuers`: keys and
//! accepted audiences) and the rules mapping their workloads' subjects to a client, a
//! resource and scopes (`/admin/workload-rules`). Also applies the `workload_issuers` and
//! `workload_rules` configuration seeds.

use bytes::Bytes;
use http::Request;
use serde::Deserialize;
use serde_json::{json, Value};

use super::trusted_issuers::{bad, check_id, check_resource_scopes, jwks_view, key_material};
use super::{deleted, ok, query, resources, upserted};
use crate::context::Context;
use crate::error::{Result, StartError};
use crate::request::json_body;
use crate::store::repo::clients as client_repo;
use crate::store::repo::workloads::{self as repo, IssuerRow, RuleRow};
use crate::text::truncate;
use crate::workload;

/// Most accepted audiences per issuer.
const MAX_AUDIENCES: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewIssuer {
    issuer: String,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    jwks: Option<Value>,
    #[serde(default)]
    audiences: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRule {
    issuer: String,
    subject: String,
    resource: String,
    client_id: String,
    scopes: Vec<String>,
}

/// A validated issuer row: a well-formed issuer (https, or a SPIFFE trust domain with keys),
/// keys from at most one of inline `jwks` and a `jwks_uri` the fetch policy allows (S1),
/// and at most [`MAX_AUDIENCES`] distinct audiences without whitespace.
pub(crate) fn prepare_issuer(
    server: &Context,
    issuer: &str,
    jwks_uri: Option<&str>,
    jwks: Option<&Value>,
    audiences: &[String],
) -> Result<IssuerRow> {
    workload::validate_issuer(issuer, jwks.is_some() || jwks_uri.is_some()).map_err(bad)?;
    let jwks = key_material(server, jwks_uri, jwks)?;
    if audiences.len() > MAX_AUDIENCES {
        return Err(bad(format!(
            "audiences may hold at most {MAX_AUDIENCES} values"
        )));
    }
    let mut unique: Vec<String> = Vec::with_capacity(audiences.len());
    for a in audiences {
        check_id("audience", a)?;
        if !unique.contains(a) {
            unique.push(a.clone());
        }
    }
    Ok(IssuerRow {
        issuer: issuer.to_owned(),
        jwks_uri: jwks_uri.map(str::to_owned),
        jwks,
        audiences: unique,
        created_at: server.now(),
    })
}

/// A validated rule row with a new id (an existing rule for the same issuer, subject and
/// resource keeps its own when stored).
pub(crate) fn prepare_rule(
    server: &Context,
    issuer: &str,
    subject: &str,
    resource: &str,
    client_id: &str,
    scopes: &[String],
) -> Result<RuleRow> {
    workload::validate_issuer(issuer, true).map_err(bad)?;
    workload::validate_pattern(subject).map_err(bad)?;
    resources::validate_uri(resource)?;
    check_id("client_id", client_id)?;
    let scopes = resources::validate_scopes(scopes)?;
    Ok(RuleRow {
        id: crate::runtime::random_token(server.env().rng.as_ref(), 12),
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        resource: resource.to_owned(),
        client_id: client_id.to_owned(),
        scopes,
        created_at: server.now(),
    })
}

/// The rule's issuer, resource (with every scope in its catalog) and client must exist.
async fn check_rule_refs(server: &Context, row: &RuleRow) -> Result<()> {
    let db = server.env().sql.as_ref();
    if repo::get_issuer(db, &row.issuer).await?.is_none() {
        return Err(bad(format!(
            "no workload issuer '{}' is registered",
            truncate(&row.issuer, 256)
        )));
    }
    check_resource_scopes(db, &row.resource, &row.scopes).await?;
    if client_repo::get(db, &row.client_id).await?.is_none() {
        return Err(bad(format!(
            "no client '{}' is registered",
            truncate(&row.client_id, 256)
        )));
    }
    Ok(())
}

fn key_source(r: &IssuerRow) -> &'static str {
    super::trusted_issuers::key_source(r.jwks.as_deref(), r.jwks_uri.as_deref())
}

fn issuer_view(server: &Context, r: &IssuerRow) -> Value {
    json!({
        "issuer": r.issuer,
        "jwks_uri": r.jwks_uri,
        "jwks": jwks_view(r.jwks.as_deref()),
        "key_source": key_source(r),
        "audiences": r.audiences,
        "accepted_audiences": workload::accepted_audiences(server, r),
        "created_at": r.created_at,
    })
}

fn rule_view(r: &RuleRow) -> Value {
    json!({
        "id": r.id,
        "issuer": r.issuer,
        "subject": r.subject,
        "resource": r.resource,
        "client_id": r.client_id,
        "scopes": r.scopes,
        "created_at": r.created_at,
    })
}

/// `POST /admin/workload-issuers`: trusts a workload issuer (201) or replaces the keys and
/// audiences of a trusted one (200). Its cached keys are forgotten.
pub(super) async fn create_issuer(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let body: NewIssuer = json_body(req.headers(), req.body())?;
    let row = prepare_issuer(
        server,
        &body.issuer,
        body.jwks_uri.as_deref(),
        body.jwks.as_ref(),
        &body.audiences,
    )?;
    let db = server.env().sql.as_ref();
    let existed = repo::get_issuer(db, &row.issuer).await?.is_some();
    repo::upsert_issuer(db, &row).await?;
    workload::forget(server, &row.issuer).await;
    let stored = repo::get_issuer(db, &row.issuer).await?.unwrap_or(row);
    let detail = json!({ "issuer": stored.issuer, "key_source": key_source(&stored) });
    let view = issuer_view(server, &stored);
    Ok(upserted(
        server,
        req,
        "admin.workload_issuer",
        !existed,
        None,
        detail,
        view,
    )
    .await)
}

/// `GET /admin/workload-issuers`.
pub(super) async fn list_issuers(server: &Context) -> Result<http::Response<Bytes>> {
    let all = repo::list_issuers(server.env().sql.as_ref()).await?;
    let views: Vec<Value> = all.iter().map(|r| issuer_view(server, r)).collect();
    Ok(ok(json!({ "workload_issuers": views })))
}

/// `DELETE /admin/workload-issuers?issuer=...`: removes the issuer with its rules.
pub(super) async fn delete_issuer(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let params = query(req)?;
    let issuer = params.require("issuer")?;
    let removed = repo::delete_issuer(server.env().sql.as_ref(), issuer).await?;
    if removed {
        workload::forget(server, issuer).await;
    }
    let missing = || format!("no workload issuer '{}'", truncate(issuer, 256));
    let detail = json!({ "issuer": issuer });
    deleted(
        server,
        req,
        removed,
        missing,
        "admin.workload_issuer.deleted",
        detail,
    )
    .await
}

/// `POST /admin/workload-rules`: workloads of `issuer` whose `sub` matches `subject` get
/// tokens for `resource` as `client_id` with at most `scopes`. A rule for the same issuer,
/// subject and resource is replaced (200, same id); a new one is 201.
pub(super) async fn create_rule(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let body: NewRule = json_body(req.headers(), req.body())?;
    let row = prepare_rule(
        server,
        &body.issuer,
        &body.subject,
        &body.resource,
        &body.client_id,
        &body.scopes,
    )?;
    check_rule_refs(server, &row).await?;
    let stored = repo::upsert_rule(server.env().sql.as_ref(), &row).await?;
    let is_new = stored.id == row.id;
    let client = Some(stored.client_id.as_str());
    let view = rule_view(&stored);
    Ok(upserted(
        server,
        req,
        "admin.workload_rule",
        is_new,
        client,
        view.clone(),
        view,
    )
    .await)
}

/// `GET /admin/workload-rules[?issuer=...]`.
pub(super) async fn list_rules(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let params = query(req)?;
    let all = repo::list_rules(server.env().sql.as_ref(), params.get("issuer")).await?;
    Ok(ok(
        json!({ "workload_rules": all.iter().map(rule_view).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /admin/workload-rules/{id}`.
pub(super) async fn delete_rule(
    server: &Context,
    req: &Request<Bytes>,
    id: &str,
) -> Result<http::Response<Bytes>> {
    let removed = repo::delete_rule(server.env().sql.as_ref(), id).await?;
    let missing = || format!("no workload rule '{}'", truncate(id, 64));
    let detail = json!({ "id": id });
    deleted(
        server,
        req,
        removed,
        missing,
        "admin.workload_rule.deleted",
        detail,
    )
    .await
}

/// The validated `workload_issuers` and `workload_rules` seeds.
pub(crate) struct Seeds {
    issuers: Vec<IssuerRow>,
    rules: Vec<RuleRow>,
}

/// Validates the `workload_issuers` and `workload_rules` seeds (before anything is written).
pub(crate) fn prepare_seeds(server: &Context) -> std::result::Result<Seeds, StartError> {
    let cfg = server.config();
    let mut seen = std::collections::HashSet::new();
    let mut issuers = Vec::with_capacity(cfg.workload_issuers.len());
    for s in &cfg.workload_issuers {
        if !seen.insert(s.issuer.as_str()) {
            return Err(StartError::Init(format!(
                "seed workload_issuers: issuer '{}' is declared more than once",
                s.issuer
            )));
        }
        let row = prepare_issuer(
            server,
            &s.issuer,
            s.jwks_uri.as_deref(),
            s.jwks.as_ref(),
            &s.audiences,
        )
        .map_err(|e| {
            StartError::Init(format!(
                "seed workload_issuer '{}': {}",
                s.issuer, e.description
            ))
        })?;
        issuers.push(row);
    }
    let mut rules = Vec::with_capacity(cfg.workload_rules.len());
    for r in &cfg.workload_rules {
        let row = prepare_rule(
            server,
            &r.issuer,
            &r.subject,
            &r.resource,
            &r.client_id,
            &r.scopes,
        )
        .map_err(|e| {
            StartError::Init(format!(
                "seed workload_rule '{}' / '{}' / '{}': {}",
                r.issuer, r.subject, r.resource, e.description
            ))
        })?;
        if !seen.contains(row.issuer.as_str()) {
            return Err(StartError::Init(format!(
                "seed workload_rule '{}' / '{}': the issuer is not among workload_issuers",
                r.issuer, r.subject
            )));
        }
        rules.push(row);
    }
    Ok(Seeds { issuers, rules })
}

/// Writes the prepared seeds (after resources and clients): issuers upserted (cached keys
/// forgotten), then rules upserted by issuer, subject and resource, each checked against the
/// stored resources and clients. Idempotent.
pub(crate) async fn write_seeds(
    server: &Context,
    seeds: &Seeds,
) -> std::result::Result<(), StartError> {
    let db = server.env().sql.as_ref();
    for row in &seeds.issuers {
        repo::upsert_issuer(db, row).await?;
        workload::forget(server, &row.issuer).await;
    }
    for r in &seeds.rules {
        check_rule_refs(server, r).await.map_err(|e| {
            StartError::Init(format!(
                "seed workload_rule '{}' / '{}': {}",
                r.issuer, r.subject, e.description
            ))
        })?;
        repo::upsert_rule(db, r).await?;
    }
    Ok(())
}
