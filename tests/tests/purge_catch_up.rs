//! The native host's periodic purge (docs/operations.md, "Bounded storage"): `portcullis
//! serve` purges every `storage.purge_interval_secs`, and a purge that leaves dead rows
//! behind runs again one second later until the backlog is gone, so the purge keeps up with
//! any write rate instead of removing a fixed number of rows per interval.
//!
//! The store starts with 300 expired `jti` reservations; each purge may delete 50 of them
//! (one statement of 50 rows per table). With a 6 s interval the backlog is gone about
//! 6 + 5 s after the server is up with the catch-up, and only after 36 s without it: the test
//! allows 20 s, and checks that the server answers while the purge works.

mod common;

use std::time::{Duration, Instant};

use common::Spec;
use portcullis_core::store::sqlite::SqliteStore;
use portcullis_core::store::{migrations, SqlStore, Value};

const DEAD: i64 = 300;

async fn dead_rows(store: &SqliteStore, now: i64) -> i64 {
    store
        .query(
            "SELECT COUNT(*) FROM replay_cache WHERE expires_at <= ?",
            &[Value::Int(now)],
        )
        .await
        .expect("the count")[0]
        .int(0)
        .expect("an integer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_backlog_is_worked_off_without_waiting_whole_intervals() {
    let (dir, _guard) = common::temp_dir("purge");
    let url = format!("sqlite://{}", dir.join("portcullis.db").display());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock")
        .as_secs() as i64;
    let store = SqliteStore::open(&url).expect("the database");
    migrations::migrate(&store, now).await.expect("the schema");
    let inserts: Vec<(String, Vec<Value>)> = (0..DEAD)
        .map(|i| {
            (
                "INSERT INTO replay_cache (key, expires_at) VALUES (?, ?)".to_owned(),
                vec![Value::Text(format!("dead-{i}")), Value::Int(now - 60)],
            )
        })
        .collect();
    store.batch(&inserts).await.expect("the dead rows");
    drop(store);

    let server = common::start_retrying(|| {
        Spec::new(&url)
            .with("PORTCULLIS_STORAGE__PURGE_INTERVAL_SECS", "6")
            .with("PORTCULLIS_STORAGE__PURGE_BATCH_SIZE", "50")
            .with("PORTCULLIS_STORAGE__PURGE_MAX_STATEMENTS", "1")
    })
    .await;
    let started = Instant::now();
    let store = SqliteStore::open(&url).expect("the database");
    let health = format!("{}/health", server.target.base);
    let mut left = DEAD;
    while started.elapsed() < Duration::from_secs(20) {
        let r = reqwest::get(&health).await.expect("/health answers");
        assert_eq!(r.status(), 200, "/health while the purge works");
        left = dead_rows(&store, now).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        left,
        0,
        "{left} of {DEAD} dead rows left {:?} after the server was up: the backlog waits whole intervals",
        started.elapsed()
    );
    assert!(
        server.log_text().contains("storage purge"),
        "the purges are logged:\n{}",
        server.log_text()
    );
}
