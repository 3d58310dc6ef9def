//! OIDC connectors (their declaration as JSON and their client secret sealed at rest), pending
//! connector logins (single-use, keyed by the hash of `state`), and external identities: each
//! `(connector, subject)` pair linked to one local user.

use crate::store::{Row, SqlStore, StoreError};

/// A stored connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorRow {
    /// The connector's id (in its redirect URI).
    pub id: String,
    /// The declaration as JSON (`client_secret` never included).
    pub config: String,
    /// The client secret, sealed.
    pub client_secret: String,
    /// `seed` or `admin`.
    pub source: String,
    /// When it was stored.
    pub created_at: i64,
}

const CONNECTOR_COLS: &str = "id, config, client_secret, source, created_at";

fn connector(r: &Row) -> Result<ConnectorRow, StoreError> {
    Ok(ConnectorRow {
        id: r.text(0)?,
        config: r.text(1)?,
        client_secret: r.text(2)?,
        source: r.text(3)?,
        created_at: r.int(4)?,
    })
}

/// Creates or replaces a connector.
pub async fn put_connector(db: &dyn SqlStore, c: &ConnectorRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO connectors (id, config, client_secret, source, created_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET config = excluded.config, \
         client_secret = excluded.client_secret, source = excluded.source",
        &[
            c.id.as_str().into(),
            c.config.as_str().into(),
            c.client_secret.as_str().into(),
            c.source.as_str().into(),
            c.created_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// The connector `id`.
pub async fn get_connector(
    db: &dyn SqlStore,
    id: &str,
) -> Result<Option<ConnectorRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {CONNECTOR_COLS} FROM connectors WHERE id = ?"),
            &[id.into()],
        )
        .await?;
    rows.first().map(connector).transpose()
}

/// Every connector, by id.
pub async fn list_connectors(db: &dyn SqlStore) -> Result<Vec<ConnectorRow>, StoreError> {
    db.query(
        &format!("SELECT {CONNECTOR_COLS} FROM connectors ORDER BY id"),
        &[],
    )
    .await?
    .iter()
    .map(connector)
    .collect()
}

/// Deletes a connector, its identities and its pending logins; whether it existed.
pub async fn delete_connector(db: &dyn SqlStore, id: &str) -> Result<bool, StoreError> {
    let existed = get_connector(db, id).await?.is_some();
    db.batch(&[
        (
            "DELETE FROM connector_logins WHERE connector = ?".into(),
            vec![id.into()],
        ),
        (
            "DELETE FROM identities WHERE connector = ?".into(),
            vec![id.into()],
        ),
        (
            "DELETE FROM connectors WHERE id = ?".into(),
            vec![id.into()],
        ),
    ])
    .await?;
    Ok(existed)
}

/// A login started at a connector, waiting for its callback.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// Hash of the `state` sent to the IdP.
    pub state_hash: String,
    /// The connector.
    pub connector: String,
    /// Hash of the pending authorization request's handle.
    pub request_hash: String,
    /// Hash of the `nonce` sent to the IdP.
    pub nonce_hash: String,
    /// The PKCE verifier (RFC 7636), needed in clear for the token request.
    pub verifier: String,
    /// When it lapses.
    pub expires_at: i64,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("connector", &self.connector)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Stores a pending login.
pub async fn start_login(db: &dyn SqlStore, p: &PendingLogin) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO connector_logins (state_hash, connector, request_hash, nonce_hash, verifier, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            p.state_hash.as_str().into(),
            p.connector.as_str().into(),
            p.request_hash.as_str().into(),
            p.nonce_hash.as_str().into(),
            p.verifier.as_str().into(),
            p.expires_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Consumes the pending login of `state_hash`: the one caller whose delete removed the row
/// gets it, if it has not lapsed (a replayed callback gets nothing).
pub async fn consume_login(
    db: &dyn SqlStore,
    state_hash: &str,
    now: i64,
) -> Result<Option<PendingLogin>, StoreError> {
    let rows = db
        .query(
            "SELECT state_hash, connector, request_hash, nonce_hash, verifier, expires_at \
             FROM connector_logins WHERE state_hash = ?",
            &[state_hash.into()],
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let p = PendingLogin {
        state_hash: r.text(0)?,
        connector: r.text(1)?,
        request_hash: r.text(2)?,
        nonce_hash: r.text(3)?,
        verifier: r.text(4)?,
        expires_at: r.int(5)?,
    };
    let won = db
        .execute(
            "DELETE FROM connector_logins WHERE state_hash = ?",
            &[state_hash.into()],
        )
        .await?
        == 1;
    Ok((won && p.expires_at > now).then_some(p))
}

/// An external identity linked to a local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRow {
    /// The connector.
    pub connector: String,
    /// The IdP's subject (the mapped `subject` claim).
    pub subject: String,
    /// The local user's id.
    pub user_id: String,
    /// The email the IdP last asserted, if any.
    pub email: Option<String>,
    /// The groups the IdP last asserted.
    pub groups: Vec<String>,
    /// When it was linked.
    pub created_at: i64,
    /// The last login through it.
    pub last_login_at: i64,
}

const IDENTITY_COLS: &str = "connector, subject, user_id, email, created_at, last_login_at, groups";

fn identity(r: &Row) -> Result<IdentityRow, StoreError> {
    Ok(IdentityRow {
        connector: r.text(0)?,
        subject: r.text(1)?,
        user_id: r.text(2)?,
        email: r.opt_text(3)?,
        created_at: r.int(4)?,
        last_login_at: r.int(5)?,
        groups: serde_json::from_str(&r.text(6)?).unwrap_or_default(),
    })
}

fn groups_json(groups: &[String]) -> String {
    serde_json::to_string(groups).unwrap_or_else(|_| "[]".into())
}

/// The identity `(connector, subject)`.
pub async fn identity_get(
    db: &dyn SqlStore,
    connector: &str,
    subject: &str,
) -> Result<Option<IdentityRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {IDENTITY_COLS} FROM identities WHERE connector = ? AND subject = ?"),
            &[connector.into(), subject.into()],
        )
        .await?;
    rows.first().map(identity).transpose()
}

/// Links `(connector, subject)` to a user; [`StoreError::Conflict`] when it is linked already
/// (a concurrent first login won).
pub async fn identity_insert(db: &dyn SqlStore, i: &IdentityRow) -> Result<(), StoreError> {
    db.execute(
        &format!("INSERT INTO identities ({IDENTITY_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"),
        &[
            i.connector.as_str().into(),
            i.subject.as_str().into(),
            i.user_id.as_str().into(),
            i.email.as_deref().into(),
            i.created_at.into(),
            i.last_login_at.into(),
            groups_json(&i.groups).into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Records a login through an identity (and the email and groups the IdP asserted this time).
pub async fn identity_touch(
    db: &dyn SqlStore,
    connector: &str,
    subject: &str,
    email: Option<&str>,
    groups: &[String],
    now: i64,
) -> Result<(), StoreError> {
    db.execute(
        "UPDATE identities SET last_login_at = ?, email = ?, groups = ? WHERE connector = ? AND subject = ?",
        &[
            now.into(),
            email.into(),
            groups_json(groups).into(),
            connector.into(),
            subject.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Identities, optionally of one user or one connector, newest first.
pub async fn identity_list(
    db: &dyn SqlStore,
    user_id: Option<&str>,
    connector: Option<&str>,
    limit: i64,
) -> Result<Vec<IdentityRow>, StoreError> {
    let mut sql = format!("SELECT {IDENTITY_COLS} FROM identities WHERE 1 = 1");
    let mut params = Vec::new();
    if let Some(u) = user_id {
        sql.push_str(" AND user_id = ?");
        params.push(u.into());
    }
    if let Some(c) = connector {
        sql.push_str(" AND connector = ?");
        params.push(c.into());
    }
    sql.push_str(" ORDER BY created_at DESC, connector, subject LIMIT ?");
    params.push(limit.into());
    db.query(&sql, &params)
        .await?
        .iter()
        .map(identity)
        .collect()
}

/// Unlinks `(connector, subject)`; whether it was linked.
pub async fn identity_delete(
    db: &dyn SqlStore,
    connector: &str,
    subject: &str,
) -> Result<bool, StoreError> {
    Ok(db
        .execute(
            "DELETE FROM identities WHERE connector = ? AND subject = ?",
            &[connector.into(), subject.into()],
        )
        .await?
        > 0)
}
