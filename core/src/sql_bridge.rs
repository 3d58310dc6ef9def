//! The SQL bridge: a small JSON protocol that carries one [`SqlStore`] call over HTTP, so the
//! storage conformance suite (DESIGN.md rule 5) can run from the test process against a store
//! that only exists inside a runtime (D1 in workerd, Spin SQLite in a Spin host).
//!
//! The protocol types are always compiled (the test client uses them); the route that serves
//! them, `POST /__test/sql` behind the admin API key, exists only when the core is built with
//! the cargo feature `sql-bridge`, which test builds enable and production builds never do.

use serde::{Deserialize, Serialize};

use crate::store::{Row, SqlStore, StoreError, Value};

/// The path the bridge is served on (feature `sql-bridge` only).
pub const PATH: &str = "/__test/sql";

/// One statement and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// SQL with `?` placeholders.
    pub sql: String,
    /// Parameters in placeholder order.
    #[serde(default)]
    pub params: Vec<Value>,
}

/// A call: one of the three [`SqlStore`] operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Call {
    /// [`SqlStore::execute`].
    Execute {
        /// SQL with `?` placeholders.
        sql: String,
        /// Parameters in placeholder order.
        #[serde(default)]
        params: Vec<Value>,
    },
    /// [`SqlStore::query`].
    Query {
        /// SQL with `?` placeholders.
        sql: String,
        /// Parameters in placeholder order.
        #[serde(default)]
        params: Vec<Value>,
    },
    /// [`SqlStore::batch`].
    Batch {
        /// The statements, run in one transaction.
        statements: Vec<Statement>,
    },
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Rows changed by `execute`.
    Changed(u64),
    /// Rows returned by `query`.
    Rows(Vec<Vec<Value>>),
    /// `batch` committed; the rows each statement changed.
    Committed(Vec<u64>),
}

/// A failed call: the [`StoreError`] kind and its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// `conflict`, `unavailable` or `corrupt`.
    pub error: String,
    /// The backend's message.
    pub message: String,
}

impl Failure {
    /// The wire form of a store error.
    pub fn from_error(e: &StoreError) -> Self {
        let (error, message) = match e {
            StoreError::Conflict(m) => ("conflict", m),
            StoreError::Unavailable(m) => ("unavailable", m),
            StoreError::Corrupt(m) => ("corrupt", m),
        };
        Self {
            error: error.to_owned(),
            message: message.clone(),
        }
    }

    /// The store error this failure carries (an unknown kind is `Unavailable`).
    pub fn into_error(self) -> StoreError {
        match self.error.as_str() {
            "conflict" => StoreError::Conflict(self.message),
            "corrupt" => StoreError::Corrupt(self.message),
            _ => StoreError::Unavailable(self.message),
        }
    }

    /// The HTTP status the bridge answers this failure with.
    pub fn status(&self) -> u16 {
        match self.error.as_str() {
            "conflict" => 409,
            "corrupt" => 422,
            _ => 503,
        }
    }
}

/// Runs one call on `store`.
pub async fn run(store: &dyn SqlStore, call: Call) -> Result<Reply, StoreError> {
    match call {
        Call::Execute { sql, params } => store.execute(&sql, &params).await.map(Reply::Changed),
        Call::Query { sql, params } => store
            .query(&sql, &params)
            .await
            .map(|rows| Reply::Rows(rows.into_iter().map(|Row(r)| r).collect())),
        Call::Batch { statements } => {
            let statements: Vec<(String, Vec<Value>)> =
                statements.into_iter().map(|s| (s.sql, s.params)).collect();
            store.batch(&statements).await.map(Reply::Committed)
        }
    }
}

/// Serves `POST` [`PATH`]: the admin API key is required, the body is a [`Call`], the answer
/// a [`Reply`] (200) or a [`Failure`] (409 conflict, 422 corrupt, 503 unavailable).
#[cfg(feature = "sql-bridge")]
pub async fn serve(
    ctx: &crate::context::Context,
    req: http::Request<bytes::Bytes>,
) -> http::Response<bytes::Bytes> {
    serve_store(
        ctx.env().sql.as_ref(),
        ctx.config().admin_api_key.as_ref(),
        req,
    )
    .await
}

/// [`serve`] on a bare store, for hosts that start a server per request (Spin): the bridge
/// must work even when the data under test would stop a server from starting (e.g. the
/// conformance suite's placeholder signing keys).
#[cfg(feature = "sql-bridge")]
pub async fn serve_store(
    store: &dyn SqlStore,
    admin_api_key: Option<&crate::secret::Secret>,
    req: http::Request<bytes::Bytes>,
) -> http::Response<bytes::Bytes> {
    use crate::error::{Error, ErrorCode};
    use crate::response::{error_json, json};
    use http::StatusCode;

    let authorized =
        admin_api_key.is_some_and(|key| crate::admin_key::presents_key(req.headers(), key));
    if !authorized {
        return error_json(&Error::new(
            ErrorCode::Unauthorized,
            "the SQL bridge requires the admin API key",
        ));
    }
    if req.method() != http::Method::POST {
        return error_json(&crate::request::method_not_allowed("POST"));
    }
    let call: Call = match serde_json::from_slice(req.body()) {
        Ok(c) => c,
        Err(e) => {
            return error_json(&Error::new(
                ErrorCode::InvalidRequest,
                format!("not a bridge call: {e}"),
            ))
        }
    };
    match run(store, call).await {
        Ok(reply) => json(
            StatusCode::OK,
            &serde_json::to_value(reply).unwrap_or_default(),
        ),
        Err(e) => {
            let failure = Failure::from_error(&e);
            let status =
                StatusCode::from_u16(failure.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            json(status, &serde_json::to_value(failure).unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_replies_round_trip_as_json() {
        let call: Call = serde_json::from_str(
            r#"{"op":"execute","sql":"UPDATE t SET a = ? WHERE b = ?","params":[null, 7, "x"]}"#,
        )
        .unwrap();
        assert_eq!(
            call,
            Call::Execute {
                sql: "UPDATE t SET a = ? WHERE b = ?".into(),
                params: vec![Value::Null, Value::Int(7), Value::Text("x".into())],
            }
        );
        let reply = Reply::Rows(vec![vec![Value::Int(-3), Value::Null]]);
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(text, r#"{"rows":[[-3,null]]}"#);
        assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), reply);
        assert_eq!(
            serde_json::from_str::<Reply>(r#"{"committed":[1,0]}"#).unwrap(),
            Reply::Committed(vec![1, 0])
        );
    }

    #[test]
    fn unknown_operations_and_fields_are_refused() {
        assert!(serde_json::from_str::<Call>(r#"{"op":"drop"}"#).is_err());
        assert!(serde_json::from_str::<Call>(r#"{"op":"query","sql":"x","extra":1}"#).is_err());
        assert!(
            serde_json::from_str::<Call>(r#"{"op":"query","sql":"x","params":[1.5]}"#).is_err()
        );
    }

    #[test]
    fn failures_keep_their_kind() {
        for e in [
            StoreError::Conflict("dup".into()),
            StoreError::Corrupt("bad".into()),
            StoreError::Unavailable("down".into()),
        ] {
            let f = Failure::from_error(&e);
            assert_eq!(f.clone().into_error(), e);
            assert!([409, 422, 503].contains(&f.status()));
        }
    }

    #[test]
    fn run_reaches_the_store() {
        let store = crate::store::test_store::TestSql::memory();
        futures::executor::block_on(async {
            run(
                &store,
                Call::Batch {
                    statements: vec![Statement {
                        sql: "CREATE TABLE bridge_t (a INTEGER, b TEXT)".into(),
                        params: vec![],
                    }],
                },
            )
            .await
            .unwrap();
            let changed = run(
                &store,
                Call::Execute {
                    sql: "INSERT INTO bridge_t (a, b) VALUES (?, ?)".into(),
                    params: vec![Value::Int(1), Value::Text("one".into())],
                },
            )
            .await
            .unwrap();
            assert_eq!(changed, Reply::Changed(1));
            let rows = run(
                &store,
                Call::Query {
                    sql: "SELECT a, b FROM bridge_t".into(),
                    params: vec![],
                },
            )
            .await
            .unwrap();
            assert_eq!(
                rows,
                Reply::Rows(vec![vec![Value::Int(1), Value::Text("one".into())]])
            );
        });
    }

    fn request(
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> http::Request<bytes::Bytes> {
        let mut b = http::Request::builder().method(method).uri(path);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        b.body(bytes::Bytes::from(body.to_owned())).unwrap()
    }

    fn server() -> crate::Portcullis {
        let cfg = crate::Config {
            admin_api_key: Some(crate::Secret::new("an-admin-key-of-enough-length")),
            ..Default::default()
        };
        futures::executor::block_on(crate::store::test_store::test_server(cfg))
    }

    #[test]
    fn handle_any_routes_admin_paths_to_the_admin_api() {
        let s = server();
        let r = futures::executor::block_on(s.handle_any(request("GET", "/admin/users", None, "")));
        assert_eq!(r.status(), 401);
        let r = futures::executor::block_on(s.handle_any(request(
            "GET",
            "/admin/users",
            Some("an-admin-key-of-enough-length"),
            "",
        )));
        assert_eq!(r.status(), 200);
        let r = futures::executor::block_on(s.handle_any(request("GET", "/health", None, "")));
        assert_eq!(r.status(), 200);
    }

    #[cfg(not(feature = "sql-bridge"))]
    #[test]
    fn without_the_feature_there_is_no_bridge() {
        let s = server();
        let call = r#"{"op":"query","sql":"SELECT 1","params":[]}"#;
        let r = futures::executor::block_on(s.handle_any(request(
            "POST",
            PATH,
            Some("an-admin-key-of-enough-length"),
            call,
        )));
        assert_eq!(r.status(), 404);
    }

    #[cfg(feature = "sql-bridge")]
    #[test]
    fn with_the_feature_the_bridge_needs_the_admin_key() {
        let s = server();
        let call = r#"{"op":"query","sql":"SELECT 1","params":[]}"#;
        let r = futures::executor::block_on(s.handle_any(request("POST", PATH, None, call)));
        assert_eq!(r.status(), 401);
        let r = futures::executor::block_on(s.handle_any(request(
            "POST",
            PATH,
            Some("an-admin-key-of-enough-length"),
            call,
        )));
        assert_eq!(r.status(), 200);
        assert_eq!(&r.body()[..], br#"{"rows":[[1]]}"#);
        let r = futures::executor::block_on(s.handle_any(request(
            "POST",
            PATH,
            Some("an-admin-key-of-enough-length"),
            "{}",
        )));
        assert_eq!(r.status(), 400);
    }
}
