//! Purge decisions with a fixed clock (B1, B2) and the purge itself over the real schema in
//! in-memory SQLite.

use std::sync::Arc;

use super::*;
use crate::config::{Config, StorageConfig};
use crate::server::Portcullis;
use crate::store::repo::{access, replay, sessions};
use crate::store::test_store::{test_env_on, TestSql, TEST_NOW};

fn run_async<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

#[test]
fn plan_cutoffs_follow_the_clock_and_retention() {
    let cfg = StorageConfig::default();
    let plan = Plan::new(&cfg, TEST_NOW);
    assert_eq!(plan.cutoff(Table::AuthCodes), Some(TEST_NOW));
    assert_eq!(plan.cutoff(Table::ReplayCache), Some(TEST_NOW));
    assert_eq!(
        plan.cutoff(Table::AuditEvents),
        Some(TEST_NOW - 90 * 24 * 3600)
    );
    assert_eq!(plan.statements_per_table, 4, "42 statements over 9 tables");
    // Retention 0 keeps audit events forever; huge values do not overflow.
    let keep = StorageConfig {
        audit_retention_days: 0,
        ..cfg.clone()
    };
    assert_eq!(Plan::new(&keep, TEST_NOW).cutoff(Table::AuditEvents), None);
    let huge = StorageConfig {
        audit_retention_days: i64::MAX,
        purge_max_statements: 1,
        ..cfg
    };
    let p = Plan::new(&huge, TEST_NOW);
    assert_eq!(p.cutoff(Table::AuditEvents), Some(TEST_NOW - i64::MAX));
    assert_eq!(p.statements_per_table, 1);
}

#[test]
fn due_after_the_interval_or_a_clock_jump_back() {
    assert!(due(None, TEST_NOW, 600));
    assert!(!due(Some(TEST_NOW), TEST_NOW, 600));
    assert!(!due(Some(TEST_NOW), TEST_NOW + 599, 600));
    assert!(due(Some(TEST_NOW), TEST_NOW + 600, 600));
    assert!(due(Some(TEST_NOW + 50), TEST_NOW, 600));
}

async fn seed(db: &dyn SqlStore, now: i64) {
    for (id, exp) in [("dead", now), ("live", now + 1)] {
        sessions::insert(
            db,
            &sessions::SessionRow {
                id_hash: format!("s-{id}"),
                subject: "u".into(),
                auth_time: now - 10,
                expires_at: exp,
            },
        )
        .await
        .unwrap();
        replay::reserve(db, &format!("r-{id}"), exp, now - 10)
            .await
            .unwrap();
    }
    // An expired parent with a live child keeps its row (it carries the lineage's
    // revocation); an expired parent of an expired child goes.
    access::insert(db, "parent-kept", None, "c", now - 5, None)
        .await
        .unwrap();
    access::insert(db, "child-live", None, "c", now + 60, Some("parent-kept"))
        .await
        .unwrap();
    access::insert(db, "parent-gone", None, "c", now - 5, None)
        .await
        .unwrap();
    access::insert(db, "child-gone", None, "c", now - 1, Some("parent-gone"))
        .await
        .unwrap();
}

#[test]
fn purge_deletes_only_dead_rows_in_bounded_batches() {
    run_async(async {
        let db = TestSql::memory();
        crate::store::migrations::migrate(&db, 0).await.unwrap();
        seed(&db, TEST_NOW).await;
        for i in 0..5 {
            replay::reserve(&db, &format!("old-{i}"), TEST_NOW - 100, 0)
                .await
                .unwrap();
        }
        // Batches of two, one statement per table: not everything goes at once.
        let small = StorageConfig {
            purge_batch_size: 2,
            purge_max_statements: 7,
            ..StorageConfig::default()
        };
        let plan = Plan::new(&small, TEST_NOW);
        let first = purge(&db, &plan).await.unwrap();
        assert!(!first.complete);
        assert_eq!(first.deleted["replay_cache"], 2);
        let mut total = first.total();
        loop {
            let r = purge(&db, &plan).await.unwrap();
            total += r.total();
            if r.complete {
                break;
            }
        }
        // 1 session, 6 replay keys, 2 access rows.
        assert_eq!(total, 9);
        assert_eq!(repo::count(&db, Table::Sessions).await.unwrap(), 1);
        assert_eq!(repo::count(&db, Table::ReplayCache).await.unwrap(), 1);
        assert!(!access::is_revoked(&db, "child-live").await.unwrap());
        assert_eq!(
            access::grant_of(&db, "parent-kept").await.unwrap(),
            None::<String>
        );
        assert_eq!(access::lineage(&db, "child-live").await.unwrap().length, 2);
        assert_eq!(access::lineage(&db, "parent-gone").await.unwrap().length, 0);
        assert_eq!(repo::count(&db, Table::AccessTokens).await.unwrap(), 2);
        // Nothing left: a second full purge deletes nothing.
        let again = purge(&db, &plan).await.unwrap();
        assert_eq!((again.total(), again.complete), (0, true));
    });
}

#[test]
fn run_if_due_purges_once_per_interval() {
    run_async(async {
        let sql = Arc::new(TestSql::memory());
        let (env, clock) = test_env_on(sql.clone());
        let ctx = Portcullis::start(env, Config::default()).await.unwrap();
        let db = sql.as_ref();
        replay::reserve(db, "k1", TEST_NOW + 10, TEST_NOW)
            .await
            .unwrap();
        // First call: due (never run); nothing is expired yet.
        let r = run_if_due(&ctx).await.expect("first purge runs");
        assert_eq!(r.deleted["replay_cache"], 0);
        clock.advance(60);
        assert!(run_if_due(&ctx).await.is_none(), "not due within 600 s");
        assert_eq!(repo::count(db, Table::ReplayCache).await.unwrap(), 1);
        clock.advance(600);
        let r = run_if_due(&ctx).await.expect("due again");
        assert_eq!(r.deleted["replay_cache"], 1);
    });
}

#[test]
fn run_if_due_catches_up_on_a_backlog_after_one_second() {
    run_async(async {
        let sql = Arc::new(TestSql::memory());
        let (env, clock) = test_env_on(sql.clone());
        let mut cfg = Config::default();
        cfg.storage.purge_batch_size = 2;
        cfg.storage.purge_max_statements = 1;
        let ctx = Portcullis::start(env, cfg).await.unwrap();
        let db = sql.as_ref();
        for k in ["a", "b", "c", "d", "e"] {
            replay::reserve(db, k, TEST_NOW + 1, TEST_NOW)
                .await
                .unwrap();
        }
        clock.advance(5);
        // Five dead rows, two per purge: the backlog is worked off a second apart.
        let r = run_if_due(&ctx).await.expect("first purge runs");
        assert_eq!((r.deleted["replay_cache"], r.complete), (2, false));
        assert!(
            run_if_due(&ctx).await.is_none(),
            "not within the same second"
        );
        clock.advance(CATCH_UP_SECS);
        let r = run_if_due(&ctx)
            .await
            .expect("due again after the catch-up pause");
        assert_eq!((r.deleted["replay_cache"], r.complete), (2, false));
        clock.advance(CATCH_UP_SECS);
        let r = run_if_due(&ctx).await.expect("due again");
        assert_eq!((r.deleted["replay_cache"], r.complete), (1, true));
        // Nothing left: back to the whole interval.
        clock.advance(CATCH_UP_SECS);
        assert!(run_if_due(&ctx).await.is_none(), "a whole interval again");
    });
}

#[test]
fn the_next_purge_is_sooner_only_after_a_backlog() {
    let done = Report {
        complete: true,
        ..Report::default()
    };
    let backlog = Report::default();
    assert_eq!(next_purge_in(Some(&done), 600), 600);
    assert_eq!(next_purge_in(Some(&backlog), 600), CATCH_UP_SECS);
    assert_eq!(
        next_purge_in(None, 600),
        600,
        "a failed purge waits a whole interval"
    );
    assert_eq!(next_purge_in(Some(&backlog), 1), 1);
}
