//! The SQL system of record for the native host (DESIGN.md rule 4): [`SqlxStore`] implements
//! the core's [`SqlStore`] on sqlx for SQLite (default, a file in WAL mode) and PostgreSQL.
//! Each call is one statement, atomic on its own; `batch` is one transaction.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::store::{Dialect, Row, SqlStore, StoreError, Value};
use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row as _, TypeInfo, ValueRef};

/// How long a statement waits for a SQLite write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the system of record for `url`: the inline rusqlite store
/// ([`crate::store_sqlite::SqliteStore`]) for `sqlite:` URLs, [`SqlxStore`] for PostgreSQL.
pub async fn open(url: &str) -> Result<Arc<dyn SqlStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(crate::store_sqlite::SqliteStore::open(url)?))
    } else {
        Ok(Arc::new(SqlxStore::connect(url).await?))
    }
}

/// A pooled SQLite or PostgreSQL database.
#[derive(Debug, Clone)]
pub enum SqlxStore {
    /// SQLite (file or memory).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

impl SqlxStore {
    /// Connects to `url`: `sqlite://path` (the file is created if missing), `sqlite::memory:`,
    /// or `postgres://…` / `postgresql://…`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect(url)
                .await
                .map_err(map_err)?;
            return Ok(Self::Postgres(pool));
        }
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Unavailable(
                "database URL must start with sqlite: or postgres://".into(),
            ));
        }
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut opts = SqliteConnectOptions::from_str(url)
            .map_err(map_err)?
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal);
        if !memory {
            opts = opts.journal_mode(SqliteJournalMode::Wal);
        }
        // Every connection to `:memory:` is its own database: keep exactly one.
        let (max, min) = if memory { (1, 1) } else { (8, 1) };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(min)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(if memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            .connect_with(opts)
            .await
            .map_err(map_err)?;
        Ok(Self::Sqlite(pool))
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(p) => p.close().await,
            Self::Postgres(p) => p.close().await,
        }
    }
}

#[async_trait]
impl SqlStore for SqlxStore {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let done = match self {
            Self::Sqlite(pool) => sqlite_query(sql, params)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Self::Postgres(pool) => {
                let sql = pg_placeholders(sql);
                pg_query(&sql, params)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            }
        };
        done.map_err(map_err)
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        match self {
            Self::Sqlite(pool) => {
                let rows = sqlite_query(sql, params)
                    .fetch_all(pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(sqlite_row).collect()
            }
            Self::Postgres(pool) => {
                let sql = pg_placeholders(sql);
                let rows = pg_query(&sql, params)
                    .fetch_all(pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(pg_row).collect()
            }
        }
    }

    async fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(pool) => {
                // IMMEDIATE takes the write lock up front, so the busy timeout applies and a
                // deferred read lock can never fail to upgrade ("database is locked").
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
                for (sql, params) in statements {
                    sqlite_query(sql, params)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(map_err)?;
                for (sql, params) in statements {
                    let sql = pg_placeholders(sql);
                    pg_query(&sql, params)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }
        }
    }

    fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments<'q>>;
type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, PgArguments>;

fn sqlite_query<'q>(sql: &'q str, params: &'q [Value]) -> SqliteQuery<'q> {
    params.iter().fold(sqlx::query(sql), |q, v| match v {
        Value::Null => q.bind(None::<String>),
        Value::Int(n) => q.bind(*n),
        Value::Text(s) => q.bind(s.as_str()),
    })
}

fn pg_query<'q>(sql: &'q str, params: &'q [Value]) -> PgQuery<'q> {
    params.iter().fold(sqlx::query(sql), |q, v| match v {
        Value::Null => q.bind(UntypedNull),
        Value::Int(n) => q.bind(*n),
        Value::Text(s) => q.bind(s.as_str()),
    })
}

/// A NULL parameter whose type PostgreSQL infers from the statement (OID 0, "unspecified"),
/// so the same NULL fits a `BIGINT` and a `TEXT` column.
struct UntypedNull;

impl sqlx::Type<sqlx::Postgres> for UntypedNull {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        sqlx::postgres::PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for UntypedNull {
    fn encode_by_ref(
        &self,
        _buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

/// Rewrites `?` placeholders to PostgreSQL's `$1..$n`, leaving quoted text alone.
pub fn pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '?') => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            (None, _) => {}
        }
        out.push(c);
    }
    out
}

/// Decodes a SQLite row by the storage class of each value (so `COUNT(*)` and `MAX()` work).
fn sqlite_row(row: &SqliteRow) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(row.columns().len());
    for i in 0..row.columns().len() {
        let raw = row.try_get_raw(i).map_err(map_err)?;
        if raw.is_null() {
            out.push(Value::Null);
            continue;
        }
        let kind = raw.type_info().name().to_ascii_uppercase();
        let v = match kind.as_str() {
            "INTEGER" | "BOOLEAN" | "INT" | "BIGINT" => {
                Value::Int(row.try_get_unchecked::<i64, _>(i).map_err(map_err)?)
            }
            "TEXT" => Value::Text(row.try_get_unchecked::<String, _>(i).map_err(map_err)?),
            "REAL" => real(row.try_get_unchecked::<f64, _>(i).map_err(map_err)?),
            other => return Err(corrupt(i, other)),
        };
        out.push(v);
    }
    Ok(Row(out))
}

/// Decodes a PostgreSQL row by the column's runtime type.
fn pg_row(row: &PgRow) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(row.columns().len());
    for i in 0..row.columns().len() {
        let raw = row.try_get_raw(i).map_err(map_err)?;
        if raw.is_null() {
            out.push(Value::Null);
            continue;
        }
        let kind = raw.type_info().name().to_ascii_uppercase();
        let v = match kind.as_str() {
            "INT8" => Value::Int(row.try_get::<i64, _>(i).map_err(map_err)?),
            "INT4" => Value::Int(row.try_get::<i32, _>(i).map_err(map_err)?.into()),
            "INT2" => Value::Int(row.try_get::<i16, _>(i).map_err(map_err)?.into()),
            "BOOL" => Value::Int(row.try_get::<bool, _>(i).map_err(map_err)?.into()),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
                Value::Text(row.try_get::<String, _>(i).map_err(map_err)?)
            }
            "FLOAT8" => real(row.try_get::<f64, _>(i).map_err(map_err)?),
            "FLOAT4" => real(row.try_get::<f32, _>(i).map_err(map_err)?.into()),
            other => return Err(corrupt(i, other)),
        };
        out.push(v);
    }
    Ok(Row(out))
}

/// A floating-point result (e.g. `AVG`): an integer when whole, text otherwise.
fn real(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::Int(f as i64)
    } else {
        Value::Text(f.to_string())
    }
}

fn corrupt(i: usize, kind: &str) -> StoreError {
    StoreError::Corrupt(format!("column {i} has unsupported type {kind}"))
}

/// Maps sqlx errors: unique violations are conflicts, decoding problems are corrupt data,
/// everything else (I/O, pool, locks, server errors) is "unavailable".
fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store_cases as cases;

    async fn temp_store() -> (tempfile::TempDir, SqlxStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqlxStore::connect(&url).await.unwrap();
        (dir, store)
    }

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            pg_placeholders("SELECT a FROM t WHERE a = ? AND b = '?' AND c = ?"),
            "SELECT a FROM t WHERE a = $1 AND b = '?' AND c = $2"
        );
        assert_eq!(pg_placeholders("SELECT 1"), "SELECT 1");
    }

    #[tokio::test]
    async fn creates_file_and_roundtrips_values() {
        let (dir, store) = temp_store().await;
        assert!(dir.path().join("t.db").exists());
        assert_eq!(store.dialect(), Dialect::Sqlite);
        cases::roundtrips_values(&store).await;
    }

    #[tokio::test]
    async fn unique_violation_is_conflict_and_batch_is_atomic() {
        let (_dir, store) = temp_store().await;
        cases::conflicts_and_atomic_batches(&store).await;
    }

    /// C1 at the storage layer through the sqlx pool.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn c1_concurrent_conditional_update_has_one_winner() {
        let (_dir, store) = temp_store().await;
        cases::one_winner_of_32(vec![Arc::new(store)]).await;
    }

    #[tokio::test]
    async fn runs_core_migrations_twice() {
        let (_dir, store) = temp_store().await;
        cases::runs_core_migrations_twice(&store).await;
    }

    #[tokio::test]
    async fn memory_database_keeps_one_connection() {
        let store = SqlxStore::connect("sqlite::memory:").await.unwrap();
        cases::memory_database_keeps_data(&store).await;
    }

    #[tokio::test]
    async fn unsupported_url_is_refused() {
        let err = SqlxStore::connect("mysql://x").await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)));
    }
}
