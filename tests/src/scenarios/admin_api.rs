//! The admin API's client, grant, session and token administration (issue 12): a client's
//! last use, edit, secret rotation and deletion; a user's sessions and grants; token search by
//! client and subject; revoking a grant or a refresh token's family, each checked through the
//! public protocol (refresh refused, introspection inactive, sign-in asked again).

use reqwest::Method;
use serde_json::{json, Value};

use super::support::*;
use super::Target;

async fn cc(t: &Target, id: &str, secret: &str, resource: &str) -> Resp {
    token(
        t,
        &[
            ("grant_type", "client_credentials"),
            ("resource", resource),
            ("scope", "mcp:tools"),
        ],
        Auth::Basic(id, secret),
    )
    .await
}

fn count(v: &Value, list: &str) -> usize {
    v[list].as_array().map_or(0, Vec::len)
}

/// Last use (written when a client obtains a token), edit, secret rotation (the old secret
/// stops working at once), refusals, and deletion revoking the grants the client holds.
pub async fn admin_client_edit_rotate_and_delete(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let old = c.secret.clone().expect("a secret");
    let path = format!("/admin/clients/{}", c.id);
    let before = admin_ok(t, Method::GET, &path, None).await;
    assert_eq!(before["last_used_at"], Value::Null, "never used: {before}");

    tokens(&cc(t, &c.id, &old, &resource).await);
    let used = admin_ok(t, Method::GET, &path, None).await;
    let at = used["last_used_at"]
        .as_i64()
        .expect("a last use once it got a token");
    let listed = admin_ok(t, Method::GET, "/admin/clients?limit=1000", None).await;
    let row = listed["clients"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["client_id"] == c.id.as_str()).cloned())
        .expect("the client is listed");
    assert_eq!(row["last_used_at"], at, "the list shows the last use");
    // Coarse: a second token within the interval does not move it.
    tokens(&cc(t, &c.id, &old, &resource).await);
    assert_eq!(
        admin_ok(t, Method::GET, &path, None).await["last_used_at"],
        at
    );

    // Edit: every editable field, checked as a whole again.
    let edited = admin_ok(
        t,
        Method::PATCH,
        &path,
        Some(json!({
            "client_name": "Renamed by the operator",
            "redirect_uris": ["https://client.example/new/cb"],
            "scope": "mcp:tools",
            "grant_types": ["client_credentials", "authorization_code"],
        })),
    )
    .await;
    assert_eq!(edited["client_name"], "Renamed by the operator");
    assert_eq!(
        edited["redirect_uris"],
        json!(["https://client.example/new/cb"])
    );
    assert_eq!(edited["scope"], "mcp:tools");
    assert_eq!(edited["response_types"], json!(["code"]), "{edited}");
    assert_eq!(
        admin_ok(t, Method::GET, &path, None).await["client_name"],
        "Renamed by the operator"
    );
    for (body, status, error) in [
        (json!({}), 400, "invalid_request"),
        (json!({ "client_secret": "x" }), 400, "invalid_request"),
        (
            json!({ "redirect_uris": ["javascript:alert(1)"] }),
            400,
            "invalid_redirect_uri",
        ),
        (
            json!({ "grant_types": ["password"] }),
            400,
            "invalid_client_metadata",
        ),
        (
            json!({ "grant_types": ["refresh_token"] }),
            400,
            "invalid_client_metadata",
        ),
    ] {
        admin(t, Method::PATCH, &path, Some(body.clone()))
            .await
            .assert_oauth_error(status, error);
    }
    admin(
        t,
        Method::PATCH,
        "/admin/clients/no-such-client",
        Some(json!({ "client_name": "x" })),
    )
    .await
    .assert_oauth_error(404, "not_found");
    // A refused edit changed nothing.
    assert_eq!(
        admin_ok(t, Method::GET, &path, None).await["redirect_uris"],
        json!(["https://client.example/new/cb"])
    );

    // Rotation: the new secret works, the old one no longer does.
    let rotated = admin_ok(t, Method::POST, &format!("{path}/secret"), None).await;
    let new = rotated["client_secret"]
        .as_str()
        .expect("a new secret")
        .to_owned();
    assert_ne!(new, old);
    cc(t, &c.id, &old, &resource)
        .await
        .assert_oauth_error(401, "invalid_client");
    tokens(&cc(t, &c.id, &new, &resource).await);
    let public = new_client(t, "none", &["authorization_code"]).await;
    admin(
        t,
        Method::POST,
        &format!("/admin/clients/{}/secret", public.id),
        None,
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    let rows = admin_ok(
        t,
        Method::GET,
        &format!("/admin/audit?client_id={}", c.id),
        None,
    )
    .await;
    let actions: Vec<&str> = rows["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in ["admin.client.updated", "admin.client.secret_rotated"] {
        assert!(actions.contains(&a), "{a} audited: {actions:?}");
    }
    // The audit log's time range: `from` inclusive, `to` exclusive.
    let newest = rows["events"][0]["at"].as_i64().expect("a time");
    let q = |range: String| format!("/admin/audit?client_id={}&{range}", c.id);
    let within = admin_ok(
        t,
        Method::GET,
        &q(format!("from={newest}&to={}", newest + 1)),
        None,
    )
    .await;
    assert!(count(&within, "events") >= 1, "{within}");
    assert!(within["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["at"] == newest));
    let later = admin_ok(t, Method::GET, &q(format!("from={}", newest + 1)), None).await;
    assert_eq!(count(&later, "events"), 0, "{later}");
    let earlier = admin_ok(
        t,
        Method::GET,
        &q(format!("to={}", before["created_at"])),
        None,
    )
    .await;
    assert_eq!(
        count(&earlier, "events"),
        0,
        "nothing before the client existed: {earlier}"
    );
    let export = admin(
        t,
        Method::GET,
        &format!(
            "/admin/audit/export?format=jsonl&client_id={}&from={}",
            c.id,
            newest + 1
        ),
        None,
    )
    .await;
    assert_eq!(export.status, 200);
    assert!(
        export.body.is_empty(),
        "the export takes the range too: {}",
        short(&export.body)
    );
    for bad in ["from=-1", "to=abc", "from=999999999999999"] {
        admin(t, Method::GET, &format!("/admin/audit?{bad}"), None)
            .await
            .assert_oauth_error(400, "invalid_request");
    }

    // Deleting a client ends what it holds: its grant's refresh token is refused.
    let f = Fixture::confidential(t).await;
    let held = f.tokens(t).await;
    let rt = held.refresh.clone().expect("a refresh token");
    let grants = admin_ok(
        t,
        Method::GET,
        &format!("/admin/grants?client_id={}", f.client.id),
        None,
    )
    .await;
    assert_eq!(count(&grants, "grants"), 1, "{grants}");
    admin_ok(
        t,
        Method::DELETE,
        &format!("/admin/clients/{}", f.client.id),
        None,
    )
    .await;
    let grants = admin_ok(
        t,
        Method::GET,
        &format!("/admin/grants?client_id={}", f.client.id),
        None,
    )
    .await;
    assert_eq!(grants["grants"][0]["active"], false, "{grants}");
    assert_eq!(
        count(
            &admin_ok(
                t,
                Method::GET,
                &format!("/admin/grants?client_id={}&active=true", f.client.id),
                None
            )
            .await,
            "grants"
        ),
        0
    );
    assert_ne!(
        refresh(t, &rt, f.auth()).await.status,
        200,
        "a deleted client's refresh token is refused"
    );
}

/// A user's sessions and grants; token search by subject and client; revoking a refresh
/// token's family and a grant by id; ending one or all sessions.
pub async fn admin_user_sessions_grants_and_token_search(t: &Target) {
    let f = Fixture::confidential(t).await;
    let b = Browser::new();
    let p = pkce();
    let code = f.code(t, &b, &p).await;
    let first = f.redeem(t, &code, &p.verifier).await;
    let user = &f.user.username;

    let sessions = admin_ok(
        t,
        Method::GET,
        &format!("/admin/users/{user}/sessions"),
        None,
    )
    .await;
    assert_eq!(sessions["user_id"], f.user.id.as_str());
    assert_eq!(count(&sessions, "sessions"), 1, "{sessions}");
    let grants = admin_ok(
        t,
        Method::GET,
        &format!("/admin/grants?subject={}", f.user.id),
        None,
    )
    .await;
    assert_eq!(count(&grants, "grants"), 1, "{grants}");
    let g1 = grants["grants"][0].clone();
    assert_eq!(g1["client_id"], f.client.id.as_str());
    assert_eq!(g1["active"], true);

    // Token search by subject and by client finds the access token's record.
    let jti = jwt_claims(&first.access)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    for q in [
        format!("subject={}", f.user.id),
        format!("client_id={}", f.client.id),
    ] {
        let found = admin_ok(
            t,
            Method::GET,
            &format!("/admin/tokens?{q}&active=true"),
            None,
        )
        .await;
        assert!(
            found["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["jti"] == jti.as_str()),
            "{q}: {found}"
        );
    }
    admin(t, Method::GET, "/admin/tokens", None)
        .await
        .assert_oauth_error(400, "invalid_request");
    admin(t, Method::GET, "/admin/grants?active=maybe", None)
        .await
        .assert_oauth_error(400, "invalid_request");

    // The refresh token's family is revoked: refresh refused, access token inactive.
    let rt = first.refresh.clone().expect("a refresh token");
    let done = admin_ok(
        t,
        Method::POST,
        "/admin/tokens/revoke",
        Some(json!({ "refresh_token": rt })),
    )
    .await;
    assert_eq!(done["grant_id"], g1["id"]);
    assert_eq!(done["grant"]["active"], false);
    refresh(t, &rt, f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert!(!is_active(t, &first.access, f.auth()).await);
    let found = admin_ok(
        t,
        Method::GET,
        &format!("/admin/tokens?subject={}&active=true", f.user.id),
        None,
    )
    .await;
    assert_eq!(count(&found, "tokens"), 0, "{found}");
    admin(
        t,
        Method::POST,
        "/admin/tokens/revoke",
        Some(json!({ "refresh_token": "not-ours" })),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    admin(
        t,
        Method::POST,
        "/admin/tokens/revoke",
        Some(json!({ "refresh_token": "x", "jti": "y" })),
    )
    .await
    .assert_oauth_error(400, "invalid_request");

    // A second authorization (the session signs the user in) and its grant revoked by id.
    let code = f.code(t, &b, &p).await;
    let second = f.redeem(t, &code, &p.verifier).await;
    let active = admin_ok(
        t,
        Method::GET,
        &format!("/admin/grants?subject={}&active=true", f.user.id),
        None,
    )
    .await;
    assert_eq!(count(&active, "grants"), 1, "{active}");
    let g2 = active["grants"][0]["id"].as_str().unwrap().to_owned();
    let revoked = admin_ok(t, Method::POST, &format!("/admin/grants/{g2}/revoke"), None).await;
    assert_eq!(revoked["active"], false);
    assert!(!is_active(t, &second.access, f.auth()).await);
    refresh(t, second.refresh.as_deref().unwrap(), f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    admin(t, Method::POST, "/admin/grants/no-such-grant/revoke", None)
        .await
        .assert_oauth_error(404, "not_found");

    // Sessions: an unknown one is 404; ending all makes the next authorization ask again.
    admin(
        t,
        Method::DELETE,
        &format!("/admin/users/{user}/sessions/nope"),
        None,
    )
    .await
    .assert_oauth_error(404, "not_found");
    admin(t, Method::GET, "/admin/users/no-such-user/sessions", None)
        .await
        .assert_oauth_error(404, "not_found");
    let one = admin_ok(
        t,
        Method::GET,
        &format!("/admin/users/{user}/sessions"),
        None,
    )
    .await;
    let sid = one["sessions"][0]["id"].as_str().unwrap().to_owned();
    let r = admin(
        t,
        Method::DELETE,
        &format!("/admin/users/{user}/sessions/{sid}"),
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", short(&r.body));
    assert_eq!(
        count(
            &admin_ok(
                t,
                Method::GET,
                &format!("/admin/users/{user}/sessions"),
                None
            )
            .await,
            "sessions"
        ),
        0
    );
    let again = b
        .follow_local(
            t,
            b.get(&authorize_url(t, &pairs(&f.params(&p, "s")))).await,
        )
        .await;
    assert!(
        is_login_page(&again),
        "a user whose session ended signs in again"
    );
    let r = admin(
        t,
        Method::DELETE,
        &format!("/admin/users/{user}/sessions"),
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    let rows = audit_events(t, "admin.grant.revoked", &f.client.id).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let ended = admin_ok(
        t,
        Method::GET,
        &format!(
            "/admin/audit?action=admin.user.sessions_ended&subject={}",
            f.user.id
        ),
        None,
    )
    .await;
    assert_eq!(count(&ended, "events"), 2, "{ended}");
}
