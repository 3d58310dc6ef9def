//! The client side of the core's SQL bridge (`portcullis_core::sql_bridge`): a
//! [`SqlStore`] whose every call is one `POST /__test/sql` to a test build of an edge host,
//! so the storage conformance suite runs unchanged against D1 in workerd and Spin SQLite in
//! the Spin test host.

use async_trait::async_trait;
use portcullis_core::sql_bridge::{Call, Failure, Reply, Statement, PATH};
use portcullis_core::store::{Row, SqlStore, StoreError, Value};

/// A store reached through a host's SQL bridge.
#[derive(Debug, Clone)]
pub struct BridgeStore {
    client: reqwest::Client,
    url: String,
    admin_key: String,
}

impl BridgeStore {
    /// A store behind the host at `base` (its public URL), authorised with `admin_key`.
    pub fn new(base: &str, admin_key: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                // Each racing task gets its own connection, as separate clients would.
                .pool_max_idle_per_host(64)
                .build()
                .expect("an HTTP client"),
            url: format!("{}{PATH}", base.trim_end_matches('/')),
            admin_key: admin_key.to_owned(),
        }
    }

    async fn call(&self, call: &Call) -> Result<Reply, StoreError> {
        let resp = self
            .client
            .post(&self.url)
            .bearer_auth(&self.admin_key)
            .json(call)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(format!("bridge request failed: {e}")))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| StoreError::Unavailable(format!("bridge response failed: {e}")))?;
        if status.is_success() {
            serde_json::from_slice(&body).map_err(|e| {
                StoreError::Unavailable(format!(
                    "bridge answered {status} with an unreadable body ({e}): {}",
                    String::from_utf8_lossy(&body)
                ))
            })
        } else {
            match serde_json::from_slice::<Failure>(&body) {
                Ok(f) => Err(f.into_error()),
                Err(_) => Err(StoreError::Unavailable(format!(
                    "bridge answered {status}: {}",
                    String::from_utf8_lossy(&body)
                ))),
            }
        }
    }
}

fn unexpected(reply: Reply) -> StoreError {
    StoreError::Unavailable(format!(
        "bridge answered with the wrong kind of reply: {reply:?}"
    ))
}

#[async_trait]
impl SqlStore for BridgeStore {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let call = Call::Execute {
            sql: sql.to_owned(),
            params: params.to_vec(),
        };
        match self.call(&call).await? {
            Reply::Changed(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let call = Call::Query {
            sql: sql.to_owned(),
            params: params.to_vec(),
        };
        match self.call(&call).await? {
            Reply::Rows(rows) => Ok(rows.into_iter().map(Row).collect()),
            other => Err(unexpected(other)),
        }
    }

    async fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<Vec<u64>, StoreError> {
        let call = Call::Batch {
            statements: statements
                .iter()
                .map(|(sql, params)| Statement {
                    sql: sql.clone(),
                    params: params.clone(),
                })
                .collect(),
        };
        match self.call(&call).await? {
            Reply::Committed(changed) => Ok(changed),
            other => Err(unexpected(other)),
        }
    }
}
