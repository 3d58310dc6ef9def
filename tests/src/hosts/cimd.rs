//! Client ID metadata documents fetched by an edge host through its runtime's outbound HTTP
//! (Workers `fetch`, Spin's `wasi:http`): a loopback document server and the checks every edge
//! runner makes against it (the native host's fetcher has its own tests).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::scenarios::support::{authorize_url, authz_params, new_resource, pairs};
use crate::scenarios::Target;

/// A one-thread HTTP/1.1 server on loopback for client ID metadata documents: `/client.json`
/// (a valid document), `/redirect.json` (302 to `/client.json`), `/big.json` (a valid
/// document padded past the size limit). Counts the requests per path.
pub struct DocumentServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl DocumentServer {
    /// Starts the server on a free loopback port (a thread of its own, for the process).
    pub fn start() -> Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let (served, origin) = (hits.clone(), base.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                *served
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(path.clone())
                    .or_default() += 1;
                let document = |id: &str, padding: usize| {
                    serde_json::json!({
                        "client_id": id,
                        "client_name": "Edge CIMD client",
                        "redirect_uris": ["https://client.example/cb"],
                        "token_endpoint_auth_method": "none",
                        "grant_types": ["authorization_code"],
                        "response_types": ["code"],
                        "padding": "x".repeat(padding),
                    })
                    .to_string()
                };
                let (status, extra, body) = match path.as_str() {
                    "/client.json" => (
                        "200 OK",
                        String::new(),
                        document(&format!("{origin}/client.json"), 0),
                    ),
                    "/big.json" => (
                        "200 OK",
                        String::new(),
                        document(&format!("{origin}/big.json"), 200_000),
                    ),
                    "/redirect.json" => (
                        "302 Found",
                        format!("Location: {origin}/client.json\r\n"),
                        String::new(),
                    ),
                    _ => ("404 Not Found", String::new(), String::new()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { base, hits }
    }

    /// How many requests `path` has had.
    pub fn hits(&self, path: &str) -> usize {
        *self
            .hits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .unwrap_or(&0)
    }
}

/// Client ID metadata documents through the host's outbound HTTP, on a server configured with
/// `cimd.allow_loopback = true` (and, on Spin, outbound HTTP to loopback allowed): a valid
/// loopback document is fetched once and accepted (then cached); a redirect is not followed
/// (S4); an oversized document is refused (S5); a private-address IP literal is refused
/// without a fetch (S1/S3 at URL level: edge hosts have no DNS step). `log` gives the host's
/// output for failure messages.
pub async fn cimd_documents_through_outbound_http(t: &Target, log: impl Fn() -> String) {
    let docs = DocumentServer::start();
    let resource = new_resource(t, &["mcp:tools"]).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let authorize = |client_id: String| {
        let params = authz_params(
            &client_id,
            "https://client.example/cb",
            &resource,
            "mcp:tools",
            "st",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        );
        let url = authorize_url(t, &pairs(&params));
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.expect("authorize answers");
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
    };

    for _ in 0..2 {
        let (status, body) = authorize(format!("{}/client.json", docs.base)).await;
        assert!(
            status < 400,
            "a valid metadata document is accepted: {status} {body}\n{}",
            log()
        );
    }
    assert_eq!(docs.hits("/client.json"), 1, "fetched once, then cached");

    let (status, _) = authorize(format!("{}/redirect.json", docs.base)).await;
    assert_eq!(status, 400, "a redirecting document URL is refused");
    assert_eq!(docs.hits("/redirect.json"), 1);
    assert_eq!(
        docs.hits("/client.json"),
        1,
        "the redirect was not followed"
    );

    let (status, _) = authorize(format!("{}/big.json", docs.base)).await;
    assert_eq!(status, 400, "an oversized document is refused");

    let (status, _) = authorize("https://10.0.0.1/client.json".to_owned()).await;
    assert_eq!(status, 400, "a private address is refused");
}
