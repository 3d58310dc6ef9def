//! Helpers for the black-box scenarios: plain and browser-like HTTP clients, the admin API,
//! PKCE (RFC 7636 §4), the login and consent HTML forms, the token, revocation (RFC 7009)
//! and introspection (RFC 7662) endpoints, and independent verification of RFC 9068 access
//! tokens against the published JWKS with the `jsonwebtoken` crate.

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

// ---- the authorization flow ------------------------------------------------------------

/// Builds an authorization request URL from parameters.
pub fn authorize_url(t: &Target, params: &[(&str, &str)]) -> String {
    let mut u = Url::parse(&t.url("/oauth/authorize")).expect("issuer is a URL");
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

/// The parameters of an authorization response (a redirect to the client).
#[derive(Debug, Clone)]
pub struct AuthzResponse {
    /// The full `Location`.
    pub location: Url,
    /// Its query parameters, in order, with repeats.
    pub params: Vec<(String, String)>,
}

impl AuthzResponse {
    /// Reads an authorization response from a redirect.
    pub fn from_redirect(r: &Resp) -> Self {
        assert!(
            r.is_redirect(),
            "expected a redirect to the client from {}, got {}: {}",
            r.url,
            r.status,
            short(&r.body)
        );
        let location = r.location().expect("redirect has a Location");
        let params = location
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self { location, params }
    }
    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// How many times a parameter appears.
    pub fn count(&self, name: &str) -> usize {
        self.params.iter().filter(|(k, _)| k == name).count()
    }
    /// Asserts the redirect goes to `redirect_uri` (ignoring the query) and carries `state`
    /// and exactly one `iss` equal to the issuer (RFC 9207, M3, R8).
    pub fn assert_to_client(&self, t: &Target, redirect_uri: &str, state: &str) {
        let mut base = self.location.clone();
        base.set_query(None);
        let mut expected = Url::parse(redirect_uri).unwrap();
        expected.set_query(None);
        assert_eq!(
            base, expected,
            "the response goes to the registered redirect URI"
        );
        assert_eq!(
            self.count("state"),
            1,
            "state is returned once: {}",
            self.location
        );
        assert_eq!(
            self.get("state"),
            Some(state),
            "state is returned unchanged"
        );
        assert_eq!(
            self.count("iss"),
            1,
            "M3: iss appears exactly once in {}",
            self.location
        );
        assert_eq!(
            self.get("iss"),
            Some(t.base.as_str()),
            "iss is the issuer (RFC 9207)"
        );
        assert!(
            self.location.fragment().is_none(),
            "no fragment in the response"
        );
    }
    /// Asserts an error response with `error` (and state and iss), and no code.
    pub fn assert_error(&self, t: &Target, redirect_uri: &str, state: &str, error: &str) {
        self.assert_to_client(t, redirect_uri, state);
        assert_eq!(
            self.get("error"),
            Some(error),
            "wrong error in the authorization response {}",
            self.location
        );
        assert_eq!(self.count("code"), 0, "an error response carries no code");
    }
}

/// An authorization request for a fixture: every parameter of a valid request, which
/// callers override or remove.
pub fn authz_params(
    client_id: &str,
    redirect_uri: &str,
    resource: &str,
    scope: &str,
    state: &str,
    challenge: &str,
) -> Vec<(String, String)> {
    vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), client_id.into()),
        ("redirect_uri".into(), redirect_uri.into()),
        ("scope".into(), scope.into()),
        ("state".into(), state.into()),
        ("code_challenge".into(), challenge.into()),
        ("code_challenge_method".into(), "S256".into()),
        ("resource".into(), resource.into()),
    ]
}

/// Converts owned pairs to borrowed ones.
pub fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Replaces (or, with `None`, removes) a parameter.
pub fn set_param(v: &mut Vec<(String, String)>, name: &str, value: Option<&str>) {
    v.retain(|(k, _)| k != name);
    if let Some(value) = value {
        v.push((name.into(), value.into()));
    }
}

/// Submits the login form of `page` and returns the next page (following local redirects).
pub async fn login(b: &Browser, t: &Target, page: &Resp, user: &User) -> Resp {
    login_with(b, t, page, &user.username, &user.password).await
}

/// Submits the login form with any credentials.
pub async fn login_with(
    b: &Browser,
    t: &Target,
    page: &Resp,
    username: &str,
    password: &str,
) -> Resp {
    assert!(
        is_login_page(page),
        "expected the login page from {}, got {}: {}",
        page.url,
        page.status,
        short(&page.body)
    );
    let f = form_inputs(&page.body);
    let r = b
        .post_form(
            &t.url("/oauth/login"),
            &[
                ("request", f.get("request").map_or("", String::as_str)),
                ("csrf", f.get("csrf").map_or("", String::as_str)),
                ("username", username),
                ("password", password),
            ],
        )
        .await;
    b.follow_local(t, r).await
}

/// Submits the consent form of `page` with `decision` (`approve` or `deny`).
pub async fn consent(b: &Browser, t: &Target, page: &Resp, decision: &str) -> Resp {
    assert!(
        is_consent_page(page),
        "expected the consent page from {}, got {}: {}",
        page.url,
        page.status,
        short(&page.body)
    );
    let f = form_inputs(&page.body);
    b.post_form(
        &t.url("/oauth/consent"),
        &[
            ("request", f.get("request").map_or("", String::as_str)),
            ("csrf", f.get("csrf").map_or("", String::as_str)),
            ("decision", decision),
        ],
    )
    .await
}

/// Runs authorize → login (if needed) → consent with `decision` in `b`, and returns the
/// authorization response.
pub async fn authorize(
    b: &Browser,
    t: &Target,
    params: &[(String, String)],
    user: &User,
    decision: &str,
) -> AuthzResponse {
    let first = b
        .follow_local(t, b.get(&authorize_url(t, &pairs(params))).await)
        .await;
    let consent_page = if is_login_page(&first) {
        login(b, t, &first, user).await
    } else {
        first
    };
    let r = consent(b, t, &consent_page, decision).await;
    AuthzResponse::from_redirect(&r)
}

// ---- token, revocation, introspection ------------------------------------------------------

/// How a client authenticates at the token, revocation and introspection endpoints.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// No authentication, no client_id.
    Nothing,
    /// A public client: `client_id` in the body.
    Public(&'a str),
    /// `client_secret_basic`.
    Basic(&'a str, &'a str),
    /// `client_secret_post`.
    Post(&'a str, &'a str),
}

/// POSTs a form to `path` with client authentication.
pub async fn post_form(t: &Target, path: &str, form: &[(&str, &str)], auth: Auth<'_>) -> Resp {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut rb = http().post(t.url(path));
    match auth {
        Auth::Nothing => {}
        Auth::Public(id) => form.push(("client_id", id)),
        Auth::Basic(id, secret) => rb = rb.header("authorization", basic(id, secret)),
        Auth::Post(id, secret) => {
            form.push(("client_id", id));
            form.push(("client_secret", secret));
        }
    }
    send(rb.form(&form)).await
}

/// The token endpoint.
pub async fn token(t: &Target, form: &[(&str, &str)], auth: Auth<'_>) -> Resp {
    post_form(t, "/oauth/token", form, auth).await
}

/// The revocation endpoint (RFC 7009).
pub async fn revoke(t: &Target, token: &str, hint: Option<&str>, auth: Auth<'_>) -> Resp {
    let mut form = vec![("token", token)];
    if let Some(h) = hint {
        form.push(("token_type_hint", h));
    }
    post_form(t, "/oauth/revoke", &form, auth).await
}

/// The introspection endpoint (RFC 7662).
pub async fn introspect(t: &Target, token: &str, auth: Auth<'_>) -> Resp {
    post_form(t, "/oauth/introspect", &[("token", token)], auth).await
}

/// Whether introspection by `auth` says the token is active.
pub async fn is_active(t: &Target, token: &str, auth: Auth<'_>) -> bool {
    let v = introspect(t, token, auth).await.ok_json();
    v["active"]
        .as_bool()
        .unwrap_or_else(|| panic!("introspection answers a boolean 'active': {v}"))
}

/// A successful token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The access token (a JWT).
    pub access: String,
    /// The refresh token, when one was issued.
    pub refresh: Option<String>,
    /// The whole JSON response.
    pub raw: Value,
}

/// Checks a successful token response (RFC 6749 §5.1, H1) and extracts the tokens.
pub fn tokens(r: &Resp) -> Tokens {
    let v = r.ok_json();
    assert_no_store(r);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "token responses are JSON"
    );
    assert!(
        v["token_type"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("bearer")),
        "token_type is Bearer: {v}"
    );
    assert!(
        v["expires_in"].as_i64().is_some_and(|n| n > 0),
        "expires_in: {v}"
    );
    Tokens {
        access: v["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("access_token in {v}"))
            .to_owned(),
        refresh: v["refresh_token"].as_str().map(str::to_owned),
        raw: v,
    }
}

/// Exchanges a code at the token endpoint.
pub async fn exchange(
    t: &Target,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
    resource: Option<&str>,
    auth: Auth<'_>,
) -> Resp {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    token(t, &form, auth).await
}

/// Uses a refresh token.
pub async fn refresh(t: &Target, rt: &str, auth: Auth<'_>) -> Resp {
    token(
        t,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        auth,
    )
    .await
}

// ---- fixtures ---------------------------------------------------------------------------

/// A resource, a user and a client, all fresh.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The resource URI.
    pub resource: String,
    /// The user.
    pub user: User,
    /// The client.
    pub client: ClientCreds,
}

impl Fixture {
    /// A confidential client (`client_secret_basic`, code and refresh grants).
    pub async fn confidential(t: &Target) -> Self {
        Self {
            resource: new_resource(t, &SCOPES).await,
            user: new_user(t).await,
            client: new_client(
                t,
                "client_secret_basic",
                &["authorization_code", "refresh_token"],
            )
            .await,
        }
    }
    /// A public client (`none`, code and refresh grants).
    pub async fn public(t: &Target) -> Self {
        Self {
            resource: new_resource(t, &SCOPES).await,
            user: new_user(t).await,
            client: new_client(t, "none", &["authorization_code", "refresh_token"]).await,
        }
    }
    /// How the client authenticates.
    pub fn auth(&self) -> Auth<'_> {
        match &self.client.secret {
            Some(s) => Auth::Basic(&self.client.id, s),
            None => Auth::Public(&self.client.id),
        }
    }
    /// A valid authorization request with a fresh state.
    pub fn params(&self, pkce: &Pkce, state: &str) -> Vec<(String, String)> {
        authz_params(
            &self.client.id,
            &self.client.redirect_uri,
            &self.resource,
            "mcp:tools",
            state,
            &pkce.challenge,
        )
    }
    /// Runs the browser flow and returns a code (checking state and iss).
    pub async fn code(&self, t: &Target, b: &Browser, pkce: &Pkce) -> String {
        let state = random_b64(12);
        let resp = authorize(b, t, &self.params(pkce, &state), &self.user, "approve").await;
        resp.assert_to_client(t, &self.client.redirect_uri, &state);
        resp.get("code")
            .unwrap_or_else(|| panic!("an approved request returns a code: {}", resp.location))
            .to_owned()
    }
    /// Runs the whole flow and returns the tokens.
    pub async fn tokens(&self, t: &Target) -> Tokens {
        let b = Browser::new();
        let p = pkce();
        let code = self.code(t, &b, &p).await;
        let r = exchange(
            t,
            &code,
            &self.client.redirect_uri,
            &p.verifier,
            Some(&self.resource),
            self.auth(),
        )
        .await;
        tokens(&r)
    }
}

// ---- RFC 9068 access tokens ------------------------------------------------------------------

/// Verifies an access token against the JWKS (with `jsonwebtoken`, an implementation
/// independent of ours) as an RFC 9068 JWT for `audience`, and returns its claims.
pub async fn verify_access_token(t: &Target, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("the access token is a JWS");
    assert_eq!(
        header.typ.as_deref(),
        Some("at+jwt"),
        "RFC 9068 §2.1: typ is at+jwt"
    );
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256, "alg is ES256");
    let kid = header.kid.expect("the header carries a kid");
    let jwks = send(http().get(t.url("/.well-known/jwks.json")))
        .await
        .ok_json();
    let jwk_json = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"] == json!(kid)))
        .unwrap_or_else(|| panic!("kid {kid} is in the JWKS: {jwks}"))
        .clone();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk_json).expect("a valid JWK");
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("a usable public key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_issuer(&[t.base.as_str()]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["iss", "sub", "aud", "exp", "nbf", "iat"]);
    v.validate_nbf = true;
    v.leeway = 5;
    let data = jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap_or_else(|e| panic!("the access token verifies against the JWKS: {e}"));
    let c = data.claims;
    for claim in ["iss", "sub", "aud", "client_id", "jti", "iat", "nbf", "exp"] {
        assert!(
            !c[claim].is_null(),
            "RFC 9068 §2.2: claim {claim} is present: {c}"
        );
    }
    assert!(c["jti"].as_str().is_some_and(|s| !s.is_empty()));
    let aud_ok = c["aud"] == json!(audience) || c["aud"] == json!([audience]);
    assert!(
        aud_ok,
        "aud is exactly the resource {audience}: {}",
        c["aud"]
    );
    c
}

/// The payload of a JWT without verification (for tests that only read claims).
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

/// The content type of a response, lowercased, without parameters.
pub fn mime(r: &Resp) -> String {
    r.header(CONTENT_TYPE.as_str())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}
