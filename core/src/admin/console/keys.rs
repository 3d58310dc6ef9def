//! Keys: the published signing keys (RFC 7517) with their status, and rotation
//! (`POST /admin/keys/rotate`, optionally pre-publishing the new key before it signs).

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::json;

use super::api;
use super::layout::{self, a, field, hidden, t, time};
use super::Ctx;
use crate::error::{Error, Result};
use crate::request::Params;

/// `GET /admin/console/keys`.
pub async fn page(cx: &Ctx<'_>, flash: Option<&str>) -> Result<Response<Bytes>> {
    let list = api::call(cx, Method::GET, "keys", None).await?;
    let at = |k: &serde_json::Value, name: &str| {
        k[name].as_i64().map(|s| t(&time(s))).unwrap_or_default()
    };
    let rows: Vec<Vec<String>> = list["keys"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|k| {
            let status = k["status"].as_str().unwrap_or_default();
            let class = match status {
                "active" => "tag good",
                "retired" => "tag bad",
                _ => "tag",
            };
            vec![
                format!("<code>{}</code>", field(k, "kid")),
                field(k, "alg"),
                format!("<span class=\"{class}\">{}</span>", t(status)),
                at(k, "created_at"),
                at(k, "activates_at"),
                at(k, "retired_at"),
            ]
        })
        .collect();
    let f = cx.frame("keys");
    let body = format!(
        "<h1>Keys</h1>{}<h2>Rotate</h2><p class=\"muted\">The new key is published at once; it \
signs after the pre-publication delay (0 signs now), so verifiers can fetch it first. The key it \
replaces stays published until its tokens have expired.</p>\
<form method=\"post\" action=\"{}\">{}<label for=\"prepublish\">Pre-publish seconds</label>\
<input type=\"number\" id=\"prepublish\" name=\"prepublish_secs\" min=\"0\" placeholder=\"{}\">\
<button class=\"primary\" type=\"submit\" name=\"action\" value=\"rotate\">Rotate signing key</button></form>",
        layout::table(&["Key id", "Algorithm", "Status", "Created", "Signs from", "Retired"], &rows),
        a(&layout::url("keys")),
        hidden("csrf", f.csrf),
        cx.server.config().key_prepublish_secs,
    );
    Ok(layout::page(&f, StatusCode::OK, "Keys", flash, &body))
}

/// `POST /admin/console/keys`: `action` = rotate, optional `prepublish_secs`.
pub async fn act(cx: &Ctx<'_>, form: &Params) -> Result<String> {
    if form.require("action")? != "rotate" {
        return Err(Error::invalid_request("unknown key action"));
    }
    let body = match form.get("prepublish_secs") {
        Some(s) => {
            let n: i64 = s.trim().parse().map_err(|_| {
                Error::invalid_request("pre-publish seconds must be a whole number")
            })?;
            Some(json!({ "prepublish_secs": n }))
        }
        None => None,
    };
    let key = api::call(cx, Method::POST, "keys/rotate", body).await?;
    Ok(format!(
        "New signing key {} ({}).",
        key["kid"].as_str().unwrap_or("?"),
        key["status"].as_str().unwrap_or("published")
    ))
}
