//! Storage seams (DESIGN.md rule 4): a SQL trait for the system of record and a KV trait for
//! caches. Adapters implement only these primitive operations; every query the server runs
//! lives in [`crate::store::repo`], written once in the SQL dialect shared by SQLite, D1,
//! Spin SQLite and PostgreSQL (positional `?` parameters, `RETURNING`, no vendor functions).

pub mod kv;
pub mod migrations;
pub mod record_cache;
pub mod repo;
#[cfg(all(not(target_arch = "wasm32"), any(test, feature = "sqlite")))]
pub mod sqlite;
#[cfg(test)]
pub(crate) mod test_store;

use async_trait::async_trait;

pub use kv::{KvStore, MemoryKv};

use crate::runtime::MaybeSend;

/// A SQL parameter or column value. Only the three types every backend agrees on. In JSON
/// (the [`crate::sql_bridge`] protocol) it is `null`, an integer or a string.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (timestamps are seconds since the epoch).
    Int(i64),
    /// UTF-8 text (binary data is stored base64url-encoded).
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v as i64)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Largest integer a double (and so a D1 number) holds exactly: 2^53 - 1.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_991.0;

impl Value {
    /// A floating-point column value (SQLite `REAL`, PostgreSQL `real`/`double precision`,
    /// any D1 number), read alike by every backend: a whole number within +/-(2^53 - 1) is an
    /// [`Value::Int`], a fraction its shortest decimal text (`-1.25`). NaN, infinities and
    /// whole numbers beyond 2^53 are [`StoreError::Corrupt`]: no backend can tell them apart
    /// from a rounded integer. The schema has no such columns; this rule covers expressions.
    pub fn from_real(f: f64) -> Result<Value, StoreError> {
        if !f.is_finite() || f.abs() > MAX_EXACT_INT {
            return Err(StoreError::Corrupt(format!(
                "a floating-point value ({f}) outside the range every backend reads exactly"
            )));
        }
        if f.fract() == 0.0 {
            return Ok(Value::Int(f as i64));
        }
        Ok(Value::Text(f.to_string()))
    }

    /// A binary column value (SQLite `BLOB`, PostgreSQL `bytea`) of `len` bytes: always
    /// [`StoreError::Corrupt`] on every backend, since the server never writes one (binary
    /// data is stored base64url-encoded, as text).
    pub fn from_blob(len: usize) -> Result<Value, StoreError> {
        Err(StoreError::Corrupt(format!(
            "a binary value ({len} bytes) where only integers, text and NULL are stored"
        )))
    }
}

/// One result row: values in the order of the `SELECT` / `RETURNING` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `i` as text; NULL or a missing column is a [`StoreError::Corrupt`].
    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.0.get(i) {
            Some(Value::Text(s)) => Ok(s.clone()),
            Some(Value::Int(n)) => Ok(n.to_string()),
            _ => Err(StoreError::Corrupt(format!("column {i} is not text"))),
        }
    }
    /// Column `i` as optional text.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
    /// Column `i` as an integer.
    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.0.get(i) {
            Some(Value::Int(n)) => Ok(*n),
            Some(Value::Text(s)) => s
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("column {i} is not an integer"))),
            _ => Err(StoreError::Corrupt(format!("column {i} is not an integer"))),
        }
    }
    /// Column `i` as an optional integer.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.int(i).map(Some),
        }
    }
}

/// A storage failure. Never shown to clients in detail (DESIGN.md rule 9).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend is unreachable or failed (becomes 503 / `temporarily_unavailable`).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness constraint was violated.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data did not have the expected shape.
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A SQLite failure that a host's driver reports only as text (D1, Spin): a UNIQUE or
    /// PRIMARY KEY violation is a [`Conflict`](Self::Conflict), anything else `backend`
    /// being [`Unavailable`](Self::Unavailable).
    pub fn from_sqlite_text(backend: &str, message: String) -> Self {
        if message.contains("UNIQUE constraint failed")
            || message.contains("PRIMARY KEY constraint failed")
        {
            Self::Conflict(message)
        } else {
            Self::Unavailable(format!("{backend}: {message}"))
        }
    }
}

/// One statement with its parameters.
pub type Statement = (&'static str, Vec<Value>);

/// The SQL system of record. Each call is one statement, atomic on its own; `batch` runs
/// several statements in one transaction (used by migrations and multi-row writes).
///
/// Placeholders are `?` in the order of `params`; a backend that numbers them (PostgreSQL)
/// rewrites them. A unique-constraint violation must be reported as [`StoreError::Conflict`].
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait SqlStore: MaybeSend {
    /// Runs a statement and returns the number of rows it changed.
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;
    /// Runs a query (or a statement with `RETURNING`) and returns its rows.
    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;
    /// Runs statements in one transaction: all of them or none. Returns the number of rows
    /// each statement changed, in order (so a conditional statement's effect is known
    /// without a second read after the commit).
    async fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<Vec<u64>, StoreError>;
    /// Which dialect quirks apply (DDL types only; DML is shared).
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
}

/// The SQL dialect of a backend, for the few DDL differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite, D1 and Spin SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}
