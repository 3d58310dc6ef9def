//! Policy rules of the JWT bearer grant (ID-JAG / cross-app access) over HTTP: a rule on some
//! of a policy's scopes requires group membership (the assertion's `groups` claim, or the
//! groups stored for the mapped local user), a maximum authentication age (`auth_time`) and
//! an authentication context (`acr`). Assertions are signed with `jsonwebtoken`, independent
//! of the server. A refused rule gives the client only the error code (`access_denied` for a
//! missing group, `invalid_grant` for the authentication), the audit row says which policy,
//! rule, scope and condition failed, and the refused assertion's `jti` is not spent.

use serde_json::{json, Value};

use super::*;

/// The rule of `s`'s policy (scopes `mcp:tools mcp:read`).
async fn set_rules(t: &Target, s: &Setup, rules: Value) {
    let body = json!({
        "issuer": s.idp.issuer,
        "client_id": s.client.id,
        "resource": s.resource,
        "scopes": ["mcp:tools", "mcp:read"],
        "rules": rules,
    });
    let r = admin(t, reqwest::Method::POST, "/admin/idp-policies", Some(body)).await;
    assert_eq!(r.status, 200, "the policy's rules are replaced: {}", r.body);
}

/// The newest refusal's audit row.
async fn last_refusal(t: &Target, s: &Setup) -> Value {
    s.events(t)
        .await
        .into_iter()
        .find(|e| e["outcome"] == json!("failure"))
        .expect("a refusal was audited")
}

/// Asserts the client learned nothing of the condition.
fn assert_tells_nothing(r: &Resp) {
    for word in ["ops", "group", "auth_time", "acr", "urn:mfa"] {
        assert!(
            !r.body.contains(word),
            "the client is told {word:?}: {}",
            r.body
        );
    }
}

/// Groups from the assertion: `mcp:tools` needs the group `ops`. An `eng` member without a
/// `scope` parameter gets `mcp:read` only; asking for `mcp:tools` by name is 403
/// `access_denied` (audited `policy_groups` with the policy, rule, scope and condition) and the
/// assertion is not spent: once the operator lets `eng` in, the same assertion is granted.
/// An `ops` member gets both scopes.
pub async fn id_jag_policy_groups_from_the_assertion(t: &Target) {
    let s = Setup::new(t, &["mcp:tools", "mcp:read"]).await;
    set_rules(
        t,
        &s,
        json!([{ "scopes": ["mcp:tools"], "groups": ["ops"] }]),
    )
    .await;
    let mut eng = s.claims(t);
    eng["groups"] = json!(["eng", "staff"]);
    let tok = tokens(&s.grant(t, &s.idp.sign(&eng)).await);
    assert_eq!(tok.raw["scope"], json!("mcp:read"), "narrowed by the rule");

    let mut eng = s.claims(t);
    eng["groups"] = json!(["eng"]);
    let assertion = s.idp.sign(&eng);
    let ask = [("scope", "mcp:tools")];
    let r = s.grant_with(t, &s.client, &assertion, &ask).await;
    r.assert_oauth_error(403, "access_denied");
    assert_tells_nothing(&r);
    let row = last_refusal(t, &s).await;
    assert_eq!(row["reason"], json!("policy_groups"), "{row}");
    let policy = &row["detail"]["policy"];
    assert_eq!(policy["condition"], json!("groups"), "{row}");
    assert_eq!(policy["scope"], json!("mcp:tools"), "{row}");
    assert_eq!(policy["rule"], json!(0), "{row}");
    assert!(
        policy["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{row}"
    );

    set_rules(
        t,
        &s,
        json!([{ "scopes": ["mcp:tools"], "groups": ["ops", "eng"] }]),
    )
    .await;
    let r = s.grant_with(t, &s.client, &assertion, &ask).await;
    assert_eq!(
        tokens(&r).raw["scope"],
        json!("mcp:tools"),
        "the jti was not spent"
    );

    let mut ops = s.claims(t);
    ops["groups"] = json!("ops");
    let tok = tokens(&s.grant(t, &s.idp.sign(&ops)).await);
    assert_eq!(tok.raw["scope"], json!("mcp:tools mcp:read"));
}

/// Step-up: every scope needs an authentication at most 300 seconds old (`auth_time`) with
/// `acr` `urn:mfa`. No `auth_time`, an old one, or another `acr` are each 400 `invalid_grant`
/// (audited as `policy_auth_time_missing`, `policy_auth_time_too_old`, `policy_acr`); a fresh
/// MFA authentication is granted and its `auth_time` is in the access token.
pub async fn id_jag_policy_step_up_auth_time_and_acr(t: &Target) {
    let s = Setup::new(t, &["mcp:tools", "mcp:read"]).await;
    set_rules(
        t,
        &s,
        json!([{ "max_auth_age": 300, "acr_values": ["urn:mfa", "phr"] }]),
    )
    .await;
    let now = t.now();
    let cases = [
        (json!(null), json!("urn:mfa"), "policy_auth_time_missing"),
        (
            json!(now - 301),
            json!("urn:mfa"),
            "policy_auth_time_too_old",
        ),
        (json!(now - 60), json!("pwd"), "policy_acr"),
        (json!(now - 60), json!(null), "policy_acr"),
    ];
    for (auth_time, acr, reason) in cases {
        let mut c = s.claims(t);
        c["auth_time"] = auth_time;
        c["acr"] = acr;
        let r = s.grant(t, &s.idp.sign(&c)).await;
        r.assert_oauth_error(400, "invalid_grant");
        assert_tells_nothing(&r);
        let row = last_refusal(t, &s).await;
        assert_eq!(row["reason"], json!(reason), "{row}");
    }
    let mut c = s.claims(t);
    c["auth_time"] = json!(now - 60);
    c["acr"] = json!("urn:mfa");
    let r = s.grant(t, &s.idp.sign(&c)).await;
    let (tok, claims) = granted(t, &s, &r).await;
    assert_eq!(tok.raw["scope"], json!("mcp:tools mcp:read"));
    assert_eq!(claims["auth_time"], json!(now - 60), "{claims}");
}

/// Groups from the mapped identity: a rule reading `groups_from: identity` ignores the
/// assertion's `groups` claim. An IdP subject with no mapped local user (or one whose user has
/// no connector identity) has no groups: 403 `access_denied`, audited `policy_groups`; without
/// the rule the same subject is granted.
pub async fn id_jag_policy_identity_groups_need_a_mapped_identity(t: &Target) {
    let s = Setup::new(t, &["mcp:tools", "mcp:read"]).await;
    set_rules(
        t,
        &s,
        json!([{ "groups": ["ops"], "groups_from": "identity" }]),
    )
    .await;
    let mut c = s.claims(t);
    c["groups"] = json!(["ops"]);
    let r = s.grant(t, &s.idp.sign(&c)).await;
    r.assert_oauth_error(403, "access_denied");
    let row = last_refusal(t, &s).await;
    assert_eq!(row["reason"], json!("policy_groups"), "{row}");
    let user = new_user(t).await;
    admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/idp-subjects",
        Some(json!({
            "issuer": s.idp.issuer, "external_subject": "employee-7", "username": user.username,
        })),
    )
    .await;
    let r = s.grant(t, &s.idp.sign(&c)).await;
    r.assert_oauth_error(403, "access_denied");
    set_rules(t, &s, json!([])).await;
    let r = s.grant(t, &s.idp.sign(&c)).await;
    let (_, claims) = granted(t, &s, &r).await;
    assert_eq!(claims["sub"], json!(user.id));
}

/// Rules are validated: a rule without a condition, one guarding a scope the policy does not
/// grant, a negative `max_auth_age`, an unknown `groups_from` or member: each 400 naming the
/// problem; the stored rules are listed.
pub async fn id_jag_policy_rules_validated_and_listed(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let base = |rules: Value| {
        json!({
            "issuer": s.idp.issuer, "client_id": s.client.id,
            "resource": s.resource, "scopes": ["mcp:tools"], "rules": rules,
        })
    };
    for (rules, says) in [
        (json!([{}]), "needs at least one condition"),
        (
            json!([{ "scopes": ["mcp:read"], "groups": ["ops"] }]),
            "not one of the policy's scopes",
        ),
        (json!([{ "max_auth_age": -5 }]), "max_auth_age"),
        (
            json!([{ "groups": ["ops"], "groups_from": "token" }]),
            "unknown variant",
        ),
        (json!([{ "group": ["ops"] }]), "unknown field"),
    ] {
        let r = admin(
            t,
            reqwest::Method::POST,
            "/admin/idp-policies",
            Some(base(rules.clone())),
        )
        .await;
        assert_eq!(r.status, 400, "{rules}: {}", r.body);
        assert!(r.body.contains(says), "{rules}: {}", r.body);
    }
    let rule = json!({ "scopes": ["mcp:tools"], "groups": ["ops"], "groups_from": "assertion",
                       "max_auth_age": 600, "acr_values": ["urn:mfa"] });
    let r = admin(
        t,
        reqwest::Method::POST,
        "/admin/idp-policies",
        Some(base(json!([rule]))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let path = format!("/admin/idp-policies?issuer={}", enc(&s.idp.issuer));
    let list = admin_ok(t, reqwest::Method::GET, &path, None).await;
    assert_eq!(list["policies"][0]["rules"], json!([rule]), "{list}");
}
