//! Test harness: a server with one resource, one user, a public and a confidential client,
//! and helpers that walk the browser through authorize, login and consent.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};

use crate::config::{Config, SeedClient, SeedResource, SeedUser};
use crate::runtime::FixedClock;
use crate::server::Portcullis;
use crate::store::test_store::{test_env_on, TestSql};

pub const RESOURCE: &str = "https://mcp.example.com/mcp";
pub const PUBLIC: &str = "public-app";
pub const CONFIDENTIAL: &str = "confidential-app";
pub const SECRET: &str = "confidential-secret-0123456789";
pub const REDIRECT: &str = "https://app.example.com/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A started authorization request, as the login page shows it.
pub struct Pending {
    /// The pending request handle.
    pub request: String,
    /// The form's CSRF token.
    pub csrf: String,
    /// The CSRF cookie's value.
    pub csrf_cookie: String,
}

pub struct H {
    pub server: Portcullis,
    pub clock: Arc<FixedClock>,
    pub sql: Arc<TestSql>,
}

pub fn block<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

pub fn config() -> Config {
    Config {
        users: vec![SeedUser {
            username: "alice".into(),
            password: "correct horse battery".into(),
        }],
        resources: vec![SeedResource {
            uri: RESOURCE.into(),
            scopes: vec!["mcp:tools".into(), "mcp:resources".into()],
            name: Some("Example MCP".into()),
            introspection_clients: vec![],
            exchange_clients: vec![],
        }],
        clients: vec![
            SeedClient {
                client_id: PUBLIC.into(),
                client_secret: None,
                client_name: Some("Public App".into()),
                redirect_uris: vec![REDIRECT.into(), "http://127.0.0.1/cb".into()],
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                scope: None,
                token_endpoint_auth_method: Some("none".into()),
                jwks: None,
                jwks_uri: None,
            },
            SeedClient {
                client_id: CONFIDENTIAL.into(),
                client_secret: Some(SECRET.into()),
                client_name: Some("Confidential App".into()),
                redirect_uris: vec![REDIRECT.into()],
                grant_types: vec![
                    "authorization_code".into(),
                    "refresh_token".into(),
                    "client_credentials".into(),
                ],
                // K5: the default scopes of a client_credentials request without `scope`.
                scope: Some("mcp:tools mcp:resources".into()),
                token_endpoint_auth_method: Some("client_secret_basic".into()),
                jwks: None,
                jwks_uri: None,
            },
        ],
        ..Config::default()
    }
}

impl H {
    pub fn new() -> Self {
        Self::with_config(config())
    }

    pub fn with_config(cfg: Config) -> Self {
        let sql = Arc::new(TestSql::memory());
        let (env, clock) = test_env_on(sql.clone());
        let server = block(Portcullis::start(env, cfg)).expect("server starts");
        Self { server, clock, sql }
    }

    pub fn send(&self, req: Request<Bytes>) -> Response<Bytes> {
        block(self.server.handle(req))
    }

    pub fn get(&self, path_and_query: &str, cookies: &str) -> Response<Bytes> {
        let mut b = Request::builder().method(Method::GET).uri(path_and_query);
        if !cookies.is_empty() {
            b = b.header(header::COOKIE, cookies);
        }
        self.send(b.body(Bytes::new()).unwrap())
    }

    pub fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Response<Bytes> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(Bytes::from(body)).unwrap())
    }

    /// POST to the token endpoint as the confidential client (Basic) or a public client.
    pub fn token(&self, client: &str, form: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        let basic;
        let mut headers = vec![];
        if client == CONFIDENTIAL {
            basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{CONFIDENTIAL}:{SECRET}"))
            );
            headers.push(("authorization", basic.as_str()));
        } else {
            form.push(("client_id", client));
        }
        let resp = self.post_form("/oauth/token", &form, &headers);
        json_of(resp)
    }

    /// Starts an authorization request with the standard parameters plus `extra` and returns
    /// the login form's hidden fields and the CSRF cookie.
    pub fn begin(&self, client: &str, extra: &[(&str, &str)]) -> Pending {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", client)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", RESOURCE)
            .append_pair("state", "xyz");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        let page = self.get(&format!("/oauth/authorize?{}", q.finish()), "");
        assert_eq!(page.status(), StatusCode::OK, "{}", body_of(&page));
        let body = body_of(&page);
        Pending {
            csrf_cookie: set_cookie(&page, "pc_csrf").expect("csrf cookie"),
            request: hidden(&body, "request"),
            csrf: hidden(&body, "csrf"),
        }
    }

    /// Posts the login form of `p`.
    pub fn login(&self, p: &Pending, username: &str, password: &str) -> Response<Bytes> {
        self.post_form(
            "/oauth/login",
            &[
                ("request", &p.request),
                ("csrf", &p.csrf),
                ("username", username),
                ("password", password),
            ],
            &[("cookie", &format!("pc_csrf={}", p.csrf_cookie))],
        )
    }

    /// Logs alice in for `p`; returns the cookies of the logged-in browser.
    pub fn login_ok(&self, p: &Pending) -> String {
        let login = self.login(p, "alice", "correct horse battery");
        assert_eq!(login.status(), StatusCode::SEE_OTHER, "{}", body_of(&login));
        let session = set_cookie(&login, "pc_session").expect("session cookie");
        format!("pc_csrf={}; pc_session={session}", p.csrf_cookie)
    }

    /// Posts the consent decision of `p` with `cookies`.
    pub fn decide(&self, p: &Pending, cookies: &str, decision: &str) -> Response<Bytes> {
        self.post_form(
            "/oauth/consent",
            &[
                ("request", &p.request),
                ("csrf", &p.csrf),
                ("decision", decision),
            ],
            &[("cookie", cookies)],
        )
    }

    /// Walks authorize → login → consent and returns the authorization response URL.
    pub fn authorize(&self, client: &str, extra: &[(&str, &str)], approve: bool) -> url::Url {
        let p = self.begin(client, extra);
        let cookies = self.login_ok(&p);
        let consent_url = format!("/oauth/consent?request={}", p.request);
        let consent = self.get(&consent_url, &cookies);
        assert_eq!(consent.status(), StatusCode::OK, "{}", body_of(&consent));
        let decision = self.decide(&p, &cookies, if approve { "approve" } else { "deny" });
        assert_eq!(
            decision.status(),
            StatusCode::SEE_OTHER,
            "{}",
            body_of(&decision)
        );
        url::Url::parse(&location(&decision)).unwrap()
    }

    /// A code for `client` with the standard PKCE pair.
    pub fn code(&self, client: &str) -> String {
        let url = self.authorize(client, &[], true);
        query(&url, "code").expect("code in redirect")
    }

    /// Redeems a code with the standard verifier.
    pub fn redeem(&self, client: &str, code: &str) -> (StatusCode, serde_json::Value) {
        self.token(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
    }

    /// Introspects as the confidential client.
    pub fn introspect(&self, token: &str) -> serde_json::Value {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{CONFIDENTIAL}:{SECRET}"))
        );
        json_of(self.post_form(
            "/oauth/introspect",
            &[("token", token)],
            &[("authorization", &basic)],
        ))
        .1
    }
}

pub fn body_of(resp: &Response<Bytes>) -> String {
    String::from_utf8_lossy(resp.body()).into_owned()
}

pub fn json_of(resp: Response<Bytes>) -> (StatusCode, serde_json::Value) {
    let status = resp.status();
    (
        status,
        serde_json::from_slice(resp.body()).unwrap_or(serde_json::Value::Null),
    )
}

pub fn location(resp: &Response<Bytes>) -> String {
    resp.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn set_cookie(resp: &Response<Bytes>, name: &str) -> Option<String> {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden input") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

pub fn query(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}
