//! Grants: one per authorization (a code and the refresh-token family that descends from
//! it). Revoking a grant ends every token issued under it (C2, F2, V2).

use crate::store::{SqlStore, StoreError};

/// A stored grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    /// Random id.
    pub id: String,
    /// The client the grant was made to.
    pub client_id: String,
    /// The resource owner.
    pub subject: String,
    /// Granted scope (space separated).
    pub scope: String,
    /// The resource (token audience).
    pub resource: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// Inserts a grant.
pub async fn insert(db: &dyn SqlStore, g: &GrantRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO grants (id, client_id, subject, scope, resource, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            g.id.as_str().into(),
            g.client_id.as_str().into(),
            g.subject.as_str().into(),
            g.scope.as_str().into(),
            g.resource.clone().into(),
            g.created_at.into(),
            g.revoked_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

const COLS: &str = "id, client_id, subject, scope, resource, created_at, revoked_at";

fn from_row(r: &crate::store::Row) -> Result<GrantRow, StoreError> {
    Ok(GrantRow {
        id: r.text(0)?,
        client_id: r.text(1)?,
        subject: r.text(2)?,
        scope: r.text(3)?,
        resource: r.opt_text(4)?,
        created_at: r.int(5)?,
        revoked_at: r.opt_int(6)?,
    })
}

/// Looks a grant up.
pub async fn get(db: &dyn SqlStore, id: &str) -> Result<Option<GrantRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS} FROM grants WHERE id = ?"),
            &[id.into()],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// Records the agent a grant was made for (on-behalf-of, `requested_actor`), before any code
/// of the grant exists.
pub async fn set_actor(db: &dyn SqlStore, id: &str, actor: &str) -> Result<(), StoreError> {
    db.execute(
        "UPDATE grants SET actor = ? WHERE id = ?",
        &[actor.into(), id.into()],
    )
    .await
    .map(|_| ())
}

/// The agent a grant was made for, if any.
pub async fn actor(db: &dyn SqlStore, id: &str) -> Result<Option<String>, StoreError> {
    let rows = db
        .query("SELECT actor FROM grants WHERE id = ?", &[id.into()])
        .await?;
    Ok(rows.first().map(|r| r.opt_text(0)).transpose()?.flatten())
}

/// What [`search`] looks for.
#[derive(Debug, Clone, Default)]
pub struct GrantFilter {
    /// Only grants made by this subject.
    pub subject: Option<String>,
    /// Only grants made to this client.
    pub client_id: Option<String>,
    /// Only grants not revoked.
    pub active_only: bool,
}

/// Grants matching `f`, newest first.
pub async fn search(
    db: &dyn SqlStore,
    f: &GrantFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<GrantRow>, StoreError> {
    let mut sql = format!("SELECT {COLS} FROM grants WHERE 1 = 1");
    let mut params: Vec<crate::store::Value> = Vec::new();
    for (col, v) in [("subject", &f.subject), ("client_id", &f.client_id)] {
        if let Some(v) = v {
            sql.push_str(&format!(" AND {col} = ?"));
            params.push(v.as_str().into());
        }
    }
    if f.active_only {
        sql.push_str(" AND revoked_at IS NULL");
    }
    sql.push_str(" ORDER BY created_at DESC, id LIMIT ? OFFSET ?");
    params.push(limit.into());
    params.push(offset.into());
    let rows = db.query(&sql, &params).await?;
    rows.iter().map(from_row).collect()
}

/// The scopes `subject` granted `client_id` for `resource` in grants not revoked (what a
/// step-up consent does not need to ask again), sorted, without repeats.
pub async fn granted_scopes(
    db: &dyn SqlStore,
    client_id: &str,
    subject: &str,
    resource: &str,
) -> Result<Vec<String>, StoreError> {
    let rows = db
        .query(
            "SELECT scope FROM grants WHERE client_id = ? AND subject = ? AND resource = ? AND revoked_at IS NULL",
            &[client_id.into(), subject.into(), resource.into()],
        )
        .await?;
    let mut scopes = std::collections::BTreeSet::new();
    for r in &rows {
        scopes.extend(
            r.text(0)?
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
    }
    Ok(scopes.into_iter().collect())
}

/// Revokes a grant and everything under it: its refresh tokens are consumed and its access
/// tokens marked revoked, in one transaction. Idempotent.
pub async fn revoke(db: &dyn SqlStore, id: &str, now: i64) -> Result<(), StoreError> {
    db.batch(&[
        (
            "UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL".into(),
            vec![now.into(), id.into()],
        ),
        (
            "UPDATE refresh_tokens SET consumed_at = ? WHERE grant_id = ? AND consumed_at IS NULL"
                .into(),
            vec![now.into(), id.into()],
        ),
        (
            "UPDATE access_tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL"
                .into(),
            vec![now.into(), id.into()],
        ),
    ])
    .await
    .map(drop)
}

/// Revokes every grant of a subject or of a client (`column` is `subject` or `client_id`),
/// with their refresh tokens and access tokens, in one transaction. Used when a user or a
/// client is deleted, so a re-created namesake inherits nothing.
async fn revoke_where(
    db: &dyn SqlStore,
    column: &'static str,
    value: &str,
    now: i64,
) -> Result<(), StoreError> {
    let grant_ids = format!("SELECT id FROM grants WHERE {column} = ?");
    db.batch(&[
        (
            format!("UPDATE refresh_tokens SET consumed_at = ? WHERE consumed_at IS NULL AND grant_id IN ({grant_ids})"),
            vec![now.into(), value.into()],
        ),
        (
            format!("UPDATE access_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND grant_id IN ({grant_ids})"),
            vec![now.into(), value.into()],
        ),
        (
            format!("UPDATE grants SET revoked_at = ? WHERE {column} = ? AND revoked_at IS NULL"),
            vec![now.into(), value.into()],
        ),
    ])
    .await
    .map(drop)
}

/// Revokes every grant made by the user `subject`.
pub async fn revoke_for_subject(
    db: &dyn SqlStore,
    subject: &str,
    now: i64,
) -> Result<(), StoreError> {
    revoke_where(db, "subject", subject, now).await
}

/// Revokes every grant made to `client_id`.
pub async fn revoke_for_client(
    db: &dyn SqlStore,
    client_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    revoke_where(db, "client_id", client_id, now).await
}
