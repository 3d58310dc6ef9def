//! Tests of the fetcher's transport rules (S3 mechanism, S4, S5, S8) against a raw HTTP/1.1
//! server on loopback. The address policy itself is the core's and is tested there.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A loopback server answering each request with `respond(path)`; it records every request.
struct RawServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl RawServer {
    async fn start(respond: fn(&str) -> Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let path = text.split(' ').nth(1).unwrap_or("").to_owned();
                    log.lock().unwrap().push(text);
                    match respond(&path) {
                        Some(resp) => {
                            let _ = sock.write_all(resp.as_bytes()).await;
                            let _ = sock.shutdown().await;
                        }
                        // Never answer (timeout tests).
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        Self { port, requests }
    }

    fn url(&self, host: &str, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{host}:{}{path}", self.port)).unwrap()
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn responder(path: &str) -> Option<String> {
    let body = r#"{"client_id":"x"}"#;
    Some(match path {
        "/doc" => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: max-age=60\r\nSet-Cookie: sid=abc\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        "/redirect" => "HTTP/1.1 302 Found\r\nLocation: /doc\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
        "/big-declared" => "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n{}".into(),
        "/big-chunked" => {
            let chunk = "a".repeat(600);
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n")
        }
        "/big-unframed" => format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}", "b".repeat(5000)),
        "/hang" => return None,
        _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    })
}

fn fetcher(allow: bool) -> HttpFetcher {
    let cfg = FetcherConfig {
        timeout: Duration::from_millis(500),
        ..FetcherConfig::default()
    };
    HttpFetcher::with_policy(&cfg, Arc::new(move |_| allow)).unwrap()
}

#[tokio::test]
async fn fetches_json_with_headers() {
    let server = RawServer::start(responder).await;
    let resp = fetcher(true)
        .get(&server.url("localhost", "/doc"), 1024)
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.content_type.as_deref(), Some("application/json"));
    assert_eq!(resp.cache_control.as_deref(), Some("max-age=60"));
    assert_eq!(resp.body, br#"{"client_id":"x"}"#);
    let req = server.requests()[0].to_ascii_lowercase();
    assert!(req.contains("accept: application/json\r\n"), "{req}");
}

#[tokio::test]
async fn s8_no_cookies_or_ambient_headers() {
    let server = RawServer::start(responder).await;
    let f = fetcher(true);
    f.get(&server.url("127.0.0.1", "/doc"), 1024).await.unwrap();
    f.get(&server.url("127.0.0.1", "/doc"), 1024).await.unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    for req in reqs {
        let lower = req.to_ascii_lowercase();
        assert!(!lower.contains("cookie:"), "{req}");
        assert!(!lower.contains("authorization:"), "{req}");
        assert!(!lower.contains("referer:"), "{req}");
    }
}

#[tokio::test]
async fn s4_redirects_are_not_followed() {
    let server = RawServer::start(responder).await;
    let resp = fetcher(true)
        .get(&server.url("127.0.0.1", "/redirect"), 1024)
        .await
        .unwrap();
    assert_eq!(resp.status, 302);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn s5_early_content_length_over_limit_is_refused() {
    let server = RawServer::start(responder).await;
    let err = fetcher(true)
        .get(&server.url("127.0.0.1", "/big-declared"), 1024)
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::TooLarge);
}

#[tokio::test]
async fn s5_body_over_limit_is_refused_while_reading() {
    let server = RawServer::start(responder).await;
    let f = fetcher(true);
    for path in ["/big-chunked", "/big-unframed"] {
        let err = f
            .get(&server.url("127.0.0.1", path), 1024)
            .await
            .unwrap_err();
        assert_eq!(err, FetchError::TooLarge, "{path}");
    }
    // Within the limit, the same bodies are fine.
    let ok = f
        .get(&server.url("127.0.0.1", "/big-chunked"), 2000)
        .await
        .unwrap();
    assert_eq!(ok.body.len(), 1200);
}

#[tokio::test]
async fn s5_timeout_is_reported() {
    let server = RawServer::start(responder).await;
    let err = fetcher(true)
        .get(&server.url("127.0.0.1", "/hang"), 1024)
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::Timeout);
}

#[tokio::test]
async fn s3_refused_after_dns_resolution() {
    let server = RawServer::start(responder).await;
    let err = fetcher(false)
        .get(&server.url("localhost", "/doc"), 1024)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Forbidden(_)), "{err:?}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn s3_refused_ip_literals_before_connecting() {
    let server = RawServer::start(responder).await;
    let f = fetcher(false);
    for host in ["127.0.0.1", "[::1]", "2130706433"] {
        let err = f.get(&server.url(host, "/doc"), 1024).await.unwrap_err();
        assert!(matches!(err, FetchError::Forbidden(_)), "{host}: {err:?}");
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn non_http_schemes_are_refused() {
    let url = url::Url::parse("file:///etc/passwd").unwrap();
    let err = fetcher(true).get(&url, 1024).await.unwrap_err();
    assert!(matches!(err, FetchError::Forbidden(_)));
}

#[tokio::test]
async fn unreachable_is_a_transport_error() {
    // Bind then drop to get a port with (very likely) nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap();
    let err = fetcher(true).get(&url, 1024).await.unwrap_err();
    assert!(matches!(err, FetchError::Transport(_)), "{err:?}");
}

#[test]
fn missing_extra_ca_file_names_the_setting() {
    let cfg = FetcherConfig {
        extra_ca_file: Some("/nonexistent/ca.pem".into()),
        ..FetcherConfig::default()
    };
    let err = HttpFetcher::with_policy(&cfg, Arc::new(|_| true))
        .err()
        .unwrap();
    assert!(err.to_string().contains("cimd.extra_ca_file"));
}

/// A TLS server for `localhost` with a certificate from a fresh test CA; returns the port
/// and the CA's PEM.
async fn tls_server() -> (u16, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::rustls::ServerConfig;

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let body = r#"{"client_id":"tls"}"#;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, ca.pem())
}

#[tokio::test]
async fn s1_extra_ca_file_trusts_a_loopback_https_document() {
    let (port, ca_pem) = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let url = url::Url::parse(&format!("https://localhost:{port}/doc")).unwrap();

    let trusting = FetcherConfig {
        extra_ca_file: Some(ca_file.display().to_string()),
        timeout: Duration::from_secs(5),
        ..FetcherConfig::default()
    };
    let f = HttpFetcher::with_policy(&trusting, Arc::new(|_| true)).unwrap();
    let resp = f.get(&url, 1024).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, br#"{"client_id":"tls"}"#);

    // Without the extra CA the same server is not trusted.
    let err = fetcher(true).get(&url, 1024).await.unwrap_err();
    assert!(matches!(err, FetchError::Transport(_)), "{err:?}");
}

#[tokio::test]
async fn s3_default_constructor_applies_the_core_policy() {
    let server = RawServer::start(responder).await;
    let url = server.url("localhost", "/doc");
    let strict = HttpFetcher::new(&FetcherConfig::default()).unwrap();
    let err = strict.get(&url, 1024).await.unwrap_err();
    assert!(matches!(err, FetchError::Forbidden(_)), "{err:?}");
    assert!(server.requests().is_empty());
    let loopback = HttpFetcher::new(&FetcherConfig {
        allow_loopback: true,
        ..FetcherConfig::default()
    })
    .unwrap();
    assert_eq!(loopback.get(&url, 1024).await.unwrap().status, 200);
}

/// Calls to an operator-configured service (the KMS): the address policy that refuses every
/// address for documents does not apply, the headers and the JSON body are sent, redirects
/// are not followed and the time and size limits hold.
#[tokio::test]
async fn configured_service_calls_skip_the_address_policy_but_keep_the_limits() {
    let server = RawServer::start(responder).await;
    let refusing = fetcher(false);
    let doc = server.url("127.0.0.1", "/doc");
    assert!(
        refusing.get(&doc, 1024).await.is_err(),
        "documents obey the policy"
    );
    let call = |url: &url::Url, max| {
        let url = url.clone();
        let f = refusing.clone();
        async move {
            f.send_configured(
                ConfiguredRequest {
                    method: "POST",
                    url: &url,
                    headers: &[("x-vault-token", "hvs.test-token")],
                    json: Some(r#"{"input":"aGk="}"#),
                },
                max,
            )
            .await
        }
    };
    let resp = call(&doc, 1024).await.unwrap();
    assert_eq!(resp.status, 200);
    let req = server.requests().pop().unwrap();
    let lower = req.to_ascii_lowercase();
    assert!(lower.starts_with("post /doc "), "{req}");
    assert!(lower.contains("x-vault-token: hvs.test-token\r\n"), "{req}");
    assert!(
        lower.contains("content-type: application/json\r\n"),
        "{req}"
    );
    let redirect = call(&server.url("127.0.0.1", "/redirect"), 1024)
        .await
        .unwrap();
    assert_eq!(redirect.status, 302, "not followed");
    assert_eq!(
        call(&server.url("127.0.0.1", "/big-declared"), 1024)
            .await
            .unwrap_err(),
        FetchError::TooLarge
    );
    assert_eq!(
        call(&server.url("127.0.0.1", "/hang"), 1024)
            .await
            .unwrap_err(),
        FetchError::Timeout
    );
}
