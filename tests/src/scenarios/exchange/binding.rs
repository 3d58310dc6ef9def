//! DPoP (RFC 9449) through token exchange: a bound subject token's binding is carried over
//! without a new proof; only a confidential client may re-bind it to a new key; a bound
//! actor token needs a proof made with its key.

use serde_json::json;

use super::super::dpop::{dpop_token, Key};
use super::super::support::*;
use super::super::Target;
use super::{access, Setup, ACCESS, GRANT};

/// A DPoP-bound access token for `f` (the browser flow, redeemed with a proof by `key`).
async fn bound_user_token(t: &Target, f: &Fixture, key: &Key) -> String {
    let p = pkce();
    let code = f.code(t, &Browser::new(), &p).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", f.client.redirect_uri.as_str()),
        ("code_verifier", p.verifier.as_str()),
    ];
    let r = dpop_token(t, &form, f.auth(), &[&key.proof(t)]).await;
    let v = r.ok_json();
    assert_eq!(v["token_type"], json!("DPoP"), "{v}");
    access(&v)
}

/// A token exchange of `subject` by `auth` with `extra` parameters and `proofs`.
async fn exchange_with(
    t: &Target,
    subject: &str,
    extra: &[(&str, &str)],
    auth: Auth<'_>,
    proofs: &[&str],
) -> Resp {
    let mut form = vec![
        ("grant_type", GRANT),
        ("subject_token", subject),
        ("subject_token_type", ACCESS),
    ];
    form.extend_from_slice(extra);
    dpop_token(t, &form, auth, proofs).await
}

/// The `cnf.jkt` of a successful exchange's token, checking `token_type: DPoP`.
fn bound_to(r: &Resp) -> String {
    let v = r.ok_json();
    assert_eq!(v["token_type"], json!("DPoP"), "{v}");
    jwt_claims(&access(&v))["cnf"]["jkt"]
        .as_str()
        .unwrap_or_else(|| panic!("cnf.jkt in {v}"))
        .to_owned()
}

/// A DPoP-bound subject token's binding is carried over to the exchanged token without a
/// new proof, by its own client and by another client exchanging it into another resource.
pub async fn exchange_dpop_binding_carried_over(t: &Target) {
    let s = Setup::new(t).await;
    let key = Key::new();
    let subject = bound_user_token(t, &s.f, &key).await;
    let r = exchange_with(t, &subject, &[], s.f.auth(), &[]).await;
    assert_eq!(bound_to(&r), key.jkt());
    let into = [("resource", s.target.as_str())];
    let r = exchange_with(t, &subject, &into, s.orch_auth(), &[]).await;
    assert_eq!(bound_to(&r), key.jkt());
}

/// A confidential client may re-bind its bound token to a new key (a proof by that key); a
/// public client may not move it to another key (a thief's), only keep it with a proof by
/// the key it is bound to.
pub async fn exchange_dpop_rebinding_needs_a_confidential_client(t: &Target) {
    let s = Setup::new(t).await;
    let (old, new) = (Key::new(), Key::new());
    let subject = bound_user_token(t, &s.f, &old).await;
    let r = exchange_with(t, &subject, &[], s.f.auth(), &[&new.proof(t)]).await;
    assert_eq!(bound_to(&r), new.jkt());

    let public = Fixture {
        resource: s.f.resource.clone(),
        user: s.f.user.clone(),
        client: new_client(t, "none", &["authorization_code", "refresh_token", GRANT]).await,
    };
    let subject = bound_user_token(t, &public, &old).await;
    exchange_with(t, &subject, &[], public.auth(), &[&new.proof(t)])
        .await
        .assert_oauth_error(400, "invalid_grant");
    let r = exchange_with(t, &subject, &[], public.auth(), &[&old.proof(t)]).await;
    assert_eq!(bound_to(&r), old.jkt());
}

/// A DPoP-bound actor token is refused without a proof (the description names DPoP) and
/// with a proof by another key; with a proof by its key the delegation goes through.
pub async fn exchange_dpop_bound_actor_token_needs_its_key(t: &Target) {
    let s = Setup::new(t).await;
    let subject = s.f.tokens(t).await.access;
    let (key, other) = (Key::new(), Key::new());
    let r = dpop_token(
        t,
        &[
            ("grant_type", "client_credentials"),
            ("resource", &s.f.resource),
        ],
        s.orch_auth(),
        &[&key.proof(t)],
    )
    .await;
    let actor = access(&r.ok_json());
    let extra = [
        ("actor_token", actor.as_str()),
        ("actor_token_type", ACCESS),
        ("resource", s.target.as_str()),
    ];
    let r = exchange_with(t, &subject, &extra, s.orch_auth(), &[]).await;
    r.assert_oauth_error(400, "invalid_grant");
    assert!(r.body.contains("DPoP"), "{}", r.body);
    exchange_with(t, &subject, &extra, s.orch_auth(), &[&other.proof(t)])
        .await
        .assert_oauth_error(400, "invalid_grant");
    let r = exchange_with(t, &subject, &extra, s.orch_auth(), &[&key.proof(t)]).await;
    let v = r.ok_json();
    assert_eq!(
        jwt_claims(&access(&v))["act"],
        json!({ "sub": s.orch.id, "client_id": s.orch.id })
    );
}
