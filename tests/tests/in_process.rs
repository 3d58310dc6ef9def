//! Runs the black-box scenario suite in-process: the core served inside this test process
//! (`portcullis_tests::hosts::in_process`) on a clock the test controls and a seeded RNG, one
//! server per scenario, over real HTTP on loopback so the scenarios run unchanged. This is
//! the only runner of the `clocked!` list (scenarios that move the server's clock). The
//! lists are `common/scenario_lists.rs`, the same file every runner of the suite includes.
//!
//! Below the lists, what only this host can do: an issuer with a path, an injected storage
//! outage, and two instances on one store and one clock.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use portcullis_core::store::{Row, SqlStore, StoreError, Value};
use portcullis_tests::hosts::in_process::{InProcess, InProcessHost, Options};
use portcullis_tests::scenarios::support::*;
use portcullis_tests::scenarios::{key_schedule, Target};
use serde_json::json;

portcullis_tests::scenario_runner!(InProcess, clocked);
include!("common/scenario_lists.rs");

/// RFC 8414 §3.1 on an issuer with a path (`/tenant`).
#[tokio::test]
async fn issuer_with_a_path_serves_inserted_and_appended_metadata_and_prefixed_endpoints() {
    let host = InProcessHost::start_with(Options {
        issuer_path: "/tenant".into(),
        ..Options::default()
    })
    .await;
    assert!(
        host.target.base.ends_with("/tenant"),
        "{}",
        host.target.base
    );
    portcullis_tests::scenarios::discovery::issuer_with_a_path_serves_inserted_and_appended_metadata_and_prefixed_endpoints(&host.target).await;
}

/// A store that fails every call while `down` is set (the outage this host can inject), or
/// with `only`, just the calls whose SQL contains it (a batch: any of its statements).
struct Outage {
    inner: Arc<dyn SqlStore>,
    down: Arc<AtomicBool>,
    only: Option<&'static str>,
}

impl Outage {
    fn check<'a>(&self, mut sql: impl Iterator<Item = &'a str>) -> Result<(), StoreError> {
        let hit = match self.only {
            None => true,
            Some(needle) => sql.any(|s| s.contains(needle)),
        };
        if hit && self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("injected outage".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl SqlStore for Outage {
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        self.check(std::iter::once(sql))?;
        self.inner.execute(sql, params).await
    }
    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        self.check(std::iter::once(sql))?;
        self.inner.query(sql, params).await
    }
    async fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<Vec<u64>, StoreError> {
        self.check(statements.iter().map(|(sql, _)| sql.as_str()))?;
        self.inner.batch(statements).await
    }
}

/// F7: a storage failure during a refresh is 503 `temporarily_unavailable`, never
/// `invalid_grant`, and revokes nothing: once storage is back the same refresh token works.
#[tokio::test]
async fn f7_storage_failure_is_503_not_invalid_grant_and_revokes_nothing() {
    let down = Arc::new(AtomicBool::new(false));
    let switch = down.clone();
    let host = InProcessHost::start_with(Options {
        store: Some(Box::new(move |inner| {
            Arc::new(Outage {
                inner,
                down: switch,
                only: None,
            })
        })),
        ..Options::default()
    })
    .await;
    let t = &host.target;
    let f = Fixture::confidential(t).await;
    let tok = f.tokens(t).await;
    let rt = tok.refresh.clone().expect("a refresh token");
    down.store(true, Ordering::SeqCst);
    let r = refresh(t, &rt, f.auth()).await;
    r.assert_oauth_error(503, "temporarily_unavailable");
    down.store(false, Ordering::SeqCst);
    tokens(&refresh(t, &rt, f.auth()).await);
    assert!(
        is_active(t, &tok.access, f.auth()).await,
        "nothing was revoked"
    );
}

/// F7 between the grant's steps: a failure after the access token is signed (storing its row,
/// or the rotation itself) is 503, and the same refresh token then works once, as the only
/// live token of its family: no reuse, nothing revoked.
#[tokio::test]
async fn f7_failure_between_signing_and_storing_keeps_the_old_token() {
    for needle in ["INSERT INTO access_tokens", "successor"] {
        let down = Arc::new(AtomicBool::new(false));
        let switch = down.clone();
        let host = InProcessHost::start_with(Options {
            store: Some(Box::new(move |inner| {
                Arc::new(Outage {
                    inner,
                    down: switch,
                    only: Some(needle),
                })
            })),
            ..Options::default()
        })
        .await;
        let t = &host.target;
        let f = Fixture::confidential(t).await;
        let tok = f.tokens(t).await;
        let rt = tok.refresh.clone().expect("a refresh token");
        down.store(true, Ordering::SeqCst);
        refresh(t, &rt, f.auth())
            .await
            .assert_oauth_error(503, "temporarily_unavailable");
        down.store(false, Ordering::SeqCst);
        let next = tokens(&refresh(t, &rt, f.auth()).await);
        assert!(
            is_active(t, &tok.access, f.auth()).await,
            "{needle}: the retry was taken for reuse"
        );
        // The rotation happened once: the old token is now consumed, the new one works.
        let again = refresh(t, &rt, f.auth()).await;
        again.assert_oauth_error(400, "invalid_grant");
        let rotated = next.refresh.expect("a rotated refresh token");
        let r = refresh(t, &rotated, f.auth()).await;
        r.assert_oauth_error(400, "invalid_grant");
    }
}

/// A machine client's token from `t` (the client and resource exist in the shared store).
async fn cc_token(t: &Target, c: &ClientCreds, resource: &str) -> String {
    let secret = c.secret.as_deref().expect("a secret");
    let form = [("grant_type", "client_credentials"), ("resource", resource)];
    tokens(&token(t, &form, Auth::Basic(&c.id, secret)).await).access
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWS")
        .kid
        .expect("a kid")
}

async fn jwks_kids(t: &Target) -> BTreeSet<String> {
    let jwks = send(http().get(t.url("/.well-known/jwks.json")))
        .await
        .ok_json();
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

async fn pending(t: &Target) -> usize {
    let v = admin_ok(t, reqwest::Method::GET, "/admin/keys", None).await;
    v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["status"] == json!("pending"))
        .count()
}

/// Two instances (caches and RNGs of their own) on one store and one clock, rotating every
/// 4 hours with 30 minutes of pre-publication: a key rotated on A is in B's JWKS at once
/// although B's signer cache is older; at every moment whatever either signs is in the
/// other's JWKS; at the scheduled rotation point, while one instance holds the right to
/// create the successor (simulated by reserving it in the store), the others create none and
/// keep signing; once the right lapses, exactly one successor is created.
#[tokio::test]
async fn instances_sharing_a_store_publish_before_signing_and_schedule_one_successor() {
    let (interval, prepublish) = (14400, 1800);
    let a = InProcessHost::start(key_schedule::SCHEDULED).await;
    let b = a.sibling().await;
    let (ta, tb) = (&a.target, &b.target);
    let resource = new_resource(ta, &SCOPES).await;
    let c = new_client(ta, "client_secret_basic", &["client_credentials"]).await;
    let first = kid_of(&cc_token(ta, &c, &resource).await);
    assert_eq!(
        kid_of(&cc_token(tb, &c, &resource).await),
        first,
        "the second instance uses the stored key"
    );
    let rotated = admin_ok(
        ta,
        reqwest::Method::POST,
        "/admin/keys/rotate",
        Some(json!({ "prepublish_secs": 600 })),
    )
    .await;
    let new = rotated["kid"].as_str().expect("kid").to_owned();
    assert!(jwks_kids(tb).await.contains(&new), "B publishes it at once");
    for _ in 0..30 {
        a.clock.advance(60);
        for tok in [
            cc_token(ta, &c, &resource).await,
            cc_token(tb, &c, &resource).await,
        ] {
            assert!(jwks_kids(tb).await.contains(&kid_of(&tok)));
            assert!(jwks_kids(ta).await.contains(&kid_of(&tok)));
        }
    }
    assert_eq!(kid_of(&cc_token(ta, &c, &resource).await), new);
    assert_eq!(kid_of(&cc_token(tb, &c, &resource).await), new);
    // The new key has signed since `since`; its successor is due `prepublish` before the
    // interval ends.
    let since = ta.now() - 1800 + 600;
    a.clock.set(since + interval - prepublish);
    let now = ta.now();
    let lock = format!("key-rotation:{new}");
    let sql = a.server.env().sql.clone();
    let reserved =
        portcullis_core::store::repo::replay::reserve(sql.as_ref(), &lock, now + 600, now)
            .await
            .expect("the store answers");
    assert!(reserved, "the right to create the successor is held");
    assert_eq!(kid_of(&cc_token(tb, &c, &resource).await), new);
    assert_eq!(kid_of(&cc_token(ta, &c, &resource).await), new);
    assert_eq!(pending(ta).await, 0, "nobody else creates a successor");
    a.clock.advance(600);
    assert_eq!(kid_of(&cc_token(tb, &c, &resource).await), new);
    assert_eq!(pending(ta).await, 1, "once the right lapsed, one successor");
    a.clock.advance(31);
    cc_token(ta, &c, &resource).await;
    cc_token(tb, &c, &resource).await;
    assert_eq!(pending(ta).await, 1, "and only one");
    assert_eq!(key_schedule::audit_count(ta, "key.rotated").await, 2);
}

/// The vault keeps no upstream token in clear: after a connect and a vend, the stored
/// connection holds only values sealed under the master key (`k{key id}.…`), none containing the token that was vended.
#[tokio::test]
async fn vault_store_holds_no_upstream_token_in_clear() {
    let host = InProcessHost::start(portcullis_tests::scenarios::vault::SETTINGS).await;
    let vended = portcullis_tests::scenarios::vault::connect_and_vend(&host.target).await;
    let rows = host
        .server
        .env()
        .sql
        .query("SELECT access_token, refresh_token FROM connections", &[])
        .await
        .expect("the connections table");
    assert_eq!(rows.len(), 1);
    let access = rows[0].text(0).unwrap();
    let refresh = rows[0]
        .opt_text(1)
        .unwrap()
        .expect("a refresh token is stored");
    for sealed in [&access, &refresh] {
        assert!(
            host.server.master_keys().is_current(sealed),
            "sealed form: {sealed}"
        );
        assert!(
            !sealed.contains(&vended),
            "the vended token is not stored in clear"
        );
    }
    let secrets = host
        .server
        .env()
        .sql
        .query("SELECT config, client_secret FROM providers", &[])
        .await
        .expect("the providers table");
    for r in &secrets {
        assert!(host.server.master_keys().is_current(&r.text(1).unwrap()));
        let config: serde_json::Value = serde_json::from_str(&r.text(0).unwrap()).unwrap();
        assert!(config.get("client_secret").is_none(), "{config}");
    }
}
