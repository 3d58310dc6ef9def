use serde_json::json;

use super::*;
use crate::federation::connector::{validate, ConnectorInput};
use crate::secret::Secret;

fn connector(edit: impl FnOnce(&mut ConnectorInput)) -> Connector {
    let mut input = ConnectorInput {
        id: "okta".into(),
        name: "Okta".into(),
        issuer: "https://idp.example".into(),
        client_id: "rp".into(),
        client_secret: Some(Secret::new("s")),
        ..Default::default()
    };
    edit(&mut input);
    validate(&input, false).unwrap()
}

fn claims(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn good() -> Value {
    json!({"iss":"https://idp.example","aud":"rp","sub":"u1","exp":1_000,"iat":900,
           "nonce":"n-1","email":"A@Acme.com","email_verified":true,"groups":["eng"]})
}

fn expected(now: i64) -> (String, i64) {
    (crate::crypto::token_hash("n-1"), now)
}

fn check(v: Value, now: i64) -> Result<(), Refusal> {
    let (nonce_hash, now) = expected(now);
    check_claims(
        &claims(v),
        Expected {
            issuer: "https://idp.example",
            client_id: "rp",
            nonce_hash: &nonce_hash,
            now,
            skew: 60,
        },
    )
}

#[test]
fn id_token_claims_are_checked() {
    assert_eq!(check(good(), 950), Ok(()));
    let with = |k: &str, v: Value| {
        let mut g = good();
        g[k] = v;
        g
    };
    let reason = |r: Result<(), Refusal>| r.unwrap_err().reason();
    assert_eq!(
        reason(check(with("nonce", json!("other")), 950)),
        "id_token_nonce"
    );
    assert_eq!(
        reason(check(with("aud", json!("someone-else")), 950)),
        "id_token_aud"
    );
    assert_eq!(reason(check(good(), 1_060)), "id_token_expired");
    assert_eq!(check(good(), 1_059), Ok(()), "within the skew");
    assert!(check(with("iss", json!("https://evil.example")), 950).is_err());
    assert!(
        check(with("aud", json!(["rp", "other"])), 950).is_err(),
        "azp required"
    );
    let mut multi = with("aud", json!(["rp", "other"]));
    multi["azp"] = json!("rp");
    assert_eq!(check(multi, 950), Ok(()));
    assert!(check(with("azp", json!("other")), 950).is_err());
    assert!(check(with("iat", json!(1_100)), 950).is_err());
    let mut no_nonce = good();
    no_nonce.as_object_mut().unwrap().remove("nonce");
    assert!(check(no_nonce, 950).is_err());
}

#[test]
fn identity_groups_and_email_rules() {
    let c = connector(|_| {});
    let id = identity(&c, &claims(good())).unwrap();
    assert_eq!(id.subject, "u1");
    assert_eq!(id.email.as_deref(), Some("a@acme.com"));
    assert!(id.email_verified);
    assert_eq!(id.groups, ["eng"]);

    let c = connector(|i| i.allowed_groups = vec!["admins".into()]);
    assert_eq!(identity(&c, &claims(good())), Err(Refusal::Group));
    let c = connector(|i| i.allowed_email_domains = vec!["acme.com".into()]);
    assert!(identity(&c, &claims(good())).is_ok());
    let mut unverified = good();
    unverified["email_verified"] = json!(false);
    assert_eq!(
        identity(&c, &claims(unverified.clone())),
        Err(Refusal::EmailNotVerified)
    );
    let c2 = connector(|i| i.allowed_email_domains = vec!["other.com".into()]);
    assert_eq!(identity(&c2, &claims(good())), Err(Refusal::EmailDomain));

    // Entra ID overage: groups moved to a claim source.
    let mut overage = good();
    overage.as_object_mut().unwrap().remove("groups");
    overage["_claim_names"] = json!({"groups": "src1"});
    overage["_claim_sources"] = json!({"src1": {"endpoint": "https://graph.microsoft.com/x"}});
    let c = connector(|_| {});
    assert_eq!(identity(&c, &claims(overage)), Err(Refusal::GroupsOverage));

    // Linking by email: only for owned domains, only verified.
    let id = identity(&c, &claims(good())).unwrap();
    assert_eq!(may_link_by_email(&c, &id), None);
    let owned = connector(|i| i.link_by_email_domains = vec!["acme.com".into()]);
    assert_eq!(may_link_by_email(&owned, &id), Some("a@acme.com"));
    let id = identity(&owned, &claims(unverified)).unwrap();
    assert_eq!(may_link_by_email(&owned, &id), None);
}

#[test]
fn userinfo_must_be_about_the_same_subject() {
    let mut c = claims(good());
    let other = claims(json!({"sub":"u2","email":"x@y.z"}));
    assert!(merge_userinfo(&mut c, &other).is_err());
    let same = claims(json!({"sub":"u1","email":"ignored@y.z","name":"A"}));
    merge_userinfo(&mut c, &same).unwrap();
    assert_eq!(c["email"], "A@Acme.com");
    assert_eq!(c["name"], "A");
}

#[test]
fn jws_parts() {
    assert!(Jws::parse("a.b").is_err());
    assert!(Jws::parse("a.b.c.d").is_err());
    let h = crate::crypto::b64(r#"{"alg":"RS256","kid":"k","crit":["x"]}"#);
    let p = crate::crypto::b64("{}");
    assert!(Jws::parse(&format!("{h}.{p}.AA")).is_err());
    let h = crate::crypto::b64(r#"{"alg":"RS256","kid":"k"}"#);
    let j = Jws::parse(&format!("{h}.{p}.AA")).unwrap();
    assert_eq!((j.alg(), j.kid()), ("RS256", Some("k")));
}
