//! The console's administration pages in a real browser (issue 12): create a client (its
//! secret shown once), edit it, see its last use, rotate its secret (the old one is refused at
//! once), delete it; a user's sessions and grants, revoking a grant, ending sessions, a
//! password reset; token search by subject and revoking a refresh token's family. Each action
//! is checked through the public protocol or the admin API, and each page is screenshotted.

use reqwest::Method;
use serde_json::Value;

use super::support::*;
use super::Target;
use crate::chromium::{screenshot_path, Chromium};

fn console(t: &Target, page: &str) -> String {
    format!("{}/admin/console/{page}", t.admin)
}

/// Whether `id` authenticates with `secret` (revocation answers 200 for any token once the
/// client is authenticated, 401 otherwise).
async fn authenticates(t: &Target, id: &str, secret: &str) -> bool {
    revoke(t, "no-such-token", None, Auth::Basic(id, secret))
        .await
        .status
        == 200
}

async fn sign_in(b: &mut Chromium, t: &Target) {
    b.goto(&console(t, "sign-in")).await;
    b.fill("#key", &t.admin_key).await;
    b.click("button.primary").await;
    assert_eq!(b.heading().await, "Overview", "{}", b.text().await);
}

/// Creates, edits, uses, rotates and deletes a client from the console.
pub async fn console_clients_in_a_browser(t: &Target) {
    let Some(mut b) = Chromium::start().await else {
        return;
    };
    sign_in(&mut b, t).await;
    let id = crate::conformance::uid("console-made");
    b.goto(&console(t, "clients")).await;
    b.fill("#client_id", &id).await;
    b.fill("#client_name", "Made in the console").await;
    b.fill("#redirect_uris", "https://client.example/console/cb")
        .await;
    b.fill("#scope", "mcp:tools").await;
    b.click("button[name=create]").await;
    let text = b.text().await;
    assert!(text.contains(&format!("Client {id} created.")), "{text}");
    b.assert_no_problems("creating a client in the console")
        .await;
    let secret = b.value_of("#client_secret").await;
    assert!(secret.len() >= 32, "the secret is shown once: {text}");
    b.screenshot(&screenshot_path("console-client-created"))
        .await;
    assert!(
        authenticates(t, &id, &secret).await,
        "the shown secret works"
    );
    let made = admin_ok(t, Method::GET, &format!("/admin/clients/{id}"), None).await;
    assert_eq!(made["client_name"], "Made in the console");
    assert_eq!(
        made["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(made["source"], "static");

    // Edit: the form holds the current values; saving changes the client.
    b.goto(&console(t, &format!("clients?edit={id}"))).await;
    assert_eq!(b.value_of("#client_name").await, "Made in the console");
    b.fill("#client_name", "Renamed in the console").await;
    b.fill("#redirect_uris", "https://client.example/renamed/cb")
        .await;
    b.click("button[name=save]").await;
    assert!(
        b.text().await.contains(&format!("Client {id} saved.")),
        "{}",
        b.text().await
    );
    b.assert_no_problems("editing a client in the console")
        .await;
    let edited = admin_ok(t, Method::GET, &format!("/admin/clients/{id}"), None).await;
    assert_eq!(edited["client_name"], "Renamed in the console");
    assert_eq!(
        edited["redirect_uris"][0],
        "https://client.example/renamed/cb"
    );

    // Last use: a client that obtained a token shows when, one that did not shows "never".
    let resource = new_resource(t, &SCOPES).await;
    let m = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    tokens(
        &token(
            t,
            &[
                ("grant_type", "client_credentials"),
                ("resource", &resource),
            ],
            Auth::Basic(&m.id, m.secret.as_deref().unwrap()),
        )
        .await,
    );
    b.goto(&console(t, "clients?offset=0")).await;
    let row = |id: &str| format!("tr:has(input[name=client_id][value=\"{id}\"])");
    let used_at = admin_ok(t, Method::GET, &format!("/admin/clients/{}", m.id), None).await
        ["last_used_at"]
        .as_i64()
        .expect("a last use");
    assert!(used_at > 0);
    let page = b.text().await;
    assert!(
        page.contains("Last used") && page.contains("never"),
        "{page}"
    );
    assert!(b.has(&row(&m.id)).await);
    b.screenshot(&screenshot_path("console-clients-last-used"))
        .await;

    // Rotate: the new secret is shown once; the old one is refused at once.
    b.click(&format!(
        "{} button[type=submit]:not(.danger)",
        form_for(&id, "rotate")
    ))
    .await;
    let text = b.text().await;
    assert!(text.contains("the old one no longer works"), "{text}");
    let rotated = b.value_of("#client_secret").await;
    assert_ne!(rotated, secret);
    assert!(
        !authenticates(t, &id, &secret).await,
        "the old secret is refused"
    );
    assert!(
        authenticates(t, &id, &rotated).await,
        "the new secret works"
    );

    // Delete.
    b.goto(&console(t, "clients")).await;
    b.click(&format!("{} button", form_for(&id, "delete")))
        .await;
    assert!(
        b.text().await.contains(&format!("Client {id} deleted")),
        "{}",
        b.text().await
    );
    assert_eq!(
        admin(t, Method::GET, &format!("/admin/clients/{id}"), None)
            .await
            .status,
        404
    );
    assert!(!authenticates(t, &id, &rotated).await);
    let rows = admin_ok(
        t,
        Method::GET,
        &format!("/admin/audit?client_id={id}"),
        None,
    )
    .await;
    let actions: Vec<&str> = rows["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"]["via"] == "console")
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "admin.client.created",
        "admin.client.updated",
        "admin.client.secret_rotated",
        "admin.client.deleted",
    ] {
        assert!(actions.contains(&a), "{a} from the console: {actions:?}");
    }
    b.finish("the console's client administration").await;
}

fn form_for(id: &str, action: &str) -> String {
    format!(
        "form:has(input[name=client_id][value=\"{id}\"]):has(input[name=action][value={action}])"
    )
}

/// A user's sessions and grants, token search by username, revoking a refresh token's family
/// and a grant, ending sessions and resetting the password, from the console.
pub async fn console_users_and_tokens_in_a_browser(t: &Target) {
    let Some(mut b) = Chromium::start().await else {
        return;
    };
    let f = Fixture::confidential(t).await;
    let first = f.tokens(t).await;
    let second = f.tokens(t).await;
    sign_in(&mut b, t).await;

    // Token search by username: both grants and their recorded tokens.
    b.goto(&console(t, "tokens")).await;
    b.fill("#subject", &f.user.username).await;
    b.click("#search").await;
    let text = b.text().await;
    let grants = admin_ok(
        t,
        Method::GET,
        &format!("/admin/grants?subject={}", f.user.id),
        None,
    )
    .await;
    let ids: Vec<String> = grants["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{grants}");
    for g in &ids {
        assert!(text.contains(g.as_str()), "grant {g} listed: {text}");
    }
    let jti = jwt_claims(&first.access)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains(&jti), "the token is listed: {text}");
    b.assert_no_problems("searching tokens by subject").await;
    // Scrolled to the results for the screenshot.
    b.goto(&console(
        t,
        &format!("tokens?subject={}#results", f.user.username),
    ))
    .await;
    b.screenshot(&screenshot_path("console-token-search")).await;

    // Revoke the first authorization's refresh family by pasting its refresh token.
    b.fill("#refresh_token", first.refresh.as_deref().unwrap())
        .await;
    b.click("#revoke_family").await;
    assert!(b.text().await.contains("family"), "{}", b.text().await);
    b.assert_no_problems("revoking a refresh family").await;
    refresh(t, first.refresh.as_deref().unwrap(), f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert!(!is_active(t, &first.access, f.auth()).await);
    assert!(
        is_active(t, &second.access, f.auth()).await,
        "the other grant is untouched"
    );

    // The user's page: sessions, grants; revoke the other grant; end every session.
    b.goto(&console(t, "users")).await;
    b.click(&format!("a[href$=\"user={}\"]", f.user.username))
        .await;
    assert_eq!(b.heading().await, format!("User {}", f.user.username));
    let text = b.text().await;
    assert!(
        text.contains("Sessions") && text.contains("End all sessions"),
        "{text}"
    );
    b.assert_no_problems("a user's page").await;
    b.screenshot(&screenshot_path("console-user")).await;
    b.click("form:has(input[name=action][value=revoke_grant]) button")
        .await;
    assert!(b.text().await.contains("revoked."), "{}", b.text().await);
    assert!(!is_active(t, &second.access, f.auth()).await);
    let active = admin_ok(
        t,
        Method::GET,
        &format!("/admin/grants?subject={}&active=true", f.user.id),
        None,
    )
    .await;
    assert_eq!(
        active["grants"].as_array().map_or(0, Vec::len),
        0,
        "{active}"
    );
    b.click("form:has(input[name=action][value=end_sessions]) button")
        .await;
    assert!(
        b.text().await.contains("Every session"),
        "{}",
        b.text().await
    );
    let sessions = admin_ok(
        t,
        Method::GET,
        &format!("/admin/users/{}/sessions", f.user.username),
        None,
    )
    .await;
    assert_eq!(sessions["sessions"], Value::Array(vec![]), "{sessions}");

    // Reset the password: audited from the console.
    b.fill("#password", "a brand new password").await;
    b.click("button[name=reset]").await;
    assert!(
        b.text().await.contains("New password set"),
        "{}",
        b.text().await
    );
    b.assert_no_problems("resetting a password").await;
    let rows = admin_ok(
        t,
        Method::GET,
        &format!(
            "/admin/audit?action=admin.user.password_changed&subject={}",
            f.user.id
        ),
        None,
    )
    .await;
    assert_eq!(rows["events"][0]["detail"]["via"], "console", "{rows}");
    b.finish("the console's user and token administration")
        .await;
}
