//! Sustained mixed load (issue 16, "Staying power"): `portcullis serve` on SQLite under
//! several workers that each repeat a realistic mix for a while: a full authorization-code
//! flow through the login and consent forms, refresh rotations, introspection, token
//! exchange, `client_credentials`, RFC 7009 revocation (and the refresh it must refuse),
//! dynamic registration, and admin reads (clients, audit log, metrics).
//!
//! Every answer must be the one the step asks for: zero 5xx, zero unexpected errors. The
//! server's resident memory (`process_resident_memory_bytes` at the admin `/metrics`) is
//! sampled through the run and must stay flat once warm: the last third's peak within 20%
//! (plus 8 MiB for SQLite's bounded page caches) of the first third's.
//!
//! CI runs it for 30 s; `PORTCULLIS_SOAK_SECONDS=600 cargo test -p portcullis-tests --test
//! sustained_load -- --nocapture` runs it for ten minutes (docs/operations.md).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{OnExit, Spec};
use portcullis_tests::conformance::uid;
use portcullis_tests::scenarios::support::*;
use portcullis_tests::scenarios::Target;
use prometheus_parse::Scrape;
use serde_json::json;

const WORKERS: usize = 4;
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

fn soak_seconds() -> u64 {
    std::env::var("PORTCULLIS_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

/// One worker's clients: a confidential client for the user flows (with token exchange),
/// a machine client that may also introspect for the resource.
struct Worker {
    fx: Fixture,
    machine: ClientCreds,
}

impl Worker {
    async fn new(t: &Target) -> Self {
        let machine = new_client(t, "client_secret_basic", &["client_credentials"]).await;
        let resource = format!("https://mcp.example.com/{}/mcp", uid("soak"));
        new_resource_with(t, &resource, &SCOPES, &[&machine.id]).await;
        let fx = Fixture {
            resource,
            user: new_user(t).await,
            client: new_client(
                t,
                "client_secret_basic",
                &["authorization_code", "refresh_token", TOKEN_EXCHANGE],
            )
            .await,
        };
        Self { fx, machine }
    }

    fn machine_auth(&self) -> Auth<'_> {
        Auth::Basic(&self.machine.id, self.machine.secret.as_deref().unwrap())
    }

    /// One round of the mix ([`PER_ROUND`] requests); the first unexpected answer is
    /// returned as an error.
    async fn round(&self, t: &Target) -> Result<(), String> {
        // A full flow: authorize, login form, consent form, code exchange.
        let first = self.fx.tokens(t).await;
        let mut rt = first.refresh.clone().ok_or("no refresh token")?;
        let mut access = first.access.clone();
        for _ in 0..2 {
            let r = refresh(t, &rt, self.fx.auth()).await;
            expect("refresh", &r, 200)?;
            let next = tokens(&r);
            rt = next.refresh.ok_or("no rotated refresh token")?;
            access = next.access;
        }
        let r = introspect(t, &access, self.machine_auth()).await;
        expect("introspection", &r, 200)?;
        if serde_json::from_str::<serde_json::Value>(&r.body).map_err(|e| e.to_string())?["active"]
            != json!(true)
        {
            return Err(format!("a fresh token introspected inactive: {}", r.body));
        }
        let form = [
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", access.as_str()),
            ("subject_token_type", ACCESS_TOKEN),
            ("scope", "mcp:tools"),
        ];
        expect(
            "token exchange",
            &token(t, &form, self.fx.auth()).await,
            200,
        )?;
        let form = [
            ("grant_type", "client_credentials"),
            ("resource", self.fx.resource.as_str()),
        ];
        expect(
            "client_credentials",
            &token(t, &form, self.machine_auth()).await,
            200,
        )?;
        expect(
            "revocation",
            &revoke(t, &rt, Some("refresh_token"), self.fx.auth()).await,
            200,
        )?;
        let r = refresh(t, &rt, self.fx.auth()).await;
        expect("refresh with a revoked token", &r, 400)?;
        if !r.body.contains("invalid_grant") {
            return Err(format!("refresh with a revoked token: {}", r.body));
        }
        let r = register(
            t,
            json!({
                "client_name": "soak",
                "redirect_uris": [format!("http://127.0.0.1:9/{}/cb", uid("cb"))],
                "token_endpoint_auth_method": "none",
            }),
        )
        .await;
        expect("registration", &r, 201)?;
        for path in [
            "/admin/clients?limit=20",
            "/admin/audit?limit=20",
            "/admin/metrics",
        ] {
            let r = admin(t, reqwest::Method::GET, path, None).await;
            expect(path, &r, 200)?;
        }
        Ok(())
    }
}

/// Requests in one round: the flow's four, two refreshes, introspection, exchange, client
/// credentials, revocation, the refused refresh, registration, three admin reads.
const PER_ROUND: usize = 15;

fn expect(what: &str, r: &Resp, status: u16) -> Result<(), String> {
    if r.status == status {
        Ok(())
    } else {
        Err(format!("{what}: {} {}", r.status, short(&r.body)))
    }
}

/// The server's resident memory, from the admin listener's `/metrics`.
async fn resident_bytes(t: &Target) -> f64 {
    let r = admin(t, reqwest::Method::GET, "/metrics", None).await;
    assert_eq!(r.status, 200, "/metrics: {}", r.body);
    let scrape = Scrape::parse(r.body.lines().map(|l| Ok(l.to_owned()))).expect("exposition");
    scrape
        .samples
        .iter()
        .find(|s| s.metric == "process_resident_memory_bytes")
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .expect("process_resident_memory_bytes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sustained_mixed_load_no_errors_and_flat_memory() {
    let (dir, _guard): (_, OnExit) = common::temp_dir("soak");
    let url = format!("sqlite://{}", dir.join("portcullis.db").display());
    let server = common::start_retrying(|| {
        Spec::new(&url).with("PORTCULLIS_MACHINE_CLIENTS__RATE_LIMIT_PER_MINUTE", "0")
    })
    .await;
    let t = server.target.clone();
    let duration = Duration::from_secs(soak_seconds());
    let done = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let rounds = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut handles = Vec::new();
    for _ in 0..WORKERS {
        let w = Worker::new(&t).await;
        let (t, done, requests, rounds, errors) = (
            t.clone(),
            done.clone(),
            requests.clone(),
            rounds.clone(),
            errors.clone(),
        );
        handles.push(tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                match w.round(&t).await {
                    Ok(()) => {
                        requests.fetch_add(PER_ROUND, Ordering::SeqCst);
                        rounds.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        errors.lock().unwrap().push(e);
                        return;
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < duration && errors.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(resident_bytes(&t).await / (1024.0 * 1024.0));
    }
    done.store(true, Ordering::SeqCst);
    for h in handles {
        h.await.expect("a load worker panicked");
    }
    let errors = errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "unexpected answers: {errors:?}\n{}",
        server.log_text()
    );
    assert!(
        !server.log_text().contains("panicked"),
        "the server panicked:\n{}",
        server.log_text()
    );
    let third = samples.len() / 3;
    assert!(third >= 1, "too few memory samples: {samples:?}");
    let peak = |s: &[f64]| s.iter().cloned().fold(0.0, f64::max);
    let (early, late) = (peak(&samples[..third]), peak(&samples[2 * third..]));
    let (requests, rounds) = (
        requests.load(Ordering::SeqCst),
        rounds.load(Ordering::SeqCst),
    );
    eprintln!(
        "sustained load: {rounds} rounds, {requests} requests in {:.0?} ({:.0} requests/s) \
         with zero errors; resident memory (MiB) peak {early:.1} in the first third, {late:.1} \
         in the last; samples: {}",
        started.elapsed(),
        requests as f64 / started.elapsed().as_secs_f64(),
        samples
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(
        late <= early * 1.2 + 8.0,
        "resident memory grew: {early:.1} MiB early, {late:.1} MiB late ({samples:?})"
    );
}
