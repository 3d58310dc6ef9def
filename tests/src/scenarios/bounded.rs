//! Bounded storage scenarios (docs/security.md): a caller cannot fill the
//! pending-request table (B3), and anonymous admin requests do not each write an audit row
//! (B4). They run on a server of their own with low caps ([`SETTINGS`]), listed under
//! `capped!` in every runner.

use serde_json::Value;

use super::support::*;
use super::Target;
use crate::conformance::uid;

/// Live pending requests one client may hold on the capped server.
pub const PER_CLIENT: usize = 3;
/// Live pending requests one address may hold on the capped server.
pub const PER_IP: usize = 6;

/// The capped server's settings, by core name (each host maps them to its own form).
pub const SETTINGS: &[(&str, &str)] = &[
    ("storage__max_pending_requests_per_client", "3"),
    ("storage__max_pending_requests_per_ip", "6"),
];

/// Starts an authorization request for `f` in a fresh browser.
async fn start(t: &Target, f: &Fixture) -> (Browser, Resp) {
    let p = pkce();
    let params = authz_params(
        &f.client.id,
        &f.client.redirect_uri,
        &f.resource,
        "mcp:tools",
        &uid("st"),
        &p.challenge,
    );
    let b = Browser::new();
    let r = b.get(&authorize_url(t, &pairs(&params))).await;
    (b, r)
}

fn assert_refused(r: &Resp, why: &str) {
    assert_eq!(
        r.status,
        429,
        "{why}: expected a 429 page, got {}: {}",
        r.status,
        short(&r.body)
    );
    assert!(r.header("location").is_none(), "{why}: no redirect");
    assert!(!is_login_page(r), "{why}: no login form");
}

/// B3: over its cap, a client's (or an address's) next authorization request is refused
/// with a 429 page and nothing stored; completing a pending request frees its slot.
pub async fn b3_pending_request_cap(t: &Target) {
    let a = Fixture::public(t).await;
    let mut pages = Vec::new();
    for i in 0..PER_CLIENT {
        let (b, r) = start(t, &a).await;
        assert!(is_login_page(&r), "request {i} under the cap: {}", r.status);
        pages.push((b, r));
    }
    let (_, over) = start(t, &a).await;
    assert_refused(&over, "one past the client cap");
    // Completing one request (login and consent) consumes it: there is room for one more.
    let (b, page) = &pages[0];
    let consent_page = login(b, t, page, &a.user).await;
    let done = consent(b, t, &consent_page, "approve").await;
    assert!(done.is_redirect(), "consent redirects: {}", done.status);
    let (_, again) = start(t, &a).await;
    assert!(is_login_page(&again), "a slot was freed: {}", again.status);
    let (_, over) = start(t, &a).await;
    assert_refused(&over, "the client is at its cap again");
    // The address cap: another client fills the rest of this address's quota, and a third
    // client is then refused although it holds nothing.
    let b_client = Fixture::public(t).await;
    for i in 0..PER_IP - PER_CLIENT {
        let (_, r) = start(t, &b_client).await;
        assert!(
            is_login_page(&r),
            "second client, request {i}: {}",
            r.status
        );
    }
    let c_client = Fixture::public(t).await;
    let (_, over) = start(t, &c_client).await;
    assert_refused(&over, "one past the address cap");
}

async fn admin_auth_events(t: &Target) -> usize {
    let v: Value = admin_ok(
        t,
        reqwest::Method::GET,
        "/admin/audit?action=admin.auth&limit=1000",
        None,
    )
    .await;
    v["events"].as_array().map_or(0, Vec::len)
}

/// B4: anonymous or wrongly keyed admin requests are refused and counted, with one audit
/// row per time window instead of one per request.
pub async fn b4_refused_admin_requests_counted_not_recorded(t: &Target) {
    let before = admin_auth_events(t).await;
    let client = http();
    for i in 0..30 {
        let mut rb = client.get(format!("{}/admin/users", t.admin));
        if i % 2 == 0 {
            rb = rb.bearer_auth(format!("wrong-{}", uid("k")));
        }
        let r = send(rb).await;
        assert_eq!(r.status, 401, "refused admin request {i}");
    }
    let added = admin_auth_events(t).await - before;
    // One row per window; two if the requests straddled a window boundary.
    assert!(
        (1..=2).contains(&added),
        "30 refused requests wrote {added} audit rows"
    );
}
