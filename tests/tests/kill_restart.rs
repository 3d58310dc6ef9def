//! Kill -9 under load (issue 16, "Staying power"): full authorization-code flows (authorize,
//! login, consent, code exchange, refresh rotations; RFC 6749 §4.1, §6, OAuth 2.1 §4.3.1)
//! run against `portcullis serve` from several workers; the process is killed with SIGKILL
//! in the middle and started again on the same database, ports and keys. Afterwards:
//!
//! - every refresh token whose issuance was answered 200 and that was not sent again before
//!   the kill refreshes exactly once (200, then `invalid_grant`);
//! - a token whose refresh was in flight at the kill is either still valid once or
//!   `invalid_grant`, never a 5xx;
//! - no authorization code is redeemed twice: every code answered 200 is `invalid_grant`
//!   when sent again, and a code in flight at the kill is redeemed at most once more;
//! - no signing key is lost: every key of the JWKS before the kill is in it after, and the
//!   access tokens issued before the kill verify against it;
//! - before the kill, no request got anything but the expected answer (no 5xx).
//!
//! On SQLite (a WAL file) and on PostgreSQL (`TEST_POSTGRES_URL`; skipped when unset, like
//! the other PostgreSQL suites). docs/operations.md "Staying power" has the command and figures.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{OnExit, PgDatabase, Server, Spec};
use portcullis_tests::scenarios::support::*;
use portcullis_tests::scenarios::Target;
use serde_json::Value;

/// Concurrent browser workers.
const WORKERS: usize = 4;
/// Refresh rotations per flow.
const ROTATIONS: usize = 3;
/// Chains (flows with a redeemed code) to reach before the kill.
const CHAINS_BEFORE_KILL: usize = 12;
/// Longest the load may take to reach them.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// What a worker saw of one request whose answer matters after the restart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// 200 with this JSON.
    Ok(Value),
    /// Another status, with the body.
    Refused(u16, String),
    /// No answer (the connection failed: the server was killed).
    Unknown,
}

/// One redeemed (or attempted) code and the refresh chain that followed.
#[derive(Debug, Default)]
struct Flow {
    code: String,
    verifier: String,
    /// The code exchange's outcome.
    exchange: Option<Outcome>,
    /// Refresh tokens issued with 200, in order.
    refresh_tokens: Vec<String>,
    /// Access tokens issued with 200.
    access_tokens: Vec<String>,
    /// The last refresh token was sent and no answer came back.
    last_refresh_unknown: bool,
}

#[derive(Default)]
struct Ledger {
    flows: Vec<Flow>,
    /// Unexpected answers before the kill.
    errors: Vec<String>,
}

/// A token request that reports a transport failure instead of panicking.
async fn try_token(t: &Target, form: &[(&str, &str)], client_id: &str) -> Outcome {
    let mut form = form.to_vec();
    form.push(("client_id", client_id));
    let sent = http().post(t.url("/oauth/token")).form(&form).send().await;
    let Ok(resp) = sent else {
        return Outcome::Unknown;
    };
    let status = resp.status().as_u16();
    let Ok(body) = resp.text().await else {
        return Outcome::Unknown;
    };
    match (status, serde_json::from_str::<Value>(&body)) {
        (200, Ok(v)) => Outcome::Ok(v),
        _ => Outcome::Refused(status, body),
    }
}

fn refresh_form(rt: &str) -> [(&'static str, &str); 2] {
    [("grant_type", "refresh_token"), ("refresh_token", rt)]
}

/// One worker: flows until `stop`, or until the server stops answering.
async fn worker(t: Target, fx: Fixture, ledger: Arc<Mutex<Ledger>>, stop: Arc<AtomicBool>) {
    let browser = Arc::new(Browser::new());
    while !stop.load(Ordering::SeqCst) {
        let p = pkce();
        // The browser helpers panic on a transport error: run them as a task of their own.
        let code = {
            let (t, fx, b, p) = (t.clone(), fx.clone(), browser.clone(), p.clone());
            tokio::spawn(async move { fx.code(&t, &b, &p).await }).await
        };
        let Ok(code) = code else {
            if !stop.load(Ordering::SeqCst) {
                ledger
                    .lock()
                    .unwrap()
                    .errors
                    .push("a browser flow failed".into());
            }
            return;
        };
        let idx = {
            let mut l = ledger.lock().unwrap();
            l.flows.push(Flow {
                code: code.clone(),
                verifier: p.verifier.clone(),
                ..Flow::default()
            });
            l.flows.len() - 1
        };
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", fx.client.redirect_uri.as_str()),
            ("code_verifier", p.verifier.as_str()),
            ("resource", fx.resource.as_str()),
        ];
        let outcome = try_token(&t, &form, &fx.client.id).await;
        ledger.lock().unwrap().flows[idx].exchange = Some(outcome.clone());
        let mut current = match outcome {
            Outcome::Ok(v) => v,
            Outcome::Unknown => return,
            Outcome::Refused(s, b) => {
                let mut l = ledger.lock().unwrap();
                l.errors.push(format!("code exchange answered {s}: {b}"));
                return;
            }
        };
        for rotation in 0..=ROTATIONS {
            let rt = current["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let at = current["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            {
                let mut l = ledger.lock().unwrap();
                let f = &mut l.flows[idx];
                f.refresh_tokens.push(rt.clone());
                f.access_tokens.push(at);
            }
            if rotation == ROTATIONS {
                break;
            }
            match try_token(&t, &refresh_form(&rt), &fx.client.id).await {
                Outcome::Ok(v) => current = v,
                Outcome::Unknown => {
                    ledger.lock().unwrap().flows[idx].last_refresh_unknown = true;
                    return;
                }
                Outcome::Refused(s, b) => {
                    let mut l = ledger.lock().unwrap();
                    l.errors.push(format!("refresh answered {s}: {b}"));
                    return;
                }
            }
        }
    }
}

/// The key ids of the server's JWKS.
async fn jwks_kids(t: &Target) -> BTreeSet<String> {
    let v = send(http().get(t.url("/.well-known/jwks.json")))
        .await
        .ok_json();
    v["keys"]
        .as_array()
        .expect("a JWK Set")
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

fn error_code(o: &Outcome) -> Option<String> {
    match o {
        Outcome::Refused(_, body) => serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned)),
        _ => None,
    }
}

/// Runs the load on `server`, kills it with SIGKILL mid-load, starts it again and checks
/// the guarantees; returns a one-line summary.
async fn kill_under_load(server: Server) -> String {
    let t = server.target.clone();
    let fx = Fixture::public(&t).await;
    let kids_before = jwks_kids(&t).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| tokio::spawn(worker(t.clone(), fx.clone(), ledger.clone(), stop.clone())))
        .collect();
    let started = Instant::now();
    loop {
        let chains = ledger
            .lock()
            .unwrap()
            .flows
            .iter()
            .filter(|f| !f.refresh_tokens.is_empty())
            .count();
        if chains >= CHAINS_BEFORE_KILL {
            break;
        }
        assert!(
            started.elapsed() < LOAD_TIMEOUT,
            "the load reached {chains} flows in {LOAD_TIMEOUT:?}; errors: {:?}",
            ledger.lock().unwrap().errors
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The kill lands while the workers are mid-flow (they never pause).
    let errors_before = ledger.lock().unwrap().errors.clone();
    assert!(
        errors_before.is_empty(),
        "unexpected answers under load: {errors_before:?}"
    );
    stop.store(true, Ordering::SeqCst);
    let (spec, status, _log) = tokio::task::spawn_blocking(move || server.stop_with("KILL"))
        .await
        .unwrap();
    assert!(!status.success(), "SIGKILL ends the process: {status}");
    for w in workers {
        let _ = w.await;
    }
    let restarted = common::start(spec)
        .await
        .unwrap_or_else(|e| panic!("the killed server does not start again: {e}"));
    let t = restarted.target.clone();

    // No signing key lost.
    let kids_after = jwks_kids(&t).await;
    assert!(
        kids_before.is_subset(&kids_after),
        "signing keys lost: before {kids_before:?}, after {kids_after:?}"
    );
    let flows = std::mem::take(&mut ledger.lock().unwrap().flows);
    for f in &flows {
        for at in f.access_tokens.iter().take(1) {
            verify_access_token(&t, at, &fx.resource).await;
        }
    }

    // Every refresh token issued with 200 refreshes exactly once.
    let (mut once, mut in_flight) = (0, 0);
    for f in &flows {
        let Some(last) = f.refresh_tokens.last() else {
            continue;
        };
        let first = try_token(&t, &refresh_form(last), &fx.client.id).await;
        if f.last_refresh_unknown {
            in_flight += 1;
            match &first {
                Outcome::Ok(_) => {}
                o => assert_eq!(
                    error_code(o).as_deref(),
                    Some("invalid_grant"),
                    "a refresh token in flight at the kill: {o:?}"
                ),
            }
        } else {
            assert!(
                matches!(first, Outcome::Ok(_)),
                "a refresh token issued with 200 before the kill does not refresh: {first:?}"
            );
            once += 1;
        }
        let again = try_token(&t, &refresh_form(last), &fx.client.id).await;
        assert_eq!(
            error_code(&again).as_deref(),
            Some("invalid_grant"),
            "a refresh token used a second time: {again:?}"
        );
    }

    // No code redeemed twice.
    let mut codes = 0;
    for f in &flows {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", f.code.as_str()),
            ("redirect_uri", fx.client.redirect_uri.as_str()),
            ("code_verifier", f.verifier.as_str()),
            ("resource", fx.resource.as_str()),
        ];
        let replay = try_token(&t, &form, &fx.client.id).await;
        match f.exchange {
            Some(Outcome::Ok(_)) => {
                codes += 1;
                assert_eq!(
                    error_code(&replay).as_deref(),
                    Some("invalid_grant"),
                    "a code answered 200 before the kill was redeemed again: {replay:?}"
                );
            }
            // Not sent, or in flight at the kill: at most one more redemption.
            _ => {
                if !matches!(replay, Outcome::Ok(_)) {
                    assert_eq!(error_code(&replay).as_deref(), Some("invalid_grant"));
                }
                let again = try_token(&t, &form, &fx.client.id).await;
                assert_eq!(
                    error_code(&again).as_deref(),
                    Some("invalid_grant"),
                    "a code redeemed twice: {again:?}"
                );
            }
        }
    }
    format!(
        "{} flows, {codes} redeemed codes replayed, {once} refresh tokens refreshed once, \
         {in_flight} in flight at the kill, {} signing keys kept",
        flows.len(),
        kids_after.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_sqlite_loses_no_grant() {
    let (dir, _guard): (_, OnExit) = common::temp_dir("kill9");
    let url = format!("sqlite://{}", dir.join("portcullis.db").display());
    let server = common::start_retrying(|| {
        // Load from one client: the per-client token rate limit (k3) would answer 429 on a
        // fast machine.
        Spec::new(&url).with("PORTCULLIS_MACHINE_CLIENTS__RATE_LIMIT_PER_MINUTE", "0")
    })
    .await;
    let summary = kill_under_load(server).await;
    eprintln!("sqlite: {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_postgres_loses_no_grant() {
    let Some(db): Option<PgDatabase> = common::pg_database("pc_kill9").await else {
        return;
    };
    let server = common::start_retrying(|| Spec::new(&db.url)).await;
    let summary = kill_under_load(server).await;
    eprintln!("postgres: {summary}");
}
