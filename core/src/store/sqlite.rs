//! The embedded SQLite system of record (DESIGN.md rule 4) on rusqlite: what the native host
//! serves from and what the core's own unit tests run on (cargo feature `sqlite`, never built
//! for wasm32). Reads run inline on the calling task, on a few reader connections: on a
//! WAL-mode file they take microseconds, far less than handing each one to a thread and back
//! (which dominated the CPU time of the sqlx store this replaced). Writes go to the one writer
//! connection on its own thread, which commits the writes of concurrent callers together, so
//! the hand-off is paid once per group rather than a WAL commit per write (group commit,
//! `sqlite_writer.rs`); `batch` is all or nothing. Column values follow the shared rule of
//! [`Value::from_real`] and [`Value::from_blob`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};

use super::{Dialect, Row, SqlStore, StoreError, Value};

#[path = "sqlite_writer.rs"]
mod writer;
use writer::Writer;

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader connections (WAL lets them run beside the writer).
const READERS: usize = 4;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

/// SQLite through rusqlite.
pub struct SqliteStore {
    writer: Writer,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("readers", &self.readers.len())
            .finish()
    }
}

impl SqliteStore {
    /// Opens `sqlite://path`, `sqlite:path` or `sqlite::memory:`, creating the file if
    /// missing (URL query parameters are ignored).
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::Unavailable("not a sqlite: URL".into()))?;
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return Self::open_memory();
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let writer = Connection::open_with_flags(path, flags)
            .map_err(map_err)
            .and_then(|c| configure(&c, true).map(|()| c))
            .map_err(|e| explain_open_failure(path, e))?;
        let readers = (0..READERS)
            .map(|_| {
                let c = Connection::open_with_flags(path, flags).map_err(map_err)?;
                configure(&c, false)?;
                Ok(Mutex::new(c))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Self {
            writer: Writer::start(writer)?,
            readers,
            next: AtomicUsize::new(0),
        })
    }

    /// A fresh in-memory database: exactly one connection, since each connection to
    /// `:memory:` is its own database.
    pub fn open_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(map_err)?;
        configure(&conn, false)?;
        Ok(Self {
            writer: Writer::start(conn)?,
            readers: Vec::new(),
            next: AtomicUsize::new(0),
        })
    }

    /// A free reader if one is idle, else the next in turn; `None` without readers.
    fn reader(&self) -> Option<MutexGuard<'_, Connection>> {
        if self.readers.is_empty() {
            return None;
        }
        for r in &self.readers {
            if let Ok(g) = r.try_lock() {
                return Some(g);
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        Some(self.readers[i].lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A failed open names the usual operator mistake: a file, or a directory for the WAL
/// files, that cannot be written (a read-only volume, wrong ownership). SQLite itself only
/// says "unable to open database file" or "attempt to write a readonly database".
fn explain_open_failure(path: &str, e: StoreError) -> StoreError {
    let file = std::path::Path::new(path);
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let probe = dir.join(format!(".portcullis-write-probe-{}", std::process::id()));
    let not_writable = match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            std::fs::OpenOptions::new()
                .write(true)
                .open(file)
                .err()
                .filter(|e| e.kind() != std::io::ErrorKind::NotFound)
        }
        Err(e) => Some(e),
    };
    match not_writable {
        Some(io) => StoreError::Unavailable(format!(
            "{e}: the database file or its directory ({}) is not writable ({io}); SQLite needs \
             to write the file and create its -wal and -shm files next to it (is the volume \
             read-only, or owned by another user?)",
            dir.display()
        )),
        None => e,
    }
}

fn configure(conn: &Connection, writer: bool) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if writer {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(map_err)?;
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(map_err)?;
    Ok(())
}

struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(n) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

fn params(values: &[Value]) -> impl Iterator<Item = Param<'_>> {
    values.iter().map(Param)
}

/// One column value as the core sees it.
fn column(i: usize, v: ValueRef<'_>) -> Result<Value, StoreError> {
    match v {
        ValueRef::Null => Ok(Value::Null),
        ValueRef::Integer(n) => Ok(Value::Int(n)),
        ValueRef::Real(f) => Value::from_real(f),
        ValueRef::Text(t) => String::from_utf8(t.to_vec())
            .map(Value::Text)
            .map_err(|_| StoreError::Corrupt(format!("column {i} is not UTF-8"))),
        ValueRef::Blob(b) => Value::from_blob(b.len()),
    }
}

fn run_execute(conn: &Connection, sql: &str, values: &[Value]) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    if stmt.column_count() > 0 {
        // A statement that returns rows (e.g. with RETURNING): step through them.
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params(values)))
            .map_err(map_err)?;
        while rows.next().map_err(map_err)?.is_some() {}
        drop(rows);
        return Ok(conn.changes());
    }
    let n = stmt
        .execute(rusqlite::params_from_iter(params(values)))
        .map_err(map_err)?;
    Ok(n as u64)
}

fn run_query(conn: &Connection, sql: &str, values: &[Value]) -> Result<Vec<Row>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    let n = stmt.column_count();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params(values)))
        .map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_err)? {
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            vals.push(column(i, row.get_ref(i).map_err(map_err)?)?);
        }
        out.push(Row(vals));
    }
    Ok(out)
}

/// Whether `sql` only reads (asked of SQLite itself, on an already prepared statement).
fn is_read_only(conn: &Connection, sql: &str) -> Result<bool, StoreError> {
    Ok(conn.prepare_cached(sql).map_err(map_err)?.readonly())
}

#[async_trait]
impl SqlStore for SqliteStore {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        self.writer.execute(sql, params).await
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        if let Some(reader) = self.reader() {
            if is_read_only(&reader, sql)? {
                return run_query(&reader, sql, params);
            }
        }
        self.writer.query(sql, params).await
    }

    async fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<Vec<u64>, StoreError> {
        self.writer.batch(statements).await
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
}

fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Conflict(e.to_string())
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(_)
        | rusqlite::Error::InvalidColumnType(..) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
