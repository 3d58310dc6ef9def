//! A replica's short-lived cache of the records nearly every token request reads (a client,
//! its operator policy, a resource), in front of the system of record (issue 16: these three
//! reads were about a fifth of the native server's CPU per token, and three of a Worker's four
//! D1 calls).
//!
//! - What it caches: the single-row lookups `SELECT … FROM clients WHERE client_id = ?`,
//!   `… FROM client_policies WHERE client_id = ?` and `… FROM resources WHERE uri = ?` that
//!   found a row (a miss is never cached, so a record created anywhere is seen at once).
//! - This replica's own writes: every statement that is not a `SELECT` and names one of these
//!   tables empties that table's entries once it has run, so an admin change made through this
//!   replica is in force for its next request.
//! - Other replicas' writes (another process on the same file, another instance on the same
//!   PostgreSQL, another Worker isolate, the CLI): seen within `storage.record_cache_ms`
//!   (default 1,000 ms; 0 turns the cache off), the documented bound in `docs/security.md`.
//!
//! A read that raced a write never stores what it read: each table has a generation, bumped
//! with the emptying after the write, and a read stores its row only if the generation it saw
//! before reading is still current.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Dialect, Row, SqlStore, StoreError, Value};
use crate::runtime::Clock;

/// The cached lookups: (table, the end of the statement that reads one row by its key).
const LOOKUPS: [(&str, &str); 3] = [
    ("clients", " FROM clients WHERE client_id = ?"),
    (
        "client_policies",
        " FROM client_policies WHERE client_id = ?",
    ),
    ("resources", " FROM resources WHERE uri = ?"),
];

/// Entries kept at most per table (then expired ones are dropped, or all when none has
/// expired).
const MAX_ENTRIES: usize = 10_000;

/// The SQL store with the cache in front.
pub struct RecordCache {
    inner: Arc<dyn SqlStore>,
    clock: Arc<dyn Clock>,
    ttl_ms: i64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Per table of [`LOOKUPS`]: bumped whenever the table is written.
    generations: [u64; 3],
    /// Per table of [`LOOKUPS`]: key → what one lookup statement found.
    entries: [HashMap<String, Entry>; 3],
}

/// One cached lookup.
struct Entry {
    /// The statement that found `rows` (a table's key is read by one statement).
    sql: String,
    rows: Vec<Row>,
    /// When it expires, in ms.
    expires: i64,
}

impl RecordCache {
    /// `inner` behind a cache whose entries live `ttl_ms`; `inner` itself when `ttl_ms` is 0.
    pub fn wrap(inner: Arc<dyn SqlStore>, clock: Arc<dyn Clock>, ttl_ms: i64) -> Arc<dyn SqlStore> {
        if ttl_ms <= 0 {
            return inner;
        }
        Arc::new(Self {
            inner,
            clock,
            ttl_ms,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Empties the entries of every cached table `sql` writes.
    fn written(&self, sql: &str) {
        let tables = written_tables(sql);
        if tables.iter().any(|&t| t) {
            let mut state = self.state();
            for (i, _) in tables.iter().enumerate().filter(|(_, &t)| t) {
                state.generations[i] += 1;
                state.entries[i].clear();
            }
        }
    }
}

/// Which of [`LOOKUPS`] answers `sql` (a cached single-row lookup), if any.
fn lookup(sql: &str) -> Option<usize> {
    if !sql.starts_with("SELECT ") {
        return None;
    }
    LOOKUPS.iter().position(|(_, tail)| sql.ends_with(tail))
}

/// Whether `sql` may write each table of [`LOOKUPS`]: it is not a `SELECT` and names the table
/// as a word.
fn written_tables(sql: &str) -> [bool; 3] {
    let mut out = [false; 3];
    let trimmed = sql.trim_start();
    if trimmed.len() >= 6 && trimmed[..6].eq_ignore_ascii_case("select") {
        return out;
    }
    for (i, (table, _)) in LOOKUPS.iter().enumerate() {
        out[i] = names_word(sql, table);
    }
    out
}

/// Whether `word` occurs in `sql` with no identifier character on either side.
fn names_word(sql: &str, word: &str) -> bool {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    sql.match_indices(word).any(|(at, _)| {
        !ident(sql[..at].chars().next_back()) && !ident(sql[at + word.len()..].chars().next())
    })
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl SqlStore for RecordCache {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let result = self.inner.execute(sql, params).await;
        self.written(sql);
        result
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let (Some(table), [Value::Text(id)]) = (lookup(sql), params) else {
            let result = self.inner.query(sql, params).await;
            self.written(sql);
            return result;
        };
        let seen = {
            let state = self.state();
            if let Some(hit) = state.entries[table].get(id.as_str()) {
                if hit.sql == sql && self.clock.now_millis() < hit.expires {
                    return Ok(hit.rows.clone());
                }
            }
            state.generations[table]
        };
        let rows = self.inner.query(sql, params).await?;
        if !rows.is_empty() {
            let now = self.clock.now_millis();
            let mut state = self.state();
            if state.generations[table] == seen {
                let entries = &mut state.entries[table];
                if entries.len() >= MAX_ENTRIES {
                    entries.retain(|_, e| e.expires > now);
                    if entries.len() >= MAX_ENTRIES {
                        entries.clear();
                    }
                }
                let entry = Entry {
                    sql: sql.to_owned(),
                    rows: rows.clone(),
                    expires: now + self.ttl_ms,
                };
                entries.insert(id.clone(), entry);
            }
        }
        Ok(rows)
    }

    async fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<Vec<u64>, StoreError> {
        let result = self.inner.batch(statements).await;
        for (sql, _) in statements {
            self.written(sql);
        }
        result
    }

    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Weak;

    use futures::executor::block_on;

    use super::*;
    use crate::runtime::FixedClock;
    use crate::store::test_store::TestSql;

    const GET: &str = "SELECT client_id, name FROM clients WHERE client_id = ?";

    type Hook = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

    /// The real store, counting the lookups that reach it, with a hook run after one (to put
    /// a write between a lookup's read and its storing).
    struct Counting {
        sql: TestSql,
        lookups: AtomicUsize,
        after_read: Mutex<Option<Hook>>,
    }

    #[async_trait]
    impl SqlStore for Counting {
        async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
            self.sql.execute(sql, params).await
        }
        async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
            if lookup(sql).is_some() {
                self.lookups.fetch_add(1, Ordering::SeqCst);
            }
            let rows = self.sql.query(sql, params).await;
            let hook = self.after_read.lock().unwrap().take();
            if let Some(hook) = hook {
                hook.await;
            }
            rows
        }
        async fn batch(&self, s: &[(String, Vec<Value>)]) -> Result<Vec<u64>, StoreError> {
            self.sql.batch(s).await
        }
    }

    fn cache(ttl_ms: i64) -> (Arc<RecordCache>, Arc<Counting>, Arc<FixedClock>) {
        let inner = Arc::new(Counting {
            sql: TestSql::memory(),
            lookups: AtomicUsize::new(0),
            after_read: Mutex::new(None),
        });
        let clock = Arc::new(FixedClock::at(1_000));
        let cache = Arc::new(RecordCache {
            inner: inner.clone(),
            clock: clock.clone(),
            ttl_ms,
            state: Mutex::new(State::default()),
        });
        block_on(async {
            cache
                .execute(
                    "CREATE TABLE clients (client_id TEXT PRIMARY KEY, name TEXT)",
                    &[],
                )
                .await
                .unwrap();
            cache
                .execute("INSERT INTO clients VALUES ('a', 'first')", &[])
                .await
                .unwrap();
        });
        (cache, inner, clock)
    }

    fn name(cache: &RecordCache, id: &str) -> Option<String> {
        let rows = block_on(cache.query(GET, &[id.into()])).unwrap();
        rows.first().map(|r| r.text(1).unwrap())
    }

    #[test]
    fn a_found_record_is_served_from_the_cache_until_it_expires() {
        let (cache, inner, clock) = cache(1_000);
        assert_eq!(name(&cache, "a").as_deref(), Some("first"));
        assert_eq!(name(&cache, "a").as_deref(), Some("first"));
        assert_eq!(inner.lookups.load(Ordering::SeqCst), 1);
        // Another replica's write is not seen until the entry expires.
        block_on(inner.execute(
            "UPDATE clients SET name = 'other' WHERE client_id = 'a'",
            &[],
        ))
        .unwrap();
        block_on(clock.sleep_ms(999));
        assert_eq!(name(&cache, "a").as_deref(), Some("first"));
        block_on(clock.sleep_ms(1));
        assert_eq!(name(&cache, "a").as_deref(), Some("other"));
        assert_eq!(inner.lookups.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn this_replicas_writes_take_effect_at_once_and_misses_are_not_kept() {
        let (cache, inner, _) = cache(60_000);
        assert_eq!(name(&cache, "a").as_deref(), Some("first"));
        block_on(cache.execute(
            "UPDATE clients SET name = 'second' WHERE client_id = ?",
            &["a".into()],
        ))
        .unwrap();
        assert_eq!(name(&cache, "a").as_deref(), Some("second"));
        block_on(cache.batch(&[(
            "DELETE FROM clients WHERE client_id = ?".into(),
            vec!["a".into()],
        )]))
        .unwrap();
        assert_eq!(name(&cache, "a"), None);
        // Created elsewhere after a miss: seen at once.
        block_on(inner.execute("INSERT INTO clients VALUES ('a', 'again')", &[])).unwrap();
        assert_eq!(name(&cache, "a").as_deref(), Some("again"));
    }

    /// A write that lands between a lookup's read and its storing wins: the lookup's
    /// (possibly old) row is not kept.
    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let (cache, inner, _) = cache(60_000);
        let weak: Weak<RecordCache> = Arc::downgrade(&cache);
        let writer = inner.clone();
        *inner.after_read.lock().unwrap() = Some(Box::pin(async move {
            writer
                .execute("UPDATE clients SET name = 'new' WHERE client_id = 'a'", &[])
                .await
                .unwrap();
            weak.upgrade()
                .unwrap()
                .written("UPDATE clients SET name = ?");
        }));
        assert_eq!(name(&cache, "a").as_deref(), Some("first"));
        assert_eq!(name(&cache, "a").as_deref(), Some("new"));
    }

    #[test]
    fn only_writes_naming_a_cached_table_empty_it() {
        assert_eq!(
            written_tables("UPDATE clients SET x = 1"),
            [true, false, false]
        );
        assert_eq!(
            written_tables("INSERT INTO client_policies (a) VALUES (?)"),
            [false, true, false]
        );
        assert_eq!(
            written_tables("DELETE FROM resources WHERE uri = ?"),
            [false, false, true]
        );
        assert_eq!(written_tables("select * from clients"), [false; 3]);
        assert_eq!(
            written_tables("INSERT INTO vault_resources (a) VALUES (1)"),
            [false; 3]
        );
        assert_eq!(
            written_tables("UPDATE grants SET clients_seen = 1"),
            [false; 3]
        );
        assert_eq!(lookup(GET), Some(0));
        assert_eq!(
            lookup("SELECT * FROM clients WHERE client_id = ? AND x = 1"),
            None
        );
    }

    #[test]
    fn no_cache_when_the_time_is_zero() {
        let inner: Arc<dyn SqlStore> = Arc::new(TestSql::memory());
        let clock = Arc::new(FixedClock::at(0));
        let same = RecordCache::wrap(inner.clone(), clock, 0);
        assert!(Arc::ptr_eq(&same, &inner));
    }
}
