//! End users who log in at the authorization endpoint. Passwords are argon2id hashes.

use crate::store::{SqlStore, StoreError};

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Stable subject identifier (`sub`).
    pub id: String,
    /// Login name.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Disabled users cannot log in.
    pub disabled: bool,
    /// Creation time.
    pub created_at: i64,
}

const COLS: &str = "id, username, password_hash, disabled, created_at";

fn from_row(r: &crate::store::Row) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: r.text(0)?,
        username: r.text(1)?,
        password_hash: r.text(2)?,
        disabled: r.int(3)? != 0,
        created_at: r.int(4)?,
    })
}

/// Inserts a user; a taken username is [`StoreError::Conflict`].
pub async fn insert(db: &dyn SqlStore, u: &UserRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO users (id, username, password_hash, disabled, created_at) VALUES (?, ?, ?, ?, ?)",
        &[
            u.id.as_str().into(),
            u.username.as_str().into(),
            u.password_hash.as_str().into(),
            u.disabled.into(),
            u.created_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Disables or enables a user; returns whether the user exists.
pub async fn set_disabled(
    db: &dyn SqlStore,
    username: &str,
    disabled: bool,
) -> Result<bool, StoreError> {
    Ok(db
        .execute(
            "UPDATE users SET disabled = ? WHERE username = ?",
            &[disabled.into(), username.into()],
        )
        .await?
        > 0)
}

/// Sets a user's password hash; returns whether the user exists.
pub async fn set_password(
    db: &dyn SqlStore,
    username: &str,
    hash: &str,
) -> Result<bool, StoreError> {
    Ok(db
        .execute(
            "UPDATE users SET password_hash = ? WHERE username = ?",
            &[hash.into(), username.into()],
        )
        .await?
        > 0)
}

/// Looks a user up by login name.
pub async fn by_username(db: &dyn SqlStore, username: &str) -> Result<Option<UserRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS} FROM users WHERE username = ?"),
            &[username.into()],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// Looks a user up by subject id.
pub async fn by_id(db: &dyn SqlStore, id: &str) -> Result<Option<UserRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS} FROM users WHERE id = ?"),
            &[id.into()],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// Lists users by name.
pub async fn list(db: &dyn SqlStore, limit: i64, offset: i64) -> Result<Vec<UserRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {COLS} FROM users ORDER BY username LIMIT ? OFFSET ?"),
            &[limit.into(), offset.into()],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// Deletes a user; returns whether it existed.
pub async fn delete(db: &dyn SqlStore, username: &str) -> Result<bool, StoreError> {
    Ok(db
        .execute("DELETE FROM users WHERE username = ?", &[username.into()])
        .await?
        > 0)
}
