//! A stand-in for an MCP client's web side on loopback, for the page scenarios: the
//! `/callback` page its redirect URI points at (it records every authorization response it
//! receives), and the pages of a hostile site: `/attack/post` (a form that posts fields of
//! the test's choosing to an address of its choosing) and `/attack/frame` (frames a page).
//! Reached as `http://127.0.0.1:<port>` it is same-site but cross-origin to a loopback issuer;
//! as `http://localhost:<port>` it is cross-site.

use std::sync::{Arc, Mutex};

use url::Url;

/// The page a person sees at the client after the redirect.
const CALLBACK_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Client callback</title></head><body><h1>Back at the application</h1></body></html>";

/// An HTTP/1.1 server on a free loopback port (one request per connection).
pub struct ClientApp {
    port: u16,
    callbacks: Arc<Mutex<Vec<Url>>>,
}

impl ClientApp {
    /// Starts the server (a thread of its own, for the process).
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("address").port();
        let callbacks = Arc::new(Mutex::new(Vec::new()));
        let seen = callbacks.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                // A thread per connection: browsers open speculative connections that send
                // nothing, which must not hold up the next request.
                let seen = seen.clone();
                std::thread::spawn(move || serve(stream, port, &seen));
            }
        });
        Self { port, callbacks }
    }

    /// `http://127.0.0.1:<port>`: same-site as a loopback issuer, another origin.
    pub fn same_site_origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://localhost:<port>`: another site than a `127.0.0.1` issuer.
    pub fn cross_site_origin(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    /// The redirect URI to register (`/callback` on 127.0.0.1).
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.same_site_origin())
    }

    /// The authorization responses received so far.
    pub fn callbacks(&self) -> Vec<Url> {
        self.callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A hostile page that posts `fields` to `action` when its button is clicked.
    pub fn attack_post_url(&self, origin: &str, action: &str, fields: &[(&str, &str)]) -> String {
        let mut url = Url::parse(&format!("{origin}/attack/post")).expect("a URL");
        url.query_pairs_mut().append_pair("action", action);
        for (k, v) in fields {
            url.query_pairs_mut().append_pair(&format!("f.{k}"), v);
        }
        url.into()
    }

    /// A hostile page that frames `target`.
    pub fn attack_frame_url(&self, origin: &str, target: &str) -> String {
        let mut url = Url::parse(&format!("{origin}/attack/frame")).expect("a URL");
        url.query_pairs_mut().append_pair("src", target);
        url.into()
    }
}

fn serve(mut stream: std::net::TcpStream, port: u16, seen: &Mutex<Vec<Url>>) {
    use std::io::Write;
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let Some(target) = crate::doc_server::request_target(&mut stream) else {
        return;
    };
    let url = Url::parse(&format!("http://127.0.0.1:{port}"))
        .and_then(|b| b.join(&target))
        .ok();
    let (status, body) = match url.as_ref().map(Url::path) {
        Some("/callback") => {
            if let Some(u) = url.clone() {
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(u);
            }
            ("200 OK", CALLBACK_PAGE.to_owned())
        }
        Some("/attack/post") => ("200 OK", attack_post(url.as_ref())),
        Some("/attack/frame") => ("200 OK", attack_frame(url.as_ref())),
        Some("/favicon.ico") => ("204 No Content", String::new()),
        _ => ("404 Not Found", "not found".to_owned()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn attack_post(url: Option<&Url>) -> String {
    let mut action = String::new();
    let mut inputs = String::new();
    for (k, v) in url
        .map(|u| u.query_pairs().into_owned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if k == "action" {
            action = v;
        } else if let Some(name) = k.strip_prefix("f.") {
            inputs.push_str(&format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(name),
                esc(&v)
            ));
        }
    }
    format!(
        "<!doctype html><html><head><title>Win a prize</title></head><body><h1>Win a prize</h1>\
<form method=\"post\" action=\"{}\">{inputs}<button id=\"go\" type=\"submit\">Claim</button></form></body></html>",
        esc(&action)
    )
}

fn attack_frame(url: Option<&Url>) -> String {
    let src = url
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "src")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><title>Framed</title></head><body><h1>Framed</h1>\
<iframe src=\"{}\" width=\"600\" height=\"500\"></iframe></body></html>",
        esc(&src)
    )
}
