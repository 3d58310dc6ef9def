//! Bounded storage (docs/security.md, B1/B2): the purge of expired rows and
//! of audit events past retention (once folded into the metric counters), the same on every
//! backend. What to delete is decided by
//! plain functions over values ([`Plan::new`], [`Plan::cutoff`], [`due`]); [`purge`] is the
//! one place that does the deletes, in bounded batches. Hosts run it on their own schedule:
//! the native host's periodic task and `portcullis maintenance`, the Worker's cron trigger,
//! and on Spin [`run_if_due`] after a request.

pub mod rekey;

use std::collections::BTreeMap;

use crate::config::StorageConfig;
use crate::context::Context;
use crate::store::repo::maintenance::{self as repo, Table};
use crate::store::{SqlStore, StoreError};

/// Seconds in a day.
const DAY: i64 = 24 * 3600;

/// Seconds before the next purge while a purge leaves dead rows behind (a backlog), instead
/// of `storage.purge_interval_secs`.
pub const CATCH_UP_SECS: i64 = 1;

/// The cache key remembering when the last amortised purge started.
const LAST_RUN_KEY: &str = "maintenance:last_run";

/// What one purge deletes and how much work it may do: the decision, without effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Rows that expired at or before this time are dead.
    pub now: i64,
    /// Audit events recorded before this time are past retention (`None`: keep forever).
    pub audit_before: Option<i64>,
    /// Rows one statement deletes at most.
    pub batch_size: i64,
    /// Statements each table gets at most in this purge (at least one).
    pub statements_per_table: i64,
}

impl Plan {
    /// The purge due at `now` under `cfg`.
    pub fn new(cfg: &StorageConfig, now: i64) -> Self {
        let tables = Table::ALL.len() as i64;
        Self {
            now,
            audit_before: (cfg.audit_retention_days > 0)
                .then(|| now.saturating_sub(cfg.audit_retention_days.saturating_mul(DAY))),
            batch_size: cfg.purge_batch_size.max(1),
            statements_per_table: (cfg.purge_max_statements / tables).max(1),
        }
    }

    /// The cutoff of `table` (`None`: nothing of it is purged).
    pub fn cutoff(&self, table: Table) -> Option<i64> {
        match table {
            Table::AuditEvents => self.audit_before,
            _ => Some(self.now),
        }
    }
}

/// Whether an amortised purge is due: never run, or the last one started `interval` seconds
/// ago or more (a clock that went backwards counts as due, so a purge is never stuck).
pub fn due(last_run: Option<i64>, now: i64, interval: i64) -> bool {
    match last_run {
        None => true,
        Some(last) => now < last || now - last >= interval,
    }
}

/// What a purge deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Rows deleted per table name.
    pub deleted: BTreeMap<&'static str, u64>,
    /// `false` when some table still had dead rows when its statement budget ran out (the
    /// next purge carries on).
    pub complete: bool,
}

impl Report {
    /// Rows deleted in all tables.
    pub fn total(&self) -> u64 {
        self.deleted.values().sum()
    }
}

/// Deletes what `plan` says is dead, table by table, each in at most
/// `plan.statements_per_table` statements of at most `plan.batch_size` rows.
pub async fn purge(db: &dyn SqlStore, plan: &Plan) -> Result<Report, StoreError> {
    let mut report = Report {
        complete: true,
        ..Report::default()
    };
    for table in Table::ALL {
        let mut deleted = 0;
        if let Some(cutoff) = plan.cutoff(table) {
            let mut statements = 0;
            loop {
                // Between two deletes the writer is free: requests waiting for it go first
                // (one delete holds it for milliseconds on a large table, a whole purge for
                // far longer).
                yield_now().await;
                let n = repo::delete_batch(db, table, cutoff, plan.batch_size).await?;
                deleted += n;
                statements += 1;
                if n < plan.batch_size as u64 {
                    break;
                }
                if statements >= plan.statements_per_table {
                    report.complete = false;
                    break;
                }
            }
        }
        report.deleted.insert(table.name(), deleted);
    }
    Ok(report)
}

/// Seconds until the next purge after one that ended with `report`: the catch-up pause
/// ([`CATCH_UP_SECS`]) while it left dead rows behind, else the whole `interval`. The one
/// schedule decision for every host that schedules purges (the native task, [`run_if_due`]).
pub fn next_purge_in(report: Option<&Report>, interval: i64) -> i64 {
    match report {
        Some(r) if !r.complete => CATCH_UP_SECS.min(interval),
        _ => interval,
    }
}

/// Returns to the host's scheduler once, so that other tasks run before the caller goes on
/// (runtime-agnostic: the future wakes itself and is ready on its second poll).
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// Most folds of audit rows into the metric counters one run makes before purging
/// (each of [`crate::metrics::FOLD_ROWS_PER_SCRAPE`] rows at most).
const FOLDS_PER_RUN: usize = 16;

/// Runs one purge now, with the server's configuration and clock. Audit rows are first
/// folded into the metric counters ([`crate::metrics::fold`]): the purge deletes only
/// folded rows, so no counter ever goes down.
pub async fn run(ctx: &Context) -> Result<Report, StoreError> {
    for _ in 0..FOLDS_PER_RUN {
        match crate::metrics::fold(ctx, crate::metrics::FOLD_ROWS_PER_SCRAPE).await {
            Ok(crate::store::repo::metrics::Folded::Through(_)) => continue,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, "metric counters not folded");
                break;
            }
        }
    }
    let plan = Plan::new(&ctx.config().storage, ctx.now());
    let report = purge(ctx.env().sql.as_ref(), &plan).await?;
    tracing::info!(
        deleted = report.total(),
        complete = report.complete,
        "storage purge"
    );
    Ok(report)
}

/// For hosts without a scheduler (Spin): runs a purge when the last one, as remembered in
/// the cache, started `storage.purge_interval_secs` ago or more. The start is written to
/// the cache before the purge, so concurrent requests rarely both run it (and if they do,
/// the deletes are idempotent). Failures are logged, never returned: the request that
/// carried the purge has its answer already.
pub async fn run_if_due(ctx: &Context) -> Option<Report> {
    let kv = ctx.env().kv.as_ref();
    let now = ctx.now();
    let interval = ctx.config().storage.purge_interval_secs;
    let last = match kv.get(LAST_RUN_KEY, now).await {
        Ok(v) => v
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<i64>().ok()),
        Err(e) => {
            tracing::warn!(error = %e, "purge schedule unavailable");
            return None;
        }
    };
    if !due(last, now, interval) {
        return None;
    }
    // Remembered a little longer than the interval, so the entry outlives the wait.
    let remember_until = now.saturating_add(interval.saturating_mul(2));
    if let Err(e) = kv
        .put(LAST_RUN_KEY, now.to_string().into_bytes(), remember_until)
        .await
    {
        tracing::warn!(error = %e, "purge schedule unavailable");
        return None;
    }
    match run(ctx).await {
        Ok(report) => {
            let wait = next_purge_in(Some(&report), interval);
            if wait < interval {
                // A backlog is left: due again after `wait`, not a whole interval.
                let sooner = now.saturating_sub(interval).saturating_add(wait);
                if let Err(e) = kv
                    .put(
                        LAST_RUN_KEY,
                        sooner.to_string().into_bytes(),
                        remember_until,
                    )
                    .await
                {
                    tracing::warn!(error = %e, "purge schedule unavailable");
                }
            }
            Some(report)
        }
        Err(e) => {
            tracing::warn!(error = %e, "storage purge failed");
            None
        }
    }
}

#[cfg(test)]
mod tests;
