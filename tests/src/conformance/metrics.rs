//! The metric counters folded from the audit log (`store::repo::metrics`): racing folds
//! count each row once, rows inside the grace period are read live, and purging folded rows
//! never lowers a counter.

use portcullis_core::config::StorageConfig;
use portcullis_core::maintenance::{purge, Plan};
use portcullis_core::store::repo::audit::{self, AuditRow};
use portcullis_core::store::repo::metrics::{self, Tally};

use super::{setup, uid, Store, NOW};

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
    let day = 24 * 3600;
    for i in 0..20 {
        let outcome = if i % 4 == 0 { "failure" } else { "success" };
        insert(
            &store,
            &action,
            outcome,
            Some("client_credentials"),
            NOW - 200 * day + i,
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
    // Before any fold, everything is read live.
    assert_eq!(counts(&store, &action).await, want);

    // Eight folds race over the same rows (rows at NOW stay inside the grace period): each
    // row is counted once, whichever fold wins.
    let folds = (0..8).map(|i| {
        let store = store.clone();
        let id = uid(&format!("fold-{i}"));
        tokio::spawn(async move { metrics::fold(store.as_ref(), NOW - 60, 1_000_000, &id).await })
    });
    for f in folds {
        f.await.unwrap().unwrap();
    }
    assert_eq!(counts(&store, &action).await, want, "after racing folds");
    let folded = metrics::folded_seq(store.as_ref()).await.unwrap();
    assert!(folded > 0);

    // Purging the old rows (past a 90-day retention) keeps the counts.
    let plan = Plan::new(&StorageConfig::default(), NOW);
    for _ in 0..1000 {
        if purge(store.as_ref(), &plan).await.unwrap().complete {
            break;
        }
    }
    assert_eq!(counts(&store, &action).await, want, "after the purge");

    // A later fold takes the recent rows too; the totals still agree.
    metrics::fold(store.as_ref(), i64::MAX, 1_000_000, &uid("fold-late"))
        .await
        .unwrap();
    assert_eq!(counts(&store, &action).await, want, "after the last fold");
}

pub async fn audit_rows_not_yet_folded_are_never_purged(store: Store) {
    setup(&store).await;
    let action = uid("metric.unfolded");
    let before = metrics::folded_seq(store.as_ref()).await.unwrap();
    insert(&store, &action, "success", None, NOW - 400 * 24 * 3600).await;
    let plan = Plan::new(&StorageConfig::default(), NOW);
    for _ in 0..1000 {
        if purge(store.as_ref(), &plan).await.unwrap().complete {
            break;
        }
    }
    // Unless another case folded meanwhile (cases share a database), the row is still here.
    if metrics::folded_seq(store.as_ref()).await.unwrap() == before {
        assert_eq!(
            counts(&store, &action).await.len(),
            1,
            "the unfolded row survives"
        );
    }
    assert_eq!(
        counts(&store, &action)
            .await
            .iter()
            .map(|c| c.2)
            .sum::<i64>(),
        1,
        "counted once whether folded or not"
    );
}
