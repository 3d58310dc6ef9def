//! The vault's own sign-in page (a connect link, the connections page) offers "Sign in with
//! {name}" per connector, as the OAuth sign-in page does: in a real browser, a person signs in
//! through the real OIDC provider from the connections page and lands back on it, signed in as
//! the linked user; the connect page's link comes back to the connect page.

use super::*;

/// Unsigned, a connect link and the connections page show the connector's link (each coming
/// back to its own page) next to the password form; following it from the connections page
/// goes through the IdP's login and consent and back to "Connected accounts" for the linked
/// user, with no problem reported by the browser.
pub async fn federation_vault_sign_in_with_a_connector_in_a_browser(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let c = connector(t, json!({})).await;
    let provider = format!("gh{}", &random_hex(6));
    admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/providers",
        Some(json!({
            "name": provider, "preset": "github",
            "client_id": "Iv1.example", "client_secret": "a-very-secret-value",
            "scopes": ["repo"], "resource": "https://api.github.com",
            "vend_resources": [j.resource],
        })),
    )
    .await;
    let link = format!("a[href*=\"/oauth/connectors/{}/start\"]", c.id);
    let b = &mut j.browser;
    b.goto(&t.url(&format!("/connect/{provider}"))).await;
    assert_eq!(b.heading().await, "Sign in", "{}", b.text().await);
    let text = b.text().await;
    assert!(
        text.contains(&format!("Sign in with {}", c.name))
            && text.contains(&format!("connect your {provider} account")),
        "the connect page's sign-in offers the connector: {text}"
    );
    let href = b.attr(&link, "href").await.expect("the connector's link");
    assert!(
        href.contains(&format!("continue=%2Fconnect%2F{provider}")),
        "it comes back to the connect page: {href}"
    );
    assert!(b.has("#password").await, "local passwords stay offered");
    b.assert_no_problems("the connect page's sign-in").await;

    b.goto(&t.url("/connections")).await;
    assert_eq!(b.heading().await, "Sign in", "{}", b.text().await);
    assert!(b.text().await.contains(&format!("Sign in with {}", c.name)));
    b.assert_no_problems("the connections page's sign-in").await;
    let login = uid("grace").to_lowercase();
    idp()
        .await
        .account(json!({ "sub": login, "email": format!("{login}@example.test") }))
        .await;
    b.click(&link).await;
    j.through_idp(&login).await;
    let b = &mut j.browser;
    assert_eq!(
        b.heading().await,
        "Connected accounts",
        "back on the page that asked: {}",
        b.text().await
    );
    assert!(
        b.text().await.contains(&format!("{}:{login}", c.id)),
        "signed in as the linked user: {}",
        b.text().await
    );
    let linked = identities(t, &c.id).await;
    assert_eq!(linked.len(), 1, "{linked:?}");
    b.assert_no_problems("the connections page after federation")
        .await;
    j.browser
        .finish("a vault sign-in through a connector")
        .await;
}

fn random_hex(n: usize) -> String {
    random_b64(n)
        .bytes()
        .map(|b| format!("{:x}", b % 16))
        .collect()
}
