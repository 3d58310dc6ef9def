//! The metric counters folded from the audit log (`store::repo::metrics`): racing folds
//! count each row once, rows inside the grace period are read live, and purging folded rows
//! never lowers a counter.

use portcullis_core::store::repo::audit::{self, AuditRow};
use portcullis_core::store::repo::maintenance::{delete_batch, Table};
use portcullis_core::store::repo::metrics::{self, Tally};

use super::{setup, uid, Store, NOW};

/// A `before` later than every row of the suite (and within what D1 binds exactly).
const FAR: i64 = 4_000_000_000;

/// When these cases' old audit rows were written: older than any other case's, so that
/// purging below [`OLD`]` + 100` deletes only them while other cases share the database.
const OLD: i64 = 500_000_000;

/// Deletes audit rows before `cutoff` the way the purge does (folded rows only).
async fn purge_audit_before(store: &Store, cutoff: i64) {
    while delete_batch(store.as_ref(), Table::AuditEvents, cutoff, 100)
        .await
        .unwrap()
        == 100
    {}
}

async fn insert(store: &Store, action: &str, outcome: &str, label: Option<&str>, at: i64) {
    let row = AuditRow {
        seq: 0,
        at,
        action: action.to_owned(),
        outcome: outcome.to_owned(),
        client_id: None,
        subject: None,
        reason: (outcome == "failure").then(|| "invalid_grant".to_owned()),
        request_id: None,
        trace_id: None,
        detail: None,
        label: label.map(str::to_owned),
    };
    audit::insert(store.as_ref(), &row).await.unwrap();
}

/// The counts of `action` in the totals: `(outcome, label) → count`.
async fn counts(store: &Store, action: &str) -> Vec<(String, String, i64)> {
    let mut out: Vec<(String, String, i64)> = metrics::totals(store.as_ref())
        .await
        .unwrap()
        .into_iter()
        .filter(|t: &Tally| t.action == action)
        .map(|t| (t.outcome, t.label, t.count))
        .collect();
    out.sort();
    out
}

pub async fn metric_counters_count_each_audit_row_once(store: Store) {
    setup(&store).await;
    let action = uid("metric.action");
    for i in 0..20 {
        let outcome = if i % 4 == 0 { "failure" } else { "success" };
        insert(
            &store,
            &action,
            outcome,
            Some("client_credentials"),
            OLD + i,
        )
        .await;
    }
    for _ in 0..3 {
        insert(&store, &action, "success", None, NOW).await;
    }
    let want = vec![
        ("failure".to_owned(), "client_credentials".to_owned(), 5),
        ("success".to_owned(), String::new(), 3),
        ("success".to_owned(), "client_credentials".to_owned(), 15),
    ];
    // Read live (or folded by another case sharing the database): the totals are right.
    assert_eq!(counts(&store, &action).await, want);

    // Eight folds race over the same rows: each row is counted once, whichever fold wins.
    let folds: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let id = uid(&format!("fold-{i}"));
            tokio::spawn(async move { metrics::fold(store.as_ref(), FAR, 1_000_000, &id).await })
        })
        .collect();
    for f in folds {
        f.await.unwrap().unwrap();
    }
    assert_eq!(counts(&store, &action).await, want, "after racing folds");
    let folded = metrics::folded_seq(store.as_ref()).await.unwrap();
    assert!(folded > 0);

    // Purging the old rows keeps the counts.
    purge_audit_before(&store, OLD + 100).await;
    assert_eq!(counts(&store, &action).await, want, "after the purge");

    // Rows inside the grace period are read live, then folded; the totals agree throughout.
    for _ in 0..2 {
        insert(&store, &action, "success", None, NOW).await;
    }
    let mut want = want;
    want[1].2 += 2;
    assert_eq!(counts(&store, &action).await, want, "recent rows read live");
    metrics::fold(store.as_ref(), NOW - 60, 1_000_000, &uid("fold-grace"))
        .await
        .unwrap();
    assert_eq!(
        counts(&store, &action).await,
        want,
        "after a fold inside the grace"
    );
    metrics::fold(store.as_ref(), FAR, 1_000_000, &uid("fold-late"))
        .await
        .unwrap();
    assert_eq!(counts(&store, &action).await, want, "after the last fold");
}

pub async fn audit_rows_not_yet_folded_are_never_purged(store: Store) {
    setup(&store).await;
    let action = uid("metric.unfolded");
    let before = metrics::folded_seq(store.as_ref()).await.unwrap();
    insert(&store, &action, "success", None, OLD - 1_000).await;
    purge_audit_before(&store, OLD - 900).await;
    // Unless another case folded meanwhile (cases share a database), the row is still here.
    if metrics::folded_seq(store.as_ref()).await.unwrap() == before {
        let live = audit::list(
            store.as_ref(),
            &audit::AuditFilter {
                action: Some(action.clone()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(live.len(), 1, "the unfolded row survives the purge");
    }
    assert_eq!(
        counts(&store, &action)
            .await
            .iter()
            .map(|c| c.2)
            .sum::<i64>(),
        1,
        "counted once, folded or not"
    );
}
