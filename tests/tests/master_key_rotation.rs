//! Master key rotation on the native host, black box, on SQLite and PostgreSQL: a deployment
//! whose signing key, upstream tokens and provider client secret are sealed under master key A
//! restarts with B as `master_key` and A in `previous_master_keys`; everything still opens;
//! `POST /admin/rekey` seals it all again under B (a second run finds nothing to do); then the
//! deployment runs on B alone with the same signing key and the same connections. Started on
//! B alone before the re-encryption, it refuses to start and says why.

mod common;

use common::{OnExit, PgDatabase, Server, Spec};
use portcullis_tests::scenarios::support::*;
use portcullis_tests::scenarios::vault::{self, Connected};
use reqwest::Method;
use serde_json::Value;

/// Keeps the database alive until the test process exits.
#[allow(dead_code)] // held for its drop-at-exit guard only
enum DbGuard {
    Postgres(PgDatabase),
    Sqlite(OnExit),
}

/// A deployment's spec on `db` with the vault's loopback switch and master key `key`.
fn spec(db: &str, key: &str) -> Spec {
    let mut s = vault::SETTINGS
        .iter()
        .fold(Spec::new(db), |s, (k, v)| s.with(&env_name(k), v));
    s.master_key = key.to_owned();
    s
}

fn env_name(setting: &str) -> String {
    portcullis_tests::hosts::suite::env_name(setting)
}

/// The same deployment (issuer, database, admin key) on fresh ports with other settings.
fn restart_as(first: &Spec, key: &str, previous: Option<&str>) -> Spec {
    let mut s = first.sibling();
    s.master_key = key.to_owned();
    if let Some(old) = previous {
        s = s.with("PORTCULLIS_PREVIOUS_MASTER_KEYS", old);
    }
    s
}

async fn kids(server: &Server) -> Vec<String> {
    let jwks = http()
        .get(format!(
            "{}/.well-known/jwks.json",
            server.spec.public_url()
        ))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

async fn rotation_then_rekey(db: String) {
    let (old_key, new_key) = (random_b64(32), random_b64(32));
    let first_spec = spec(&db, &old_key);
    let a = common::start(first_spec.clone()).await.unwrap();
    let connected = Connected::new(&a.target).await;
    connected.vend(&a.target).await;
    let kids_before = kids(&a).await;
    drop(a);

    // B alone cannot open what A sealed: the server refuses to start and names the settings.
    let refused = common::start(restart_as(&first_spec, &new_key, None)).await;
    let log = refused.err().expect("a start on B alone is refused");
    assert!(log.contains("previous_master_keys"), "{log}");

    // B with A as a previous key: everything opens (the upstream token, and the refresh token
    // and provider secret when the 5-second upstream token needs a refresh).
    let b = common::start(restart_as(&first_spec, &new_key, Some(&old_key)))
        .await
        .unwrap();
    connected.vend(&b.target).await;
    let report = admin_ok(&b.target, Method::POST, "/admin/rekey", None).await;
    for column in [
        "signing_keys",
        "connection_access_tokens",
        "connection_refresh_tokens",
        "provider_client_secrets",
    ] {
        assert_eq!(report["unreadable"][column], 0, "{report}");
        let touched = report["resealed"][column].as_u64().unwrap()
            + report["current"][column].as_u64().unwrap();
        assert!(touched >= 1, "{column}: {report}");
    }
    assert!(
        report["resealed"]["signing_keys"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert!(
        report["resealed"]["provider_client_secrets"]
            .as_u64()
            .unwrap()
            >= 1,
        "{report}"
    );
    let again = admin_ok(&b.target, Method::POST, "/admin/rekey", None).await;
    let resealed: u64 = again["resealed"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(resealed, 0, "nothing left to re-seal: {again}");
    let audit = admin_ok(
        &b.target,
        Method::GET,
        "/admin/audit?action=admin.rekey",
        None,
    )
    .await;
    assert_eq!(audit["events"].as_array().unwrap().len(), 2, "{audit}");
    drop(b);

    // B alone: the same signing key signs, the connection still vends.
    let c = common::start(restart_as(&first_spec, &new_key, None))
        .await
        .unwrap();
    assert_eq!(kids(&c).await, kids_before);
    connected.vend(&c.target).await;
    let client = new_client(&c.target, "client_secret_basic", &["client_credentials"]).await;
    let r = token(
        &c.target,
        &[("grant_type", "client_credentials")],
        Auth::Basic(&client.id, client.secret.as_deref().unwrap()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn master_key_rotation_then_rekey_on_sqlite() {
    let (dir, guard) = common::temp_dir("rekey");
    let _db = DbGuard::Sqlite(guard);
    rotation_then_rekey(format!("sqlite://{}", dir.join("portcullis.db").display())).await;
}

#[tokio::test]
async fn master_key_rotation_then_rekey_on_postgres() {
    let Some(db) = common::pg_database("pc_rekey").await else {
        return;
    };
    let url = db.url.clone();
    let _db = DbGuard::Postgres(db);
    rotation_then_rekey(url).await;
}
