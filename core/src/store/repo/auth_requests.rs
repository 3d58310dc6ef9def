//! Pending authorization requests: the validated parameters of `/oauth/authorize`, kept
//! server-side while the user logs in and consents, so nothing that matters round-trips
//! through the browser (R7). Bound to the browser session at consent and consumed once (H5).

use crate::store::{SqlStore, StoreError};

/// A pending request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequestRow {
    /// Hash of the request handle given to the browser.
    pub id_hash: String,
    /// The validated request, JSON.
    pub request: String,
    /// Hash of the session that may complete it (set once the user is logged in).
    pub session_hash: Option<String>,
    /// Expiry.
    pub expires_at: i64,
    /// When it was completed.
    pub consumed_at: Option<i64>,
    /// Creation time.
    pub created_at: i64,
}

/// Stores a pending request.
pub async fn insert(db: &dyn SqlStore, r: &AuthRequestRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO auth_requests (id_hash, request, session_hash, expires_at, consumed_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        &[
            r.id_hash.as_str().into(),
            r.request.as_str().into(),
            r.session_hash.clone().into(),
            r.expires_at.into(),
            r.consumed_at.into(),
            r.created_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// A live (unconsumed, unexpired) pending request.
pub async fn get_live(
    db: &dyn SqlStore,
    id_hash: &str,
    now: i64,
) -> Result<Option<AuthRequestRow>, StoreError> {
    let rows = db
        .query(
            "SELECT id_hash, request, session_hash, expires_at, consumed_at, created_at FROM auth_requests WHERE id_hash = ? AND consumed_at IS NULL AND expires_at > ?",
            &[id_hash.into(), now.into()],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(AuthRequestRow {
                id_hash: r.text(0)?,
                request: r.text(1)?,
                session_hash: r.opt_text(2)?,
                expires_at: r.int(3)?,
                consumed_at: r.opt_int(4)?,
                created_at: r.int(5)?,
            })
        })
        .transpose()
}

/// Binds a pending request to the session that logged in (only if not bound yet).
pub async fn bind_session(
    db: &dyn SqlStore,
    id_hash: &str,
    session_hash: &str,
) -> Result<bool, StoreError> {
    Ok(db
        .execute(
            "UPDATE auth_requests SET session_hash = ? WHERE id_hash = ? AND consumed_at IS NULL AND (session_hash IS NULL OR session_hash = ?)",
            &[session_hash.into(), id_hash.into(), session_hash.into()],
        )
        .await?
        > 0)
}

/// Consumes the request if, and only if, it is live and bound to `session_hash`. Exactly one
/// consent decision wins (H5).
pub async fn consume(
    db: &dyn SqlStore,
    id_hash: &str,
    session_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let rows = db
        .query(
            "UPDATE auth_requests SET consumed_at = ? WHERE id_hash = ? AND session_hash = ? AND consumed_at IS NULL AND expires_at > ? RETURNING id_hash",
            &[now.into(), id_hash.into(), session_hash.into(), now.into()],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Whom a pending request counts against (B3), and how many live requests each may hold
/// (0: no cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'a> {
    /// The client that asked.
    pub client_id: &'a str,
    /// Hash of the caller's address bucket (its /64 for IPv6); `None` when the host does
    /// not know the address (then only the client cap applies).
    pub ip_bucket: Option<&'a str>,
    /// Live requests one client may hold.
    pub max_per_client: u32,
    /// Live requests one address bucket may hold.
    pub max_per_ip: u32,
}

/// Stores a pending request unless its client or its address already holds its cap of live
/// (unconsumed, unexpired) requests; `false` when over a cap. The row is written first and
/// counted with the others, and removed again when over, so concurrent callers can only
/// fail closed: the live rows of one owner never exceed its cap for longer than a request.
pub async fn insert_capped(
    db: &dyn SqlStore,
    r: &AuthRequestRow,
    owner: &Owner<'_>,
    now: i64,
) -> Result<bool, StoreError> {
    db.execute(
        "INSERT INTO auth_requests (id_hash, request, session_hash, expires_at, consumed_at, created_at, client_id, ip_bucket) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            r.id_hash.as_str().into(),
            r.request.as_str().into(),
            r.session_hash.clone().into(),
            r.expires_at.into(),
            r.consumed_at.into(),
            r.created_at.into(),
            owner.client_id.into(),
            owner.ip_bucket.into(),
        ],
    )
    .await?;
    let over_client = owner.max_per_client > 0
        && live_count(db, "client_id", owner.client_id, now, owner.max_per_client).await?
            > i64::from(owner.max_per_client);
    let over_ip = match owner.ip_bucket {
        Some(ip) if !over_client && owner.max_per_ip > 0 => {
            live_count(db, "ip_bucket", ip, now, owner.max_per_ip).await?
                > i64::from(owner.max_per_ip)
        }
        _ => false,
    };
    if over_client || over_ip {
        db.execute(
            "DELETE FROM auth_requests WHERE id_hash = ?",
            &[r.id_hash.as_str().into()],
        )
        .await?;
        return Ok(false);
    }
    Ok(true)
}

/// Live requests of one owner, counted up to `cap + 1` (so the work stays bounded).
async fn live_count(
    db: &dyn SqlStore,
    column: &'static str,
    value: &str,
    now: i64,
    cap: u32,
) -> Result<i64, StoreError> {
    let sql = match column {
        "client_id" => "SELECT COUNT(*) FROM (SELECT 1 FROM auth_requests WHERE client_id = ? AND expires_at > ? AND consumed_at IS NULL LIMIT ?) AS live",
        _ => "SELECT COUNT(*) FROM (SELECT 1 FROM auth_requests WHERE ip_bucket = ? AND expires_at > ? AND consumed_at IS NULL LIMIT ?) AS live",
    };
    let rows = db
        .query(
            sql,
            &[value.into(), now.into(), (i64::from(cap) + 1).into()],
        )
        .await?;
    rows.first().map_or(Ok(0), |r| r.int(0))
}
