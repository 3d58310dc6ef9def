//! Test-only storage and server fixtures: a [`SqlStore`] over an in-memory SQLite database
//! (rusqlite, dev-dependency only) and [`test_server`], which starts a [`Portcullis`] on it
//! with a fixed clock and a seeded RNG, so core unit tests exercise the real schema and the
//! real repo queries (DESIGN.md "real parts in tests").

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{params_from_iter, Connection, ErrorCode as SqliteCode};

use crate::config::Config;
use crate::crypto::RustCrypto;
use crate::env::Env;
use crate::runtime::{FixedClock, NoFetcher, SeededRng};
use crate::server::Portcullis;
use crate::store::{MemoryKv, Row, SqlStore, StoreError, Value};

/// The time every test server starts at (2023-11-14T22:13:20Z).
pub(crate) const TEST_NOW: i64 = 1_700_000_000;

/// A SQLite database behind a mutex; `?` placeholders pass straight through.
pub(crate) struct TestSql {
    conn: Mutex<Connection>,
}

impl TestSql {
    /// A fresh in-memory database.
    pub(crate) fn memory() -> Self {
        let conn = Connection::open_in_memory().expect("in-memory SQLite opens");
        Self {
            conn: Mutex::new(conn),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn).map_err(map_err)
    }
}

fn map_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(code, msg) = &e {
        if code.code == SqliteCode::ConstraintViolation
            && matches!(
                code.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            )
        {
            return StoreError::Conflict(msg.clone().unwrap_or_else(|| code.to_string()));
        }
    }
    StoreError::Unavailable(e.to_string())
}

fn to_sql(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Null => rusqlite::types::Value::Null,
        Value::Int(n) => rusqlite::types::Value::Integer(*n),
        Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
    }
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Real(f) => Value::Text(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Value::Text(String::from_utf8_lossy(t).into_owned())
        }
    }
}

fn run_query(conn: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare(sql)?;
    let cols = stmt.column_count();
    let mut rows = stmt.query(params_from_iter(params.iter().map(to_sql)))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(cols);
        for i in 0..cols {
            row.push(from_sql(r.get_ref(i)?));
        }
        out.push(Row(row));
    }
    Ok(out)
}

fn run_execute(conn: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare(sql)?;
    if stmt.column_count() > 0 {
        // A statement with RETURNING: count the rows it produced.
        drop(stmt);
        return Ok(run_query(conn, sql, params)?.len() as u64);
    }
    Ok(stmt.execute(params_from_iter(params.iter().map(to_sql)))? as u64)
}

#[async_trait]
impl SqlStore for TestSql {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        self.with(|c| run_execute(c, sql, params))
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        self.with(|c| run_query(c, sql, params))
    }

    async fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for (sql, params) in statements {
                run_execute(&tx, sql, params)?;
            }
            tx.commit()
        })
    }
}

/// A test environment on `sql`, with its clock (move it with `set`/`advance`).
pub(crate) fn test_env_on(sql: Arc<TestSql>) -> (Env, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::at(TEST_NOW));
    let env = Env {
        clock: clock.clone(),
        rng: Arc::new(SeededRng::new(7)),
        sql,
        kv: Arc::new(MemoryKv::default()),
        crypto: Arc::new(RustCrypto),
        fetcher: Arc::new(NoFetcher),
    };
    (env, clock)
}

/// A test environment on a fresh in-memory database.
pub(crate) fn test_env() -> (Env, Arc<FixedClock>) {
    test_env_on(Arc::new(TestSql::memory()))
}

/// Starts a server with `cfg` on a fresh in-memory database (migrations, seeds, first key).
pub(crate) async fn test_server(cfg: Config) -> Portcullis {
    let (env, _clock) = test_env();
    Portcullis::start(env, cfg)
        .await
        .expect("test server starts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_violation_is_conflict_and_returning_counts_rows() {
        futures::executor::block_on(async {
            let db = TestSql::memory();
            db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER)", &[])
                .await
                .unwrap();
            db.execute(
                "INSERT INTO t (k, n) VALUES (?, ?)",
                &["a".into(), 1i64.into()],
            )
            .await
            .unwrap();
            let dup = db
                .execute(
                    "INSERT INTO t (k, n) VALUES (?, ?)",
                    &["a".into(), 2i64.into()],
                )
                .await;
            assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
            let n = db
                .execute("UPDATE t SET n = 5 WHERE k = ? RETURNING k", &["a".into()])
                .await
                .unwrap();
            assert_eq!(n, 1);
            let rows = db.query("SELECT k, n FROM t", &[]).await.unwrap();
            assert_eq!(rows, vec![Row(vec!["a".into(), Value::Int(5)])]);
            let bad = db
                .batch(&[
                    ("INSERT INTO t (k, n) VALUES ('b', 1)".into(), vec![]),
                    ("INSERT INTO t (k, n) VALUES ('a', 1)".into(), vec![]),
                ])
                .await;
            assert!(bad.is_err());
            let rows = db.query("SELECT k FROM t", &[]).await.unwrap();
            assert_eq!(rows.len(), 1, "a failed batch is rolled back");
        });
    }
}
