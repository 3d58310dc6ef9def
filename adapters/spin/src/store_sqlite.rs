//! The system of record on Spin SQLite (`spin:sqlite@3.1.0`, the `default` database): one
//! connection per instance (Spin makes an instance per request). Statements run through the
//! async API; `execute` reports the connection's `changes()`, `batch` is one
//! `BEGIN IMMEDIATE … COMMIT` on the same connection, and a unique-constraint failure is
//! [`StoreError::Conflict`] (Spin reports SQLite errors as text). REAL and BLOB values follow
//! the core's rule ([`Value::from_real`], [`Value::from_blob`]), as on every backend.

use async_trait::async_trait;
use futures::lock::Mutex;
use portcullis_core::store::{Row, SqlStore, StoreError, Value};
use spin_sdk::sqlite::{Connection, Error, Value as SpinValue};

/// Spin SQLite behind the core's [`SqlStore`].
pub struct SpinSqlite {
    // Statements of one transaction must not interleave with other statements of the same
    // request, so the connection is taken for a whole statement or batch.
    conn: Mutex<Connection>,
}

impl SpinSqlite {
    /// Opens the database `label` declared in spin.toml (`sqlite_databases`).
    pub async fn open(label: &str) -> Result<Self, StoreError> {
        let conn = Connection::open(label).await.map_err(map_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }
}

fn map_err(e: Error) -> StoreError {
    match e {
        Error::Io(msg) => StoreError::from_sqlite_text("sqlite", msg),
        Error::NoSuchDatabase => {
            StoreError::Unavailable("sqlite: no such database (check sqlite_databases)".into())
        }
        Error::AccessDenied => StoreError::Unavailable("sqlite: access denied".into()),
        Error::InvalidConnection => StoreError::Unavailable("sqlite: invalid connection".into()),
        Error::DatabaseFull => StoreError::Unavailable("sqlite: database full".into()),
    }
}

fn to_spin(v: &Value) -> SpinValue {
    match v {
        Value::Null => SpinValue::Null,
        Value::Int(n) => SpinValue::Integer(*n),
        Value::Text(s) => SpinValue::Text(s.clone()),
    }
}

/// A column value, REAL and BLOB read as every backend reads them.
fn from_spin(v: &SpinValue) -> Result<Value, StoreError> {
    match v {
        SpinValue::Null => Ok(Value::Null),
        SpinValue::Integer(n) => Ok(Value::Int(*n)),
        SpinValue::Text(s) => Ok(Value::Text(s.clone())),
        SpinValue::Real(f) => Value::from_real(*f),
        SpinValue::Blob(b) => Value::from_blob(b.len()),
    }
}

/// Runs one statement to completion on `conn` and returns its rows.
async fn run(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
    let rows = conn
        .execute(sql, params.iter().map(to_spin))
        .await
        .map_err(map_err)?
        .collect()
        .await
        .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            r.values
                .iter()
                .map(from_spin)
                .collect::<Result<_, _>>()
                .map(Row)
        })
        .collect()
}

#[async_trait(?Send)]
impl SqlStore for SpinSqlite {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let conn = self.conn.lock().await;
        run(&conn, sql, params).await?;
        Ok(conn.changes().await)
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let conn = self.conn.lock().await;
        run(&conn, sql, params).await
    }

    async fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<Vec<u64>, StoreError> {
        let conn = self.conn.lock().await;
        run(&conn, "BEGIN IMMEDIATE", &[]).await?;
        let mut changed = Vec::with_capacity(statements.len());
        for (sql, params) in statements {
            if let Err(e) = run(&conn, sql, params).await {
                let _ = run(&conn, "ROLLBACK", &[]).await;
                return Err(e);
            }
            changed.push(conn.changes().await);
        }
        if let Err(e) = run(&conn, "COMMIT", &[]).await {
            let _ = run(&conn, "ROLLBACK", &[]).await;
            return Err(e);
        }
        Ok(changed)
    }
}
