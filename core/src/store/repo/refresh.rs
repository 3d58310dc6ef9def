//! Refresh tokens (OAuth 2.1 §4.3, RFC 9700 §4.14): opaque, stored as hashes, rotated on
//! every use by one transaction that consumes the old token (a conditional `UPDATE` naming
//! its successor) and stores the new one only if that consumption was this request's; a
//! consumed token presented again reveals reuse and the caller revokes the family (F1–F3).
//! A storage failure leaves the old token live, so its retry is never taken for reuse (F7).

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

/// Rotates `old_hash` to `new` in one transaction: the old token is consumed if, and only
/// if, it is live, unexpired and belongs to `new.client_id`, naming `new` as its successor;
/// `new` is stored only if this call consumed it. Exactly one of any number of concurrent
/// callers gets `true` (F3); the others store nothing. A storage error changes nothing, so
/// the old token still works once storage is back (F7).
pub async fn rotate(
    db: &dyn SqlStore,
    old_hash: &str,
    now: i64,
    new: &RefreshRow,
    dpop_jkt: Option<&str>,
) -> Result<bool, StoreError> {
    let changed = db
        .batch(&[
            (
                "UPDATE refresh_tokens SET consumed_at = ?, successor = ? WHERE token_hash = ? AND client_id = ? AND consumed_at IS NULL AND expires_at > ?".to_owned(),
                vec![
                    now.into(),
                    new.token_hash.as_str().into(),
                    old_hash.into(),
                    new.client_id.as_str().into(),
                    now.into(),
                ],
            ),
            (
                format!(
                    "INSERT INTO refresh_tokens ({COLS}, dpop_jkt) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = ? AND successor = ?)"
                ),
                vec![
                    new.token_hash.as_str().into(),
                    new.grant_id.as_str().into(),
                    new.client_id.as_str().into(),
                    new.subject.as_str().into(),
                    new.scope.as_str().into(),
                    new.resource.clone().into(),
                    new.expires_at.into(),
                    new.consumed_at.into(),
                    new.created_at.into(),
                    dpop_jkt.map(str::to_owned).into(),
                    old_hash.into(),
                    new.token_hash.as_str().into(),
                ],
            ),
        ])
        .await?;
    Ok(changed.first() == Some(&1))
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
