//! Authorization codes (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3): stored only as hashes (C6) and
//! redeemed exactly once by a single conditional `UPDATE … RETURNING` (C1).

use crate::store::{Row, SqlStore, StoreError};

/// A stored authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    /// [`crate::crypto::token_hash`] of the code.
    pub code_hash: String,
    /// The grant this code starts.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI used at authorize (compared exactly at the token endpoint).
    pub redirect_uri: String,
    /// The resource owner.
    pub subject: String,
    /// Granted scope.
    pub scope: String,
    /// The resource (audience).
    pub resource: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// PKCE method as stored (only `S256` is valid; anything else fails closed, P6).
    pub code_challenge_method: Option<String>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Expiry.
    pub expires_at: i64,
    /// When it was redeemed (or burned).
    pub used_at: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// Whether the authorization request named `redirect_uri` (then the token request must
    /// repeat it: RFC 6749 §4.1.3, OAuth 2.1 §4.1.3).
    pub redirect_uri_sent: bool,
}

const COLS: &str = "code_hash, grant_id, client_id, redirect_uri, subject, scope, resource, code_challenge, code_challenge_method, auth_time, expires_at, used_at, created_at, redirect_uri_sent";

fn from_row(r: &Row) -> Result<CodeRow, StoreError> {
    Ok(CodeRow {
        code_hash: r.text(0)?,
        grant_id: r.text(1)?,
        client_id: r.text(2)?,
        redirect_uri: r.text(3)?,
        subject: r.text(4)?,
        scope: r.text(5)?,
        resource: r.opt_text(6)?,
        code_challenge: r.opt_text(7)?,
        code_challenge_method: r.opt_text(8)?,
        auth_time: r.int(9)?,
        expires_at: r.int(10)?,
        used_at: r.opt_int(11)?,
        created_at: r.int(12)?,
        redirect_uri_sent: r.int(13)? != 0,
    })
}

/// Stores a new code.
pub async fn insert(db: &dyn SqlStore, c: &CodeRow) -> Result<(), StoreError> {
    insert_bound(db, c, None).await
}

/// Stores a new code bound to the DPoP key thumbprint given as `dpop_jkt` at authorize
/// (RFC 9449 §10), if any.
pub async fn insert_bound(
    db: &dyn SqlStore,
    c: &CodeRow,
    dpop_jkt: Option<&str>,
) -> Result<(), StoreError> {
    db.execute(
        &format!(
            "INSERT INTO auth_codes ({COLS}, dpop_jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        &[
            c.code_hash.as_str().into(),
            c.grant_id.as_str().into(),
            c.client_id.as_str().into(),
            c.redirect_uri.as_str().into(),
            c.subject.as_str().into(),
            c.scope.as_str().into(),
            c.resource.clone().into(),
            c.code_challenge.clone().into(),
            c.code_challenge_method.clone().into(),
            c.auth_time.into(),
            c.expires_at.into(),
            c.used_at.into(),
            c.created_at.into(),
            c.redirect_uri_sent.into(),
            dpop_jkt.map(str::to_owned).into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Reads a code without changing it (validation happens before redemption so that failures
/// which must not burn the code, C5 and R6, leave it intact).
pub async fn get(db: &dyn SqlStore, code_hash: &str) -> Result<Option<CodeRow>, StoreError> {
    Ok(get_bound(db, code_hash).await?.map(|(c, _)| c))
}

/// Reads a code together with the DPoP key thumbprint it is bound to (RFC 9449 §10).
pub async fn get_bound(
    db: &dyn SqlStore,
    code_hash: &str,
) -> Result<Option<(CodeRow, Option<String>)>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS}, dpop_jkt FROM auth_codes WHERE code_hash = ?"),
            &[code_hash.into()],
        )
        .await?;
    rows.first()
        .map(|r| Ok((from_row(r)?, r.opt_text(14)?)))
        .transpose()
}

/// Marks the code used if, and only if, it is unused and unexpired. Exactly one of any
/// number of concurrent callers gets `true` (C1).
pub async fn redeem(db: &dyn SqlStore, code_hash: &str, now: i64) -> Result<bool, StoreError> {
    let rows = db
        .query(
            "UPDATE auth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING code_hash",
            &[now.into(), code_hash.into(), now.into()],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Deletes codes that expired before `before` (housekeeping).
pub async fn purge_expired(db: &dyn SqlStore, before: i64) -> Result<u64, StoreError> {
    db.execute(
        "DELETE FROM auth_codes WHERE expires_at < ?",
        &[before.into()],
    )
    .await
}
