//! The admin console (`/admin/console/`) in a real browser and over plain HTTP: sign-in with
//! the admin API key (a wrong key refused), every page (headings, no CSP violation or console
//! error, a screenshot each), and the actions an operator takes in an incident, each checked
//! through the public protocol: a revoked token turns inactive at introspection, a suspended
//! client's `client_credentials` request is refused, a rotated key is listed, the audit log is
//! filtered and exported. Over HTTP: pages need the session, the session cookie's attributes,
//! CSRF and cross-site posts (SECURITY-CHECKLIST H2), and the export API.

use reqwest::Method;
use serde_json::Value;

use super::support::*;
use super::Target;
use crate::chromium::{app::ClientApp, screenshot_path, Chromium};

/// The pages and their headings, in navigation order.
const PAGES: &[(&str, &str)] = &[
    ("overview", "Overview"),
    ("clients", "Clients"),
    ("users", "Users"),
    ("tokens", "Tokens"),
    ("audit", "Audit log"),
    ("keys", "Keys"),
    ("resources", "Resources"),
    ("system", "System"),
    ("providers", "Providers"),
    ("connections", "Connections"),
];

fn console(t: &Target, page: &str) -> String {
    format!("{}/admin/console/{page}", t.admin)
}

async fn cc(t: &Target, c: &ClientCreds, resource: &str) -> Resp {
    token(
        t,
        &[
            ("grant_type", "client_credentials"),
            ("resource", resource),
            ("scope", "mcp:tools"),
        ],
        Auth::Basic(&c.id, c.secret.as_deref().unwrap_or_default()),
    )
    .await
}

async fn key_count(t: &Target) -> usize {
    admin_ok(t, Method::GET, "/admin/keys", None).await["keys"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Signs in, visits every page, revokes a token with the inspector, suspends and resumes a
/// client, rotates a key, filters and exports the audit log, signs out; a wrong key first.
pub async fn console_in_a_browser(t: &Target) {
    let Some(mut b) = Chromium::start().await else {
        return;
    };
    let resource = new_resource(t, &SCOPES).await;
    let user = new_user(t).await;
    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let secret = c.secret.clone().expect("a secret");
    let at = tokens(&cc(t, &c, &resource).await).access;

    // Signed out, the console sends the browser to its sign-in page.
    b.goto(&console(t, "overview")).await;
    assert_eq!(b.heading().await, "Sign in to the console");
    assert!(b.url().await.path().ends_with("/admin/console/sign-in"));
    b.assert_no_problems("the console sign-in page").await;
    b.screenshot(&screenshot_path("console-sign-in")).await;

    // A wrong key is refused, with a page that says so.
    b.fill("#key", "not-the-admin-key-0123456789").await;
    b.click("button.primary").await;
    assert_eq!(b.heading().await, "Sign in to the console");
    assert!(
        b.text().await.contains("not this server's admin API key"),
        "{}",
        b.text().await
    );
    b.expect_error_document(401).await;

    b.fill("#key", &t.admin_key).await;
    b.click("button.primary").await;
    assert_eq!(b.heading().await, "Overview", "{}", b.text().await);
    b.assert_no_problems("signing in to the console").await;

    for (page, heading) in PAGES {
        b.goto(&console(t, page)).await;
        assert_eq!(b.heading().await, *heading, "{page}: {}", b.text().await);
        let nav = b.text().await;
        for (_, name) in PAGES {
            assert!(nav.contains(name), "{page} lacks the {name} link");
        }
        b.assert_no_problems(&format!("the console's {heading} page"))
            .await;
        b.screenshot(&screenshot_path(&format!("console-{page}")))
            .await;
    }
    b.goto(&console(t, "users")).await;
    assert!(b.text().await.contains(&user.username));

    // The inspector: the token verifies and is active, then revoked from the console.
    b.goto(&console(t, "tokens")).await;
    b.fill("#token", &at).await;
    b.click("button.primary").await;
    let text = b.text().await;
    assert!(
        text.contains("verifies against this server's keys") && text.contains("active: true"),
        "{text}"
    );
    b.screenshot(&screenshot_path("console-token-inspector"))
        .await;
    b.click("button.danger").await;
    let text = b.text().await;
    assert!(
        text.contains("revoked") && text.contains("active: false"),
        "{text}"
    );
    b.assert_no_problems("revoking a token in the console")
        .await;
    assert!(
        !is_active(t, &at, Auth::Basic(&c.id, &secret)).await,
        "a token revoked in the console is inactive at introspection"
    );

    // Suspend the client: its client_credentials request is refused; resume: it works again.
    b.goto(&console(t, "clients")).await;
    let form = |action: &str| {
        format!(
            "form:has(input[name=client_id][value=\"{}\"]):has(input[name=action][value={action}]) button",
            c.id
        )
    };
    b.click(&form("suspend")).await;
    assert!(
        b.text()
            .await
            .contains(&format!("Client {} suspended.", c.id)),
        "{}",
        b.text().await
    );
    b.assert_no_problems("suspending a client in the console")
        .await;
    cc(t, &c, &resource)
        .await
        .assert_oauth_error(400, "unauthorized_client");
    let rows = admin_ok(
        t,
        Method::GET,
        &format!(
            "/admin/audit?action=admin.client.suspended&client_id={}",
            c.id
        ),
        None,
    )
    .await;
    let row = &rows["events"][0];
    assert_eq!(row["detail"]["via"], "console", "{rows}");
    assert!(row["detail"]["console_session"].is_string(), "{rows}");
    b.click(&form("resume")).await;
    assert!(b.text().await.contains("resumed"));
    tokens(&cc(t, &c, &resource).await);

    // Rotate a key.
    let before = key_count(t).await;
    b.goto(&console(t, "keys")).await;
    b.click("button[value=rotate]").await;
    assert!(
        b.text().await.contains("New signing key"),
        "{}",
        b.text().await
    );
    b.assert_no_problems("rotating a key in the console").await;
    assert_eq!(key_count(t).await, before + 1, "one more published key");

    // The audit log, filtered by client, and its exports.
    b.goto(&console(t, "audit")).await;
    b.fill("#client_id", &c.id).await;
    b.click("button.primary").await;
    let text = b.text().await;
    assert!(
        text.contains("admin.client.suspended") && text.contains("admin.client.resumed"),
        "{text}"
    );
    b.assert_no_problems("filtering the audit log").await;
    b.screenshot(&screenshot_path("console-audit-filtered"))
        .await;
    let session = b
        .cookie("pc_console")
        .await
        .expect("the console session cookie");
    for format in ["jsonl", "csv"] {
        let href = b
            .attr(&format!("a[href*=\"format={format}\"]"), "href")
            .await
            .expect("an export link");
        let url = url::Url::parse(&t.admin)
            .unwrap()
            .join(&href)
            .expect("a link URL");
        let r = send(
            http()
                .get(url)
                .header("cookie", format!("pc_console={session}")),
        )
        .await;
        assert_eq!(r.status, 200, "{} export: {}", format, short(&r.body));
        if format == "jsonl" {
            let events: Vec<Value> = r
                .body
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line"))
                .collect();
            assert!(events.len() >= 3, "{}", short(&r.body));
            assert!(events.iter().all(|e| e["client_id"] == c.id.as_str()));
        } else {
            assert!(
                r.body.starts_with("seq,at,action,outcome,client_id"),
                "{}",
                short(&r.body)
            );
            assert!(r.body.contains("admin.client.suspended"));
            assert!(mime(&r).starts_with("text/csv"));
        }
    }

    // A form another origin posts into the console is refused, same-site (another port of
    // 127.0.0.1, which gets the SameSite=Strict cookie) and cross-site alike, with a valid
    // CSRF token even; the client stays active.
    b.goto(&console(t, "clients")).await;
    let csrf = b.value_of("input[name=csrf]").await;
    let app = ClientApp::start();
    let fields = [
        ("csrf", csrf.as_str()),
        ("action", "suspend"),
        ("client_id", c.id.as_str()),
    ];
    for origin in [app.same_site_origin(), app.cross_site_origin()] {
        b.goto(&app.attack_post_url(&origin, &console(t, "clients"), &fields))
            .await;
        b.click("#go").await;
        assert_eq!(b.heading().await, "Refused", "a post from {origin}");
        b.expect_error_document(403).await;
    }
    tokens(&cc(t, &c, &resource).await);

    // Sign out: the console is closed again.
    b.goto(&console(t, "overview")).await;
    b.click("header button").await;
    assert_eq!(b.heading().await, "Signed out");
    b.goto(&console(t, "clients")).await;
    assert_eq!(b.heading().await, "Sign in to the console");
    b.finish("the console").await;
}

/// The `Set-Cookie` header whose cookie is `name`.
fn set_cookie(r: &Resp, name: &str) -> String {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set by {}", r.url))
        .to_owned()
}

fn cookie_value(set: &str) -> String {
    set.split(';')
        .next()
        .and_then(|p| p.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// Signs in over HTTP; the session cookie's value.
async fn sign_in(t: &Target) -> String {
    let page = send(http().get(console(t, "sign-in"))).await;
    assert_eq!(page.status, 200);
    let pre = cookie_value(&set_cookie(&page, "pc_console_csrf"));
    let csrf = form_inputs(&page.body)["csrf"].clone();
    let wrong = send(
        http()
            .post(console(t, "sign-in"))
            .header("cookie", format!("pc_console_csrf={pre}"))
            .form(&[("csrf", csrf.as_str()), ("key", "wrong-key-0123456789")]),
    )
    .await;
    assert_eq!(wrong.status, 401, "a wrong key is refused");
    assert!(wrong.body.contains("not this server's admin API key"));
    assert!(
        !wrong
            .headers
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap_or_default().starts_with("pc_console=")),
        "no session for a wrong key"
    );
    let ok = send(
        http()
            .post(console(t, "sign-in"))
            .header("cookie", format!("pc_console_csrf={pre}"))
            .form(&[("csrf", csrf.as_str()), ("key", t.admin_key.as_str())]),
    )
    .await;
    assert_eq!(ok.status, 303, "{}", short(&ok.body));
    assert_eq!(
        ok.header("location").as_deref(),
        Some("/admin/console/overview")
    );
    let set = set_cookie(&ok, "pc_console");
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin/console/",
        "Max-Age=1800",
    ] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    // The test hosts run on plain-http loopback: no Secure, so no __Host- prefix either.
    assert!(!set.contains("Secure"), "{set}");
    cookie_value(&set)
}

/// Pages need the session; the session cookie's attributes; CSRF tokens and cross-site posts;
/// a tampered or signed-out cookie; the audit export API.
pub async fn console_session_rules(t: &Target) {
    for page in ["overview", "clients", "audit/export?format=csv", "system"] {
        let r = send(http().get(console(t, page))).await;
        assert_eq!(r.status, 303, "{page} without a session");
        assert_eq!(
            r.header("location").as_deref(),
            Some("/admin/console/sign-in"),
            "{page}"
        );
    }
    let session = sign_in(t).await;
    let with = |rb: reqwest::RequestBuilder| rb.header("cookie", format!("pc_console={session}"));
    let page = send(with(http().get(console(t, "clients")))).await;
    assert_eq!(page.status, 200, "{}", short(&page.body));
    assert_no_store(&page);
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "no script at all: {csp}");
    assert!(!page.body.contains("<script"), "no script at all");
    let csrf = form_inputs(&page.body)["csrf"].clone();

    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let suspend = [
        ("csrf", csrf.as_str()),
        ("action", "suspend"),
        ("client_id", c.id.as_str()),
    ];
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
    ] {
        let r = send(
            with(http().post(console(t, "clients")))
                .header(name, value)
                .form(&suspend),
        )
        .await;
        assert_eq!(r.status, 403, "{name}: {value} must be refused");
    }
    let no_csrf = send(
        with(http().post(console(t, "clients")))
            .form(&[("action", "suspend"), ("client_id", c.id.as_str())]),
    )
    .await;
    assert_eq!(no_csrf.status, 400, "a post without the CSRF token");
    let policy = admin_ok(
        t,
        Method::GET,
        &format!("/admin/clients/{}/policy", c.id),
        None,
    )
    .await;
    assert_eq!(policy["suspended"], false, "nothing refused took effect");

    let bad_input = send(with(http().post(console(t, "clients"))).form(&[
        ("csrf", csrf.as_str()),
        ("action", "suspend"),
        ("client_id", "no-such-client"),
    ]))
    .await;
    assert_eq!(bad_input.status, 404, "{}", short(&bad_input.body));
    assert!(bad_input.body.contains("no client"));
    let unknown = send(with(http().get(console(t, "nowhere")))).await;
    assert_eq!(unknown.status, 404);
    // Bad input is a page that says what is wrong, never a 500.
    for page in [
        "clients?offset=abc",
        "audit?outcome=bogus",
        "audit?before=-1",
        "users?offset=1&offset=2",
    ] {
        let r = send(with(http().get(console(t, page)))).await;
        assert_eq!(r.status, 400, "{page}: {}", short(&r.body));
        assert!(mime(&r).starts_with("text/html"), "{page}");
    }
    for token in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        let r = send(with(http().post(console(t, "tokens"))).form(&[
            ("csrf", csrf.as_str()),
            ("action", "inspect"),
            ("token", token),
        ]))
        .await;
        assert_eq!(r.status, 200, "{token}: {}", short(&r.body));
        assert!(
            r.body.contains("This is not a JWT") || r.body.contains("does not verify"),
            "{token}: {}",
            short(&r.body)
        );
    }

    // A console action's audit row carries the trace id of the browser's request, and the
    // console filters and exports by it.
    let trace: String = {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(crate::conformance::uid("console-trace").as_bytes());
        d.iter().take(16).map(|b| format!("{b:02x}")).collect()
    };
    let traced = send(
        with(http().post(console(t, "clients")))
            .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
            .form(&suspend),
    )
    .await;
    assert_eq!(traced.status, 303, "{}", short(&traced.body));
    let page = send(with(
        http().get(console(t, &format!("audit?trace_id={trace}"))),
    ))
    .await;
    assert_eq!(page.status, 200, "{}", short(&page.body));
    assert!(
        page.body.contains("admin.client.suspended") && page.body.contains(&trace),
        "{}",
        short(&page.body)
    );
    let export = send(with(http().get(console(
        t,
        &format!("audit/export?format=jsonl&trace_id={trace}"),
    ))))
    .await;
    let rows: Vec<Value> = export
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(rows.len(), 1, "{}", short(&export.body));
    assert_eq!(rows[0]["trace_id"], trace.as_str());
    assert_eq!(rows[0]["detail"]["via"], "console");
    admin_ok(
        t,
        Method::POST,
        &format!("/admin/clients/{}/resume", c.id),
        None,
    )
    .await;

    let tampered = format!("{}x", &session[..session.len() - 1]);
    let r = send(
        http()
            .get(console(t, "overview"))
            .header("cookie", format!("pc_console={tampered}")),
    )
    .await;
    assert_eq!(r.status, 303, "a tampered session cookie is no session");

    // The export API (admin key).
    let export = send(
        http()
            .get(format!("{}/admin/audit/export?format=csv&limit=5", t.admin))
            .bearer_auth(&t.admin_key),
    )
    .await;
    assert_eq!(export.status, 200, "{}", short(&export.body));
    assert!(export.body.starts_with(
        "seq,at,action,outcome,client_id,subject,reason,request_id,trace_id,detail\r\n"
    ));
    assert!(export.body.lines().count() <= 6);
    let bad = send(
        http()
            .get(format!("{}/admin/audit/export?format=xml", t.admin))
            .bearer_auth(&t.admin_key),
    )
    .await;
    bad.assert_oauth_error(400, "invalid_request");
    let anonymous = send(http().get(format!("{}/admin/audit/export?format=csv", t.admin))).await;
    assert_eq!(anonymous.status, 401);

    // Sign-out ends the session for that cookie, not only in the browser.
    let r = send(with(http().post(console(t, "sign-out"))).form(&[("csrf", csrf.as_str())])).await;
    assert_eq!(r.status, 200);
    assert!(set_cookie(&r, "pc_console").contains("Max-Age=0"));
    let after = send(with(http().get(console(t, "overview")))).await;
    assert_eq!(after.status, 303, "a signed-out session is no session");
}

/// The admin token API: a live token revoked by posting it (a client_credentials token has no
/// record before), then found by `jti`, revoked and inactive at introspection; a recorded
/// `jti` revoked by id; bad requests refused.
pub async fn admin_tokens_by_jti(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let secret = c.secret.clone().expect("a secret");
    let at = tokens(&cc(t, &c, &resource).await).access;
    let jti = jwt_claims(&at)["jti"].as_str().expect("a jti").to_owned();
    let path = format!("/admin/tokens/{jti}");
    assert_eq!(
        admin(t, Method::GET, &path, None).await.status,
        404,
        "no record yet"
    );
    let done = admin_ok(
        t,
        Method::POST,
        "/admin/tokens/revoke",
        Some(serde_json::json!({ "token": at })),
    )
    .await;
    assert_eq!(done["jti"], jti.as_str());
    assert!(!is_active(t, &at, Auth::Basic(&c.id, &secret)).await);
    let rec = admin_ok(t, Method::GET, &path, None).await;
    assert_eq!(rec["revoked"], true, "{rec}");
    assert_eq!(rec["client_id"], c.id.as_str(), "{rec}");
    // A recorded jti is revoked by id (idempotent).
    admin_ok(
        t,
        Method::POST,
        "/admin/tokens/revoke",
        Some(serde_json::json!({ "jti": jti })),
    )
    .await;
    let rows = admin_ok(
        t,
        Method::GET,
        &format!("/admin/audit?action=admin.token.revoked&client_id={}", c.id),
        None,
    )
    .await;
    assert_eq!(rows["events"].as_array().map_or(0, Vec::len), 2, "{rows}");
    for (body, status) in [
        (serde_json::json!({ "jti": "no-such-token" }), 404),
        (serde_json::json!({ "token": "not.a.jwt" }), 400),
        (serde_json::json!({ "jti": jti, "token": at }), 400),
        (serde_json::json!({}), 400),
        (serde_json::json!({ "jti": "x", "extra": 1 }), 400),
    ] {
        let r = admin(t, Method::POST, "/admin/tokens/revoke", Some(body.clone())).await;
        assert_eq!(r.status, status, "{body}: {}", short(&r.body));
    }
}
