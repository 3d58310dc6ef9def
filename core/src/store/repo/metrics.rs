//! Counters derived from the audit log (the system of record), so that every replica and
//! every edge isolate reports the same totals. Rows older than a grace period are folded into
//! `metric_counters` (one row per action, outcome, reason and label) by whoever scrapes or
//! runs maintenance; a scrape reads the folded totals plus the rows not folded yet in one
//! statement, so it sees one consistent snapshot. Purging audit rows never lowers a counter:
//! maintenance folds first, and purge deletes only folded rows.

use crate::store::{Row, SqlStore, StoreError, Value};

/// One group of audit rows: what happened, how, why, under which label, how many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// The audit action (`token.issued`).
    pub action: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// The reason (an error code), empty when none.
    pub reason: String,
    /// The event's metric label (grant type, provider), empty when none.
    pub label: String,
    /// How many rows.
    pub count: i64,
}

fn tally(r: &Row) -> Result<Tally, StoreError> {
    Ok(Tally {
        action: r.text(0)?,
        outcome: r.text(1)?,
        reason: r.text(2)?,
        label: r.text(3)?,
        count: r.int(4)?,
    })
}

const GROUP_COLUMNS: &str = "action, outcome, COALESCE(reason, ''), COALESCE(label, '')";

/// Every counter: folded totals plus the rows not yet folded, read in one statement.
pub async fn totals(db: &dyn SqlStore) -> Result<Vec<Tally>, StoreError> {
    let sql = format!(
        "SELECT action, outcome, reason, label, CAST(SUM(n) AS BIGINT) FROM ( \
           SELECT action, outcome, reason, label, value AS n FROM metric_counters \
           UNION ALL \
           SELECT {GROUP_COLUMNS}, COUNT(*) FROM audit_events \
             WHERE seq > (SELECT folded_seq FROM metric_fold WHERE id = 1) \
             GROUP BY 1, 2, 3, 4 \
         ) t GROUP BY 1, 2, 3, 4"
    );
    db.query(&sql, &[]).await?.iter().map(tally).collect()
}

/// The last folded audit sequence number.
pub async fn folded_seq(db: &dyn SqlStore) -> Result<i64, StoreError> {
    let rows = db
        .query("SELECT folded_seq FROM metric_fold WHERE id = 1", &[])
        .await?;
    rows.first().map_or(Ok(0), |r| r.int(0))
}

async fn optional_int(
    db: &dyn SqlStore,
    sql: &str,
    params: &[Value],
) -> Result<Option<i64>, StoreError> {
    let rows = db.query(sql, params).await?;
    match rows.first() {
        Some(r) if !matches!(r.0.first(), Some(Value::Null) | None) => Ok(Some(r.int(0)?)),
        _ => Ok(None),
    }
}

/// What one [`fold`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folded {
    /// Rows up to this sequence number are now in `metric_counters`.
    Through(i64),
    /// Nothing older than the grace period was left to fold.
    Nothing,
    /// Another fold changed the state meanwhile (ours may or may not have counted; no row
    /// is ever counted twice).
    Contended,
}

/// Folds at most `max_rows` audit rows written before `before` (and after the last fold)
/// into the counters, in one transaction guarded by `fold_id` (a fresh random value): if two
/// folds race, the second one's updates match nothing. Only a contiguous run of rows is
/// folded, so a row is never skipped because a later one was older.
pub async fn fold(
    db: &dyn SqlStore,
    before: i64,
    max_rows: i64,
    fold_id: &str,
) -> Result<Folded, StoreError> {
    let from = folded_seq(db).await?;
    let first_recent = optional_int(
        db,
        "SELECT MIN(seq) FROM audit_events WHERE seq > ? AND at >= ?",
        &[from.into(), before.into()],
    )
    .await?;
    let last = match first_recent {
        Some(seq) => seq - 1,
        None => optional_int(db, "SELECT MAX(seq) FROM audit_events", &[])
            .await?
            .unwrap_or(from),
    };
    let through = last.min(from.saturating_add(max_rows));
    if through <= from {
        return Ok(Folded::Nothing);
    }
    let groups = db
        .query(
            &format!(
                "SELECT {GROUP_COLUMNS}, COUNT(*) FROM audit_events \
                 WHERE seq > ? AND seq <= ? GROUP BY 1, 2, 3, 4"
            ),
            &[from.into(), through.into()],
        )
        .await?
        .iter()
        .map(tally)
        .collect::<Result<Vec<_>, _>>()?;
    let mut batch: Vec<(String, Vec<Value>)> = vec![(
        "UPDATE metric_fold SET folded_seq = ?, fold_id = ? WHERE id = 1 AND folded_seq = ?".into(),
        vec![through.into(), fold_id.into(), from.into()],
    )];
    for g in &groups {
        let key: Vec<Value> = vec![
            g.action.as_str().into(),
            g.outcome.as_str().into(),
            g.reason.as_str().into(),
            g.label.as_str().into(),
        ];
        batch.push((
            "INSERT INTO metric_counters (action, outcome, reason, label, value) \
             VALUES (?, ?, ?, ?, 0) ON CONFLICT (action, outcome, reason, label) DO NOTHING"
                .into(),
            key.clone(),
        ));
        let mut params = vec![g.count.into()];
        params.extend(key);
        params.push(fold_id.into());
        batch.push((
            "UPDATE metric_counters SET value = value + ? \
             WHERE action = ? AND outcome = ? AND reason = ? AND label = ? \
             AND (SELECT fold_id FROM metric_fold WHERE id = 1) = ?"
                .into(),
            params,
        ));
    }
    db.batch(&batch).await?;
    Ok(
        if folded_seq(db).await? >= through && won(db, fold_id).await? {
            Folded::Through(through)
        } else {
            Folded::Contended
        },
    )
}

async fn won(db: &dyn SqlStore, fold_id: &str) -> Result<bool, StoreError> {
    let rows = db
        .query(
            "SELECT COUNT(*) FROM metric_fold WHERE id = 1 AND fold_id = ?",
            &[fold_id.into()],
        )
        .await?;
    Ok(rows.first().map_or(Ok(0), |r| r.int(0))? > 0)
}
