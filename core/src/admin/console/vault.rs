//! Providers and Connections (the token vault): the upstream OAuth providers (never their
//! client secrets) and the users' connections, with revoke
//! (`DELETE /admin/connections/{id}`) through the admin API.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::Value;

use super::api::{self, query, seg};
use super::layout::{self, a, button, field, t, time};
use super::Ctx;
use crate::error::{Error, Result};
use crate::request::Params;

fn words(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| format!("<code>{}</code>", t(s)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// `GET /admin/console/providers`.
pub async fn providers(cx: &Ctx<'_>) -> Result<Response<Bytes>> {
    let all = api::call(cx, Method::GET, "providers", None).await?;
    let rows: Vec<Vec<String>> = all["providers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default();
            vec![
                format!(
                    "<a href=\"{}\">{}</a>",
                    a(&layout::url(&format!(
                        "connections?{}",
                        query(&[("provider", name)])
                    ))),
                    t(name)
                ),
                field(p, "preset"),
                format!("<code>{}</code>", field(p, "authorization_endpoint")),
                words(&p["scopes"]),
                format!("<code>{}</code>", field(p, "resource")),
                field(p, "source"),
            ]
        })
        .collect();
    let body = format!(
        "<h1>Providers</h1>{}",
        layout::table(
            &[
                "Provider",
                "Preset",
                "Authorization endpoint",
                "Scopes",
                "Resource",
                "Source"
            ],
            &rows
        )
    );
    Ok(layout::page(
        &cx.frame("providers"),
        StatusCode::OK,
        "Providers",
        None,
        &body,
    ))
}

/// `GET /admin/console/connections?user=&provider=`.
pub async fn connections(cx: &Ctx<'_>, q: &Params, flash: Option<&str>) -> Result<Response<Bytes>> {
    let user = q.get("user").unwrap_or("");
    let provider = q.get("provider").unwrap_or("");
    let path = format!(
        "connections?{}",
        query(&[("user", user), ("provider", provider), ("limit", "200")])
    );
    let all = api::call(cx, Method::GET, &path, None).await?;
    let f = cx.frame("connections");
    let rows: Vec<Vec<String>> = all["connections"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let id = c["id"].as_str().unwrap_or_default();
            let state = c["state"].as_str().unwrap_or_default();
            let revoke = if state == "revoked" {
                String::new()
            } else {
                button(
                    &f,
                    "connections",
                    &[("action", "revoke"), ("connection", id)],
                    "Revoke",
                    "danger",
                )
            };
            vec![
                format!("<code>{}</code>", t(id)),
                field(c, "user"),
                field(c, "provider"),
                t(state),
                format!("<code>{}</code>", field(c, "scope")),
                t(&time(c["updated_at"].as_i64().unwrap_or(0))),
                revoke,
            ]
        })
        .collect();
    let body = format!(
        "<h1>Connections</h1><form class=\"filters\" method=\"get\" action=\"{}\">\
<label for=\"user\">User id</label><input type=\"text\" id=\"user\" name=\"user\" value=\"{}\">\
<label for=\"provider\">Provider</label><input type=\"text\" id=\"provider\" name=\"provider\" value=\"{}\">\
<button type=\"submit\">Filter</button></form>{}",
        a(&layout::url("connections")),
        a(user),
        a(provider),
        layout::table(&["Id", "User", "Provider", "State", "Scope", "Updated", ""], &rows)
    );
    Ok(layout::page(
        &f,
        StatusCode::OK,
        "Connections",
        flash,
        &body,
    ))
}

/// `POST /admin/console/connections`: `action` = revoke, `connection`.
pub async fn act(cx: &Ctx<'_>, form: &Params) -> Result<String> {
    if form.require("action")? != "revoke" {
        return Err(Error::invalid_request("unknown connection action"));
    }
    let id = form.require("connection")?;
    api::call(
        cx,
        Method::DELETE,
        &format!("connections/{}", seg(id)),
        None,
    )
    .await?;
    Ok(format!("Connection {id} revoked."))
}
