//! Access token records: the `jti` of every JWT issued under a grant or exchanged from
//! another token (RFC 8693, with its `parent_jti`), so that revocation (RFC 7009) and
//! introspection (RFC 7662) can tell a revoked JWT from a live one. Tokens without a grant or
//! parent (client_credentials) get a row only when revoked.
//!
//! Revocation reaches descendants by walking up: a token is revoked when it, any of its
//! ancestors (its `parent_jti` chain, at most [`MAX_LINEAGE`] hops), or the grant of any of
//! them is revoked. One query answers it, so a token exchanged while its parent is being
//! revoked is still caught (no read-then-write race).

use crate::store::{SqlStore, StoreError};

/// Records an issued access token (with the token it was exchanged from, if any).
pub async fn insert(
    db: &dyn SqlStore,
    jti: &str,
    grant_id: Option<&str>,
    client_id: &str,
    expires_at: i64,
    parent_jti: Option<&str>,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO access_tokens (jti, grant_id, client_id, expires_at, parent_jti) VALUES (?, ?, ?, ?, ?)",
        &[
            jti.into(),
            grant_id.into(),
            client_id.into(),
            expires_at.into(),
            parent_jti.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Marks a token revoked, creating its row if it had none. Idempotent.
pub async fn revoke(
    db: &dyn SqlStore,
    jti: &str,
    client_id: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    let n = db
        .execute(
            "UPDATE access_tokens SET revoked_at = ? WHERE jti = ? AND revoked_at IS NULL",
            &[now.into(), jti.into()],
        )
        .await?;
    if n == 0 {
        match db
            .execute(
                "INSERT INTO access_tokens (jti, grant_id, client_id, expires_at, revoked_at) VALUES (?, NULL, ?, ?, ?)",
                &[jti.into(), client_id.into(), expires_at.into(), now.into()],
            )
            .await
        {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Longest exchange lineage (tokens exchanged from tokens) that revocation follows; token
/// exchange refuses to extend a lineage that has reached it.
pub const MAX_LINEAGE: usize = 32;

/// What the store knows about a token's lineage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lineage {
    /// The token, an ancestor, or the grant of either was revoked.
    pub revoked: bool,
    /// How many recorded tokens the chain holds, the token itself included (0 when the
    /// token has no row). Stops counting past [`MAX_LINEAGE`].
    pub length: usize,
}

/// The token's lineage: whether it or an ancestor (or a grant of either) was revoked, and
/// how long its recorded chain is. One recursive query (SQLite and PostgreSQL).
pub async fn lineage(db: &dyn SqlStore, jti: &str) -> Result<Lineage, StoreError> {
    let sql = format!(
        "WITH RECURSIVE chain (jti, parent_jti, grant_id, revoked_at, depth) AS (\
         SELECT jti, parent_jti, grant_id, revoked_at, 0 FROM access_tokens WHERE jti = ? \
         UNION ALL \
         SELECT a.jti, a.parent_jti, a.grant_id, a.revoked_at, c.depth + 1 \
         FROM access_tokens a JOIN chain c ON a.jti = c.parent_jti WHERE c.depth < {MAX_LINEAGE}) \
         SELECT c.revoked_at, g.revoked_at FROM chain c LEFT JOIN grants g ON g.id = c.grant_id"
    );
    let rows = db.query(&sql, &[jti.into()]).await?;
    let mut out = Lineage {
        revoked: false,
        length: rows.len(),
    };
    for r in &rows {
        if r.opt_int(0)?.is_some() || r.opt_int(1)?.is_some() {
            out.revoked = true;
        }
    }
    Ok(out)
}

/// Whether the token was revoked: directly, through its grant, or through an ancestor it
/// was exchanged from (or that ancestor's grant).
pub async fn is_revoked(db: &dyn SqlStore, jti: &str) -> Result<bool, StoreError> {
    Ok(lineage(db, jti).await?.revoked)
}

/// The grant an access token was issued under, if recorded.
pub async fn grant_of(db: &dyn SqlStore, jti: &str) -> Result<Option<String>, StoreError> {
    let rows = db
        .query(
            "SELECT grant_id FROM access_tokens WHERE jti = ?",
            &[jti.into()],
        )
        .await?;
    Ok(match rows.first() {
        None => None,
        Some(r) => r.opt_text(0)?,
    })
}

/// What the store records about one access token (admin lookups by `jti`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    /// The token id.
    pub jti: String,
    /// The grant it was issued under.
    pub grant_id: Option<String>,
    /// The client it was issued to.
    pub client_id: String,
    /// Expiry.
    pub expires_at: i64,
    /// When it was revoked directly (revocation through a grant or an ancestor is
    /// [`is_revoked`]).
    pub revoked_at: Option<i64>,
    /// The token it was exchanged from.
    pub parent_jti: Option<String>,
}

/// The record of token `jti`, if there is one (grant-issued and exchanged tokens, and any
/// token once revoked).
pub async fn get(db: &dyn SqlStore, jti: &str) -> Result<Option<AccessRecord>, StoreError> {
    let rows = db
        .query(
            "SELECT jti, grant_id, client_id, expires_at, revoked_at, parent_jti FROM access_tokens WHERE jti = ?",
            &[jti.into()],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(AccessRecord {
                jti: r.text(0)?,
                grant_id: r.opt_text(1)?,
                client_id: r.text(2)?,
                expires_at: r.int(3)?,
                revoked_at: r.opt_int(4)?,
                parent_jti: r.opt_text(5)?,
            })
        })
        .transpose()
}

/// Recorded access tokens of a client and/or (through their grants) a subject, latest expiry
/// first; with `live_at`, only those unexpired then and not revoked directly.
pub async fn search(
    db: &dyn SqlStore,
    client_id: Option<&str>,
    subject: Option<&str>,
    live_at: Option<i64>,
    limit: i64,
    offset: i64,
) -> Result<Vec<AccessRecord>, StoreError> {
    let mut sql = String::from(
        "SELECT a.jti, a.grant_id, a.client_id, a.expires_at, a.revoked_at, a.parent_jti FROM access_tokens a",
    );
    let mut params: Vec<crate::store::Value> = Vec::new();
    if let Some(s) = subject {
        sql.push_str(" JOIN grants g ON g.id = a.grant_id WHERE g.subject = ?");
        params.push(s.into());
    } else {
        sql.push_str(" WHERE 1 = 1");
    }
    if let Some(c) = client_id {
        sql.push_str(" AND a.client_id = ?");
        params.push(c.into());
    }
    if let Some(now) = live_at {
        sql.push_str(" AND a.expires_at > ? AND a.revoked_at IS NULL");
        params.push(now.into());
    }
    sql.push_str(" ORDER BY a.expires_at DESC, a.jti LIMIT ? OFFSET ?");
    params.push(limit.into());
    params.push(offset.into());
    let rows = db.query(&sql, &params).await?;
    rows.iter()
        .map(|r| {
            Ok(AccessRecord {
                jti: r.text(0)?,
                grant_id: r.opt_text(1)?,
                client_id: r.text(2)?,
                expires_at: r.int(3)?,
                revoked_at: r.opt_int(4)?,
                parent_jti: r.opt_text(5)?,
            })
        })
        .collect()
}
