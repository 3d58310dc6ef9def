//! Workload identity federation (MCP ext-auth "Workload Identity Federation", RFC 7523 §2.1):
//! the trusted workload issuers (`workload_issuers`: where their keys are, which `aud`
//! values their JWTs must carry) and the rules (`workload_rules`) saying which workload
//! subjects of an issuer get tokens for which resource, as which client, with which scopes.

use crate::store::{Row, SqlStore, StoreError, Value};

/// A trusted workload issuer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IssuerRow {
    /// The issuer identifier (the `iss` of its JWTs).
    pub issuer: String,
    /// Where its JWK Set is published (fetched through the SSRF-safe fetcher).
    pub jwks_uri: Option<String>,
    /// Its JWK Set inline (JSON text), instead of a URI or discovery.
    pub jwks: Option<String>,
    /// The `aud` values accepted from it; empty means our token endpoint URL only.
    pub audiences: Vec<String>,
    /// Creation time.
    pub created_at: i64,
}

const ISSUER_COLS: &str = "issuer, jwks_uri, jwks, audiences, created_at";

fn issuer_from_row(r: &Row) -> Result<IssuerRow, StoreError> {
    Ok(IssuerRow {
        issuer: r.text(0)?,
        jwks_uri: r.opt_text(1)?,
        jwks: r.opt_text(2)?,
        audiences: r.text(3)?.split_whitespace().map(str::to_owned).collect(),
        created_at: r.int(4)?,
    })
}

/// Inserts an issuer or replaces its keys and audiences (the creation time is kept).
pub async fn upsert_issuer(db: &dyn SqlStore, row: &IssuerRow) -> Result<(), StoreError> {
    db.execute(
        &format!(
            "INSERT INTO workload_issuers ({ISSUER_COLS}) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (issuer) DO UPDATE SET jwks_uri = excluded.jwks_uri, \
             jwks = excluded.jwks, audiences = excluded.audiences"
        ),
        &[
            row.issuer.as_str().into(),
            row.jwks_uri.clone().into(),
            row.jwks.clone().into(),
            row.audiences.join(" ").into(),
            row.created_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Looks an issuer up by its exact identifier.
pub async fn get_issuer(db: &dyn SqlStore, issuer: &str) -> Result<Option<IssuerRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {ISSUER_COLS} FROM workload_issuers WHERE issuer = ?"),
            &[issuer.into()],
        )
        .await?;
    rows.first().map(issuer_from_row).transpose()
}

/// Every issuer, by identifier.
pub async fn list_issuers(db: &dyn SqlStore) -> Result<Vec<IssuerRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {ISSUER_COLS} FROM workload_issuers ORDER BY issuer"),
            &[],
        )
        .await?;
    rows.iter().map(issuer_from_row).collect()
}

/// Deletes an issuer with its rules, in one batch; returns whether it existed.
pub async fn delete_issuer(db: &dyn SqlStore, issuer: &str) -> Result<bool, StoreError> {
    let existed = get_issuer(db, issuer).await?.is_some();
    db.batch(&[
        (
            "DELETE FROM workload_rules WHERE issuer = ?".to_owned(),
            vec![issuer.into()],
        ),
        (
            "DELETE FROM workload_issuers WHERE issuer = ?".to_owned(),
            vec![issuer.into()],
        ),
    ])
    .await?;
    Ok(existed)
}

/// A rule: workloads of `issuer` whose `sub` matches `subject` (exact, or a pattern where
/// `*` stands for any run of characters) get tokens for `resource` as `client_id`, with at
/// most `scopes`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleRow {
    /// Identifier.
    pub id: String,
    /// The workload issuer.
    pub issuer: String,
    /// The subject pattern.
    pub subject: String,
    /// The resource URI.
    pub resource: String,
    /// The client the tokens are issued to (and whose identity they carry).
    pub client_id: String,
    /// The largest scope set granted.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: i64,
}

const RULE_COLS: &str = "id, issuer, subject, resource, client_id, scopes, created_at";

fn rule_from_row(r: &Row) -> Result<RuleRow, StoreError> {
    Ok(RuleRow {
        id: r.text(0)?,
        issuer: r.text(1)?,
        subject: r.text(2)?,
        resource: r.text(3)?,
        client_id: r.text(4)?,
        scopes: r.text(5)?.split_whitespace().map(str::to_owned).collect(),
        created_at: r.int(6)?,
    })
}

/// Stores a rule. When one for the same issuer, subject pattern and resource exists, its
/// client and scopes are replaced and its id kept. Returns the stored rule.
pub async fn upsert_rule(db: &dyn SqlStore, rule: &RuleRow) -> Result<RuleRow, StoreError> {
    let scopes = rule.scopes.join(" ");
    db.execute(
        &format!(
            "INSERT INTO workload_rules ({RULE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (issuer, subject, resource) DO UPDATE SET \
             client_id = excluded.client_id, scopes = excluded.scopes"
        ),
        &[
            rule.id.as_str().into(),
            rule.issuer.as_str().into(),
            rule.subject.as_str().into(),
            rule.resource.as_str().into(),
            rule.client_id.as_str().into(),
            scopes.into(),
            rule.created_at.into(),
        ],
    )
    .await?;
    let rows = db
        .query(
            &format!(
                "SELECT {RULE_COLS} FROM workload_rules \
                 WHERE issuer = ? AND subject = ? AND resource = ?"
            ),
            &[
                rule.issuer.as_str().into(),
                rule.subject.as_str().into(),
                rule.resource.as_str().into(),
            ],
        )
        .await?;
    Ok(rows
        .first()
        .map(rule_from_row)
        .transpose()?
        .unwrap_or_else(|| rule.clone()))
}

/// The rules of `issuer` for `resource` (the caller matches the subject patterns).
pub async fn rules_for(
    db: &dyn SqlStore,
    issuer: &str,
    resource: &str,
) -> Result<Vec<RuleRow>, StoreError> {
    let rows = db
        .query(
            &format!(
                "SELECT {RULE_COLS} FROM workload_rules WHERE issuer = ? AND resource = ? \
                 ORDER BY id"
            ),
            &[issuer.into(), resource.into()],
        )
        .await?;
    rows.iter().map(rule_from_row).collect()
}

/// Every rule, optionally of one issuer.
pub async fn list_rules(
    db: &dyn SqlStore,
    issuer: Option<&str>,
) -> Result<Vec<RuleRow>, StoreError> {
    let (filter, params): (&str, Vec<Value>) = match issuer {
        Some(i) => (" WHERE issuer = ?", vec![i.into()]),
        None => ("", Vec::new()),
    };
    let rows = db
        .query(
            &format!(
                "SELECT {RULE_COLS} FROM workload_rules{filter} \
                 ORDER BY issuer, resource, subject"
            ),
            &params,
        )
        .await?;
    rows.iter().map(rule_from_row).collect()
}

/// Removes a rule; returns whether it existed.
pub async fn delete_rule(db: &dyn SqlStore, id: &str) -> Result<bool, StoreError> {
    Ok(db
        .execute("DELETE FROM workload_rules WHERE id = ?", &[id.into()])
        .await?
        > 0)
}
