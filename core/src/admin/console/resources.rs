//! Resources: every protected resource (RFC 8707 audience) with its scope catalogue, the
//! clients allowed to introspect and exchange its tokens, and its RFC 9728 metadata URL.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::Value;

use super::api;
use super::layout::{self, field, t, time};
use super::Ctx;
use crate::error::Result;

fn list(v: &Value) -> String {
    let items: Vec<String> = v
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(|s| format!("<code>{}</code>", t(s)))
        .collect();
    if items.is_empty() {
        "<span class=\"muted\">none</span>".into()
    } else {
        items.join(" ")
    }
}

/// `GET /admin/console/resources`.
pub async fn page(cx: &Ctx<'_>) -> Result<Response<Bytes>> {
    let all = api::call(cx, Method::GET, "resources", None).await?;
    let rows: Vec<Vec<String>> = all["resources"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            vec![
                format!("<code>{}</code><br>{}", field(r, "uri"), field(r, "name")),
                list(&r["scopes"]),
                list(&r["introspection_clients"]),
                list(&r["exchange_clients"]),
                format!("<code>{}</code>", field(r, "metadata_url")),
                t(&time(r["created_at"].as_i64().unwrap_or(0))),
            ]
        })
        .collect();
    let body = format!(
        "<h1>Resources</h1>{}",
        layout::table(
            &[
                "Resource",
                "Scopes",
                "Introspection clients",
                "Exchange clients",
                "Metadata",
                "Created"
            ],
            &rows
        )
    );
    Ok(layout::page(
        &cx.frame("resources"),
        StatusCode::OK,
        "Resources",
        None,
        &body,
    ))
}
