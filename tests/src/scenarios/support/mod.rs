//! Helpers for the black-box scenarios: plain and browser-like HTTP clients, HTML form
//! parsing, PKCE (RFC 7636 §4) and the admin API. The OAuth flow helpers (authorization,
//! token, revocation, introspection, RFC 9068 verification) are in [`oauth`] and re-exported.

mod oauth;

pub use oauth::*;

use std::collections::HashMap;

use base64::Engine;
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION};
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

use super::Target;
use crate::conformance::uid;

/// The default scope catalog of the resources the scenarios create.
pub const SCOPES: [&str; 2] = ["mcp:tools", "mcp:read"];

/// The loopback redirect URI registered for native public clients (any port matches, R4).
pub const LOOPBACK_REDIRECT: &str = "http://127.0.0.1:43210/callback";

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as text (lossy).
    pub body: String,
    /// The URL that was requested (to resolve relative `Location`s).
    pub url: Url,
}

impl Resp {
    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body from {} (status {}): {e}; body: {}",
                self.url,
                self.status,
                short(&self.body)
            )
        })
    }
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    /// How many times a header appears.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers.get_all(name).iter().count()
    }
    /// The `Location` header resolved against the request URL.
    pub fn location(&self) -> Option<Url> {
        self.header(LOCATION.as_str()).map(|l| {
            self.url
                .join(&l)
                .expect("Location is a valid URL reference")
        })
    }
    /// Whether this is a redirect (301, 302, 303, 307, 308).
    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308)
    }
    /// Asserts an OAuth JSON error response with exactly this status and `error` code,
    /// and `Cache-Control: no-store` (H1).
    pub fn assert_oauth_error(&self, status: u16, error: &str) {
        assert_eq!(
            self.status,
            status,
            "expected {status} {error} from {}, got {}: {}",
            self.url,
            self.status,
            short(&self.body)
        );
        let body = self.json();
        assert_eq!(
            body["error"],
            json!(error),
            "wrong OAuth error code from {}: {}",
            self.url,
            short(&self.body)
        );
        assert_no_store(self);
    }
    /// Asserts a 200 JSON response and returns the JSON.
    pub fn ok_json(&self) -> Value {
        assert_eq!(
            self.status,
            200,
            "expected 200 from {}, got {}: {}",
            self.url,
            self.status,
            short(&self.body)
        );
        self.json()
    }
}

/// The first 600 characters of a body, for failure messages.
pub fn short(s: &str) -> String {
    let mut out: String = s.chars().take(600).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Asserts `Cache-Control: no-store` (H1).
pub fn assert_no_store(r: &Resp) {
    let cc = r.header("cache-control").unwrap_or_default();
    assert!(
        cc.split(',')
            .any(|d| d.trim().eq_ignore_ascii_case("no-store")),
        "{} (status {}) must carry Cache-Control: no-store, got {cc:?}",
        r.url,
        r.status
    );
}

async fn read(url: Url, resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap_or_default();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        url,
    }
}

/// Sends a request and reads the whole response; panics on a transport error.
pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
    let req = rb.build().expect("request builds");
    let url = req.url().clone();
    let method = req.method().clone();
    let resp = http().execute(req).await.unwrap_or_else(|e| {
        panic!(
            "{method} {} failed: {}",
            short(url.as_str()),
            short(&e.to_string())
        )
    });
    read(url, resp).await
}

/// A plain client: no cookies, no redirects followed. A new one per call, because each
/// test runs its own runtime and pooled connections must not outlive it.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// A browser: a cookie jar, no automatic redirects (the client's `redirect_uri` is never
/// contacted; its `Location` is read instead).
pub struct Browser {
    client: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser with an empty cookie jar.
    pub fn new() -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .expect("browser client"),
        }
    }
    /// `GET url`.
    pub async fn get(&self, url: &str) -> Resp {
        let u = Url::parse(url).expect("absolute URL");
        let resp = self
            .client
            .get(u.clone())
            .header("accept", "text/html")
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "GET {} failed: {}",
                    short(u.as_str()),
                    short(&e.to_string())
                )
            });
        read(u, resp).await
    }
    /// `POST url` with a form body.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Resp {
        let u = Url::parse(url).expect("absolute URL");
        let resp = self
            .client
            .post(u.clone())
            .header("accept", "text/html")
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "POST {} failed: {}",
                    short(u.as_str()),
                    short(&e.to_string())
                )
            });
        read(u, resp).await
    }
    /// Follows redirects that stay on the server's origin; stops at a page or at a redirect
    /// elsewhere (to the client).
    pub async fn follow_local(&self, t: &Target, mut r: Resp) -> Resp {
        for _ in 0..5 {
            match r.location() {
                Some(loc) if r.is_redirect() && loc.origin() == t.base_url().origin() => {
                    r = self.get(loc.as_str()).await;
                }
                _ => return r,
            }
        }
        r
    }
}

/// The hidden (and other) `<input>` fields of an HTML page, name to value.
pub fn form_inputs(html: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let lower = html.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(start) = lower[pos..].find("<input").map(|i| i + pos) {
        let end = lower[start..].find('>').map_or(html.len(), |i| i + start);
        let attrs = parse_attrs(&html[start + 6..end]);
        if let Some(name) = attrs.get("name") {
            out.insert(
                name.clone(),
                attrs.get("value").cloned().unwrap_or_default(),
            );
        }
        pos = end;
    }
    out
}

fn parse_attrs(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let ns = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        let name = s[ns..i].to_ascii_lowercase();
        if name.is_empty() {
            i += 1;
            continue;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                i += 1;
                let vs = i;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = s[vs..i.min(b.len())].to_owned();
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = s[vs..i].to_owned();
            }
        }
        out.insert(name, unescape(&value));
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2F;", "/")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// Whether the page is the login form (shown with 200, or again with 4xx after a failure).
pub fn is_login_page(r: &Resp) -> bool {
    (r.status == 200 || (400..500).contains(&r.status))
        && mime(r) == "text/html"
        && form_inputs(&r.body).contains_key("password")
}

/// Whether the page is the consent form.
pub fn is_consent_page(r: &Resp) -> bool {
    r.status == 200 && !form_inputs(&r.body).contains_key("password") && r.body.contains("decision")
}

/// A PKCE pair (RFC 7636 §4.1–4.2, S256).
#[derive(Debug, Clone)]
pub struct Pkce {
    /// 43 unreserved characters.
    pub verifier: String,
    /// BASE64URL(SHA256(verifier)).
    pub challenge: String,
}

/// A fresh PKCE pair.
pub fn pkce() -> Pkce {
    let verifier = random_b64(32);
    let challenge = b64(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// base64url without padding.
pub fn b64(data: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// `n` unpredictable-enough bytes as base64url (test values, not secrets).
pub fn random_b64(n: usize) -> String {
    let mut out = Vec::new();
    let seed = uid("rnd");
    let mut i = 0u32;
    while out.len() < n {
        out.extend_from_slice(&Sha256::digest(format!("{seed}/{i}").as_bytes()));
        i += 1;
    }
    out.truncate(n);
    b64(out)
}

/// `Authorization: Basic` for a client id and secret (RFC 6749 §2.3.1: form-encoded first).
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

// ---- admin API ----------------------------------------------------------------------

/// Calls the admin API and returns the response.
pub async fn admin(t: &Target, method: reqwest::Method, path: &str, body: Option<Value>) -> Resp {
    let mut rb = http()
        .request(method, format!("{}{path}", t.admin))
        .bearer_auth(&t.admin_key);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    send(rb).await
}

/// Calls the admin API, requires a 2xx answer and returns its JSON.
pub async fn admin_ok(
    t: &Target,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let r = admin(t, method.clone(), path, body).await;
    assert!(
        (200..300).contains(&r.status),
        "admin {method} {path} failed with {}: {}",
        r.status,
        short(&r.body)
    );
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

/// Registers a resource with `scopes` under a unique URI and returns the URI.
pub async fn new_resource(t: &Target, scopes: &[&str]) -> String {
    let uri = format!("https://mcp.example.com/{}/mcp", uid("res"));
    new_resource_at(t, &uri, scopes).await;
    uri
}

/// Registers a resource at `uri`.
pub async fn new_resource_at(t: &Target, uri: &str, scopes: &[&str]) {
    new_resource_with(t, uri, scopes, &[]).await;
}

/// Registers (or updates) a resource at `uri` whose server may introspect its tokens
/// through the listed clients (RFC 7662 §4).
pub async fn new_resource_with(t: &Target, uri: &str, scopes: &[&str], introspectors: &[&str]) {
    admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/resources",
        Some(json!({
            "uri": uri,
            "scopes": scopes,
            "name": "Scenario MCP server",
            "introspection_clients": introspectors,
        })),
    )
    .await;
}

/// An end user.
#[derive(Debug, Clone)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Subject id (`sub`).
    pub id: String,
}

/// Creates a user with a unique name.
pub async fn new_user(t: &Target) -> User {
    let username = uid("user");
    let password = format!("pw-{}", random_b64(12));
    let v = admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/users",
        Some(json!({ "username": username, "password": password })),
    )
    .await;
    let id = v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("POST /admin/users returns the user's id: {v}"))
        .to_owned();
    User {
        username,
        password,
        id,
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct ClientCreds {
    /// Client id.
    pub id: String,
    /// Secret, for confidential clients.
    pub secret: Option<String>,
    /// Its registered redirect URI.
    pub redirect_uri: String,
}

/// Creates a static client through the admin API.
pub async fn new_client(t: &Target, auth_method: &str, grant_types: &[&str]) -> ClientCreds {
    let redirect_uri = format!("https://client.example/{}/cb", uid("cb"));
    let v = admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({
            "client_name": format!("Scenario client {}", uid("n")),
            "redirect_uris": [redirect_uri],
            "grant_types": grant_types,
            "token_endpoint_auth_method": auth_method,
            // K5: the default scopes of a client_credentials request without `scope`.
            "scope": "mcp:tools mcp:read",
        })),
    )
    .await;
    let id = v["client_id"]
        .as_str()
        .unwrap_or_else(|| panic!("POST /admin/clients returns client_id: {v}"))
        .to_owned();
    let secret = v["client_secret"].as_str().map(str::to_owned);
    if auth_method != "none" {
        assert!(
            secret.is_some(),
            "a confidential client gets its secret once: {v}"
        );
    }
    ClientCreds {
        id,
        secret,
        redirect_uri,
    }
}

/// Registers a public native client through RFC 7591 and returns the response.
pub async fn register(t: &Target, metadata: Value) -> Resp {
    send(http().post(t.url("/oauth/register")).json(&metadata)).await
}

/// Registers a public native client named `name` for `redirect_uri` (authorization code and
/// refresh token grants) through RFC 7591, asserts the 201, and returns its `client_id`.
pub async fn register_native_client(t: &Target, name: &str, redirect_uri: &str) -> String {
    let reg = register(
        t,
        json!({
            "client_name": name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }),
    )
    .await;
    assert_eq!(reg.status, 201, "registration: {}", reg.body);
    reg.json()["client_id"]
        .as_str()
        .unwrap_or_else(|| panic!("RFC 7591 registration returns client_id: {}", reg.body))
        .to_owned()
}

/// The audit events with `action` recorded for `client_id`, newest first (`GET /admin/audit`).
pub async fn audit_events(t: &Target, action: &str, client_id: &str) -> Vec<Value> {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let path = format!(
        "/admin/audit?action={}&client_id={}&limit=200",
        enc(action),
        enc(client_id)
    );
    let v = admin_ok(t, reqwest::Method::GET, &path, None).await;
    v["events"]
        .as_array()
        .unwrap_or_else(|| panic!("GET /admin/audit answers a list of events: {v}"))
        .clone()
}

/// The `reason`s of the refusals (`outcome: failure`) among `events`, oldest first.
pub fn failure_reasons(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .rev()
        .filter(|e| e["outcome"] == json!("failure"))
        .map(|e| e["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}
