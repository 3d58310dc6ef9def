//! SECURITY-CHECKLIST X5 over HTTP: every ID-JAG violation (RFC 7523 §3,
//! draft-ietf-oauth-identity-assertion-authz-grant §4.3) is refused with `invalid_grant`, each
//! family of variants its own scenario; refused assertions do not spend their `jti`, and an
//! accepted one cannot be used again.

use serde_json::{json, Value};

use super::super::support::*;
use super::super::Target;
use super::{Setup, TestIdp, ID_JAG_TYP};

/// Asserts an `invalid_grant` refusal whose description contains `needle` (`""`: anything).
fn assert_invalid_grant(r: &Resp, case: &str, needle: &str) {
    assert_eq!(
        r.status,
        400,
        "X5 {case}: refused, got {}: {}",
        r.status,
        short(&r.body)
    );
    r.assert_oauth_error(400, "invalid_grant");
    let why = r.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(why.contains(needle), "X5 {case}: '{needle}' in {why}");
}

/// `claims` with `claim` set to `value`, or removed for `None`.
fn with(claims: &Value, claim: &str, value: Option<Value>) -> Value {
    let mut c = claims.clone();
    match value {
        Some(v) => c[claim] = v,
        None => {
            c.as_object_mut().expect("claims").remove(claim);
        }
    }
    c
}

/// X5: every ID-JAG violation is refused on its own (untrusted issuer, wrong `typ`, `aud`
/// not our issuer, expired, too old, missing claims, another client's assertion, a bad
/// signature, an unregistered resource, a scope outside the policy); the refused assertions
/// shared one `jti`, which was not spent: the corrected assertion with it then succeeds once.
pub async fn x5_id_jag_violations_refused(t: &Target) {
    let s = Setup::new(t, &["mcp:tools", "mcp:read"]).await;
    let other = new_client(t, "client_secret_basic", &[super::JWT_BEARER]).await;
    let valid = s.claims(t);
    let now = t.now();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut c = valid.clone();
        f(&mut c);
        c
    };
    let stranger = TestIdp::new();
    let cases: Vec<(&str, String)> = vec![
        (
            "untrusted issuer",
            stranger.sign(&edit(&|c| c["iss"] = json!(stranger.issuer))),
        ),
        (
            "wrong typ",
            s.idp.sign_with(Some("JWT"), Some(&s.idp.kid), &valid),
        ),
        ("no typ", s.idp.sign_with(None, Some(&s.idp.kid), &valid)),
        (
            "aud not our issuer",
            s.idp
                .sign(&edit(&|c| c["aud"] = json!("https://other-as.example.com"))),
        ),
        (
            "aud is the resource",
            s.idp.sign(&edit(&|c| c["aud"] = json!(s.resource))),
        ),
        (
            "expired",
            s.idp.sign(&edit(&|c| c["exp"] = json!(now - 10))),
        ),
        (
            "no exp",
            s.idp.sign(&edit(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
        ),
        (
            "too old",
            s.idp.sign(&edit(&|c| c["iat"] = json!(now - 3600))),
        ),
        (
            "in the future",
            s.idp.sign(&edit(&|c| c["iat"] = json!(now + 3600))),
        ),
        (
            "no iat",
            s.idp.sign(&edit(&|c| {
                c.as_object_mut().unwrap().remove("iat");
            })),
        ),
        (
            "no sub",
            s.idp.sign(&edit(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
        ),
        (
            "no client_id",
            s.idp.sign(&edit(&|c| {
                c.as_object_mut().unwrap().remove("client_id");
            })),
        ),
        (
            "another client's assertion",
            s.idp.sign(&edit(&|c| c["client_id"] = json!(other.id))),
        ),
        ("signed by another key", {
            let impostor = TestIdp::new();
            impostor.sign_with(Some(ID_JAG_TYP), Some(&s.idp.kid), &valid)
        }),
        (
            "unknown kid",
            s.idp
                .sign_with(Some(ID_JAG_TYP), Some("no-such-kid"), &valid),
        ),
    ];
    for (why, assertion) in &cases {
        assert_invalid_grant(&s.grant(t, assertion).await, why, "");
    }
    // No jti at all.
    let no_jti = s.idp.sign(&edit(&|c| {
        c.as_object_mut().unwrap().remove("jti");
    }));
    assert_invalid_grant(&s.grant(t, &no_jti).await, "no jti", "");
    // The other client presenting this client's assertion.
    let r = s.grant_as(t, &other, &s.idp.sign(&valid)).await;
    assert_invalid_grant(&r, "presented by another client", "");
    // A resource that is not registered, a scope outside the policy, and a resource
    // parameter that disagrees with the claim.
    let unregistered = s.idp.sign(&edit(&|c| {
        c["resource"] = json!("https://unregistered.example.com/mcp")
    }));
    let r = s.grant(t, &unregistered).await;
    assert!(r.status >= 400 && r.status < 500, "{}", r.body);
    let admin_scope = s.idp.sign(&edit(&|c| c["scope"] = json!("admin:all")));
    let r = s.grant(t, &admin_scope).await;
    assert!(r.status >= 400 && r.status < 500, "{}", r.body);
    let elsewhere = [("resource", "https://mcp.example.com/other")];
    s.grant_with(t, &s.client, &s.idp.sign(&valid), &elsewhere)
        .await
        .assert_oauth_error(400, "invalid_target");

    // None of those spent the jti: the valid assertion works once, then is a replay.
    let good = s.idp.sign(&valid);
    tokens(&s.grant(t, &good).await);
    assert_invalid_grant(&s.grant(t, &good).await, "replay", "already been used");
}

/// X5: `iss` must be exactly a registered IdP's issuer: another issuer, a trailing slash, a
/// changed case, an empty string, `null` or an array are refused; the refusal is audited as
/// `untrusted_issuer` with the issuer presented.
pub async fn x5_id_jag_untrusted_issuers_refused(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let evil = "https://evil.example.com";
    for iss in [
        json!(evil),
        json!(format!("{}/", s.idp.issuer)),
        json!(s.idp.issuer.to_uppercase()),
        json!(""),
        Value::Null,
        json!([s.idp.issuer]),
    ] {
        let c = with(&s.claims(t), "iss", Some(iss.clone()));
        assert_invalid_grant(
            &s.grant(t, &s.idp.sign(&c)).await,
            &format!("iss {iss}"),
            "",
        );
    }
    let events = s.events(t).await;
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == json!("untrusted_issuer")
                && e["detail"]["issuer"] == json!(evil)),
        "the untrusted issuer is audited: {events:?}"
    );
}

/// X5: the header's `typ` must be exactly `oauth-id-jag+jwt`: other types, a changed case,
/// the media type form, trailing space, `null` and no `typ` are refused, naming `typ`.
pub async fn x5_id_jag_typ_variants_refused(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    for typ in [
        json!("JWT"),
        json!("at+jwt"),
        json!("OAUTH-ID-JAG+JWT"),
        json!("application/oauth-id-jag+jwt"),
        json!("oauth-id-jag+jwt "),
        Value::Null,
    ] {
        let header = json!({ "alg": "ES256", "typ": typ, "kid": s.idp.kid });
        let r = s.grant(t, &s.idp.sign_raw(&header, &s.claims(t))).await;
        assert_invalid_grant(&r, &format!("typ {typ}"), "typ");
    }
    let header = json!({ "alg": "ES256", "kid": s.idp.kid });
    let r = s.grant(t, &s.idp.sign_raw(&header, &s.claims(t))).await;
    assert_invalid_grant(&r, "no typ", "typ");
}

/// X5: `aud` must be our issuer (exactly, or in an array): another server, the issuer with a
/// trailing slash, the token endpoint, the resource, an array without us, an empty array,
/// `null` and a number are refused, naming `aud`.
pub async fn x5_id_jag_audiences_refused(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    for aud in [
        json!("https://other-as.example.com"),
        json!(format!("{}/", t.base)),
        json!(t.url("/oauth/token")),
        json!(s.resource),
        json!(["https://other-as.example.com"]),
        json!([]),
        Value::Null,
        json!(7),
    ] {
        let c = with(&s.claims(t), "aud", Some(aud.clone()));
        let r = s.grant(t, &s.idp.sign(&c)).await;
        assert_invalid_grant(&r, &format!("aud {aud}"), "aud");
    }
    let c = with(
        &s.claims(t),
        "aud",
        Some(json!(["https://other-as.example.com", t.base])),
    );
    tokens(&s.grant(t, &s.idp.sign(&c)).await);
}

/// X5: the time claims: `exp` now or past, missing or not a number; `iat` more than 300
/// seconds old, in the future or missing (each named in the description); `nbf` in the
/// future.
pub async fn x5_id_jag_time_claims_refused(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let now = t.now();
    for exp in [json!(now), json!(now - 1), Value::Null, json!("soon")] {
        let value = (!exp.is_null()).then(|| exp.clone());
        let c = with(&s.claims(t), "exp", value);
        assert_invalid_grant(
            &s.grant(t, &s.idp.sign(&c)).await,
            &format!("exp {exp}"),
            "",
        );
    }
    for (iat, needle) in [
        (Some(json!(now - 400)), "more than 300 seconds ago"),
        (Some(json!(now + 600)), "future"),
        (None, "no 'iat'"),
    ] {
        let c = with(&s.claims(t), "iat", iat.clone());
        let r = s.grant(t, &s.idp.sign(&c)).await;
        assert_invalid_grant(&r, &format!("iat {iat:?}"), needle);
    }
    let c = with(&s.claims(t), "nbf", Some(json!(now + 600)));
    assert_invalid_grant(&s.grant(t, &s.idp.sign(&c)).await, "nbf in the future", "");
}

/// X5: `sub`, `jti`, `client_id` and `iss` are required strings: missing, empty or a number
/// is refused.
pub async fn x5_id_jag_missing_claims_refused(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    for claim in ["sub", "jti", "client_id", "iss"] {
        for value in [None, Some(json!("")), Some(json!(5))] {
            let c = with(&s.claims(t), claim, value.clone());
            let r = s.grant(t, &s.idp.sign(&c)).await;
            assert_invalid_grant(&r, &format!("{claim} = {value:?}"), "");
        }
    }
}

/// X5: the assertion's `client_id` must be the authenticated client, exactly: another
/// client's id (named in the description), this client's id presented by another client, and
/// a case-changed id are refused.
pub async fn x5_id_jag_client_must_be_the_authenticated_one(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let other = new_client(t, "client_secret_basic", &[super::JWT_BEARER]).await;
    let c = with(&s.claims(t), "client_id", Some(json!(other.id)));
    let r = s.grant(t, &s.idp.sign(&c)).await;
    assert_invalid_grant(&r, "another client_id", "another client");
    let r = s.grant_as(t, &other, &s.idp.sign(&s.claims(t))).await;
    assert_invalid_grant(&r, "presented by another client", "");
    let upper = s.client.id.to_uppercase();
    if upper != s.client.id {
        let c = with(&s.claims(t), "client_id", Some(json!(upper)));
        assert_invalid_grant(&s.grant(t, &s.idp.sign(&c)).await, "case-changed", "");
    }
}

/// X5 with J1/J2: the signature must verify with the IdP's key: another key (named
/// `signature`), an unknown `kid`, `alg: none`, HS256, a tampered payload and malformed
/// assertions are refused; without a `kid` the IdP's only key is used.
pub async fn x5_id_jag_signature_refused(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let impostor = TestIdp::new();
    let forged = impostor.sign_with(Some(ID_JAG_TYP), Some(&s.idp.kid), &s.claims(t));
    assert_invalid_grant(&s.grant(t, &forged).await, "another key", "signature");
    let unknown = s
        .idp
        .sign_with(Some(ID_JAG_TYP), Some("no-such-kid"), &s.claims(t));
    assert_invalid_grant(&s.grant(t, &unknown).await, "unknown kid", "");
    let no_kid = s.idp.sign_with(Some(ID_JAG_TYP), None, &s.claims(t));
    tokens(&s.grant(t, &no_kid).await);
    let none = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": ID_JAG_TYP, "kid": s.idp.kid }).to_string()),
        b64(s.claims(t).to_string())
    );
    assert_invalid_grant(&s.grant(t, &none).await, "alg none", "");
    let hs = format!(
        "{}.{}.{}",
        b64(json!({ "alg": "HS256", "typ": ID_JAG_TYP, "kid": s.idp.kid }).to_string()),
        b64(s.claims(t).to_string()),
        b64([7u8; 32])
    );
    assert_invalid_grant(&s.grant(t, &hs).await, "alg HS256", "");
    let good = s.idp.sign(&s.claims(t));
    let parts: Vec<&str> = good.split('.').collect();
    let forged = with(&s.claims(t), "sub", Some(json!("ceo")));
    let tampered = format!("{}.{}.{}", parts[0], b64(forged.to_string()), parts[2]);
    assert_invalid_grant(&s.grant(t, &tampered).await, "tampered payload", "");
    for junk in ["", "a.b", "a.b.c", "...."] {
        let r = s.grant(t, junk).await;
        assert_eq!(r.status, 400, "{junk:?}: {}", short(&r.body));
    }
}

/// X5: an accepted assertion cannot be used again, nor can another assertion with its `jti`
/// (re-signed, other times); the replay is audited as `replayed`.
pub async fn x5_id_jag_replay_refused(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let c = s.claims(t);
    let once = s.idp.sign(&c);
    tokens(&s.grant(t, &once).await);
    assert_invalid_grant(&s.grant(t, &once).await, "replay", "already been used");
    let mut again = c.clone();
    again["iat"] = json!(t.now() - 1);
    again["exp"] = json!(t.now() + 100);
    let r = s.grant(t, &s.idp.sign(&again)).await;
    assert_invalid_grant(&r, "same jti, new assertion", "already been used");
    let reasons = failure_reasons(&s.events(t).await);
    assert_eq!(reasons, ["replayed", "replayed"]);
}

/// X5 (a host whose clock the test controls): an assertion's `jti` stays spent for the
/// assertion's whole life: 200 seconds later the replay is still refused.
pub async fn x5_id_jag_replay_refused_later(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let once = s.idp.sign(&s.claims(t));
    tokens(&s.grant(t, &once).await);
    t.advance_clock(200);
    assert_invalid_grant(
        &s.grant(t, &once).await,
        "replay later",
        "already been used",
    );
}
