//! Users: the local accounts, with disable / enable (`POST /admin/users/{name}/disable|enable`,
//! which also ends the user's sessions and makes their tokens inactive) through the admin API.

use bytes::Bytes;
use http::{Method, Response, StatusCode};

use super::api::{self, seg};
use super::clients::{offset, pager};
use super::layout::{self, button, field, t, time};
use super::Ctx;
use crate::error::{Error, Result};
use crate::request::Params;

/// `GET /admin/console/users?offset=`.
pub async fn page(cx: &Ctx<'_>, q: &Params, flash: Option<&str>) -> Result<Response<Bytes>> {
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
                t(name),
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
tokens inactive at introspection.</p>{}{}",
        layout::table(&["Username", "Id", "Created", "State", ""], &rows),
        pager("users", offset, users.len() as i64)
    );
    Ok(layout::page(&f, StatusCode::OK, "Users", flash, &body))
}

/// `POST /admin/console/users`: `action` = disable | enable, `username`.
pub async fn act(cx: &Ctx<'_>, form: &Params) -> Result<String> {
    let name = form.require("username")?;
    let action = form.require("action")?;
    if action != "disable" && action != "enable" {
        return Err(Error::invalid_request("unknown user action"));
    }
    api::call(
        cx,
        Method::POST,
        &format!("users/{}/{action}", seg(name)),
        None,
    )
    .await?;
    Ok(format!("User {name} {action}d."))
}
