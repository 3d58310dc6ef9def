//! DPoP bindings and nonces over HTTP: a public client's refresh token bound to its key while a
//! confidential client's is not, `dpop_jkt` at authorize binding the code (RFC 9449 §10),
//! clients registered with `dpop_bound_access_tokens` (SECURITY-CHECKLIST D3), and server
//! nonces (D4, RFC 9449 §8) on a server that requires them ([`REQUIRE_NONCE`] for the hosts
//! of the scenarios listed with their own settings).

use serde_json::json;

use super::super::support::*;
use super::super::Target;
use super::{assert_bound, dpop_token, Key, Machine};

/// The settings of a host requiring DPoP nonces, for scenarios listed with their own host.
pub const REQUIRE_NONCE: &[(&str, &str)] = &[("dpop__require_nonce", "true")];

/// The form redeeming `code` for fixture `f` with the PKCE verifier `p`.
fn redeem_form<'a>(f: &'a Fixture, code: &'a str, p: &'a Pkce) -> [(&'static str, &'a str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", f.client.redirect_uri.as_str()),
        ("code_verifier", p.verifier.as_str()),
    ]
}

fn refresh_form(rt: &str) -> [(&'static str, &str); 2] {
    [("grant_type", "refresh_token"), ("refresh_token", rt)]
}

fn refresh_token_of(r: &Resp) -> String {
    r.json()["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a refresh token: {}", r.body))
        .to_owned()
}

/// D3: a public client's refresh token is bound to its DPoP key: refused without a proof and
/// with another key's proof (without being consumed; both refusals audited), rotated with the
/// right one into a refresh token that is bound in turn.
pub async fn d3_public_client_refresh_token_bound(t: &Target) {
    let f = Fixture::public(t).await;
    let k = Key::new();
    let p = pkce();
    let code = f.code(t, &Browser::new(), &p).await;
    let r = dpop_token(t, &redeem_form(&f, &code, &p), f.auth(), &[&k.proof(t)]).await;
    assert_bound(&r, &k);
    let rt = refresh_token_of(&r);
    let form = refresh_form(&rt);
    dpop_token(t, &form, f.auth(), &[])
        .await
        .assert_oauth_error(400, "invalid_grant");
    dpop_token(t, &form, f.auth(), &[&Key::new().proof(t)])
        .await
        .assert_oauth_error(400, "invalid_grant");
    let rejected = audit_events(t, "dpop.rejected", &f.client.id).await;
    assert_eq!(failure_reasons(&rejected), ["missing", "key_mismatch"]);
    let r = dpop_token(t, &form, f.auth(), &[&k.proof(t)]).await;
    assert_bound(&r, &k);
    let rt2 = refresh_token_of(&r);
    let form = refresh_form(&rt2);
    dpop_token(t, &form, f.auth(), &[])
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert_bound(&dpop_token(t, &form, f.auth(), &[&k.proof(t)]).await, &k);
}

/// D3: a confidential client's refresh token is not bound to a key (it authenticates): used
/// without a proof it yields a bearer token, with another key's proof a token bound to that
/// key.
pub async fn d3_confidential_refresh_token_not_key_bound(t: &Target) {
    let f = Fixture::confidential(t).await;
    let k = Key::new();
    let p = pkce();
    let code = f.code(t, &Browser::new(), &p).await;
    let r = dpop_token(t, &redeem_form(&f, &code, &p), f.auth(), &[&k.proof(t)]).await;
    assert_bound(&r, &k);
    let r = dpop_token(t, &refresh_form(&refresh_token_of(&r)), f.auth(), &[]).await;
    assert_eq!(r.ok_json()["token_type"], json!("Bearer"), "{}", r.body);
    let other = Key::new();
    let r = dpop_token(
        t,
        &refresh_form(&refresh_token_of(&r)),
        f.auth(),
        &[&other.proof(t)],
    )
    .await;
    assert_bound(&r, &other);
}

/// D3: `dpop_jkt` at authorize (RFC 9449 §10) binds the code to that key: refused without a
/// proof and with another key's, neither attempt burning the code.
pub async fn d3_dpop_jkt_binds_the_code(t: &Target) {
    let f = Fixture::public(t).await;
    let k = Key::new();
    let b = Browser::new();
    let p = pkce();
    let state = random_b64(12);
    let mut params = f.params(&p, &state);
    set_param(&mut params, "dpop_jkt", Some(&k.jkt()));
    let resp = authorize(&b, t, &params, &f.user, "approve").await;
    resp.assert_to_client(t, &f.client.redirect_uri, &state);
    let code = resp.get("code").expect("code").to_owned();
    let form = redeem_form(&f, &code, &p);
    dpop_token(t, &form, f.auth(), &[])
        .await
        .assert_oauth_error(400, "invalid_grant");
    dpop_token(t, &form, f.auth(), &[&Key::new().proof(t)])
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert_bound(&dpop_token(t, &form, f.auth(), &[&k.proof(t)]).await, &k);
}

/// D3: a `dpop_jkt` that is not a key thumbprint is an `invalid_request` error response to
/// the client, with its `state`.
pub async fn d3_dpop_jkt_must_be_a_thumbprint(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let state = random_b64(12);
    let mut params = f.params(&p, &state);
    set_param(&mut params, "dpop_jkt", Some("not a thumbprint"));
    let r = Browser::new().get(&authorize_url(t, &pairs(&params))).await;
    AuthzResponse::from_redirect(&r).assert_error(
        t,
        &f.client.redirect_uri,
        &state,
        "invalid_request",
    );
}

/// D3: a client registered with `dpop_bound_access_tokens: true` gets no bearer tokens: its
/// redemption without a proof is refused and audited as `missing`, and the code survives.
pub async fn d3_dpop_bound_client_requires_proof(t: &Target) {
    let reg = register(
        t,
        json!({
            "redirect_uris": [LOOPBACK_REDIRECT],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "dpop_bound_access_tokens": true,
        }),
    )
    .await;
    assert_eq!(reg.status, 201, "{}", reg.body);
    assert_eq!(reg.json()["dpop_bound_access_tokens"], json!(true));
    let f = Fixture {
        resource: new_resource(t, &SCOPES).await,
        user: new_user(t).await,
        client: ClientCreds {
            id: reg.json()["client_id"].as_str().unwrap().to_owned(),
            secret: None,
            redirect_uri: LOOPBACK_REDIRECT.to_owned(),
        },
    };
    let p = pkce();
    let code = f.code(t, &Browser::new(), &p).await;
    let form = redeem_form(&f, &code, &p);
    dpop_token(t, &form, f.auth(), &[])
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    let rejected = audit_events(t, "dpop.rejected", &f.client.id).await;
    assert_eq!(failure_reasons(&rejected), ["missing"]);
    let k = Key::new();
    assert_bound(&dpop_token(t, &form, f.auth(), &[&k.proof(t)]).await, &k);
}

/// D4 (nonce-requiring server): a proof without a nonce gets `use_dpop_nonce` and a
/// `DPoP-Nonce` header, audited as `nonce`; the retry with that nonce gets a bound token and
/// a fresh nonce.
pub async fn d4_nonce_challenge_round_trips(t: &Target) {
    let m = Machine::new(t).await;
    let k = Key::new();
    let r = m.token(t, &[&k.proof(t)]).await;
    r.assert_oauth_error(400, "use_dpop_nonce");
    let nonce = r
        .header("dpop-nonce")
        .expect("RFC 9449 §8: DPoP-Nonce header");
    assert_eq!(m.rejections(t).await, ["nonce"]);
    let r = m.token(t, &[&k.proof_with_nonce(t, &nonce)]).await;
    assert_bound(&r, &k);
    assert!(
        r.header("dpop-nonce").is_some(),
        "a fresh nonce comes with the tokens"
    );
}

/// D4 (nonce-requiring server): a nonce the server did not issue is refused.
pub async fn d4_forged_nonce_refused(t: &Target) {
    let m = Machine::new(t).await;
    let k = Key::new();
    let r = m.token(t, &[&k.proof_with_nonce(t, &random_b64(24))]).await;
    r.assert_oauth_error(400, "use_dpop_nonce");
    assert!(r.header("dpop-nonce").is_some());
}

/// D4 (nonce-requiring server): a request without a proof is not asked for a nonce: it gets
/// a bearer token and no `DPoP-Nonce` header.
pub async fn d4_bearer_requests_unaffected_by_required_nonces(t: &Target) {
    let m = Machine::new(t).await;
    let r = m.token(t, &[]).await;
    assert_eq!(r.ok_json()["token_type"], json!("Bearer"), "{}", r.body);
    assert!(
        r.header("dpop-nonce").is_none(),
        "no nonce for a bearer request"
    );
}

/// D4 (a host requiring nonces, [`REQUIRE_NONCE`], whose clock the test controls; default
/// `dpop.nonce_lifetime_secs` = 300): a nonce past its lifetime gets `use_dpop_nonce` with a
/// fresh, different nonce, which then works.
pub async fn d4_stale_nonce_refused(t: &Target) {
    const NONCE_LIFETIME: i64 = 300;
    let m = Machine::new(t).await;
    let k = Key::new();
    let proof = |nonce: Option<&str>| {
        let mut c = k.claims_at(&t.url("/oauth/token"), t.now());
        if let Some(n) = nonce {
            c["nonce"] = n.into();
        }
        k.sign(&k.header(), &c)
    };
    let r = m.token(t, &[&proof(None)]).await;
    r.assert_oauth_error(400, "use_dpop_nonce");
    let nonce = r.header("dpop-nonce").expect("a DPoP-Nonce header");
    t.advance_clock(NONCE_LIFETIME + 1);
    let r = m.token(t, &[&proof(Some(&nonce))]).await;
    r.assert_oauth_error(400, "use_dpop_nonce");
    let fresh = r.header("dpop-nonce").expect("a fresh DPoP-Nonce header");
    assert_ne!(fresh, nonce);
    assert_bound(&m.token(t, &[&proof(Some(&fresh))]).await, &k);
    assert_eq!(m.rejections(t).await, ["nonce", "nonce"]);
}
