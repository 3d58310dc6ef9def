//! Users: the local accounts, with disable / enable (`POST /admin/users/{name}/disable|enable`,
//! which also ends the user's sessions and makes their tokens inactive), and a user's detail
//! (`users?user={name}`): their sign-in sessions (`GET /admin/users/{name}/sessions`, ended one
//! or all with `DELETE …/sessions[/{id}]`), their grants (`GET /admin/grants?subject={id}`,
//! each revocable with `POST /admin/grants/{id}/revoke`) and a password reset (the
//! administrator sets a new one: `POST /admin/users/{name}/password`, which also ends the
//! user's sessions and grants), all through the admin API.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::api::{self, seg};
use super::clients::{offset, pager};
use super::layout::{self, a, button, field, hidden, t, time};
use super::{Ctx, Next};
use crate::error::{Error, Result};
use crate::request::Params;

/// `GET /admin/console/users?offset=` or `?user={name}`.
pub async fn page(cx: &Ctx<'_>, q: &Params, flash: Option<&str>) -> Result<Response<Bytes>> {
    if let Some(name) = q.get("user") {
        return detail(cx, name, flash).await;
    }
    let offset = offset(q)?;
    let list = api::call(
        cx,
        Method::GET,
        &format!("users?limit=50&offset={offset}"),
        None,
    )
    .await?;
    let users = list["users"].as_array().cloned().unwrap_or_default();
    let f = cx.frame("users");
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            let name = u["username"].as_str().unwrap_or_default();
            let disabled = u["disabled"].as_bool().unwrap_or(false);
            let (state, action) = if disabled {
                (
                    "<span class=\"tag bad\">disabled</span>",
                    ("enable", "Enable"),
                )
            } else {
                (
                    "<span class=\"tag good\">active</span>",
                    ("disable", "Disable"),
                )
            };
            vec![
                format!(
                    "<a href=\"{}\">{}</a>",
                    a(&layout::url(&format!("users?user={}", seg(name)))),
                    t(name)
                ),
                format!("<code>{}</code>", field(u, "id")),
                t(&time(u["created_at"].as_i64().unwrap_or(0))),
                state.to_owned(),
                button(
                    &f,
                    "users",
                    &[("action", action.0), ("username", name)],
                    action.1,
                    "",
                ),
            ]
        })
        .collect();
    let body = format!(
        "<h1>Users</h1><p class=\"muted\">Disabling a user refuses their sign-in and makes their \
tokens inactive at introspection. Open a user for their sessions, grants and a password reset.</p>{}{}",
        layout::table(&["Username", "Id", "Created", "State", ""], &rows),
        pager("users", offset, users.len() as i64)
    );
    Ok(layout::page(&f, StatusCode::OK, "Users", flash, &body))
}

/// The grants table with a Revoke button for each active one; `back` is the hidden fields
/// that bring the browser back here.
pub fn grants_table(cx: &Ctx<'_>, page: &str, grants: &[Value], back: &[(&str, &str)]) -> String {
    let f = cx.frame(page);
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|g| {
            let id = g["id"].as_str().unwrap_or_default();
            let active = g["active"].as_bool().unwrap_or(false);
            let mut fields = vec![("action", "revoke_grant"), ("grant_id", id)];
            fields.extend_from_slice(back);
            vec![
                format!("<code>{}</code>", t(id)),
                field(g, "client_id"),
                format!("<code>{}</code>", field(g, "subject")),
                field(g, "scope"),
                field(g, "resource"),
                t(&time(g["created_at"].as_i64().unwrap_or(0))),
                if active {
                    format!(
                        "<span class=\"tag good\">active</span> {}",
                        button(&f, page, &fields, "Revoke grant", "danger")
                    )
                } else {
                    "<span class=\"tag bad\">revoked</span>".into()
                },
            ]
        })
        .collect();
    layout::table(
        &[
            "Grant", "Client", "Subject", "Scope", "Resource", "Created", "State",
        ],
        &rows,
    )
}

async fn detail(cx: &Ctx<'_>, name: &str, flash: Option<&str>) -> Result<Response<Bytes>> {
    let user = api::call(cx, Method::GET, &format!("users/{}", seg(name)), None).await?;
    let id = user["id"].as_str().unwrap_or_default();
    let sessions = api::call(
        cx,
        Method::GET,
        &format!("users/{}/sessions", seg(name)),
        None,
    )
    .await?;
    let grants = api::call(
        cx,
        Method::GET,
        &format!(
            "grants?{}",
            api::query(&[("subject", id), ("limit", "100")])
        ),
        None,
    )
    .await?;
    let f = cx.frame("users");
    let sessions = sessions["sessions"].as_array().cloned().unwrap_or_default();
    let session_rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            let sid = s["id"].as_str().unwrap_or_default();
            vec![
                format!(
                    "<code>{}…</code>",
                    t(&sid.chars().take(12).collect::<String>())
                ),
                t(&time(s["auth_time"].as_i64().unwrap_or(0))),
                t(&time(s["expires_at"].as_i64().unwrap_or(0))),
                button(
                    &f,
                    "users",
                    &[
                        ("action", "end_session"),
                        ("username", name),
                        ("session", sid),
                    ],
                    "End session",
                    "",
                ),
            ]
        })
        .collect();
    let end_all = if sessions.is_empty() {
        String::new()
    } else {
        button(
            &f,
            "users",
            &[("action", "end_sessions"), ("username", name)],
            "End all sessions",
            "danger",
        )
    };
    let grants = grants["grants"].as_array().cloned().unwrap_or_default();
    let body = format!(
        "<h1>User {}</h1><p>Id <code>{}</code> · created {} · {}</p>\
<h2>Sessions</h2><p class=\"muted\">Signed-in browser sessions at this server; ending one makes the \
user sign in again (their grants stay).</p>{}{end_all}\
<h2>Grants</h2><p class=\"muted\">Each authorization the user gave a client; revoking one ends its \
refresh and access tokens.</p>{}\
<h2>Reset password</h2><p class=\"muted\">Sets a new password; the user's sessions end and their grants \
are revoked. Tell the user the new password through a channel you trust.</p>\
<form class=\"stack\" method=\"post\" action=\"{}\">{}{}{}<label for=\"password\">New password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"new-password\" minlength=\"8\" required>\
<p><button class=\"primary\" type=\"submit\" name=\"reset\" value=\"1\">Set password</button></p></form>\
<p><a href=\"{}\">All users</a></p>",
        t(name),
        t(id),
        t(&time(user["created_at"].as_i64().unwrap_or(0))),
        if user["disabled"].as_bool().unwrap_or(false) {
            "<span class=\"tag bad\">disabled</span>"
        } else {
            "<span class=\"tag good\">active</span>"
        },
        layout::table(&["Session", "Signed in", "Expires", ""], &session_rows),
        grants_table(cx, "users", &grants, &[("username", name)]),
        a(&layout::url("users")),
        hidden("csrf", &cx.csrf),
        hidden("action", "password"),
        hidden("username", name),
        a(&layout::url("users")),
    );
    Ok(layout::page(&f, StatusCode::OK, "Users", flash, &body))
}

/// `POST /admin/console/users`: `action` = disable | enable | end_session (`session`) |
/// end_sessions | revoke_grant (`grant_id`) | password (`password`), with `username`.
pub async fn act(cx: &Ctx<'_>, form: &Params) -> Result<Next> {
    let name = form.require("username")?;
    let user = seg(name);
    let back = |done: String| Next::FlashAt(vec![("user", name.to_owned())], done);
    match form.require("action")? {
        action @ ("disable" | "enable") => {
            api::call(cx, Method::POST, &format!("users/{user}/{action}"), None).await?;
            Ok(Next::Flash(format!("User {name} {action}d.")))
        }
        "end_session" => {
            let sid = form.require("session")?;
            api::call(
                cx,
                Method::DELETE,
                &format!("users/{user}/sessions/{}", seg(sid)),
                None,
            )
            .await?;
            Ok(back(format!("One session of {name} ended.")))
        }
        "end_sessions" => {
            api::call(cx, Method::DELETE, &format!("users/{user}/sessions"), None).await?;
            Ok(back(format!("Every session of {name} ended.")))
        }
        "revoke_grant" => {
            let g = form.require("grant_id")?;
            api::call(cx, Method::POST, &format!("grants/{}/revoke", seg(g)), None).await?;
            Ok(back(format!("Grant {g} revoked.")))
        }
        "password" => {
            let password = form.require("password")?;
            api::call(
                cx,
                Method::POST,
                &format!("users/{user}/password"),
                Some(json!({ "password": password })),
            )
            .await?;
            Ok(back(format!(
                "New password set for {name}; their sessions and grants have ended."
            )))
        }
        _ => Err(Error::invalid_request("unknown user action")),
    }
}
