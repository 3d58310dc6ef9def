//! Refresh tokens (OAuth 2.1 §4.3, RFC 9700 §4.14): opaque, stored as hashes, rotated on
//! every use by one conditional `UPDATE … RETURNING`; a consumed token presented again
//! reveals reuse and the caller revokes the family (F1–F3).

use crate::store::{Row, SqlStore, StoreError};

/// A stored refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRow {
    /// [`crate::crypto::token_hash`] of the token.
    pub token_hash: String,
    /// The grant (family) it belongs to.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The resource owner.
    pub subject: String,
    /// Scope of this token (may be narrower than the grant's).
    pub scope: String,
    /// The resource (audience).
    pub resource: Option<String>,
    /// Expiry.
    pub expires_at: i64,
    /// When it was used (rotated) or revoked.
    pub consumed_at: Option<i64>,
    /// Creation time.
    pub created_at: i64,
}

const COLS: &str =
    "token_hash, grant_id, client_id, subject, scope, resource, expires_at, consumed_at, created_at";

fn from_row(r: &Row) -> Result<RefreshRow, StoreError> {
    Ok(RefreshRow {
        token_hash: r.text(0)?,
        grant_id: r.text(1)?,
        client_id: r.text(2)?,
        subject: r.text(3)?,
        scope: r.text(4)?,
        resource: r.opt_text(5)?,
        expires_at: r.int(6)?,
        consumed_at: r.opt_int(7)?,
        created_at: r.int(8)?,
    })
}

/// Stores a new refresh token.
pub async fn insert(db: &dyn SqlStore, t: &RefreshRow) -> Result<(), StoreError> {
    insert_bound(db, t, None).await
}

/// Stores a new refresh token bound to a DPoP key thumbprint (a public client's token,
/// RFC 9449 §5), if `dpop_jkt` is set.
pub async fn insert_bound(
    db: &dyn SqlStore,
    t: &RefreshRow,
    dpop_jkt: Option<&str>,
) -> Result<(), StoreError> {
    db.execute(
        &format!(
            "INSERT INTO refresh_tokens ({COLS}, dpop_jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        &[
            t.token_hash.as_str().into(),
            t.grant_id.as_str().into(),
            t.client_id.as_str().into(),
            t.subject.as_str().into(),
            t.scope.as_str().into(),
            t.resource.clone().into(),
            t.expires_at.into(),
            t.consumed_at.into(),
            t.created_at.into(),
            dpop_jkt.map(str::to_owned).into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Reads a refresh token without changing it.
pub async fn get(db: &dyn SqlStore, token_hash: &str) -> Result<Option<RefreshRow>, StoreError> {
    Ok(get_bound(db, token_hash).await?.map(|(t, _)| t))
}

/// Reads a refresh token together with the DPoP key thumbprint it is bound to.
pub async fn get_bound(
    db: &dyn SqlStore,
    token_hash: &str,
) -> Result<Option<(RefreshRow, Option<String>)>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS}, dpop_jkt FROM refresh_tokens WHERE token_hash = ?"),
            &[token_hash.into()],
        )
        .await?;
    rows.first()
        .map(|r| Ok((from_row(r)?, r.opt_text(9)?)))
        .transpose()
}

/// Consumes the token if, and only if, it is live, unexpired and belongs to `client_id`.
/// Exactly one of any number of concurrent callers gets `true` (F3).
pub async fn consume(
    db: &dyn SqlStore,
    token_hash: &str,
    client_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let rows = db
        .query(
            "UPDATE refresh_tokens SET consumed_at = ? WHERE token_hash = ? AND client_id = ? AND consumed_at IS NULL AND expires_at > ? RETURNING token_hash",
            &[now.into(), token_hash.into(), client_id.into(), now.into()],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Live (unconsumed, unexpired) tokens of a family: at most one after any sequence of
/// rotations (used by the conformance suite and the admin API).
pub async fn live_in_family(
    db: &dyn SqlStore,
    grant_id: &str,
    now: i64,
) -> Result<i64, StoreError> {
    let rows = db
        .query(
            "SELECT COUNT(*) FROM refresh_tokens WHERE grant_id = ? AND consumed_at IS NULL AND expires_at > ?",
            &[grant_id.into(), now.into()],
        )
        .await?;
    rows.first().map_or(Ok(0), |r| r.int(0))
}
