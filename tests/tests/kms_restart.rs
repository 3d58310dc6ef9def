//! Key custody in Vault Transit across a restart of `portcullis serve` (native, SQLite; the
//! Transit server is the test double of `portcullis_tests::transit_server`, docs/kms.md): the
//! JWKS keeps the Transit key, tokens issued before still verify, the wrapped data key
//! stored before is unwrapped again (no new one is made) and the vault's sealed secrets seal
//! and open with it, and the Vault token never reaches the log.

mod common;

use common::Spec;
use portcullis_tests::hosts::suite::env_name;
use portcullis_tests::scenarios::kms::{jwks_kids, machine_token, Transit};
use portcullis_tests::scenarios::support::{is_active, Auth};

#[tokio::test]
async fn kms_vault_transit_restart_keeps_keys_and_sealed_secrets() {
    let transit = Transit::start();
    let (dir, _guard) = common::temp_dir("kms");
    let url = format!("sqlite://{}", dir.join("portcullis.db").display());
    let settings = transit.settings();
    let server = common::start_retrying(|| {
        settings
            .iter()
            .fold(Spec::new(&url), |s, (k, v)| s.with(&env_name(k), v))
    })
    .await;
    let t = server.target.clone();
    portcullis_tests::scenarios::vault::vault_connect_then_vend(&t).await;
    let (jwt, _, client) = machine_token(&t).await;
    let kids = jwks_kids(&t).await;
    let (datakeys, decrypts) = (
        transit.server.calls("datakey"),
        transit.server.calls("decrypt"),
    );
    assert_eq!(datakeys, 1);

    let (spec, _, log) = server.stop_with("TERM");
    let server = common::start(spec).await.expect("the server starts again");
    let t = server.target.clone();
    assert_eq!(
        jwks_kids(&t).await,
        kids,
        "the same Transit key is published"
    );
    let auth = Auth::Basic(&client.id, client.secret.as_deref().unwrap());
    assert!(
        is_active(&t, &jwt, auth).await,
        "a token from before verifies"
    );
    portcullis_tests::scenarios::vault::vault_connect_then_vend(&t).await;
    assert_eq!(
        transit.server.calls("datakey"),
        1,
        "the stored data key is reused"
    );
    assert!(
        transit.server.calls("decrypt") > decrypts,
        "the stored data key is unwrapped again after the restart"
    );
    for text in [log, server.log_text()] {
        assert!(
            !text.contains(&transit.token),
            "the Vault token is never logged"
        );
    }
}
