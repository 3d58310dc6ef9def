//! Read-only counts for the Overview: clients by registration kind, users, active grants,
//! and tokens issued / requests denied per hour from the audit log (one grouped query over
//! the indexed `at` column). Plain SQL that SQLite, D1, Spin SQLite and PostgreSQL all run.

use crate::error::Result;
use crate::store::SqlStore;

/// Audit actions that issue an access token.
pub const ISSUING: &[&str] = &["token.issued", "token.exchanged", "token.jwt_bearer"];

/// `(registration kind, count)`, most first.
pub async fn clients_by_kind(db: &dyn SqlStore) -> Result<Vec<(String, i64)>> {
    let rows = db
        .query(
            "SELECT source, COUNT(*) FROM clients GROUP BY source ORDER BY 2 DESC",
            &[],
        )
        .await?;
    rows.iter().map(|r| Ok((r.text(0)?, r.int(1)?))).collect()
}

async fn count(db: &dyn SqlStore, sql: &str) -> Result<i64> {
    let rows = db.query(sql, &[]).await?;
    Ok(match rows.first() {
        Some(r) => r.int(0)?,
        None => 0,
    })
}

/// `(users, disabled users)`.
pub async fn users(db: &dyn SqlStore) -> Result<(i64, i64)> {
    Ok((
        count(db, "SELECT COUNT(*) FROM users").await?,
        count(db, "SELECT COUNT(*) FROM users WHERE disabled <> 0").await?,
    ))
}

/// Grants not revoked.
pub async fn active_grants(db: &dyn SqlStore) -> Result<i64> {
    count(db, "SELECT COUNT(*) FROM grants WHERE revoked_at IS NULL").await
}

/// Per hour for the `hours` hours ending with the current one (oldest first):
/// `(hour start, tokens issued, requests denied)`.
pub async fn hourly(db: &dyn SqlStore, now: i64, hours: i64) -> Result<Vec<(i64, i64, i64)>> {
    let first = now.div_euclid(3600) - (hours - 1);
    let rows = db
        .query(
            "SELECT at / 3600, action, outcome, COUNT(*) FROM audit_events WHERE at >= ? \
             GROUP BY 1, 2, 3",
            &[(first * 3600).into()],
        )
        .await?;
    let mut out: Vec<(i64, i64, i64)> = (0..hours).map(|i| ((first + i) * 3600, 0, 0)).collect();
    for r in &rows {
        let (hour, action, outcome, n) = (r.int(0)?, r.text(1)?, r.text(2)?, r.int(3)?);
        let Some(slot) = usize::try_from(hour - first)
            .ok()
            .and_then(|i| out.get_mut(i))
        else {
            continue;
        };
        if outcome == "failure" {
            slot.2 += n;
        } else if ISSUING.contains(&action.as_str()) {
            slot.1 += n;
        }
    }
    Ok(out)
}
