//! The `jwt_clock_skew_seconds` setting (SECURITY-CHECKLIST J5: a bounded skew, one setting
//! for every JWT check) over HTTP: an ID-JAG assertion (RFC 7523 §3 rule 7, signed with
//! `jsonwebtoken`) and a DPoP proof (RFC 9449 §4.3 step 11) issued 45 seconds ahead of the
//! server's clock are accepted with the default skew of 60 seconds and refused on a server
//! configured with 10 ([`SKEW_10`]); the `private_key_jwt` side is in
//! [`super::super::private_key_jwt`].

use serde_json::json;

use super::super::dpop::{dpop_token, Key};
use super::*;

/// A server whose JWT checks tolerate 10 seconds of clock skew.
pub const SKEW_10: &[(&str, &str)] = &[("jwt_clock_skew_seconds", "10")];

/// Two grants: one whose ID-JAG was issued `ahead` seconds in the future, and one with an
/// assertion issued now but a DPoP proof issued `ahead` seconds in the future.
async fn grant_ahead(t: &Target, s: &Setup, ahead: i64) -> (Resp, Resp) {
    let mut c = s.claims(t);
    c["iat"] = json!(t.now() + ahead);
    let by_assertion = s.grant(t, &s.idp.sign(&c)).await;
    let key = Key::new();
    let proof = key.sign(
        &key.header(),
        &key.claims_at(&t.url("/oauth/token"), t.now() + ahead),
    );
    let assertion = s.idp.sign(&s.claims(t));
    let form = [
        ("grant_type", JWT_BEARER),
        ("assertion", assertion.as_str()),
    ];
    let by_proof = dpop_token(t, &form, s.auth_of(&s.client), &[&proof]).await;
    (by_assertion, by_proof)
}

/// J5 with the default `jwt_clock_skew_seconds` (60): an assertion and a proof 45 seconds
/// ahead are accepted.
pub async fn j5_clock_skew_default_accepts_45_seconds_ahead(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let (by_assertion, by_proof) = grant_ahead(t, &s, 45).await;
    granted(t, &s, &by_assertion).await;
    assert_eq!(by_proof.status, 200, "{}", by_proof.body);
    assert_eq!(by_proof.ok_json()["token_type"], json!("DPoP"));
}

/// J5 with `jwt_clock_skew_seconds = 10` ([`SKEW_10`]): the same assertion 45 seconds ahead
/// is `invalid_grant` (audited as `issued_in_future`) and the proof `invalid_dpop_proof`,
/// while 5 seconds ahead is still accepted.
pub async fn j5_clock_skew_setting_10_refuses_45_seconds_ahead(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let (by_assertion, by_proof) = grant_ahead(t, &s, 45).await;
    by_assertion.assert_oauth_error(400, "invalid_grant");
    by_proof.assert_oauth_error(400, "invalid_dpop_proof");
    assert_eq!(failure_reasons(&s.events(t).await), ["issued_in_future"]);
    let (by_assertion, by_proof) = grant_ahead(t, &s, 5).await;
    granted(t, &s, &by_assertion).await;
    assert_eq!(by_proof.status, 200, "{}", by_proof.body);
}
