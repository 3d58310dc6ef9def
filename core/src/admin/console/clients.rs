//! Clients: every registered client with its registration kind (static, dynamic
//! registration), grant types, authentication method, last use and state; create
//! (`POST /admin/clients`), edit (`PATCH /admin/clients/{id}`), suspend / resume
//! (`POST /admin/clients/{id}/suspend|resume`), rotate the secret
//! (`POST /admin/clients/{id}/secret`) and delete (`DELETE /admin/clients/{id}`, which ends
//! its grants) through the admin API. Clients identified by a metadata document URL are not
//! stored and so not listed.

use bytes::Bytes;
use http::{Method, Response, StatusCode};

use super::api::{self, seg};
use super::client_form;
use super::layout::{self, a, button, field, t, time};
use super::{Ctx, Next};
use crate::error::{Error, Result};
use crate::request::Params;

const PAGE: i64 = 50;

/// `GET /admin/console/clients?offset=`.
pub async fn page(cx: &Ctx<'_>, q: &Params, flash: Option<&str>) -> Result<Response<Bytes>> {
    if let Some(id) = q.get("edit") {
        let c = api::call(cx, Method::GET, &format!("clients/{}", seg(id)), None).await?;
        return Ok(client_form::edit_page(cx, &c, flash));
    }
    let offset = offset(q)?;
    let list = api::call(
        cx,
        Method::GET,
        &format!("clients?limit={PAGE}&offset={offset}"),
        None,
    )
    .await?;
    let clients = list["clients"].as_array().cloned().unwrap_or_default();
    let f = cx.frame("clients");
    let mut rows = Vec::new();
    for c in &clients {
        let id = c["client_id"].as_str().unwrap_or_default();
        let policy = api::call(
            cx,
            Method::GET,
            &format!("clients/{}/policy", seg(id)),
            None,
        )
        .await
        .unwrap_or_default();
        let suspended = policy["suspended"].as_bool().unwrap_or(false);
        let state = if suspended {
            "<span class=\"tag bad\">suspended</span>"
        } else {
            "<span class=\"tag good\">active</span>"
        };
        let toggle = if suspended {
            button(
                &f,
                "clients",
                &[("action", "resume"), ("client_id", id)],
                "Resume",
                "",
            )
        } else {
            button(
                &f,
                "clients",
                &[("action", "suspend"), ("client_id", id)],
                "Suspend",
                "",
            )
        };
        let grants = c["grant_types"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let name = field(c, "client_name");
        let last_used = c["last_used_at"]
            .as_i64()
            .map_or_else(|| "never".to_owned(), time);
        let rotate = if c["confidential"].as_bool().unwrap_or(false)
            && matches!(
                c["token_endpoint_auth_method"].as_str(),
                Some("client_secret_basic" | "client_secret_post")
            ) {
            button(
                &f,
                "clients",
                &[("action", "rotate"), ("client_id", id)],
                "Rotate secret",
                "",
            )
        } else {
            String::new()
        };
        let edit = format!(
            "<a href=\"{}\">Edit</a> ",
            a(&layout::url(&format!("clients?edit={}", seg(id))))
        );
        rows.push(vec![
            format!(
                "<code>{}</code>{}",
                t(id),
                if name.is_empty() {
                    String::new()
                } else {
                    format!("<br>{name}")
                }
            ),
            kind(c["source"].as_str().unwrap_or_default()),
            t(&grants),
            field(c, "token_endpoint_auth_method"),
            t(&time(c["created_at"].as_i64().unwrap_or(0))),
            t(&last_used),
            state.to_owned(),
            format!(
                "{edit}{toggle}{rotate}{}",
                button(
                    &f,
                    "clients",
                    &[("action", "delete"), ("client_id", id)],
                    "Delete",
                    "danger"
                )
            ),
        ]);
    }
    let mut body = format!(
        "<h1>Clients</h1><p class=\"muted\">Suspending a client refuses its token requests and makes \
its tokens inactive at introspection; deleting it also ends its grants. Last use is when it last \
obtained a token, to five minutes.</p><div class=\"actions\">{}</div>",
        layout::table(
            &[
                "Client",
                "Registration",
                "Grant types",
                "Authentication",
                "Created",
                "Last used",
                "State",
                ""
            ],
            &rows
        )
    );
    body.push_str(&pager("clients", offset, clients.len() as i64));
    body.push_str(&client_form::create_form(cx));
    Ok(layout::page(&f, StatusCode::OK, "Clients", flash, &body))
}

fn kind(source: &str) -> String {
    let shown = match source {
        "static" => "static (admin API)",
        "seed" => "static (configuration seed)",
        "dynamic" => "dynamic registration (RFC 7591)",
        other => other,
    };
    t(shown)
}

/// The `offset` query parameter (0 when absent).
pub fn offset(q: &Params) -> Result<i64> {
    match q.get("offset") {
        None => Ok(0),
        Some(o) => o
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=i64::from(i32::MAX)).contains(n))
            .ok_or_else(|| Error::invalid_request("'offset' must be a non-negative integer")),
    }
}

/// Previous / next links for offset paging.
pub fn pager(page: &str, offset: i64, shown: i64) -> String {
    let mut out = String::from("<p>");
    if offset > 0 {
        out.push_str(&format!(
            "<a href=\"{}\">Previous page</a> ",
            a(&layout::url(&format!(
                "{page}?offset={}",
                (offset - PAGE).max(0)
            )))
        ));
    }
    if shown >= PAGE {
        out.push_str(&format!(
            "<a href=\"{}\">Next page</a>",
            a(&layout::url(&format!("{page}?offset={}", offset + PAGE)))
        ));
    }
    out.push_str("</p>");
    out
}

/// `POST /admin/console/clients`: `action` = create (the form's fields) | update |
/// suspend | resume | rotate | delete, with `client_id`.
pub async fn act(cx: &Ctx<'_>, form: &Params) -> Result<Next> {
    let action = form.require("action")?;
    if action == "create" {
        let c = api::call(
            cx,
            Method::POST,
            "clients",
            Some(client_form::new_client(form)),
        )
        .await?;
        let id = c["client_id"].as_str().unwrap_or_default();
        return Ok(Next::Page(client_form::secret_page(
            cx,
            id,
            c["client_secret"].as_str(),
            &format!("Client {id} created."),
        )));
    }
    let id = form.require("client_id")?;
    let path = format!("clients/{}", seg(id));
    let done = match action {
        "update" => {
            api::call(cx, Method::PATCH, &path, Some(client_form::edit(form))).await?;
            format!("Client {id} saved.")
        }
        "suspend" => {
            api::call(cx, Method::POST, &format!("{path}/suspend"), None).await?;
            format!("Client {id} suspended.")
        }
        "resume" => {
            api::call(cx, Method::POST, &format!("{path}/resume"), None).await?;
            format!("Client {id} resumed.")
        }
        "rotate" => {
            let r = api::call(cx, Method::POST, &format!("{path}/secret"), None).await?;
            return Ok(Next::Page(client_form::secret_page(
                cx,
                id,
                r["client_secret"].as_str(),
                &format!("Client {id} has a new secret; the old one no longer works."),
            )));
        }
        "delete" => {
            api::call(cx, Method::DELETE, &path, None).await?;
            format!("Client {id} deleted; its grants have ended.")
        }
        _ => return Err(Error::invalid_request("unknown client action")),
    };
    Ok(Next::Flash(done))
}
