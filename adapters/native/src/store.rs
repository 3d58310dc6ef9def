//! The SQL system of record for the native host (DESIGN.md rule 4): [`open`] picks the
//! core's embedded SQLite store for `sqlite:` URLs (the default) and [`PostgresStore`], the
//! core's [`SqlStore`] on sqlx for PostgreSQL, for `postgres://` URLs. Each call is one
//! statement, atomic on its own; `batch` is one transaction.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::store::sqlite::SqliteStore;
use portcullis_core::store::{Dialect, Row, SqlStore, StoreError, Value};
use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions, PgRow};
use sqlx::{Row as _, TypeInfo, ValueRef};

/// How long a caller waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the system of record for `url`: the core's inline rusqlite store ([`SqliteStore`])
/// for `sqlite:` URLs, [`PostgresStore`] for PostgreSQL.
pub async fn open(url: &str) -> Result<Arc<dyn SqlStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url)?))
    } else {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    }
}

/// A pooled PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `postgres://…` or `postgresql://…`; any other URL is refused (SQLite is
    /// the core's [`SqliteStore`], opened by [`open`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Unavailable(
                "database URL must start with postgres:// or postgresql://".into(),
            ));
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(map_err)?;
        Ok(Self { pool })
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        self.pool.close().await
    }
}

#[async_trait]
impl SqlStore for PostgresStore {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let sql = pg_placeholders(sql);
        pg_query(&sql, params)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(map_err)
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let sql = pg_placeholders(sql);
        let rows = pg_query(&sql, params)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(pg_row).collect()
    }

    async fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let mut changed = Vec::with_capacity(statements.len());
        for (sql, params) in statements {
            let sql = pg_placeholders(sql);
            let done = pg_query(&sql, params)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            changed.push(done.rows_affected());
        }
        tx.commit().await.map_err(map_err)?;
        Ok(changed)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, PgArguments>;

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
            "FLOAT8" => Value::from_real(row.try_get::<f64, _>(i).map_err(map_err)?)?,
            "FLOAT4" => Value::from_real(row.try_get::<f32, _>(i).map_err(map_err)?.into())?,
            "BYTEA" => Value::from_blob(row.try_get::<Vec<u8>, _>(i).map_err(map_err)?.len())?,
            other => return Err(corrupt(i, other)),
        };
        out.push(v);
    }
    Ok(Row(out))
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
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            pg_placeholders("SELECT a FROM t WHERE a = ? AND b = '?' AND c = ?"),
            "SELECT a FROM t WHERE a = $1 AND b = '?' AND c = $2"
        );
        assert_eq!(pg_placeholders("SELECT 1"), "SELECT 1");
    }

    /// sqlx serves PostgreSQL only; SQLite URLs are the core's store, through [`open`].
    #[tokio::test]
    async fn only_postgres_urls_reach_sqlx() {
        for url in ["sqlite::memory:", "sqlite://t.db", "mysql://x"] {
            let err = PostgresStore::connect(url).await.unwrap_err();
            assert!(matches!(err, StoreError::Unavailable(_)), "{url}: {err:?}");
        }
    }

    #[tokio::test]
    async fn open_serves_sqlite_urls_from_the_core_store() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = open(&url).await.unwrap();
        assert_eq!(store.dialect(), Dialect::Sqlite);
        assert!(dir.path().join("t.db").exists());
        let rows = store.query("SELECT 1", &[]).await.unwrap();
        assert_eq!(rows, vec![Row(vec![Value::Int(1)])]);
        assert!(open("mysql://x").await.is_err());
    }
}
