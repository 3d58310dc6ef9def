//! OAuth flow helpers for the scenarios: the authorization request and the login and consent
//! forms, the token, revocation (RFC 7009) and introspection (RFC 7662) endpoints, fixtures,
//! and independent verification of RFC 9068 access tokens against the published JWKS with the
//! `jsonwebtoken` crate.

use base64::Engine;
use serde_json::{json, Value};
use url::Url;

use super::*;

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
    // An authorization's sign-in names its `request`; a vault page's names where to
    // `continue`.
    let (purpose, value) = match f.get("continue") {
        Some(path) => ("continue", path.as_str()),
        None => ("request", f.get("request").map_or("", String::as_str)),
    };
    let r = b
        .post_form(
            &t.url("/oauth/login"),
            &[
                (purpose, value),
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
    /// Redeems `code` (issued for this fixture's client, redirect URI and resource) and
    /// returns the tokens, failing on anything but success.
    pub async fn redeem(&self, t: &Target, code: &str, verifier: &str) -> Tokens {
        tokens(
            &exchange(
                t,
                code,
                &self.client.redirect_uri,
                verifier,
                Some(&self.resource),
                self.auth(),
            )
            .await,
        )
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
