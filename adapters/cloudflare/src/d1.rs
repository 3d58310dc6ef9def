//! The core's [`SqlStore`] on a Cloudflare D1 binding: one prepared statement per call,
//! `batch` through D1's batch API (one implicit transaction: all statements or none), rows
//! read as arrays. D1 hands numbers to JavaScript as doubles, read by the core's rule for
//! every backend ([`Value::from_real`]: whole ones within 2^53 become [`Value::Int`]), and
//! BLOBs as byte arrays ([`Value::from_blob`]); parameters are bound as numbers, so integers
//! beyond 2^53 are refused rather than silently rounded. A unique-constraint failure is
//! [`StoreError::Conflict`].

use async_trait::async_trait;
use portcullis_core::store::Row;
use portcullis_core::store::{SqlStore, StoreError, Value};
use wasm_bindgen::{JsCast, JsValue};
use worker::{D1Database, D1PreparedStatement};

/// Largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// D1 behind the core's SQL seam.
pub struct D1Store {
    db: D1Database,
}

impl D1Store {
    /// Wraps a D1 binding.
    pub fn new(db: D1Database) -> Self {
        Self { db }
    }

    fn prepare(&self, sql: &str, params: &[Value]) -> Result<D1PreparedStatement, StoreError> {
        let args = params.iter().map(to_js).collect::<Result<Vec<_>, _>>()?;
        self.db.prepare(sql).bind(&args).map_err(map_err)
    }
}

/// A parameter as a JavaScript value.
fn to_js(v: &Value) -> Result<JsValue, StoreError> {
    match v {
        Value::Null => Ok(JsValue::NULL),
        Value::Text(s) => Ok(JsValue::from_str(s)),
        Value::Int(n) if n.unsigned_abs() <= MAX_SAFE_INTEGER as u64 => {
            Ok(JsValue::from_f64(*n as f64))
        }
        Value::Int(n) => Err(StoreError::Unavailable(format!(
            "integer parameter {n} is outside the range D1 binds exactly"
        ))),
    }
}

/// A column value from D1.
fn from_js(v: JsValue) -> Result<Value, StoreError> {
    if v.is_null() || v.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(s) = v.as_string() {
        return Ok(Value::Text(s));
    }
    if let Some(n) = v.as_f64() {
        // INTEGER and REAL both arrive as doubles: the core's rule covers both.
        return Value::from_real(n);
    }
    if let Some(b) = v.as_bool() {
        return Ok(Value::Int(i64::from(b)));
    }
    if let Some(bytes) = v.dyn_ref::<js_sys::Array>() {
        // D1 hands a BLOB over as an array of byte values.
        return Value::from_blob(bytes.length() as usize);
    }
    if let Some(bytes) = v.dyn_ref::<js_sys::ArrayBuffer>() {
        return Value::from_blob(bytes.byte_length() as usize);
    }
    if let Ok(n) = v.clone().dyn_into::<js_sys::BigInt>() {
        let text: String = n.to_string(10).map(String::from).unwrap_or_default();
        return text
            .parse()
            .map(Value::Int)
            .map_err(|_| StoreError::Corrupt("D1 returned an out-of-range integer".into()));
    }
    Err(StoreError::Corrupt(
        "D1 returned a value that is neither text, number nor null".into(),
    ))
}

fn to_row(v: JsValue) -> Result<Row, StoreError> {
    let cols = v
        .dyn_into::<js_sys::Array>()
        .map_err(|_| StoreError::Corrupt("D1 returned a row that is not an array".into()))?;
    cols.iter().map(from_js).collect::<Result<_, _>>().map(Row)
}

/// The full message of a D1 failure (its cause carries SQLite's text).
fn message(e: &worker::Error) -> String {
    match e {
        worker::Error::D1(d1) => {
            let outer: String = AsRef::<js_sys::Error>::as_ref(d1).message().into();
            format!("{outer}: {}", d1.cause())
        }
        other => other.to_string(),
    }
}

fn map_err(e: worker::Error) -> StoreError {
    StoreError::from_sqlite_text("D1", message(&e))
}

#[async_trait(?Send)]
impl SqlStore for D1Store {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let result = self.prepare(sql, params)?.run().await.map_err(map_err)?;
        let meta = result.meta().map_err(map_err)?;
        Ok(meta.and_then(|m| m.changes).unwrap_or(0) as u64)
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let rows = self
            .prepare(sql, params)?
            .raw_js_value()
            .await
            .map_err(map_err)?;
        rows.into_iter().map(to_row).collect()
    }

    async fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<Vec<u64>, StoreError> {
        if statements.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = statements
            .iter()
            .map(|(sql, params)| self.prepare(sql, params))
            .collect::<Result<Vec<_>, _>>()?;
        let results = self.db.batch(prepared).await.map_err(map_err)?;
        if let Some(e) = results.iter().find_map(|r| r.error()) {
            return Err(StoreError::Unavailable(format!("D1: {e}")));
        }
        results
            .iter()
            .map(|r| {
                let meta = r.meta().map_err(map_err)?;
                Ok(meta.and_then(|m| m.changes).unwrap_or(0) as u64)
            })
            .collect()
    }
}
