//! Groups re-read on refresh (as Dex re-reads an identity): at a group-gated resource
//! (`[[group_scopes]]`) a refresh token's scope follows the groups the user's connector
//! identity last stored. A person who leaves a group at the IdP and signs in again gets the
//! narrower scope at the next refresh of a token issued before; once an admin unlinks the
//! identity, the refresh is refused (`invalid_grant`).

use super::*;

/// The resource gated by [`GROUP_SCOPES_REFRESH`].
const GATED_REFRESH: &str = "https://mcp.example.com/federated-refresh/mcp";

/// `[[group_scopes]]` at [`GATED_REFRESH`]: `eng` may consent to `mcp:tools`, `ops` to
/// `mcp:read`.
pub const GROUP_SCOPES_REFRESH: &[(&str, &str)] = &[
    ("cimd__allow_loopback", "true"),
    (
        "group_scopes",
        r#"[{"resource":"https://mcp.example.com/federated-refresh/mcp","group":"eng","scopes":["mcp:tools"]},{"resource":"https://mcp.example.com/federated-refresh/mcp","group":"ops","scopes":["mcp:read"]}]"#,
    ),
];

/// A member of `eng` and `ops` gets `mcp:tools mcp:read` and a refresh token; a refresh keeps
/// both. The IdP drops `ops`, the person signs in through the connector again (the new groups
/// are stored): the old refresh token now yields `mcp:tools` only. The admin unlinks the
/// identity: the next refresh is `invalid_grant`.
pub async fn federation_refresh_rereads_groups_in_a_browser(t: &Target) {
    new_resource_at(t, GATED_REFRESH, &["mcp:tools", "mcp:read"]).await;
    let scope = "mcp:tools mcp:read";
    let Some(mut j) = Journey::start_at(t, GATED_REFRESH.to_owned(), scope).await else {
        return;
    };
    let c = connector(t, json!({})).await;
    let person = uid("frank").to_lowercase();
    let idp = idp().await;
    idp.account(json!({ "sub": person, "groups": ["eng", "ops"] }))
        .await;
    let req = j.sign_in_with(t, &c).await;
    j.through_idp(&person).await;
    let tok = j.approve_and_redeem_tokens(t, &req).await;
    assert_eq!(tok.raw["scope"], json!(scope));
    let client_id = j.client_id.clone();
    let auth = || Auth::Public(&client_id);
    let rt = tok.refresh.expect("a refresh token");
    let tok = tokens(&refresh(t, &rt, auth()).await);
    assert_eq!(
        tok.raw["scope"],
        json!(scope),
        "groups unchanged: same scope"
    );
    let rt = tok.refresh.expect("a rotated refresh token");

    // The person leaves `ops` at the IdP and signs in through the connector again; the
    // identity's stored groups follow (the new authorization request is not completed).
    idp.account(json!({ "sub": person, "groups": ["eng"] }))
        .await;
    j.browser.delete_cookie("pc_session").await;
    j.sign_in_with(t, &c).await;
    j.through_idp(&person).await;
    let linked = identities(t, &c.id).await;
    assert_eq!(linked[0]["groups"], json!(["eng"]), "{linked:?}");
    let tok = tokens(&refresh(t, &rt, auth()).await);
    assert_eq!(
        tok.raw["scope"],
        json!("mcp:tools"),
        "narrowed to the groups"
    );
    let claims = verify_access_token(t, &tok.access, GATED_REFRESH).await;
    assert_eq!(claims["scope"], json!("mcp:tools"));
    let rt = tok.refresh.expect("a rotated refresh token");

    // The admin unlinks the identity: no groups, nothing left to grant.
    let path = format!("/admin/identities/{}/{person}", c.id);
    let r = admin(t, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    refresh(t, &rt, auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    j.browser.finish("groups re-read on refresh").await;
}
