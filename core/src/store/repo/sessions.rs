//! Browser login sessions at the authorization server. The cookie holds a random id; only
//! its hash is stored.

use crate::store::{SqlStore, StoreError};

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Hash of the session id.
    pub id_hash: String,
    /// The logged-in user.
    pub subject: String,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Expiry.
    pub expires_at: i64,
}

/// Stores a new session.
pub async fn insert(db: &dyn SqlStore, s: &SessionRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO sessions (id_hash, subject, auth_time, expires_at) VALUES (?, ?, ?, ?)",
        &[
            s.id_hash.as_str().into(),
            s.subject.as_str().into(),
            s.auth_time.into(),
            s.expires_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// A session that exists and has not expired at `now`.
pub async fn get_live(
    db: &dyn SqlStore,
    id_hash: &str,
    now: i64,
) -> Result<Option<SessionRow>, StoreError> {
    let rows = db
        .query(
            "SELECT id_hash, subject, auth_time, expires_at FROM sessions WHERE id_hash = ? AND expires_at > ?",
            &[id_hash.into(), now.into()],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(SessionRow {
                id_hash: r.text(0)?,
                subject: r.text(1)?,
                auth_time: r.int(2)?,
                expires_at: r.int(3)?,
            })
        })
        .transpose()
}

/// Ends a session (logout).
pub async fn delete(db: &dyn SqlStore, id_hash: &str) -> Result<(), StoreError> {
    db.execute("DELETE FROM sessions WHERE id_hash = ?", &[id_hash.into()])
        .await
        .map(|_| ())
}

/// A user's live sessions at `now`, newest sign-in first (at most `limit`).
pub async fn list_for_subject(
    db: &dyn SqlStore,
    subject: &str,
    now: i64,
    limit: i64,
) -> Result<Vec<SessionRow>, StoreError> {
    let rows = db
        .query(
            "SELECT id_hash, subject, auth_time, expires_at FROM sessions WHERE subject = ? AND expires_at > ? ORDER BY auth_time DESC, id_hash LIMIT ?",
            &[subject.into(), now.into(), limit.into()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SessionRow {
                id_hash: r.text(0)?,
                subject: r.text(1)?,
                auth_time: r.int(2)?,
                expires_at: r.int(3)?,
            })
        })
        .collect()
}

/// Ends one session of `subject`; returns whether it existed.
pub async fn delete_of_subject(
    db: &dyn SqlStore,
    subject: &str,
    id_hash: &str,
) -> Result<bool, StoreError> {
    Ok(db
        .execute(
            "DELETE FROM sessions WHERE subject = ? AND id_hash = ?",
            &[subject.into(), id_hash.into()],
        )
        .await?
        > 0)
}

/// Ends every session of a user (user deleted or disabled).
pub async fn delete_for_subject(db: &dyn SqlStore, subject: &str) -> Result<(), StoreError> {
    db.execute("DELETE FROM sessions WHERE subject = ?", &[subject.into()])
        .await
        .map(|_| ())
}
