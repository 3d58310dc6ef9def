//! Vault connections: a user's sealed upstream tokens for one provider, with the
//! single-flight refresh claim. Every transition is one conditional statement on the row's
//! `version` (DESIGN.md rule 4), so two instances or isolates refreshing the same connection
//! cannot both win, and a writer that lost its claim cannot overwrite the winner's tokens.
//! Pending connects (`connect_requests`) are consumed once.

use crate::store::{Row, SqlStore, StoreError, Value};

/// A stored connection. Token columns hold sealed values (`crate::vault::seal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRow {
    /// Connection id.
    pub id: String,
    /// The user.
    pub owner: String,
    /// The provider's name.
    pub provider: String,
    /// `active`, `needs_reauthorization` or `revoked`.
    pub state: String,
    /// Scopes granted upstream, space separated.
    pub scope: String,
    /// Sealed access token (empty once revoked).
    pub access_token: String,
    /// Sealed refresh token.
    pub refresh_token: Option<String>,
    /// When the access token expires.
    pub expires_at: Option<i64>,
    /// Until when a refresh is claimed (0: not claimed).
    pub claimed_until: i64,
    /// Bumped by every write of tokens or state.
    pub version: i64,
    /// First connected.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

const COLS: &str = "id, owner, provider, state, scope, access_token, refresh_token, expires_at, \
                    claimed_until, version, created_at, updated_at";

fn from_row(r: &Row) -> Result<ConnectionRow, StoreError> {
    Ok(ConnectionRow {
        id: r.text(0)?,
        owner: r.text(1)?,
        provider: r.text(2)?,
        state: r.text(3)?,
        scope: r.text(4)?,
        access_token: r.text(5)?,
        refresh_token: r.opt_text(6)?,
        expires_at: r.opt_int(7)?,
        claimed_until: r.int(8)?,
        version: r.int(9)?,
        created_at: r.int(10)?,
        updated_at: r.int(11)?,
    })
}

async fn one(
    db: &dyn SqlStore,
    filter: &str,
    params: &[Value],
) -> Result<Option<ConnectionRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS} FROM connections WHERE {filter}"),
            params,
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// The connection of `owner` to `provider`.
pub async fn get(
    db: &dyn SqlStore,
    owner: &str,
    provider: &str,
) -> Result<Option<ConnectionRow>, StoreError> {
    one(
        db,
        "owner = ? AND provider = ?",
        &[owner.into(), provider.into()],
    )
    .await
}

/// The connection with `id`.
pub async fn by_id(db: &dyn SqlStore, id: &str) -> Result<Option<ConnectionRow>, StoreError> {
    one(db, "id = ?", &[id.into()]).await
}

/// Connections, newest first, optionally of one user and/or one provider.
pub async fn list(
    db: &dyn SqlStore,
    owner: Option<&str>,
    provider: Option<&str>,
    limit: i64,
) -> Result<Vec<ConnectionRow>, StoreError> {
    let mut filter = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    if let Some(o) = owner {
        filter.push("owner = ?");
        params.push(o.into());
    }
    if let Some(p) = provider {
        filter.push("provider = ?");
        params.push(p.into());
    }
    let filter = if filter.is_empty() {
        "1 = 1".to_owned()
    } else {
        filter.join(" AND ")
    };
    params.push(limit.into());
    db.query(
        &format!(
            "SELECT {COLS} FROM connections WHERE {filter} ORDER BY updated_at DESC, id LIMIT ?"
        ),
        &params,
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Stores a completed connect: a new connection, or fresh tokens and `active` for the user's
/// existing connection to the provider (its id is kept).
pub async fn connect(db: &dyn SqlStore, c: &ConnectionRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO connections (id, owner, provider, state, scope, access_token, refresh_token, expires_at, \
         claimed_until, version, created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?, ?, ?, 0, 1, ?, ?) \
         ON CONFLICT (owner, provider) DO UPDATE SET state = 'active', scope = excluded.scope, \
         access_token = excluded.access_token, refresh_token = excluded.refresh_token, \
         expires_at = excluded.expires_at, claimed_until = 0, version = connections.version + 1, \
         updated_at = excluded.updated_at",
        &[
            c.id.as_str().into(),
            c.owner.as_str().into(),
            c.provider.as_str().into(),
            c.scope.as_str().into(),
            c.access_token.as_str().into(),
            c.refresh_token.clone().into(),
            c.expires_at.into(),
            c.created_at.into(),
            c.updated_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Claims the refresh of connection `id` as read at `version`, until `until`. Exactly one
/// of any number of concurrent callers that read the same version wins.
pub async fn claim_refresh(
    db: &dyn SqlStore,
    id: &str,
    version: i64,
    now: i64,
    until: i64,
) -> Result<bool, StoreError> {
    let n = db
        .execute(
            "UPDATE connections SET claimed_until = ? WHERE id = ? AND version = ? \
             AND state = 'active' AND claimed_until <= ?",
            &[until.into(), id.into(), version.into(), now.into()],
        )
        .await?;
    Ok(n == 1)
}

/// New tokens from a refresh by the claim holder (`version` as claimed). Keeps the old
/// refresh token when the provider sent none (`refresh_token: None`).
#[allow(clippy::too_many_arguments)]
pub async fn store_refreshed(
    db: &dyn SqlStore,
    id: &str,
    version: i64,
    access_token: &str,
    refresh_token: Option<&str>,
    expires_at: Option<i64>,
    scope: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let n = db
        .execute(
            "UPDATE connections SET access_token = ?, refresh_token = COALESCE(?, refresh_token), \
             expires_at = ?, scope = ?, claimed_until = 0, version = version + 1, updated_at = ? \
             WHERE id = ? AND version = ?",
            &[
                access_token.into(),
                refresh_token.map(str::to_owned).into(),
                expires_at.into(),
                scope.into(),
                now.into(),
                id.into(),
                version.into(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Lets go of a claim after a refresh failed for a transient reason.
pub async fn release_claim(db: &dyn SqlStore, id: &str, version: i64) -> Result<(), StoreError> {
    db.execute(
        "UPDATE connections SET claimed_until = 0 WHERE id = ? AND version = ?",
        &[id.into(), version.into()],
    )
    .await
    .map(|_| ())
}

/// Marks the connection `needs_reauthorization` (the provider refused its refresh token) and
/// forgets its tokens.
pub async fn needs_reauthorization(
    db: &dyn SqlStore,
    id: &str,
    version: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let n = db
        .execute(
            "UPDATE connections SET state = 'needs_reauthorization', access_token = '', refresh_token = NULL, \
             claimed_until = 0, version = version + 1, updated_at = ? WHERE id = ? AND version = ?",
            &[now.into(), id.into(), version.into()],
        )
        .await?;
    Ok(n == 1)
}

/// Revokes a connection (user or admin): its tokens are forgotten at once. Whether it was
/// not already revoked.
pub async fn revoke(db: &dyn SqlStore, id: &str, now: i64) -> Result<bool, StoreError> {
    let n = db
        .execute(
            "UPDATE connections SET state = 'revoked', access_token = '', refresh_token = NULL, \
             claimed_until = 0, version = version + 1, updated_at = ? WHERE id = ? AND state <> 'revoked'",
            &[now.into(), id.into()],
        )
        .await?;
    Ok(n == 1)
}

/// A pending connect: who started it, for which provider, with which PKCE verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// SHA-256 of the `state` sent to the provider.
    pub state_hash: String,
    /// The signed-in user who started it.
    pub owner: String,
    /// The provider.
    pub provider: String,
    /// The PKCE verifier (RFC 7636 §4.1).
    pub verifier: String,
    /// When it lapses.
    pub expires_at: i64,
}

/// Stores a pending connect.
pub async fn start_connect(db: &dyn SqlStore, r: &ConnectRequest) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO connect_requests (state_hash, owner, provider, verifier, expires_at) VALUES (?, ?, ?, ?, ?)",
        &[
            r.state_hash.as_str().into(),
            r.owner.as_str().into(),
            r.provider.as_str().into(),
            r.verifier.as_str().into(),
            r.expires_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Consumes the pending connect with `state_hash` (once; lapsed ones are not returned).
pub async fn consume_connect(
    db: &dyn SqlStore,
    state_hash: &str,
    now: i64,
) -> Result<Option<ConnectRequest>, StoreError> {
    let rows = db
        .query(
            "SELECT state_hash, owner, provider, verifier, expires_at FROM connect_requests WHERE state_hash = ?",
            &[state_hash.into()],
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let req = ConnectRequest {
        state_hash: r.text(0)?,
        owner: r.text(1)?,
        provider: r.text(2)?,
        verifier: r.text(3)?,
        expires_at: r.int(4)?,
    };
    let won = db
        .execute(
            "DELETE FROM connect_requests WHERE state_hash = ?",
            &[state_hash.into()],
        )
        .await?
        == 1;
    Ok((won && req.expires_at > now).then_some(req))
}
