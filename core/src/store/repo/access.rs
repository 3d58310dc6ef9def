//! Access token records: the `jti` of every JWT issued under a grant, so that revocation
//! (RFC 7009) and introspection (RFC 7662) can tell a revoked JWT from a live one. Tokens
//! without a grant (client_credentials) get a row only when revoked.

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

/// Whether the token was revoked (directly or through its grant).
pub async fn is_revoked(db: &dyn SqlStore, jti: &str) -> Result<bool, StoreError> {
    let rows = db
        .query(
            "SELECT a.revoked_at, g.revoked_at FROM access_tokens a LEFT JOIN grants g ON g.id = a.grant_id WHERE a.jti = ?",
            &[jti.into()],
        )
        .await?;
    Ok(match rows.first() {
        None => false,
        Some(r) => r.opt_int(0)?.is_some() || r.opt_int(1)?.is_some(),
    })
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
