//! Response hygiene and abuse scenarios: SECURITY-CHECKLIST H1, H2, H4 (the end of its window
//! clocked), H5, G2, G3, G4 and CORS (present on discovery and the token endpoints, never on
//! login and consent).

use serde_json::json;

use super::support::*;
use super::Target;

/// H1: token, registration and error responses carry `Cache-Control: no-store`.
pub async fn h1_no_store_on_token_registration_and_errors(t: &Target) {
    let f = Fixture::confidential(t).await;
    let tok = f.tokens(t).await; // `tokens` checks no-store on the success response
    assert!(!tok.access.is_empty());
    let r = token(
        t,
        &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
        f.auth(),
    )
    .await;
    r.assert_oauth_error(400, "invalid_grant");
    let r = token(
        t,
        &[("grant_type", "client_credentials")],
        Auth::Basic(&f.client.id, "bad"),
    )
    .await;
    r.assert_oauth_error(401, "invalid_client");
    let reg = register(
        t,
        json!({ "redirect_uris": [LOOPBACK_REDIRECT], "token_endpoint_auth_method": "none" }),
    )
    .await;
    assert_eq!(reg.status, 201, "{}", reg.body);
    assert_no_store(&reg);
    let bad = register(t, json!({ "redirect_uris": ["http://evil.example/cb"] })).await;
    bad.assert_oauth_error(400, "invalid_redirect_uri");
    assert_no_store(
        &send(
            http()
                .post(t.url("/oauth/introspect"))
                .form(&[("token", "x")]),
        )
        .await,
    );
}

/// Asserts the hygiene headers of our own pages (H2).
fn assert_page_headers(r: &Resp, what: &str) {
    assert_eq!(
        r.header("referrer-policy").as_deref(),
        Some("no-referrer"),
        "{what}: Referrer-Policy"
    );
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: CSP forbids framing: {csp:?}"
    );
    assert_no_store(r);
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "{what}: no CORS on pages"
    );
    let base = r.url.origin().ascii_serialization();
    let lower = r.body.to_ascii_lowercase();
    for attr in ["src=", "href=", "action=", "url("] {
        let mut rest = lower.as_str();
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let v = rest.trim_start_matches(['"', '\'', ' ']);
            let external =
                (v.starts_with("http://") || v.starts_with("https://") || v.starts_with("//"))
                    && !v.starts_with(&base.to_ascii_lowercase());
            assert!(
                !external,
                "{what}: no third-party resources ({attr}{})",
                &v[..v.len().min(80)]
            );
        }
    }
}

/// H2: login and consent pages forbid referrers and framing, load nothing from third
/// parties, and carry no CORS headers.
pub async fn h2_login_and_consent_page_headers(t: &Target) {
    let f = Fixture::public(t).await;
    let b = Browser::new();
    let p = pkce();
    let page = b
        .follow_local(
            t,
            b.get(&authorize_url(t, &pairs(&f.params(&p, "s")))).await,
        )
        .await;
    assert!(is_login_page(&page), "{}", short(&page.body));
    assert_eq!(page.status, 200, "the login page is served with 200");
    assert_page_headers(&page, "login page");
    let set_cookie: Vec<String> = page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert!(
        set_cookie
            .iter()
            .all(|c| c.to_ascii_lowercase().contains("httponly")),
        "cookies are HttpOnly: {set_cookie:?}"
    );
    let consent_page = login(&b, t, &page, &f.user).await;
    assert!(
        is_consent_page(&consent_page),
        "{}",
        short(&consent_page.body)
    );
    assert_page_headers(&consent_page, "consent page");
}

/// H2: a login POST with a wrong or missing CSRF token, or from another origin, is refused.
pub async fn h2_login_csrf_refused(t: &Target) {
    let f = Fixture::public(t).await;
    let b = Browser::new();
    let p = pkce();
    let page = b.get(&authorize_url(t, &pairs(&f.params(&p, "s")))).await;
    assert!(is_login_page(&page), "{}", short(&page.body));
    let inputs = form_inputs(&page.body);
    let request = inputs.get("request").cloned().unwrap_or_default();
    let csrf = inputs.get("csrf").cloned().unwrap_or_default();
    assert!(
        !request.is_empty() && !csrf.is_empty(),
        "hidden request and csrf inputs"
    );

    let wrong = random_b64(32);
    let refused = |r: &Resp, why: &str| {
        assert!(
            r.status == 400 || r.status == 403,
            "{why}: the login is refused with 400 or 403, got {}: {}",
            r.status,
            short(&r.body)
        );
        assert!(!is_consent_page(r), "{why}: no consent page");
        assert!(r.header("location").is_none(), "{why}: no redirect");
        let session = r
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|c| c.starts_with("pc_session="));
        assert!(!session, "{why}: no session cookie is set");
    };
    let form = |csrf: &str| {
        vec![
            ("request".to_owned(), request.clone()),
            ("csrf".to_owned(), csrf.to_owned()),
            ("username".to_owned(), f.user.username.clone()),
            ("password".to_owned(), f.user.password.clone()),
        ]
    };
    let r = b
        .post_form(&t.url("/oauth/login"), &pairs(&form(&wrong)))
        .await;
    refused(&r, "wrong csrf");
    let r = b.post_form(&t.url("/oauth/login"), &pairs(&form(""))).await;
    refused(&r, "missing csrf");
    // The right token from a browser that lacks the cookie (a forged cross-site form).
    let r = Browser::new()
        .post_form(&t.url("/oauth/login"), &pairs(&form(&csrf)))
        .await;
    refused(&r, "no csrf cookie");
    // A cross-origin form post.
    let r = send(
        http()
            .post(t.url("/oauth/login"))
            .header("origin", "https://evil.example")
            .header("cookie", format!("pc_csrf={csrf}"))
            .form(&pairs(&form(&csrf))),
    )
    .await;
    refused(&r, "cross-origin post");
    // The genuine form still works.
    let ok = b
        .follow_local(
            t,
            b.post_form(&t.url("/oauth/login"), &pairs(&form(&csrf)))
                .await,
        )
        .await;
    assert!(
        is_consent_page(&ok),
        "the genuine login succeeds: {}",
        short(&ok.body)
    );
}

fn normalized(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find("value=\"") {
        out.push_str(&rest[..i + 7]);
        rest = &rest[i + 7..];
        let end = rest.find('"').unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// H4: a wrong password and an unknown user give the same answer.
/// Run on a server of its own (failures count against the client IP).
pub async fn h4_failed_login_same_message(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let attempt = |username: String, password: String| {
        let params = f.params(&p, "s");
        async move {
            let b = Browser::new();
            let page = b.get(&authorize_url(t, &pairs(&params))).await;
            login_with(&b, t, &page, &username, &password).await
        }
    };
    let wrong_pw = attempt(f.user.username.clone(), "wrong-password-1".into()).await;
    let no_user = attempt(crate::conformance::uid("ghost"), "wrong-password-1".into()).await;
    assert!(
        is_login_page(&wrong_pw),
        "a failed login shows the form again"
    );
    assert_eq!(
        wrong_pw.status, 200,
        "a failed login shows the sign-in form again, as a page (not an error document)"
    );
    assert_eq!(wrong_pw.status, no_user.status, "H4: same status");
    assert_eq!(
        normalized(&wrong_pw.body),
        normalized(&no_user.body),
        "H4: the same page for a wrong password and an unknown user"
    );
}

/// H4: repeated failures are throttled; while throttled, even the right password is
/// refused. Run on a server of its own (it throttles the client IP).
pub async fn h4_repeated_failures_throttled(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let b = Browser::new();
    let mut throttled_at = None;
    for i in 0..12 {
        let page = b.get(&authorize_url(t, &pairs(&f.params(&p, "s")))).await;
        let r = login_with(&b, t, &page, &f.user.username, "definitely-wrong").await;
        assert!(!is_consent_page(&r), "a wrong password never logs in");
        if r.status == 429 {
            throttled_at = Some(i);
            break;
        }
    }
    assert!(
        throttled_at.is_some(),
        "H4: 12 failures in a row are throttled (429)"
    );
    let page = b.get(&authorize_url(t, &pairs(&f.params(&p, "s")))).await;
    let r = login(&b, t, &page, &f.user).await;
    assert_eq!(
        r.status, 429,
        "while throttled, the right password is refused too"
    );
    assert!(!is_consent_page(&r));
}

/// H5: a consent decision is single-use and bound to the browser session that logged in.
pub async fn h5_consent_replay_refused(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let a = Browser::new();
    let first = a.get(&authorize_url(t, &pairs(&f.params(&p, "s")))).await;
    let consent_a = login(&a, t, &first, &f.user).await;
    assert!(is_consent_page(&consent_a), "{}", short(&consent_a.body));
    let a_inputs = form_inputs(&consent_a.body);
    let a_request = a_inputs.get("request").cloned().unwrap_or_default();

    // Another browser, logged in as the same user, replays A's request handle.
    let b = Browser::new();
    let first_b = b.get(&authorize_url(t, &pairs(&f.params(&p, "s")))).await;
    let consent_b = login(&b, t, &first_b, &f.user).await;
    assert!(is_consent_page(&consent_b), "{}", short(&consent_b.body));
    let b_csrf = form_inputs(&consent_b.body)
        .get("csrf")
        .cloned()
        .unwrap_or_default();
    let stolen = b
        .post_form(
            &t.url("/oauth/consent"),
            &[
                ("request", &a_request),
                ("csrf", &b_csrf),
                ("decision", "approve"),
            ],
        )
        .await;
    let no_code = |r: &Resp, why: &str| {
        let code = r
            .location()
            .is_some_and(|l| l.query_pairs().any(|(k, _)| k == "code"));
        assert!(
            !code,
            "{why}: no code is issued ({:?})",
            r.header("location")
        );
        assert!(
            (400..500).contains(&r.status) || r.is_redirect(),
            "{why}: refused, got {}",
            r.status
        );
    };
    no_code(&stolen, "H5: consent from another session");
    // A browser with A's CSRF cookie and token but no session at all.
    let a_csrf = a_inputs.get("csrf").cloned().unwrap_or_default();
    let sessionless = send(
        http()
            .post(t.url("/oauth/consent"))
            .header("cookie", format!("pc_csrf={a_csrf}"))
            .form(&[
                ("request", a_request.as_str()),
                ("csrf", a_csrf.as_str()),
                ("decision", "approve"),
            ]),
    )
    .await;
    no_code(&sessionless, "H5: consent without a session");

    // A completes its own consent once; the replay is refused.
    let ok = AuthzResponse::from_redirect(&consent(&a, t, &consent_a, "approve").await);
    assert!(ok.get("code").is_some(), "A's own consent succeeds");
    let replay = consent(&a, t, &consent_a, "approve").await;
    no_code(&replay, "H5: replayed consent");
}

/// G2: a body over the size limit is refused with 413 or 400, never 5xx.
pub async fn g2_huge_body_refused(t: &Target) {
    let big = "a".repeat(300 * 1024);
    for path in [
        "/oauth/token",
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/login",
    ] {
        let r = send(
            http()
                .post(t.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("grant_type=client_credentials&x={big}")),
        )
        .await;
        assert!(
            r.status == 413 || r.status == 400,
            "G2 {path}: 413 or 400, got {}",
            r.status
        );
    }
    let r = send(
        http()
            .post(t.url("/oauth/register"))
            .header("content-type", "application/json")
            .body(format!("{{\"client_name\":\"{big}\"}}")),
    )
    .await;
    assert!(
        r.status == 413 || r.status == 400,
        "G2 register: got {}",
        r.status
    );
}

/// G3: malformed content types and bodies are 400 with a precise error, never 5xx.
pub async fn g3_malformed_requests_are_400(t: &Target) {
    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let auth = basic(&c.id, c.secret.as_deref().unwrap());
    let bodies: [(&str, &[u8]); 7] = [
        ("text/plain", b"grant_type=client_credentials"),
        (
            "application/json",
            b"{\"grant_type\":\"client_credentials\"}",
        ),
        ("", b"grant_type=client_credentials"),
        (
            "application/x-www-form-urlencoded",
            b"\xff\xfe\x00garbage=%ZZ&&==",
        ),
        ("application/x-www-form-urlencoded", b""),
        (
            "application/x-www-form-urlencoded",
            b"grant_type=client_credentials&grant_type=client_credentials",
        ),
        ("multipart/form-data; boundary=x", b"--x\r\n\r\n--x--"),
    ];
    for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
        for (ct, body) in bodies {
            let mut rb = http()
                .post(t.url(path))
                .header("authorization", &auth)
                .body(body.to_vec());
            if !ct.is_empty() {
                rb = rb.header("content-type", ct);
            }
            let r = send(rb).await;
            assert_eq!(
                r.status,
                400,
                "G3 {path} with {ct:?} {:?}: expected 400, got {}: {}",
                String::from_utf8_lossy(body),
                r.status,
                short(&r.body)
            );
            let v = r.json();
            assert_eq!(
                v["error"],
                json!("invalid_request"),
                "G3 {path} with {ct:?}: {v}"
            );
            assert_no_store(&r);
        }
    }
    let reg_bodies: [(&str, &[u8]); 5] = [
        ("application/x-www-form-urlencoded", b"redirect_uris=x"),
        ("application/json", b"{not json"),
        ("application/json", b"[1,2,3]"),
        ("application/json", b"{\"redirect_uris\": \"not-an-array\"}"),
        ("text/plain", b"{}"),
    ];
    for (ct, body) in reg_bodies {
        let r = send(
            http()
                .post(t.url("/oauth/register"))
                .header("content-type", ct)
                .body(body.to_vec()),
        )
        .await;
        assert_eq!(
            r.status,
            400,
            "G3 register {ct} {:?}: {}",
            String::from_utf8_lossy(body),
            r.body
        );
        let v = r.json();
        assert!(
            v["error"] == json!("invalid_request")
                || v["error"] == json!("invalid_client_metadata"),
            "G3 register: {v}"
        );
    }
    // A malformed query at the authorization endpoint: an error page, not a 5xx.
    let r = Browser::new()
        .get(&format!(
            "{}?client_id=%ZZ&client_id=x&%00=%FF",
            t.url("/oauth/authorize")
        ))
        .await;
    assert_eq!(r.status, 400, "G3 authorize: {}", short(&r.body));
}

/// G4: a huge scope string is refused with 400 (60 KB at the token endpoint, where a body
/// over 64 KiB is already a 413, and at the authorization endpoint).
pub async fn g4_huge_scope_refused(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    // 40 KB: under the 64 KiB body limit, so the scope check itself must refuse it.
    let huge = "ab ".repeat(13 * 1024);
    let r = token(
        t,
        &[
            ("grant_type", "client_credentials"),
            ("resource", &resource),
            ("scope", &huge),
        ],
        Auth::Basic(&c.id, c.secret.as_deref().unwrap()),
    )
    .await;
    assert_eq!(r.status, 400, "G4 token: {}", short(&r.body));
    let v = r.json();
    assert!(
        v["error"] == json!("invalid_request") || v["error"] == json!("invalid_scope"),
        "G4 token: {v}"
    );

    let f = Fixture::public(t).await;
    let p = pkce();
    let mut params = f.params(&p, "s");
    // 60 KB: as long as an HTTP client library will put in a URL (the `http` crate's limit
    // is 64 KiB), so the request reaches the server's own checks.
    let huge_q = "x".repeat(60 * 1024);
    set_param(&mut params, "scope", Some(&huge_q));
    let r = Browser::new().get(&authorize_url(t, &pairs(&params))).await;
    assert!(r.url.as_str().len() > 60 * 1024);
    if r.is_redirect() {
        let resp = AuthzResponse::from_redirect(&r);
        resp.assert_error(
            t,
            &f.client.redirect_uri,
            "s",
            resp.get("error").unwrap_or("?"),
        );
        assert!(
            matches!(resp.get("error"), Some("invalid_request" | "invalid_scope")),
            "G4 authorize: {}",
            resp.location
        );
    } else {
        assert_eq!(
            r.status,
            400,
            "G4 authorize with a 60 KB scope: {}",
            short(&r.body)
        );
    }
}

/// CORS: discovery, JWKS, token, revocation and introspection answer cross-origin requests
/// (with preflight); login and consent never do.
pub async fn cors_headers(t: &Target) {
    for path in [
        "/oauth/token",
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/register",
    ] {
        let r = send(
            http()
                .request(reqwest::Method::OPTIONS, t.url(path))
                .header("origin", "https://app.example")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "content-type, authorization",
                ),
        )
        .await;
        assert!(
            r.status == 200 || r.status == 204,
            "preflight {path}: {}",
            r.status
        );
        assert!(
            r.header("access-control-allow-origin").is_some(),
            "preflight {path}: ACAO"
        );
        let methods = r.header("access-control-allow-methods").unwrap_or_default();
        assert!(
            methods.contains("POST"),
            "preflight {path} allows POST: {methods}"
        );
    }
    let r = send(
        http()
            .post(t.url("/oauth/token"))
            .header("origin", "https://app.example")
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert!(
        r.header("access-control-allow-origin").is_some(),
        "token errors carry CORS"
    );
    let r = send(
        http()
            .get(t.url("/.well-known/jwks.json"))
            .header("origin", "https://app.example"),
    )
    .await;
    assert!(
        r.header("access-control-allow-origin").is_some(),
        "JWKS carries CORS"
    );

    let f = Fixture::public(t).await;
    let b = Browser::new();
    let p = pkce();
    let page = b.get(&authorize_url(t, &pairs(&f.params(&p, "s")))).await;
    assert!(
        page.header("access-control-allow-origin").is_none(),
        "no CORS on login"
    );
    let consent_page = login(&b, t, &page, &f.user).await;
    assert!(
        consent_page.header("access-control-allow-origin").is_none(),
        "no CORS on consent"
    );
    let r = send(
        http()
            .request(reqwest::Method::OPTIONS, t.url("/oauth/login"))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST"),
    )
    .await;
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "no CORS preflight for login"
    );
}

/// H4 (clocked): the throttle ends with its window (`login.window_secs`, 300 s): once five
/// failures have throttled the account even the right password is refused, and after the
/// window it signs in again.
pub async fn h4_throttle_ends_after_the_window(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let b = Browser::new();
    let attempt = |password: &'static str| {
        let (b, f, p) = (&b, &f, &p);
        async move {
            let page = b.get(&authorize_url(t, &pairs(&f.params(p, "s")))).await;
            login_with(b, t, &page, &f.user.username, password).await
        }
    };
    for i in 0..5 {
        let r = attempt("definitely-wrong").await;
        assert!(is_login_page(&r), "failure {i} shows the form again");
        assert_ne!(r.status, 429, "failure {i} is not throttled yet");
    }
    let r = attempt("definitely-wrong").await;
    assert_eq!(r.status, 429, "the sixth attempt is throttled");
    let page = b.get(&authorize_url(t, &pairs(&f.params(&p, "s")))).await;
    let r = login(&b, t, &page, &f.user).await;
    assert_eq!(
        r.status, 429,
        "while throttled, the right password is refused"
    );
    t.advance_clock(301);
    let page = b.get(&authorize_url(t, &pairs(&f.params(&p, "s")))).await;
    let r = login(&b, t, &page, &f.user).await;
    assert!(
        is_consent_page(&r),
        "after the window the right password signs in: {}",
        short(&r.body)
    );
}
