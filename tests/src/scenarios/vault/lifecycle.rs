//! A connection's life against the real upstream, on every host: the upstream token expires
//! and the next vend refreshes it; the upstream rotates the refresh token and the vault keeps
//! the new one (a reused old one would make the upstream revoke the grant); the upstream
//! revokes the grant and the connection needs authorization again; the person connects again;
//! the person removes the connection on the connections page.

use serde_json::json;

use super::upstream::{pass, ACCESS_TTL};
use super::{connect_uri, Setup};
use crate::scenarios::support::*;
use crate::scenarios::Target;

/// Expiry → refresh → rotation → upstream revocation (`needs_reauthorization`,
/// `interaction_required`) → connect again → the person disconnects.
pub async fn vault_refresh_rotation_and_reauthorization(t: &Target) {
    let s = Setup::new(t).await;
    let link = connect_uri(&s.vend(t, &s.mcp, &[]).await);
    assert_eq!(s.connect(t, &link).await.status, 200);
    let first = tokens(&s.vend(t, &s.mcp, &[]).await).access;

    // Expired: the next vend refreshes; then again, with the refresh token the upstream
    // rotated the first time (the old one would be a reuse, which revokes the grant).
    pass(t, ACCESS_TTL + 1).await;
    let second = tokens(&s.vend(t, &s.mcp, &[]).await).access;
    assert_ne!(second, first, "the expired token was refreshed");
    pass(t, ACCESS_TTL + 1).await;
    let third = tokens(&s.vend(t, &s.mcp, &[]).await).access;
    assert_ne!(third, second, "refreshed with the rotated refresh token");
    let refreshed = s.refresh_events(t, "success").await;
    assert!(refreshed.len() >= 2, "{refreshed:?}");
    assert!(
        refreshed
            .iter()
            .all(|e| e["detail"]["rotated"] == json!(true)),
        "the upstream rotates refresh tokens: {refreshed:?}"
    );
    assert_eq!(
        s.upstream_refreshes().await,
        refreshed.len(),
        "one upstream refresh for each refresh the vault records"
    );
    assert!(s.refresh_events(t, "failure").await.is_empty());
    assert_eq!(s.state(t).await, json!("active"));

    // The upstream ends the person's grants: the next refresh is refused with invalid_grant,
    // the connection needs authorization again and the MCP server gets a connect link.
    let user_path = format!("/admin/users/{}", s.upstream_user.username);
    let disable = admin(
        s.up,
        reqwest::Method::POST,
        &format!("{user_path}/disable"),
        None,
    )
    .await;
    assert!(disable.status < 300, "{}", disable.body);
    pass(t, ACCESS_TTL + 1).await;
    let again = connect_uri(&s.vend(t, &s.mcp, &[]).await);
    assert_eq!(s.state(t).await, json!("needs_reauthorization"));
    let failed = s.refresh_events(t, "failure").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    // Still no upstream call while it waits for the person.
    connect_uri(&s.vend(t, &s.mcp, &[]).await);
    assert_eq!(s.refresh_events(t, "failure").await.len(), 1);

    // The person connects again (signing in at the upstream anew): usable again.
    let enable = admin(
        s.up,
        reqwest::Method::POST,
        &format!("{user_path}/enable"),
        None,
    )
    .await;
    assert!(enable.status < 300, "{}", enable.body);
    let page = s.connect(t, &again).await;
    assert_eq!(page.status, 200, "{}", short(&page.body));
    assert_eq!(s.state(t).await, json!("active"));
    let fourth = tokens(&s.vend(t, &s.mcp, &[]).await).access;
    assert_ne!(fourth, third);

    // The person removes it on the connections page: the MCP server is sent to connect.
    let list = s.browser.get(&t.url("/connections")).await;
    assert_eq!(list.status, 200, "{}", short(&list.body));
    let f = form_inputs(&list.body);
    let removed = s
        .browser
        .post_form(
            &t.url("/connections"),
            &[
                ("csrf", f.get("csrf").map_or("", String::as_str)),
                ("connection", f.get("connection").map_or("", String::as_str)),
            ],
        )
        .await;
    assert!(
        removed.is_redirect(),
        "{} {}",
        removed.status,
        short(&removed.body)
    );
    assert_eq!(s.state(t).await, json!("revoked"));
    connect_uri(&s.vend(t, &s.mcp, &[]).await);
}
