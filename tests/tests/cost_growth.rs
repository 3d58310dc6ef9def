//! Cost growth (issue 16): what a request costs does not grow with the rows the store holds.
//! The in-process host runs on a recording store while the public flows run (authorization
//! code with sign-in and consent, a second authorization in the same session, code
//! redemption, refresh rotation, introspection, token exchange, `client_credentials`,
//! revocation, a refresh with a revoked token, dynamic registration) and a metrics scrape.
//! Then every statement they ran is run again on the same SQLite file, in a transaction that
//! is rolled back, counting SQLite's virtual-machine steps; the growing tables get
//! [`GROWTH`] more rows each, as a deployment with many users of one popular client would
//! have (other users' grants, refresh tokens, sessions; other clients; older audit events,
//! already folded into the metric counters; expired codes and requests), and each statement
//! is counted again. A statement that reads rows in proportion to the table (a scan, or an
//! index that narrows only to the client) gains thousands of steps; an index search gains
//! none. `scripts/bench-growth` measures the latencies this guards: the consent lookup
//! used the index on the client alone and made every authorization for a client with 10^5
//! grants read them all (migration 14).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use portcullis_core::store::{Row, SqlStore, StoreError, Value};
use portcullis_tests::conformance::uid;
use portcullis_tests::hosts::in_process::{InProcessHost, Options};
use portcullis_tests::scenarios::support::*;
use rusqlite::types::ToSqlOutput;
use serde_json::json;

/// Rows added to each growing table.
const GROWTH: i64 = 3000;

/// The growing tables and how their added rows differ from the ones the flows wrote (every
/// other column is copied): `k` numbers the added rows. The client of the flows keeps its
/// id, so lookups by client meet thousands of other users' rows.
const GROW: &[(&str, &[(&str, &str)])] = &[
    ("grants", &[("id", "'g-' || k"), ("subject", "'u-' || k")]),
    (
        "refresh_tokens",
        &[
            ("token_hash", "'rt-' || k"),
            ("grant_id", "'g-' || k"),
            ("subject", "'u-' || k"),
        ],
    ),
    (
        "access_tokens",
        &[
            ("jti", "'at-' || k"),
            ("grant_id", "'g-' || k"),
            ("parent_jti", "NULL"),
        ],
    ),
    // Older events, folded already (below): what a running deployment has.
    (
        "audit_events",
        &[
            ("seq", "NULL"),
            ("at", "t.at - 100000 - k"),
            ("trace_id", "'tr-' || k"),
        ],
    ),
    (
        "auth_codes",
        &[
            ("code_hash", "'c-' || k"),
            ("subject", "'u-' || k"),
            ("expires_at", "t.expires_at - 100000"),
        ],
    ),
    (
        "auth_requests",
        &[
            ("id_hash", "'ar-' || k"),
            ("session_hash", "NULL"),
            ("expires_at", "t.expires_at - 100000"),
        ],
    ),
    (
        "sessions",
        &[("id_hash", "'s-' || k"), ("subject", "'u-' || k")],
    ),
    ("counters", &[("key", "'n-' || k || ':' || t.key")]),
    ("replay_cache", &[("key", "'r-' || k || t.key")]),
    (
        "users",
        &[("id", "'u-' || k"), ("username", "'user-' || k")],
    ),
    ("clients", &[("client_id", "'cl-' || k")]),
];

/// A statement gaining more steps than this with [`GROWTH`] more rows per table reads rows in
/// proportion to a table.
const MAX_GAINED_STEPS: u64 = 300;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Passes every statement through, noting it with its parameters.
struct Recorder {
    inner: OnceLock<Arc<dyn SqlStore>>,
    seen: Mutex<BTreeMap<String, Vec<Value>>>,
}

impl Recorder {
    fn inner(&self) -> &Arc<dyn SqlStore> {
        self.inner.get().expect("the host wrapped its store")
    }
    fn note(&self, sql: &str, params: &[Value]) {
        let mut seen = self.seen.lock().expect("the statement log");
        seen.entry(sql.to_owned())
            .or_insert_with(|| params.to_vec());
    }
}

#[async_trait]
impl SqlStore for Recorder {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        self.note(sql, params);
        self.inner().execute(sql, params).await
    }
    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        self.note(sql, params);
        self.inner().query(sql, params).await
    }
    async fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<Vec<u64>, StoreError> {
        for (sql, params) in statements {
            self.note(sql, params);
        }
        self.inner().batch(statements).await
    }
}

fn param(v: &Value) -> ToSqlOutput<'_> {
    match v {
        Value::Null => ToSqlOutput::from(rusqlite::types::Null),
        Value::Int(i) => ToSqlOutput::from(*i),
        Value::Text(t) => ToSqlOutput::from(t.as_str()),
    }
}

/// SQLite VM steps `sql` takes with `params`, run in a transaction that is rolled back
/// (`None`: the statement fails here, e.g. an insert of a key that exists now).
fn steps(db: &rusqlite::Connection, sql: &str, params: &[Value]) -> Option<u64> {
    db.execute_batch("BEGIN").expect("BEGIN");
    let run = || -> rusqlite::Result<u64> {
        let mut stmt = db.prepare(sql)?;
        for (i, v) in params.iter().enumerate() {
            stmt.raw_bind_parameter(i + 1, param(v))?;
        }
        let mut rows = stmt.raw_query();
        while rows.next()?.is_some() {}
        drop(rows);
        Ok(stmt.get_status(rusqlite::StatementStatus::VmStep) as u64)
    };
    let n = run().ok();
    db.execute_batch("ROLLBACK").expect("ROLLBACK");
    n
}

/// Adds [`GROWTH`] rows to each growing table, cloned from the rows there.
fn grow(db: &rusqlite::Connection) {
    for (table, overrides) in GROW {
        let cols: Vec<String> = db
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("the table's columns");
        let exprs: Vec<String> = cols
            .iter()
            .map(|c| {
                overrides
                    .iter()
                    .find(|(name, _)| name == c)
                    .map_or(format!("t.{c}"), |(_, e)| e.to_string())
            })
            .collect();
        let n = GROWTH;
        db.execute_batch(&format!(
            "WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < {n}) \
             INSERT INTO {table} ({}) SELECT {} FROM c, (SELECT * FROM {table} LIMIT 1) t",
            cols.join(", "),
            exprs.join(", ")
        ))
        .unwrap_or_else(|e| panic!("growing {table}: {e}"));
    }
    db.execute_batch(
        "UPDATE metric_fold SET folded_seq = (SELECT MAX(seq) FROM audit_events) WHERE id = 1",
    )
    .expect("the fold cursor");
}

#[tokio::test]
async fn what_a_request_costs_does_not_grow_with_the_tables() {
    let recorder = Arc::new(Recorder {
        inner: OnceLock::new(),
        seen: Mutex::new(BTreeMap::new()),
    });
    let hook = recorder.clone();
    let host = InProcessHost::start_with(Options {
        store: Some(Box::new(move |inner| {
            let _ = hook.inner.set(inner);
            hook as Arc<dyn SqlStore>
        })),
        ..Options::default()
    })
    .await;
    let t = &host.target;

    // A person and an MCP client: sign-in, consent, code, refresh twice.
    let machine = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let resource = format!("https://mcp.example.com/{}/mcp", uid("plans"));
    new_resource_with(t, &resource, &SCOPES, &[&machine.id]).await;
    let fx = Fixture {
        resource: resource.clone(),
        user: new_user(t).await,
        client: new_client(
            t,
            "client_secret_basic",
            &["authorization_code", "refresh_token", TOKEN_EXCHANGE],
        )
        .await,
    };
    let b = Browser::new();
    let p = pkce();
    let first = fx.redeem(t, &fx.code(t, &b, &p).await, &p.verifier).await;
    // The same person authorizes again in the same session (the remembered consent).
    let p2 = pkce();
    let second = fx.redeem(t, &fx.code(t, &b, &p2).await, &p2.verifier).await;
    let mut rt = first.refresh.clone().expect("a refresh token");
    let mut access = second.access.clone();
    for _ in 0..2 {
        let next = tokens(&refresh(t, &rt, fx.auth()).await);
        rt = next.refresh.expect("a rotated refresh token");
        access = next.access;
    }
    let machine_auth = Auth::Basic(&machine.id, machine.secret.as_deref().expect("a secret"));
    assert!(is_active(t, &access, machine_auth).await);
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", access.as_str()),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("scope", "mcp:tools"),
    ];
    let exchanged = tokens(&token(t, &form, fx.auth()).await);
    assert!(is_active(t, &exchanged.access, machine_auth).await);
    let form = [
        ("grant_type", "client_credentials"),
        ("resource", resource.as_str()),
    ];
    tokens(&token(t, &form, machine_auth).await);
    let r = revoke(t, &rt, Some("refresh_token"), fx.auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    refresh(t, &rt, fx.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    revoke(t, &access, Some("access_token"), fx.auth()).await;
    assert!(!is_active(t, &access, machine_auth).await);
    let r = register(
        t,
        json!({
            "client_name": "plans",
            "redirect_uris": ["http://127.0.0.1:9/cb"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = admin(t, reqwest::Method::GET, "/admin/metrics", None).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Every statement that ran, counted on the store as it is and on the grown store.
    let seen = recorder.seen.lock().expect("the statement log").clone();
    assert!(
        seen.len() > 30,
        "only {} statements were recorded",
        seen.len()
    );
    let db = rusqlite::Connection::open(host.database_path()).expect("the host's database");
    db.busy_timeout(std::time::Duration::from_secs(10))
        .expect("a busy timeout");
    let dml = |sql: &str| {
        let head = sql.trim_start().to_ascii_uppercase();
        ["SELECT", "UPDATE", "DELETE", "INSERT", "WITH"]
            .iter()
            .any(|k| head.starts_with(k))
    };
    let before: BTreeMap<&String, Option<u64>> = seen
        .iter()
        .filter(|(sql, _)| dml(sql))
        .map(|(sql, params)| (sql, steps(&db, sql, params)))
        .collect();
    grow(&db);
    let mut growing = Vec::new();
    let mut counted = 0;
    for (sql, was) in &before {
        let (Some(was), Some(now)) = (was, steps(&db, sql, &seen[*sql])) else {
            continue;
        };
        counted += 1;
        if now > was + MAX_GAINED_STEPS {
            growing.push(format!("{was} -> {now} steps: {sql}"));
        }
    }
    assert!(
        counted > 30,
        "only {counted} statements could be counted twice"
    );
    assert!(
        growing.is_empty(),
        "statements whose cost grows with the tables ({GROWTH} more rows each):\n{}",
        growing.join("\n")
    );
}
