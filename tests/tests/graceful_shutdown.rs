//! Graceful shutdown under load (issue 16, "Staying power"): `portcullis serve` on SQLite
//! receives SIGTERM while token requests are in flight.
//!
//! - Requests the server is in the middle of reading when the signal arrives (their bodies are
//!   sent slowly, the last bytes only after the signal) are answered in full, 200 with a
//!   token, on the connection they came on, which the server then closes (the test reads to
//!   the end of the stream).
//! - The background load (`client_credentials` token requests from several workers) gets no
//!   5xx and no answer but 200 before the signal; after it, a request is either answered 200
//!   or refused at the connection, never cut off with a partial or error response.
//! - The process exits by itself with status 0 once they are done.
//!
//! docs/operations.md "Staying power" has the command and figures.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{OnExit, Spec};
use portcullis_tests::scenarios::support::*;
use portcullis_tests::scenarios::Target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Slowly sent requests in flight at the signal.
const SLOW: usize = 4;
/// Background workers.
const WORKERS: usize = 4;

/// A token request on a raw connection whose body is sent up to its last bytes; `finish`
/// sends the rest and reads the whole response.
struct SlowRequest {
    tcp: TcpStream,
    rest: Vec<u8>,
}

impl SlowRequest {
    async fn start(t: &Target, auth: &str, body: &str) -> Self {
        let url = t.base_url();
        let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
        let mut tcp = TcpStream::connect(&addr).await.expect("connect");
        let head = format!(
            "POST /oauth/token HTTP/1.1\r\nhost: {addr}\r\nauthorization: {auth}\r\n\
             content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let (now, rest) = body.as_bytes().split_at(body.len() - 5);
        tcp.write_all(head.as_bytes()).await.expect("write head");
        tcp.write_all(now).await.expect("write body");
        tcp.flush().await.expect("flush");
        Self {
            tcp,
            rest: rest.to_vec(),
        }
    }

    async fn finish(mut self) -> String {
        self.tcp
            .write_all(&self.rest)
            .await
            .expect("write the rest");
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), self.tcp.read_to_end(&mut out));
        read.await
            .expect("the response within 30 s")
            .expect("reading the response");
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_finishes_in_flight_requests() {
    let (dir, _guard): (_, OnExit) = common::temp_dir("sigterm");
    let url = format!("sqlite://{}", dir.join("portcullis.db").display());
    let server = common::start_retrying(|| {
        // Load from one client: the per-client token rate limit (k3) would answer 429 on a
        // fast machine.
        Spec::new(&url).with("PORTCULLIS_MACHINE_CLIENTS__RATE_LIMIT_PER_MINUTE", "0")
    })
    .await;
    let t = server.target.clone();
    let resource = new_resource(&t, &SCOPES).await;
    let c = new_client(&t, "client_secret_basic", &["client_credentials"]).await;
    let secret = c.secret.clone().unwrap();
    let auth = basic(&c.id, &secret);
    let body = format!(
        "grant_type=client_credentials&scope=mcp%3Aread&resource={}",
        url::form_urlencoded::byte_serialize(resource.as_bytes()).collect::<String>()
    );

    let signalled = Arc::new(AtomicBool::new(false));
    let (ok_before, ok_after, refused_after) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (t, auth, body) = (t.clone(), auth.clone(), body.clone());
            let (signalled, ok_before, ok_after, refused_after) = (
                signalled.clone(),
                ok_before.clone(),
                ok_after.clone(),
                refused_after.clone(),
            );
            tokio::spawn(async move {
                let client = http();
                loop {
                    let before = !signalled.load(Ordering::SeqCst);
                    let sent = client
                        .post(t.url("/oauth/token"))
                        .header("authorization", &auth)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send()
                        .await;
                    match sent {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let text = r.text().await;
                            assert!(
                                status == 200 && text.is_ok_and(|b| b.contains("access_token")),
                                "a token request was answered {status} (sent before the \
                                 signal: {before})"
                            );
                            if before { &ok_before } else { &ok_after }
                                .fetch_add(1, Ordering::SeqCst);
                        }
                        // A refused or closed connection: only once the server is stopping.
                        Err(e) => {
                            assert!(
                                signalled.load(Ordering::SeqCst),
                                "a request failed before the signal: {e}"
                            );
                            refused_after.fetch_add(1, Ordering::SeqCst);
                            if refused_after.load(Ordering::SeqCst) > 20 {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        })
        .collect();
    // Load for a while, then open the slow requests and signal while they are in flight.
    while ok_before.load(Ordering::SeqCst) < 50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        slow.push(SlowRequest::start(&t, &auth, &body).await);
    }
    // Let the server read the heads (it is now waiting for the bodies).
    tokio::time::sleep(Duration::from_millis(300)).await;
    signalled.store(true, Ordering::SeqCst);
    let stopper = tokio::task::spawn_blocking(move || server.stop_with("TERM"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for s in slow {
        let resp = s.finish().await;
        let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let token = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["access_token"].as_str().map(str::to_owned));
        assert!(
            resp.starts_with("HTTP/1.1 200") && token.is_some(),
            "a request in flight at SIGTERM was not answered in full: {resp}"
        );
    }
    let (_spec, status, log) = tokio::time::timeout(Duration::from_secs(60), stopper)
        .await
        .expect("the server stops within 60 s of SIGTERM")
        .unwrap();
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}\n{log}"
    );
    for w in workers {
        w.await.expect("a load worker failed");
    }
    eprintln!(
        "graceful shutdown: {} requests answered before the signal, {} after it, {} refused \
         at the connection after it, {SLOW} slow requests in flight answered",
        ok_before.load(Ordering::SeqCst),
        ok_after.load(Ordering::SeqCst),
        refused_after.load(Ordering::SeqCst)
    );
}
