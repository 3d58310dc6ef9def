//! The upstream OIDC provider of the federation scenarios: a real node-oidc-provider
//! (`tests/node/idp/server.mjs`, installed by `scripts/setup`) with an RS256 key, started once
//! per test process on loopback next to whichever host is under test. Its issuer uses the name
//! `localhost` while the hosts under test use `127.0.0.1`, so a browser keeps the two sites'
//! cookies apart. Clients register at it with RFC 7591; the script's test-only routes declare
//! account claims and make the ID tokens of one client defective.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::on_exit::OnExit;
use crate::scenarios::support::http;

/// The running IdP.
#[derive(Debug)]
pub struct Idp {
    /// Its issuer identifier.
    pub issuer: String,
}

/// The IdP, its node process (stopped by the guard when the test process ends) and the guard.
static IDP: OnceCell<(Idp, std::sync::Mutex<Child>, OnExit)> = OnceCell::const_new();

/// The IdP, started on first use.
pub async fn idp() -> &'static Idp {
    let (idp, _, _) = IDP
        .get_or_init(|| async {
            tokio::task::spawn_blocking(start)
                .await
                .expect("starting the IdP")
        })
        .await;
    idp
}

fn start() -> (Idp, std::sync::Mutex<Child>, OnExit) {
    let script = crate::repo_root().join("tests/node/idp/server.mjs");
    let modules = crate::repo_root().join("tests/node/node_modules/oidc-provider");
    assert!(
        modules.exists(),
        "tests/node/node_modules/oidc-provider is missing (run scripts/setup)"
    );
    let mut child = Command::new("node")
        .arg(&script)
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning node for the OIDC provider");
    let guard = OnExit::run(&["kill", &child.id().to_string()]);
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("reading the IdP's first line");
    let v: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("the IdP printed {line:?} instead of its issuer: {e}"));
    let issuer = v["issuer"].as_str().expect("an issuer").to_owned();
    (Idp { issuer }, std::sync::Mutex::new(child), guard)
}

impl Idp {
    /// Registers a confidential client for `redirect_uri`; `(client_id, client_secret)`.
    pub async fn register(&self, redirect_uri: &str, auth_method: &str) -> (String, String) {
        let r = http()
            .post(format!("{}/reg", self.issuer))
            .json(&json!({
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": auth_method,
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            }))
            .send()
            .await
            .expect("registering at the IdP");
        assert_eq!(r.status(), 201, "registration at the IdP");
        let v: Value = r.json().await.expect("a registration response");
        (
            v["client_id"].as_str().expect("client_id").to_owned(),
            v["client_secret"]
                .as_str()
                .expect("client_secret")
                .to_owned(),
        )
    }

    async fn post(&self, path: &str, body: Value) {
        let r = http()
            .post(format!("{}{path}", self.issuer))
            .json(&body)
            .send()
            .await
            .expect("calling the IdP's test route");
        assert_eq!(r.status(), 204, "{path}");
    }

    /// Declares the claims of the account `sub` (its login name at the IdP).
    pub async fn account(&self, claims: Value) {
        self.post("/__test/accounts", claims).await;
    }

    /// Makes the ID tokens issued to `client_id` defective (`nonce`, `aud`, `expired`).
    pub async fn tamper(&self, client_id: &str, mode: &str) {
        self.post(
            "/__test/tamper",
            json!({ "client_id": client_id, "mode": mode }),
        )
        .await;
    }
}
