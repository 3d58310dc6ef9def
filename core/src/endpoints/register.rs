//! Dynamic client registration (RFC 7591 §2–§3, with `application_type` from OpenID Connect
//! Dynamic Client Registration §2): `POST /oauth/register` with a JSON body, in the modes
//! `open`, `allow_list` (redirect URIs must start with an allowed prefix) and `admin_only`
//! (admin API key as a bearer token), rate limited per client IP (SECURITY-CHECKLIST G1–G3,
//! H1).

use std::net::IpAddr;

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::clients::ClientMetadata;
use crate::config::{
    MachineClientsConfig, MachineRegistration, RegistrationConfig, RegistrationMode,
};
use crate::context::Context;
use crate::crypto::token_hash;
use crate::error::{Error, ErrorCode, Result};
use crate::request::{expect_method, json_body, RemoteAddr, RequestId};
use crate::response::{error_json, json};
use crate::runtime::{random_token, Rng};
use crate::secret::Secret;
use crate::store::repo::clients::ClientRow;
use crate::throttle::Window;

/// Handles `POST /oauth/register`.
pub async fn handle(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    let request_id = req.extensions().get::<RequestId>().cloned();
    match register(server, &req).await {
        Ok((resp, row)) => {
            crate::audit::record(
                server.env(),
                crate::audit::Event {
                    action: "client.registered",
                    success: true,
                    client_id: Some(&row.client_id),
                    request: request_id.as_ref(),
                    detail: Some(json!({
                        "mode": mode_name(server.config().registration.mode),
                        "client_name": row.metadata.client_name,
                        "application_type": row.metadata.application_type,
                        "token_endpoint_auth_method": row.metadata.token_endpoint_auth_method,
                        "grant_types": row.metadata.grant_types,
                        "redirect_uris": row.metadata.redirect_uris,
                    })),
                    ..Default::default()
                },
            )
            .await;
            resp
        }
        Err(e) => {
            // Wrong methods and rate-limited floods are not worth a storage write each.
            if !matches!(e.code, ErrorCode::MethodNotAllowed | ErrorCode::SlowDown) {
                crate::audit::record(
                    server.env(),
                    crate::audit::Event {
                        action: "client.registered",
                        success: false,
                        reason: Some(e.code.as_str()),
                        request: request_id.as_ref(),
                        detail: Some(json!({ "description": e.description })),
                        ..Default::default()
                    },
                )
                .await;
            }
            error_json(&e)
        }
    }
}

async fn register(server: &Context, req: &Request<Bytes>) -> Result<(Response<Bytes>, ClientRow)> {
    expect_method(req.method(), &Method::POST)?;
    let cfg = server.config();
    let now = server.now();
    let ip = req.extensions().get::<RemoteAddr>().map(|r| r.0);
    rate_limit(server, ip, now, cfg.registration.rate_limit_per_minute).await?;
    let by_operator = cfg.registration.mode == RegistrationMode::AdminOnly;
    if by_operator {
        check_admin(req.headers(), cfg.admin_api_key.as_ref())?;
    }
    let body: Value = json_body(req.headers(), req.body())?;
    let mut metadata = crate::registration::metadata_from_json(body)?;
    crate::registration::validate_metadata(&mut metadata)?;
    check_allow_list(&cfg.registration, &metadata)?;
    for uri in &metadata.redirect_uris {
        crate::redirect::check_private_use_scheme(uri, &cfg.registration.extra_redirect_schemes)
            .map_err(|e| Error::new(ErrorCode::InvalidRedirectUri, e.to_string()))?;
    }
    let machine_allowed = check_machine_registration(&cfg.machine_clients, &metadata, by_operator)?;

    let (row, secret) = new_client(metadata, server.env().rng.as_ref(), now);
    let db = server.env().sql.as_ref();
    crate::store::repo::clients::insert(db, &row).await?;
    if machine_allowed {
        crate::store::repo::client_policies::put(
            db,
            &crate::store::repo::client_policies::ClientPolicy {
                client_id: row.client_id.clone(),
                client_credentials: true,
                updated_at: now,
                ..Default::default()
            },
        )
        .await?;
    }
    let body = response_body(&row, secret.as_ref());
    Ok((json(StatusCode::CREATED, &body), row))
}

fn mode_name(mode: RegistrationMode) -> &'static str {
    match mode {
        RegistrationMode::Open => "open",
        RegistrationMode::AllowList => "allow_list",
        RegistrationMode::AdminOnly => "admin_only",
    }
}

/// `admin_only` mode: requires `Authorization: Bearer <admin_api_key>`, compared in constant
/// time (both sides hashed, so neither length leaks). No configured key refuses everyone.
pub fn check_admin(headers: &HeaderMap, key: Option<&Secret>) -> Result<()> {
    let refused = || {
        Error::new(
            ErrorCode::Unauthorized,
            "client registration at this server requires the admin API key \
             (Authorization: Bearer <key>)",
        )
        .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"portcullis\"")
    };
    let key = key.ok_or_else(refused)?;
    if crate::admin_key::presents_key(headers, key) {
        Ok(())
    } else {
        Err(refused())
    }
}

/// `allow_list` mode: every redirect URI must start with one of the allowed prefixes, at a
/// boundary (see [`prefix_allows`]). Other modes allow everything.
pub fn check_allow_list(cfg: &RegistrationConfig, meta: &ClientMetadata) -> Result<()> {
    if cfg.mode != RegistrationMode::AllowList {
        return Ok(());
    }
    for uri in &meta.redirect_uris {
        if !cfg
            .allowed_redirect_prefixes
            .iter()
            .any(|p| prefix_allows(p, uri))
        {
            return Err(Error::new(
                ErrorCode::InvalidRedirectUri,
                format!(
                    "redirect URI '{}' is not allowed by this server's registration policy",
                    crate::text::truncate(uri, 100)
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `uri` starts with `prefix` at a boundary: the prefix ends with `/` or `:`, or what
/// follows it starts with `/`, `?` or `:` (or nothing). So `https://app.example.com` allows
/// `https://app.example.com/cb` but not `https://app.example.com.evil.example/cb`.
pub fn prefix_allows(prefix: &str, uri: &str) -> bool {
    if prefix.is_empty() {
        return false;
    }
    match uri.strip_prefix(prefix) {
        None => false,
        Some(rest) => {
            prefix.ends_with(['/', ':']) || rest.is_empty() || rest.starts_with(['/', '?', ':'])
        }
    }
}

/// Per-IP limit of `limit` registration attempts per minute window (0 disables), counted in
/// the system of record ([`crate::throttle`]: atomic, shared by every replica, never evicted).
/// Over the limit: 429 with `Retry-After` until the window ends.
pub async fn rate_limit(server: &Context, ip: Option<IpAddr>, now: i64, limit: u32) -> Result<()> {
    let w = Window::at(&format!("reg:{}", crate::throttle::ip_bucket(ip)), 60, now);
    if crate::throttle::reserve(server, &w, i64::from(limit)).await? {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::SlowDown,
        "too many client registrations from this address; try again later",
    )
    .with_header(header::RETRY_AFTER, w.retry_after(now).to_string()))
}

/// K1: self-registration of a `client_credentials` client. Refused with
/// `invalid_client_metadata` unless the registrant is the operator (`admin_only` mode, which
/// checked the admin key) or the server registers such clients for later approval. Returns
/// whether the operator registered it (then its policy allows the grant at once).
pub fn check_machine_registration(
    cfg: &MachineClientsConfig,
    meta: &ClientMetadata,
    by_operator: bool,
) -> Result<bool> {
    if !meta.grant_types.iter().any(|g| g == "client_credentials") {
        return Ok(false);
    }
    if by_operator {
        return Ok(true);
    }
    match cfg.dynamic_registration {
        MachineRegistration::Approval => Ok(false),
        MachineRegistration::Refuse => Err(Error::new(
            ErrorCode::InvalidClientMetadata,
            "the client_credentials grant is not available to self-registered clients on this \
             server: an operator creates machine clients (admin API, CLI or configuration)",
        )),
    }
}

/// A new dynamic client: a random id and, for clients authenticating with a secret, a
/// random 32-byte secret, returned once and stored only as its hash (A4).
pub fn new_client(
    metadata: ClientMetadata,
    rng: &dyn Rng,
    now: i64,
) -> (ClientRow, Option<Secret>) {
    let client_id = random_token(rng, 18);
    let uses_secret = matches!(
        metadata.token_endpoint_auth_method.as_str(),
        "client_secret_basic" | "client_secret_post"
    );
    let secret = uses_secret.then(|| Secret::new(random_token(rng, 32)));
    let row = ClientRow {
        client_id,
        secret_hash: secret.as_ref().map(|s| token_hash(s.expose())),
        metadata,
        source: "dynamic".into(),
        created_at: now,
        last_used_at: None,
    };
    (row, secret)
}

/// The RFC 7591 §3.2.1 response: the registered metadata plus `client_id`,
/// `client_id_issued_at` and, for confidential clients, `client_secret` with
/// `client_secret_expires_at: 0` (never expires).
pub fn response_body(row: &ClientRow, secret: Option<&Secret>) -> Value {
    let mut body = serde_json::to_value(&row.metadata).unwrap_or_else(|_| json!({}));
    if let Value::Object(obj) = &mut body {
        obj.insert("client_id".into(), json!(row.client_id));
        obj.insert("client_id_issued_at".into(), json!(row.created_at));
        if let Some(s) = secret {
            obj.insert("client_secret".into(), json!(s.expose()));
            obj.insert("client_secret_expires_at".into(), json!(0));
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::HeaderValue;

    use super::*;
    use crate::config::Config;
    use crate::request::Params;
    use crate::runtime::SeededRng;
    use crate::server::Portcullis;
    use crate::store::repo;
    use crate::store::test_store::{test_env, TEST_NOW};

    const KEY: &str = "admin-key-0123456789abcdef";

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn post(body: &str, content_type: &str, ip: &str) -> Request<Bytes> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/oauth/register")
            .header(header::CONTENT_TYPE, content_type)
            .body(Bytes::from(body.to_owned()))
            .unwrap();
        req.extensions_mut().insert(RemoteAddr(ip.parse().unwrap()));
        req
    }

    fn post_json(body: &Value) -> Request<Bytes> {
        post(&body.to_string(), "application/json", "203.0.113.5")
    }

    fn body_of(resp: &Response<Bytes>) -> Value {
        serde_json::from_slice(resp.body()).unwrap()
    }

    async fn server_with(cfg: Config) -> (Portcullis, Arc<crate::runtime::FixedClock>) {
        let (env, clock) = test_env();
        (Portcullis::start(env, cfg).await.unwrap(), clock)
    }

    async fn audit(server: &Context) -> Vec<repo::audit::AuditRow> {
        let f = repo::audit::AuditFilter {
            action: Some("client.registered".into()),
            limit: 100,
            ..Default::default()
        };
        repo::audit::list(server.env().sql.as_ref(), &f)
            .await
            .unwrap()
    }

    fn mcp_client() -> Value {
        json!({
            "client_name": "MCP Inspector",
            "redirect_uris": ["http://localhost:6274/oauth/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none"
        })
    }

    #[test]
    fn admin_only_requires_the_key() {
        let key = Secret::new(KEY);
        check_admin(&auth(&format!("Bearer {KEY}")), Some(&key)).unwrap();
        check_admin(&auth(&format!("bearer  {KEY}")), Some(&key)).unwrap();
        for bad in [
            format!("Bearer {KEY}x"),
            format!("Bearer {}", &KEY[1..]),
            format!("Basic {KEY}"),
            KEY.to_owned(),
            "Bearer".to_owned(),
        ] {
            let e = check_admin(&auth(&bad), Some(&key)).unwrap_err();
            assert_eq!(e.code, ErrorCode::Unauthorized, "{bad}");
            assert!(e.headers.iter().any(|(n, _)| n == header::WWW_AUTHENTICATE));
        }
        assert!(check_admin(&HeaderMap::new(), Some(&key)).is_err());
        // No key configured: nobody may register.
        assert!(check_admin(&auth(&format!("Bearer {KEY}")), None).is_err());
        let mut two = auth(&format!("Bearer {KEY}"));
        two.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(check_admin(&two, Some(&key)).is_err());
    }

    #[test]
    fn allow_list_prefixes_match_at_a_boundary() {
        assert!(prefix_allows(
            "https://app.example.com",
            "https://app.example.com/cb"
        ));
        assert!(prefix_allows(
            "https://app.example.com/",
            "https://app.example.com/cb"
        ));
        assert!(prefix_allows(
            "http://127.0.0.1",
            "http://127.0.0.1:3000/cb"
        ));
        assert!(prefix_allows("com.example.app:", "com.example.app:/cb"));
        assert!(!prefix_allows(
            "https://app.example.com",
            "https://app.example.com.evil.example/cb"
        ));
        assert!(!prefix_allows(
            "https://app.example.com",
            "https://app.example.community/cb"
        ));
        assert!(!prefix_allows(
            "https://app.example.com/a",
            "https://app.example.com/ab"
        ));
        assert!(!prefix_allows("", "https://app.example.com/cb"));

        let cfg = RegistrationConfig {
            mode: RegistrationMode::AllowList,
            allowed_redirect_prefixes: vec!["https://app.example.com/".into()],
            rate_limit_per_minute: 0,
            extra_redirect_schemes: Vec::new(),
        };
        let meta = |uris: &[&str]| ClientMetadata {
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            ..ClientMetadata::default()
        };
        check_allow_list(&cfg, &meta(&["https://app.example.com/cb"])).unwrap();
        let e = check_allow_list(
            &cfg,
            &meta(&["https://app.example.com/cb", "https://evil.example/cb"]),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRedirectUri);
        let empty = RegistrationConfig {
            allowed_redirect_prefixes: vec![],
            ..cfg.clone()
        };
        assert!(check_allow_list(&empty, &meta(&["https://app.example.com/cb"])).is_err());
        let open = RegistrationConfig {
            mode: RegistrationMode::Open,
            ..empty
        };
        check_allow_list(&open, &meta(&["https://evil.example/cb"])).unwrap();
    }

    #[test]
    fn rate_limit_per_ip_per_minute() {
        run(async {
            let (server, _) = server_with(Config::default()).await;
            let s = &server;
            let a: IpAddr = "198.51.100.1".parse().unwrap();
            let b: IpAddr = "198.51.100.2".parse().unwrap();
            let t = TEST_NOW - TEST_NOW % 60 + 10;
            for _ in 0..3 {
                rate_limit(s, Some(a), t, 3).await.unwrap();
            }
            let e = rate_limit(s, Some(a), t + 5, 3).await.unwrap_err();
            assert_eq!(e.code, ErrorCode::SlowDown);
            assert_eq!(e.code.status(), StatusCode::TOO_MANY_REQUESTS);
            assert!(e
                .headers
                .iter()
                .any(|(n, v)| n == header::RETRY_AFTER && v == "45"));
            // Another address has its own budget; the next window starts afresh.
            rate_limit(s, Some(b), t, 3).await.unwrap();
            rate_limit(s, Some(a), t + 50, 3).await.unwrap();
            // IPv6 addresses of one /64 share a bucket.
            let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
            let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
            rate_limit(s, Some(v6a), t, 1).await.unwrap();
            assert!(rate_limit(s, Some(v6b), t, 1).await.is_err());
            // 0 disables the limit.
            for _ in 0..10 {
                rate_limit(s, Some(a), t, 0).await.unwrap();
            }
        });
    }

    #[test]
    fn k1_machine_clients_are_not_self_registered() {
        let machine = ClientMetadata {
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        };
        let user = ClientMetadata {
            grant_types: vec!["authorization_code".into()],
            ..Default::default()
        };
        let refuse = MachineClientsConfig::default();
        let e = check_machine_registration(&refuse, &machine, false).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClientMetadata);
        assert!(check_machine_registration(&refuse, &machine, true).unwrap());
        assert!(!check_machine_registration(&refuse, &user, false).unwrap());
        let approval = MachineClientsConfig {
            dynamic_registration: MachineRegistration::Approval,
            ..Default::default()
        };
        assert!(!check_machine_registration(&approval, &machine, false).unwrap());
    }

    #[test]
    fn new_clients_get_random_ids_and_hashed_secrets() {
        let rng = SeededRng::new(1);
        let public = ClientMetadata {
            token_endpoint_auth_method: "none".into(),
            ..ClientMetadata::default()
        };
        let (row, secret) = new_client(public, &rng, 42);
        assert!(secret.is_none() && row.secret_hash.is_none());
        assert_eq!(row.source, "dynamic");
        assert_eq!(row.created_at, 42);
        assert_eq!(row.client_id.len(), 24);
        let body = response_body(&row, None);
        assert_eq!(body["client_id"], json!(row.client_id));
        assert_eq!(body["client_id_issued_at"], json!(42));
        assert!(body.get("client_secret").is_none());
        assert!(body.get("client_secret_expires_at").is_none());

        let confidential = ClientMetadata {
            token_endpoint_auth_method: "client_secret_basic".into(),
            ..ClientMetadata::default()
        };
        let (row2, secret) = new_client(confidential, &rng, 42);
        let secret = secret.unwrap();
        assert_ne!(row2.client_id, row.client_id);
        assert_eq!(secret.expose().len(), 43);
        assert_eq!(row2.secret_hash, Some(token_hash(secret.expose())));
        assert_ne!(row2.secret_hash.as_deref(), Some(secret.expose()));
        let body = response_body(&row2, Some(&secret));
        assert_eq!(body["client_secret"], json!(secret.expose()));
        assert_eq!(body["client_secret_expires_at"], json!(0));
    }

    #[test]
    fn h1_registers_a_public_mcp_client() {
        run(async {
            let (server, _) = server_with(Config::default()).await;
            let resp = server.handle(post_json(&mcp_client())).await;
            assert_eq!(resp.status(), StatusCode::CREATED);
            assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
            let body = body_of(&resp);
            let id = body["client_id"].as_str().unwrap();
            assert_eq!(body["token_endpoint_auth_method"], "none");
            assert_eq!(
                body["grant_types"],
                json!(["authorization_code", "refresh_token"])
            );
            assert_eq!(body["client_id_issued_at"], json!(TEST_NOW));
            assert!(body.get("client_secret").is_none());
            let row = repo::clients::get(server.env().sql.as_ref(), id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.source, "dynamic");
            let client = crate::client_lookup::resolve(&server, id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(client.kind, crate::clients::ClientKind::Dynamic);
            let events = audit(&server).await;
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].outcome, "success");
            assert_eq!(events[0].client_id.as_deref(), Some(id));
        });
    }

    #[test]
    fn a4_confidential_secret_returned_once_and_authenticates() {
        run(async {
            let (server, _) = server_with(Config::default()).await;
            let resp = server
                .handle(post_json(&json!({
                    "redirect_uris": ["https://app.example.com/cb"],
                    "token_endpoint_auth_method": "client_secret_post"
                })))
                .await;
            assert_eq!(resp.status(), StatusCode::CREATED);
            let body = body_of(&resp);
            let id = body["client_id"].as_str().unwrap();
            let secret = body["client_secret"].as_str().unwrap();
            assert_eq!(body["client_secret_expires_at"], json!(0));
            let row = repo::clients::get(server.env().sql.as_ref(), id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.secret_hash, Some(token_hash(secret)));
            assert!(!serde_json::to_string(&row.metadata)
                .unwrap()
                .contains(secret));
            let params = Params::from_pairs([("client_id", id), ("client_secret", secret)]);
            let c = crate::client_auth::authenticate(&server, &HeaderMap::new(), &params)
                .await
                .unwrap();
            assert_eq!(c.client_id, id);
            let wrong = Params::from_pairs([("client_id", id), ("client_secret", "nope")]);
            let e = crate::client_auth::authenticate(&server, &HeaderMap::new(), &wrong)
                .await
                .unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClient);
        });
    }

    #[test]
    fn g3_bad_content_type_or_body_is_400() {
        run(async {
            let (server, _) = server_with(Config::default()).await;
            let cases = [
                post(&mcp_client().to_string(), "text/plain", "203.0.113.5"),
                post(
                    &mcp_client().to_string(),
                    "application/x-www-form-urlencoded",
                    "203.0.113.5",
                ),
                post("{not json", "application/json", "203.0.113.5"),
                post("", "application/json", "203.0.113.5"),
                post("\u{0}\u{1}", "application/json", "203.0.113.5"),
                post("[1,2]", "application/json", "203.0.113.5"),
                post("{\"redirect_uris\": 5}", "application/json", "203.0.113.5"),
            ];
            for req in cases {
                let resp = server.handle(req).await;
                assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
                let err = body_of(&resp)["error"].as_str().unwrap().to_owned();
                assert!(
                    err == "invalid_request" || err == "invalid_client_metadata",
                    "{err}"
                );
                assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
            }
            let get = Request::builder()
                .method(Method::GET)
                .uri("/oauth/register")
                .body(Bytes::new())
                .unwrap();
            assert_eq!(
                server.handle(get).await.status(),
                StatusCode::METHOD_NOT_ALLOWED
            );
            // Failures are audited with their reason.
            let events = audit(&server).await;
            assert!(!events.is_empty());
            assert!(events
                .iter()
                .all(|e| e.outcome == "failure" && e.reason.is_some()));
        });
    }

    #[test]
    fn g1_invalid_metadata_refused_end_to_end() {
        run(async {
            let (server, _) = server_with(Config::default()).await;
            for (body, want) in [
                (
                    json!({"redirect_uris": ["http://app.example.com/cb"]}),
                    "invalid_redirect_uri",
                ),
                (
                    json!({"redirect_uris": ["javascript:alert(1)"]}),
                    "invalid_redirect_uri",
                ),
                (
                    json!({"redirect_uris": ["https://a.example/cb"], "client_uri": "http://a.example"}),
                    "invalid_client_metadata",
                ),
                (
                    json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
                    "invalid_client_metadata",
                ),
                (
                    json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
                    "invalid_client_metadata",
                ),
            ] {
                let resp = server.handle(post_json(&body)).await;
                assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
                assert_eq!(body_of(&resp)["error"], want, "{body}");
            }
        });
    }

    #[test]
    fn modes_admin_only_and_allow_list() {
        run(async {
            let mut cfg = Config {
                admin_api_key: Some(Secret::new(KEY)),
                ..Config::default()
            };
            cfg.registration.mode = RegistrationMode::AdminOnly;
            let (server, _) = server_with(cfg.clone()).await;
            let resp = server.handle(post_json(&mcp_client())).await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
            let mut req = post_json(&mcp_client());
            req.headers_mut().insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {KEY}")).unwrap(),
            );
            assert_eq!(server.handle(req).await.status(), StatusCode::CREATED);

            cfg.registration.mode = RegistrationMode::AllowList;
            cfg.registration.allowed_redirect_prefixes = vec!["http://localhost".into()];
            let (server, _) = server_with(cfg).await;
            assert_eq!(
                server.handle(post_json(&mcp_client())).await.status(),
                StatusCode::CREATED
            );
            let mut other = mcp_client();
            other["redirect_uris"] = json!(["https://app.example.com/cb"]);
            let resp = server.handle(post_json(&other)).await;
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
            assert_eq!(body_of(&resp)["error"], "invalid_redirect_uri");
        });
    }

    #[test]
    fn g2_rate_limited_end_to_end() {
        run(async {
            let mut cfg = Config::default();
            cfg.registration.rate_limit_per_minute = 2;
            let (server, clock) = server_with(cfg).await;
            clock.set(TEST_NOW - TEST_NOW % 60);
            let body = mcp_client().to_string();
            for _ in 0..2 {
                let resp = server
                    .handle(post(&body, "application/json", "192.0.2.7"))
                    .await;
                assert_eq!(resp.status(), StatusCode::CREATED);
            }
            let resp = server
                .handle(post(&body, "application/json", "192.0.2.7"))
                .await;
            assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(resp.headers()[header::RETRY_AFTER], "60");
            let resp = server
                .handle(post(&body, "application/json", "192.0.2.8"))
                .await;
            assert_eq!(resp.status(), StatusCode::CREATED);
            clock.advance(60);
            let resp = server
                .handle(post(&body, "application/json", "192.0.2.7"))
                .await;
            assert_eq!(resp.status(), StatusCode::CREATED);
        });
    }
}
