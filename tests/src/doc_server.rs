//! A one-thread HTTP/1.1 server on loopback that answers each path with a canned JSON
//! document or redirect and counts the requests per path: the remote documents (client ID
//! metadata documents, OpenID Connect discovery, JWK Sets) a host under test fetches through
//! its own outbound HTTP. Also [`request_target`], the request-head reading the test client
//! app ([`crate::chromium::app`]) shares.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use crate::lock;

/// What a path answers.
#[derive(Clone)]
enum Answer {
    /// `200 OK` with this JSON body.
    Json(String),
    /// `302 Found` to this location.
    Redirect(String),
}

/// The server; it lives as long as the test process (its thread is never joined).
pub struct DocServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

/// Reads an HTTP/1.1 request head from `stream` and returns its request target (`/path?query`);
/// `None` when the connection closes or fails before the head ends.
pub fn request_target(stream: &mut std::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    Some(head.split_whitespace().nth(1).unwrap_or("/").to_owned())
}

impl DocServer {
    /// Starts the server on a free loopback port; every path answers 404 until it is set.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (served, counted) = (answers.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let path = request_target(&mut stream).unwrap_or_else(|| "/".to_owned());
                *lock(&counted).entry(path.clone()).or_default() += 1;
                let answer = lock(&served).get(&path).cloned();
                let (status, extra, body) = match answer {
                    Some(Answer::Json(body)) => ("200 OK", String::new(), body),
                    Some(Answer::Redirect(to)) => {
                        ("302 Found", format!("Location: {to}\r\n"), String::new())
                    }
                    None => ("404 Not Found", String::new(), String::new()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            base,
            answers,
            hits,
        }
    }

    /// `path` answers `200` with `doc`.
    pub fn json(&self, path: &str, doc: &serde_json::Value) {
        lock(&self.answers).insert(path.to_owned(), Answer::Json(doc.to_string()));
    }

    /// `path` answers `302` to `location`.
    pub fn redirect(&self, path: &str, location: &str) {
        lock(&self.answers).insert(path.to_owned(), Answer::Redirect(location.to_owned()));
    }

    /// How many requests `path` has had.
    pub fn hits(&self, path: &str) -> usize {
        *lock(&self.hits).get(path).unwrap_or(&0)
    }
}
