//! Housekeeping deletes that keep storage bounded: rows of the short-lived tables that are
//! past their expiry, and audit events older than the retention cutoff. Each call deletes at
//! most `limit` rows with one `DELETE … WHERE key IN (SELECT key … LIMIT ?)`, a statement
//! SQLite, D1, Spin SQLite and PostgreSQL all accept, so no backend ever runs an unbounded
//! delete. What is purged when is decided in [`crate::maintenance`].

use crate::store::{SqlStore, StoreError, Value};

/// A table the purge empties of dead rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Pending authorization requests (consumed ones go at their expiry too).
    AuthRequests,
    /// Authorization codes, used or not.
    AuthCodes,
    /// Browser sessions.
    Sessions,
    /// Refresh tokens: a consumed token is kept until its own expiry, because presenting it
    /// again before then is how reuse is detected (F1–F3).
    RefreshTokens,
    /// Access token records, except one that a live token was exchanged from (its row
    /// carries the revocation of the whole lineage).
    AccessTokens,
    /// Reserved DPoP and assertion `jti`s.
    ReplayCache,
    /// Throttle, rate-limit and quota counters whose window ended.
    Counters,
    /// Vault connects that were started and never came back.
    ConnectRequests,
    /// Sign-ins through an OIDC connector that were started and never came back.
    ConnectorLogins,
    /// Audit events (the cutoff is the retention limit, not an expiry).
    AuditEvents,
}

impl Table {
    /// Every purged table, in purge order.
    pub const ALL: [Table; 10] = [
        Table::AuthRequests,
        Table::AuthCodes,
        Table::Sessions,
        Table::RefreshTokens,
        Table::AccessTokens,
        Table::ReplayCache,
        Table::Counters,
        Table::ConnectRequests,
        Table::ConnectorLogins,
        Table::AuditEvents,
    ];

    /// The SQL table name.
    pub fn name(self) -> &'static str {
        match self {
            Table::AuthRequests => "auth_requests",
            Table::AuthCodes => "auth_codes",
            Table::Sessions => "sessions",
            Table::RefreshTokens => "refresh_tokens",
            Table::AccessTokens => "access_tokens",
            Table::ReplayCache => "replay_cache",
            Table::Counters => "counters",
            Table::ConnectRequests => "connect_requests",
            Table::ConnectorLogins => "connector_logins",
            Table::AuditEvents => "audit_events",
        }
    }

    /// The bounded delete; parameters are the cutoff (as often as it appears) and the limit.
    fn delete_sql(self) -> &'static str {
        match self {
            Table::AuthRequests => "DELETE FROM auth_requests WHERE id_hash IN (SELECT id_hash FROM auth_requests WHERE expires_at <= ? LIMIT ?)",
            Table::AuthCodes => "DELETE FROM auth_codes WHERE code_hash IN (SELECT code_hash FROM auth_codes WHERE expires_at <= ? LIMIT ?)",
            Table::Sessions => "DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE expires_at <= ? LIMIT ?)",
            Table::RefreshTokens => "DELETE FROM refresh_tokens WHERE token_hash IN (SELECT token_hash FROM refresh_tokens WHERE expires_at <= ? LIMIT ?)",
            Table::AccessTokens => "DELETE FROM access_tokens WHERE jti IN (SELECT a.jti FROM access_tokens a WHERE a.expires_at <= ? AND NOT EXISTS (SELECT 1 FROM access_tokens c WHERE c.parent_jti = a.jti AND c.expires_at > ?) LIMIT ?)",
            Table::ReplayCache => "DELETE FROM replay_cache WHERE key IN (SELECT key FROM replay_cache WHERE expires_at <= ? LIMIT ?)",
            Table::Counters => "DELETE FROM counters WHERE key IN (SELECT key FROM counters WHERE expires_at <= ? LIMIT ?)",
            Table::ConnectRequests => "DELETE FROM connect_requests WHERE state_hash IN (SELECT state_hash FROM connect_requests WHERE expires_at <= ? LIMIT ?)",
            Table::ConnectorLogins => "DELETE FROM connector_logins WHERE state_hash IN (SELECT state_hash FROM connector_logins WHERE expires_at <= ? LIMIT ?)",
            Table::AuditEvents => "DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events WHERE at < ? AND seq <= (SELECT folded_seq FROM metric_fold WHERE id = 1) ORDER BY seq LIMIT ?)",
        }
    }
}

/// Deletes at most `limit` dead rows of `table`: rows expired at `cutoff` (expiry at or
/// before it), or for [`Table::AuditEvents`] events recorded before it. Returns how many.
pub async fn delete_batch(
    db: &dyn SqlStore,
    table: Table,
    cutoff: i64,
    limit: i64,
) -> Result<u64, StoreError> {
    let sql = table.delete_sql();
    let mut params: Vec<Value> = vec![cutoff.into()];
    if table == Table::AccessTokens {
        params.push(cutoff.into());
    }
    params.push(limit.max(1).into());
    db.execute(sql, &params).await
}

/// Rows of `table` (for tests and the operator's `maintenance` report).
pub async fn count(db: &dyn SqlStore, table: Table) -> Result<i64, StoreError> {
    let sql = match table {
        Table::AuthRequests => "SELECT COUNT(*) FROM auth_requests",
        Table::AuthCodes => "SELECT COUNT(*) FROM auth_codes",
        Table::Sessions => "SELECT COUNT(*) FROM sessions",
        Table::RefreshTokens => "SELECT COUNT(*) FROM refresh_tokens",
        Table::AccessTokens => "SELECT COUNT(*) FROM access_tokens",
        Table::ReplayCache => "SELECT COUNT(*) FROM replay_cache",
        Table::Counters => "SELECT COUNT(*) FROM counters",
        Table::ConnectRequests => "SELECT COUNT(*) FROM connect_requests",
        Table::ConnectorLogins => "SELECT COUNT(*) FROM connector_logins",
        Table::AuditEvents => "SELECT COUNT(*) FROM audit_events",
    };
    let rows = db.query(sql, &[]).await?;
    rows.first().map_or(Ok(0), |r| r.int(0))
}
