//! Tests of the HTTP host over real loopback sockets with a real SQLite file: body limit (G2),
//! request ids, the admin listener, access logs without query strings (H3), shutdown.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::config::load_from;

const ADMIN_KEY: &str = "test-admin-key-0123456789";

struct Running {
    _dir: tempfile::TempDir,
    public: SocketAddr,
    admin: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (pa, aa) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
        let db = format!("sqlite://{}", dir.path().join("p.db").display());
        let env = [
            ("PORTCULLIS_LISTEN", pa.to_string()),
            ("PORTCULLIS_DATABASE_URL", db),
            ("PORTCULLIS_ADMIN_API_KEY", ADMIN_KEY.to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v));
        let settings = load_from(None, &env).unwrap();
        let server = super::start(&settings).await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done = tokio::spawn(serve(
            server,
            public,
            admin,
            Vec::new(),
            Limits::default(),
            async {
                let _ = rx.await;
            },
        ));
        Self {
            _dir: dir,
            public: pa,
            admin: aa,
            stop: Some(tx),
            done,
        }
    }

    fn url(&self, admin: bool, path: &str) -> String {
        let addr = if admin { self.admin } else { self.public };
        format!("http://{addr}{path}")
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap().unwrap();
    }
}

/// A log sink shared with the test.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn h3_access_log_has_path_without_query_and_request_id() {
    // A process-wide subscriber: thread-local ones race with callsite registration in
    // parallel tests. Other tests log into the same sink; lines are matched by request id.
    static SINK: std::sync::OnceLock<Sink> = std::sync::OnceLock::new();
    let sink = SINK.get_or_init(|| {
        let sink = Sink::default();
        let writer = sink.clone();
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || writer.clone())
            .init();
        sink
    });
    let app = Running::start().await;
    let resp = reqwest::get(app.url(false, "/health?code=SECRETCODE&state=abc"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.len() >= 16);
    app.stop().await;
    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no access log line for {id}: {logs}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["path"], "/health");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["status"], 200);
    assert!(v["latency_ms"].is_number());
    assert!(!logs.contains("SECRETCODE"), "{logs}");
}

#[tokio::test]
async fn g2_declared_oversized_body_is_413_json() {
    let app = Running::start().await;
    let resp = reqwest::Client::new()
        .post(app.url(false, "/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; host::MAX_BODY_BYTES + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert!(resp.headers().contains_key("x-request-id"));
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn g2_chunked_oversized_body_is_413() {
    let app = Running::start().await;
    let mut sock = tokio::net::TcpStream::connect(app.public).await.unwrap();
    let head = "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    sock.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "a".repeat(16 * 1024));
    for _ in 0..5 {
        if sock.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = sock.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
    app.stop().await;
}

/// L4: a client that sends a 2 MB body slowly (declared with `Content-Length` or chunked)
/// gets every byte written without a reset, then reads a 413 with `Connection: close`: the
/// host answers at the limit and closes with a lingering close.
async fn l4_slow_two_megabyte_body(chunked: bool) {
    const TOTAL: usize = 2 * 1024 * 1024;
    const PIECE: usize = 64 * 1024;
    let app = Running::start().await;
    let mut sock = tokio::net::TcpStream::connect(app.public).await.unwrap();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {TOTAL}")
    };
    let head = format!(
        "POST /oauth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let piece = vec![b' '; PIECE];
    for i in 0..TOTAL / PIECE {
        if chunked {
            sock.write_all(format!("{PIECE:x}\r\n").as_bytes())
                .await
                .unwrap_or_else(|e| panic!("chunk {i}: {e}"));
        }
        sock.write_all(&piece)
            .await
            .unwrap_or_else(|e| panic!("piece {i}: the server reset the connection ({e})"));
        if chunked {
            sock.write_all(b"\r\n").await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if chunked {
        sock.write_all(b"0\r\n\r\n").await.unwrap();
    }
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), sock.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .expect("the response is readable, not reset");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{text}"
    );
    assert!(text.contains("payload_too_large"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn l4_slow_oversized_body_reads_413_declared_length() {
    l4_slow_two_megabyte_body(false).await;
}

#[tokio::test]
async fn l4_slow_oversized_body_reads_413_chunked() {
    l4_slow_two_megabyte_body(true).await;
}

#[tokio::test]
async fn admin_listener_serves_the_admin_api_only() {
    let app = Running::start().await;
    let client = reqwest::Client::new();
    let no_key = client
        .get(app.url(true, "/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    let public = client
        .get(app.url(false, "/admin/users"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let created = client
        .post(app.url(true, "/admin/users"))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({"username": "alice", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // The request id reaches the core: the audit event carries it.
    let audit: serde_json::Value = client
        .get(app.url(true, "/admin/audit?action=admin.user.created"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = audit["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["request_id"] == id.as_str()),
        "{audit}"
    );
    app.stop().await;
}

#[tokio::test]
async fn ready_checks_storage() {
    let app = Running::start().await;
    let resp = reqwest::get(app.url(false, "/ready")).await.unwrap();
    assert_eq!(resp.status(), 200);
    app.stop().await;
}

#[tokio::test(start_paused = true)]
async fn g2_body_that_never_arrives_is_408() {
    let body = http_body_util::StreamBody::new(futures_util::stream::pending::<
        Result<hyper::body::Frame<Bytes>, std::io::Error>,
    >());
    let resp = read_body(&http::HeaderMap::new(), body).await.unwrap_err();
    assert_eq!(resp.status(), http::StatusCode::REQUEST_TIMEOUT);
    let v: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(v["error"], "invalid_request");
}

#[test]
fn client_ip_believes_forwarded_for_only_from_trusted_proxies() {
    let proxies: Vec<IpNet> = vec![
        "10.0.0.0/8".parse().unwrap(),
        "127.0.0.1/32".parse().unwrap(),
    ];
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let mut h = http::HeaderMap::new();
    h.append("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
    h.append("x-forwarded-for", "10.1.2.3".parse().unwrap());
    // An untrusted peer: its header is ignored.
    assert_eq!(
        client_ip(ip("198.51.100.1"), &h, &proxies),
        ip("198.51.100.1")
    );
    // Through two trusted hops: the first untrusted address from the right.
    assert_eq!(client_ip(ip("10.9.9.9"), &h, &proxies), ip("203.0.113.7"));
    // No proxies configured: always the peer.
    assert_eq!(client_ip(ip("10.9.9.9"), &h, &[]), ip("10.9.9.9"));
    // A malformed entry stops at the last trusted hop.
    let mut bad = http::HeaderMap::new();
    bad.insert("x-forwarded-for", "203.0.113.7, garbage".parse().unwrap());
    assert_eq!(client_ip(ip("127.0.0.1"), &bad, &proxies), ip("127.0.0.1"));
    // Only trusted hops: the left-most of them.
    let mut inner = http::HeaderMap::new();
    inner.insert("x-forwarded-for", "10.0.0.5".parse().unwrap());
    assert_eq!(client_ip(ip("127.0.0.1"), &inner, &proxies), ip("10.0.0.5"));
}

#[test]
fn database_passwords_are_redacted() {
    assert_eq!(
        redact_url("postgres://u:hunter2@db:5432/p"),
        "postgres://u:***@db:5432/p"
    );
    assert_eq!(
        redact_url("sqlite://portcullis.db"),
        "sqlite://portcullis.db"
    );
}

#[test]
fn os_rng_fills() {
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    OsRng.fill(&mut a);
    OsRng.fill(&mut b);
    assert_ne!(a, b);
}
