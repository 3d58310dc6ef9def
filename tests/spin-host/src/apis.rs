//! The Spin host APIs the component imports, implemented the way Spin implements them:
//! `spin:key-value@3.0.0` (one in-memory map per store label, shared by every request of this
//! process), `spin:sqlite@3.1.0` (each `open` is its own rusqlite connection to ONE database
//! file, with a busy timeout, so concurrent requests really race across connections) and
//! `spin:variables@3.0.0` (values from the command line and `SPIN_VARIABLE_*`, names checked
//! with Spin's rules).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wasmtime::component::{Accessor, FutureReader, HasData, Resource, StreamReader};

use crate::Ctx;

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-apis",
    imports: {
        // These build stream and future handles, which can fail (a trap, not a WIT error).
        "spin:key-value/key-value.[method]store.get-keys": async | store | trappable,
        "spin:sqlite/sqlite.[method]connection.execute-async": async | store | trappable,
    },
    with: {
        "spin:key-value/key-value.store": crate::apis::KvHandle,
        "spin:sqlite/sqlite.connection": crate::apis::SqlHandle,
    },
});

use spin::key_value::key_value as kv;
use spin::sqlite::sqlite as sql;
use spin::variables::variables as vars;

/// How long a statement waits for another connection's lock before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// State shared by every request of the process.
#[derive(Debug)]
pub struct Shared {
    /// Key-value stores by label.
    kv: Mutex<HashMap<String, HashMap<String, Vec<u8>>>>,
    /// Database labels the component may open, each with its file.
    databases: HashMap<String, PathBuf>,
    /// Resolved variables.
    variables: HashMap<String, String>,
}

impl Shared {
    /// Host state with the given key-value store labels, databases and variables.
    pub fn new(
        kv_labels: &[String],
        databases: HashMap<String, PathBuf>,
        variables: HashMap<String, String>,
    ) -> Self {
        let kv = kv_labels
            .iter()
            .map(|l| (l.clone(), HashMap::new()))
            .collect();
        Self {
            kv: Mutex::new(kv),
            databases,
            variables,
        }
    }

    fn kv(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, Vec<u8>>>> {
        self.kv.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a new connection to the database of `label` (used at startup too).
    pub fn connect(&self, label: &str) -> Result<rusqlite::Connection, sql::Error> {
        let path = self
            .databases
            .get(label)
            .ok_or(sql::Error::NoSuchDatabase)?;
        let conn = rusqlite::Connection::open(path).map_err(io_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(io_err)?;
        Ok(conn)
    }
}

/// Spin's variable name rule (spin-expressions `Key::validate`): lower-case ASCII letters,
/// digits and single underscores, starting with a letter and ending with a letter or digit.
pub fn valid_variable_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!("invalid character {c:?}"));
    }
    if !bytes[0].is_ascii_lowercase() {
        return Err("must start with a lowercase ASCII letter".into());
    }
    if !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err("must end with a lowercase ASCII letter or digit".into());
    }
    if name.contains("__") {
        return Err("must not contain multiple consecutive underscores".into());
    }
    Ok(())
}

/// The `HasData` marker for these APIs: they see the whole [`Ctx`].
pub struct Spin;

impl HasData for Spin {
    type Data<'a> = &'a mut Ctx;
}

/// Adds the three Spin interfaces to a linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<Ctx>) -> anyhow::Result<()> {
    kv::add_to_linker::<Ctx, Spin>(linker, |c| c)?;
    sql::add_to_linker::<Ctx, Spin>(linker, |c| c)?;
    vars::add_to_linker::<Ctx, Spin>(linker, |c| c)?;
    Ok(())
}

// ---------------------------------------------------------------- key-value

/// An open key-value store (the resource behind `spin:key-value/key-value.store`).
#[derive(Debug)]
pub struct KvHandle {
    label: String,
}

fn kv_label<T>(
    accessor: &Accessor<T, Spin>,
    store: &Resource<KvHandle>,
) -> Result<(Arc<Shared>, String), kv::Error> {
    accessor.with(|mut access| {
        let ctx = access.get();
        let label = ctx
            .table
            .get(store)
            .map_err(|e| kv::Error::Other(e.to_string()))?
            .label
            .clone();
        Ok((ctx.shared.clone(), label))
    })
}

impl kv::Host for Ctx {}

impl kv::HostStore for Ctx {
    fn drop(&mut self, rep: Resource<KvHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl<U> kv::HostStoreWithStore<U> for Spin {
    async fn open(
        accessor: &Accessor<U, Self>,
        label: String,
    ) -> Result<Resource<KvHandle>, kv::Error> {
        accessor.with(|mut access| {
            let ctx = access.get();
            if !ctx.shared.kv().contains_key(&label) {
                return Err(kv::Error::NoSuchStore);
            }
            ctx.table
                .push(KvHandle { label })
                .map_err(|e| kv::Error::Other(e.to_string()))
        })
    }

    async fn get(
        accessor: &Accessor<U, Self>,
        store: Resource<KvHandle>,
        key: String,
    ) -> Result<Option<Vec<u8>>, kv::Error> {
        let (shared, label) = kv_label(accessor, &store)?;
        let map = shared.kv();
        Ok(map.get(&label).and_then(|m| m.get(&key)).cloned())
    }

    async fn set(
        accessor: &Accessor<U, Self>,
        store: Resource<KvHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), kv::Error> {
        let (shared, label) = kv_label(accessor, &store)?;
        shared.kv().entry(label).or_default().insert(key, value);
        Ok(())
    }

    async fn delete(
        accessor: &Accessor<U, Self>,
        store: Resource<KvHandle>,
        key: String,
    ) -> Result<(), kv::Error> {
        let (shared, label) = kv_label(accessor, &store)?;
        if let Some(m) = shared.kv().get_mut(&label) {
            m.remove(&key);
        }
        Ok(())
    }

    async fn exists(
        accessor: &Accessor<U, Self>,
        store: Resource<KvHandle>,
        key: String,
    ) -> Result<bool, kv::Error> {
        let (shared, label) = kv_label(accessor, &store)?;
        let map = shared.kv();
        Ok(map.get(&label).is_some_and(|m| m.contains_key(&key)))
    }

    async fn get_keys(
        accessor: &Accessor<U, Self>,
        store: Resource<KvHandle>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), kv::Error>>)> {
        let keys = match kv_label(accessor, &store) {
            Ok((shared, label)) => Ok(shared
                .kv()
                .get(&label)
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()),
            Err(e) => Err(e),
        };
        accessor.with(|mut access| {
            let (keys, result) = match keys {
                Ok(keys) => (keys, Ok(())),
                Err(e) => (Vec::new(), Err(e)),
            };
            let stream = StreamReader::new(&mut access, keys)?;
            let future = FutureReader::new(&mut access, async move {
                wasmtime::Result::<_, wasmtime::Error>::Ok(result)
            })?;
            Ok((stream, future))
        })
    }
}

// ---------------------------------------------------------------- sqlite

/// An open database connection (the resource behind `spin:sqlite/sqlite.connection`).
#[derive(Debug)]
pub struct SqlHandle {
    conn: Arc<Mutex<rusqlite::Connection>>,
}

impl SqlHandle {
    fn new(conn: rusqlite::Connection) -> Self {
        Self {
            conn: Arc::new(Mutex::new(conn)),
        }
    }
}

fn io_err(e: impl std::fmt::Display) -> sql::Error {
    sql::Error::Io(e.to_string())
}

fn lock(conn: &Mutex<rusqlite::Connection>) -> MutexGuard<'_, rusqlite::Connection> {
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

fn to_sql(v: &sql::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        sql::Value::Integer(n) => V::Integer(*n),
        sql::Value::Real(f) => V::Real(*f),
        sql::Value::Text(s) => V::Text(s.clone()),
        sql::Value::Blob(b) => V::Blob(b.clone()),
        sql::Value::Null => V::Null,
    }
}

/// A column value as Spin hands it over: REAL and BLOB unchanged (the component reads them by
/// the core's rule), TEXT that is not UTF-8 a failed query (Spin's own host fails there too)
/// rather than text silently repaired.
fn from_sql(v: rusqlite::types::ValueRef<'_>) -> Result<sql::Value, sql::Error> {
    use rusqlite::types::ValueRef as V;
    Ok(match v {
        V::Null => sql::Value::Null,
        V::Integer(n) => sql::Value::Integer(n),
        V::Real(f) => sql::Value::Real(f),
        V::Text(t) => sql::Value::Text(
            String::from_utf8(t.to_vec())
                .map_err(|_| sql::Error::Io("a TEXT value is not valid UTF-8".into()))?,
        ),
        V::Blob(b) => sql::Value::Blob(b.to_vec()),
    })
}

/// Runs one statement to completion (as Spin does) and returns its columns and rows.
fn run(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: &[sql::Value],
) -> Result<sql::QueryResult, sql::Error> {
    let mut stmt = conn.prepare(statement).map_err(io_err)?;
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let n = columns.len();
    let params = parameters.iter().map(to_sql).collect::<Vec<_>>();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .map_err(io_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(io_err)? {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(from_sql(row.get_ref(i).map_err(io_err)?)?);
        }
        out.push(sql::RowResult { values });
    }
    Ok(sql::QueryResult { columns, rows: out })
}

fn conn_of<T>(
    accessor: &Accessor<T, Spin>,
    handle: &Resource<SqlHandle>,
) -> Result<Arc<Mutex<rusqlite::Connection>>, sql::Error> {
    accessor.with(|mut access| {
        access
            .get()
            .table
            .get(handle)
            .map(|h| h.conn.clone())
            .map_err(|_| sql::Error::InvalidConnection)
    })
}

/// Runs `f` on the connection on a blocking thread (a busy wait must not stall the runtime).
async fn blocking<R: Send + 'static>(
    conn: Arc<Mutex<rusqlite::Connection>>,
    f: impl FnOnce(&rusqlite::Connection) -> R + Send + 'static,
) -> Result<R, sql::Error> {
    tokio::task::spawn_blocking(move || f(&lock(&conn)))
        .await
        .map_err(io_err)
}

impl sql::Host for Ctx {}

impl sql::HostConnection for Ctx {
    fn open(&mut self, database: String) -> Result<Resource<SqlHandle>, sql::Error> {
        let conn = self.shared.connect(&database)?;
        self.table.push(SqlHandle::new(conn)).map_err(io_err)
    }

    fn execute(
        &mut self,
        self_: Resource<SqlHandle>,
        statement: String,
        parameters: Vec<sql::Value>,
    ) -> Result<sql::QueryResult, sql::Error> {
        let conn = self
            .table
            .get(&self_)
            .map_err(|_| sql::Error::InvalidConnection)?
            .conn
            .clone();
        let conn = lock(&conn);
        tokio::task::block_in_place(|| run(&conn, &statement, &parameters))
    }

    fn last_insert_rowid(&mut self, self_: Resource<SqlHandle>) -> i64 {
        self.table
            .get(&self_)
            .map(|h| lock(&h.conn).last_insert_rowid())
            .unwrap_or(0)
    }

    fn changes(&mut self, self_: Resource<SqlHandle>) -> u64 {
        self.table
            .get(&self_)
            .map(|h| lock(&h.conn).changes())
            .unwrap_or(0)
    }

    fn drop(&mut self, rep: Resource<SqlHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl<U> sql::HostConnectionWithStore<U> for Spin {
    async fn open_async(
        accessor: &Accessor<U, Self>,
        database: String,
    ) -> Result<Resource<SqlHandle>, sql::Error> {
        let shared = accessor.with(|mut access| access.get().shared.clone());
        let conn = tokio::task::spawn_blocking(move || shared.connect(&database))
            .await
            .map_err(io_err)??;
        accessor.with(|mut access| {
            access
                .get()
                .table
                .push(SqlHandle::new(conn))
                .map_err(io_err)
        })
    }

    async fn execute_async(
        accessor: &Accessor<U, Self>,
        self_: Resource<SqlHandle>,
        statement: String,
        parameters: Vec<sql::Value>,
    ) -> wasmtime::Result<
        Result<
            (
                Vec<String>,
                StreamReader<sql::RowResult>,
                FutureReader<Result<(), sql::Error>>,
            ),
            sql::Error,
        >,
    > {
        let result = match conn_of(accessor, &self_) {
            Ok(conn) => blocking(conn, move |c| run(c, &statement, &parameters))
                .await
                .and_then(|r| r),
            Err(e) => Err(e),
        };
        let sql::QueryResult { columns, rows } = match result {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, rows)?;
            let done = FutureReader::new(&mut access, async {
                wasmtime::Result::<_, wasmtime::Error>::Ok(Ok::<(), sql::Error>(()))
            })?;
            Ok(Ok((columns, stream, done)))
        })
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<U, Self>,
        self_: Resource<SqlHandle>,
    ) -> i64 {
        match conn_of(accessor, &self_) {
            Ok(conn) => blocking(conn, |c| c.last_insert_rowid()).await.unwrap_or(0),
            Err(_) => 0,
        }
    }

    async fn changes_async(accessor: &Accessor<U, Self>, self_: Resource<SqlHandle>) -> u64 {
        match conn_of(accessor, &self_) {
            Ok(conn) => blocking(conn, |c| c.changes()).await.unwrap_or(0),
            Err(_) => 0,
        }
    }
}

// ---------------------------------------------------------------- variables

impl vars::Host for Ctx {}

impl<U> vars::HostWithStore<U> for Spin {
    async fn get(accessor: &Accessor<U, Self>, name: String) -> Result<String, vars::Error> {
        valid_variable_name(&name)
            .map_err(|why| vars::Error::InvalidName(format!("{name:?}: {why}")))?;
        accessor.with(|mut access| {
            access
                .get()
                .shared
                .variables
                .get(&name)
                .cloned()
                .ok_or(vars::Error::Undefined(name))
        })
    }
}
