//! Refresh token rotation, reuse detection and storage failures (F1–F7).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use http::StatusCode;

use super::harness::*;
use crate::server::Portcullis;
use crate::store::test_store::{test_env_on, TestSql};
use crate::store::{Row, SqlStore, StoreError, Value};

fn tokens(h: &H) -> (String, String) {
    let code = h.code(PUBLIC);
    let (_, body) = h.redeem(PUBLIC, &code);
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn refresh(
    h: &H,
    client: &str,
    rt: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, serde_json::Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    form.extend_from_slice(extra);
    h.token(client, &form)
}

#[test]
fn f1_rotation_returns_a_new_token_and_consumes_the_old() {
    let h = H::new();
    let (_, rt) = tokens(&h);
    let (status, body) = refresh(&h, PUBLIC, &rt, &[]);
    assert_eq!(status, StatusCode::OK, "{body}");
    let rt2 = body["refresh_token"].as_str().unwrap();
    assert_ne!(rt2, rt);
    assert_eq!(refresh(&h, PUBLIC, rt2, &[]).0, StatusCode::OK);
}

#[test]
fn f2_replay_of_consumed_token_revokes_the_family() {
    let h = H::new();
    let (_, rt) = tokens(&h);
    let (_, body) = refresh(&h, PUBLIC, &rt, &[]);
    let rt2 = body["refresh_token"].as_str().unwrap().to_owned();
    let at2 = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = refresh(&h, PUBLIC, &rt, &[]);
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // The newest tokens of the family die too.
    let (status, _) = refresh(&h, PUBLIC, &rt2, &[]);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let jti = block(crate::access_token::verify_access_token(&h.server, &at2))
        .unwrap()
        .unwrap()
        .jti;
    assert!(block(crate::store::repo::access::is_revoked(h.sql.as_ref(), &jti)).unwrap());
}

#[test]
fn f4_scope_can_shrink_never_grow() {
    let h = H::new();
    let (_, rt) = tokens(&h);
    let (status, body) = refresh(&h, PUBLIC, &rt, &[("scope", "mcp:tools")]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "mcp:tools");
    let rt2 = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = refresh(&h, PUBLIC, &rt2, &[("scope", "mcp:tools mcp:resources")]);
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
}

#[test]
fn f5_another_client_gets_invalid_grant_and_owner_token_still_works() {
    let h = H::new();
    let (_, rt) = tokens(&h);
    let (status, body) = refresh(&h, CONFIDENTIAL, &rt, &[]);
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(refresh(&h, PUBLIC, &rt, &[]).0, StatusCode::OK);
}

#[test]
fn f6_expired_refresh_token_and_removed_resource_are_refused() {
    let h = H::new();
    let (_, rt) = tokens(&h);
    let (_, rt_b) = tokens(&h);
    block(crate::store::repo::resources::delete(
        h.sql.as_ref(),
        RESOURCE,
    ))
    .unwrap();
    let (status, body) = refresh(&h, PUBLIC, &rt_b, &[]);
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    h.clock.advance(30 * 24 * 3600 + 1);
    let (status, body) = refresh(&h, PUBLIC, &rt, &[]);
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

/// A store that can be switched to fail every call.
struct Flaky {
    inner: Arc<TestSql>,
    down: AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("injected outage".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl SqlStore for Flaky {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.execute(sql, params).await
    }
    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        self.check()?;
        self.inner.query(sql, params).await
    }
    async fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.batch(statements).await
    }
}

#[test]
fn f7_storage_failure_is_503_not_invalid_grant_and_revokes_nothing() {
    let sql = Arc::new(TestSql::memory());
    let flaky = Arc::new(Flaky {
        inner: sql.clone(),
        down: AtomicBool::new(false),
    });
    let (mut env, clock) = test_env_on(sql.clone());
    env.sql = flaky.clone();
    let server = block(Portcullis::start(env, config())).unwrap();
    let h = H { server, clock, sql };
    let (_, rt) = tokens(&h);
    flaky.down.store(true, Ordering::SeqCst);
    let (status, body) = refresh(&h, PUBLIC, &rt, &[]);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "temporarily_unavailable");
    flaky.down.store(false, Ordering::SeqCst);
    assert_eq!(refresh(&h, PUBLIC, &rt, &[]).0, StatusCode::OK);
}
