//! Clients: the create and edit forms (RFC 7591 §2 metadata: name, redirect URIs, grant
//! types, authentication method, scope), posted to `POST /admin/clients` and
//! `PATCH /admin/clients/{id}`, and the page that shows a new or rotated secret once, in the
//! response to the post (never in a URL, never again).

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{json, Value};

use super::layout::{self, a, hidden, t};
use super::Ctx;
use crate::registration::{AUTH_METHODS, GRANT_TYPES};
use crate::request::Params;

/// The form field of grant type `g` (one checkbox each: a form repeats no parameter).
fn grant_field(g: &str) -> String {
    format!("grant:{g}")
}

/// The grant types ticked in `form`.
pub fn grants_of(form: &Params) -> Vec<String> {
    GRANT_TYPES
        .iter()
        .filter(|g| form.get(&grant_field(g)).is_some())
        .map(|g| (*g).to_owned())
        .collect()
}

/// Redirect URIs from a textarea, one per line.
pub fn uris_of(form: &Params) -> Vec<String> {
    form.get("redirect_uris")
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The JSON body of `POST /admin/clients` from the create form.
pub fn new_client(form: &Params) -> Value {
    let mut body = json!({
        "redirect_uris": uris_of(form),
        "grant_types": grants_of(form),
        "token_endpoint_auth_method": form.get("token_endpoint_auth_method").unwrap_or("client_secret_basic"),
    });
    for name in ["client_id", "client_name", "scope"] {
        if let Some(v) = form.get(name).map(str::trim).filter(|v| !v.is_empty()) {
            body[name] = v.into();
        }
    }
    body
}

/// The JSON body of `PATCH /admin/clients/{id}` from the edit form (every field sent).
pub fn edit(form: &Params) -> Value {
    json!({
        "client_name": form.get("client_name").unwrap_or("").trim(),
        "redirect_uris": uris_of(form),
        "scope": form.get("scope").unwrap_or("").trim(),
        "grant_types": grants_of(form),
    })
}

fn text_input(name: &str, label: &str, value: &str, hint: &str) -> String {
    format!(
        "<label for=\"{name}\">{}</label><input type=\"text\" id=\"{name}\" name=\"{name}\" value=\"{}\">{}",
        t(label),
        a(value),
        if hint.is_empty() {
            String::new()
        } else {
            format!("<span class=\"muted\">{}</span>", t(hint))
        }
    )
}

fn fields(c: &Value) -> String {
    let list = |name: &str| -> Vec<String> {
        c[name]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let chosen = list("grant_types");
    let mut grants = String::new();
    for g in GRANT_TYPES {
        let checked = if chosen.iter().any(|c| c == g) {
            " checked"
        } else {
            ""
        };
        grants.push_str(&format!(
            "<label class=\"check\"><input type=\"checkbox\" name=\"{}\" value=\"1\"{checked}> <code>{}</code></label>",
            a(&grant_field(g)),
            t(g)
        ));
    }
    format!(
        "{}<label for=\"redirect_uris\">Redirect URIs (one per line)</label>\
<textarea id=\"redirect_uris\" name=\"redirect_uris\" rows=\"3\" spellcheck=\"false\">{}</textarea>\
{}<fieldset><legend>Grant types</legend>{grants}</fieldset>",
        text_input(
            "client_name",
            "Name",
            c["client_name"].as_str().unwrap_or(""),
            ""
        ),
        t(&list("redirect_uris").join("\n")),
        text_input(
            "scope",
            "Scope",
            c["scope"].as_str().unwrap_or(""),
            "space separated; empty: the resources' catalogues"
        ),
    )
}

/// The create form.
pub fn create_form(cx: &Ctx<'_>) -> String {
    let mut methods = String::new();
    for m in AUTH_METHODS {
        let selected = if m == "client_secret_basic" {
            " selected"
        } else {
            ""
        };
        methods.push_str(&format!("<option value=\"{m}\"{selected}>{m}</option>"));
    }
    format!(
        "<h2>Create a client</h2><form class=\"stack\" id=\"create\" method=\"post\" action=\"{}\">{}{}\
{}<label for=\"token_endpoint_auth_method\">Authentication</label>\
<select id=\"token_endpoint_auth_method\" name=\"token_endpoint_auth_method\">{methods}</select>{}\
<p><button class=\"primary\" type=\"submit\" name=\"create\" value=\"1\">Create client</button></p></form>",
        a(&layout::url("clients")),
        hidden("csrf", &cx.csrf),
        hidden("action", "create"),
        text_input(
            "client_id",
            "Client id",
            "",
            "optional: letters, digits and - . _ ~; a random one otherwise"
        ),
        fields(&json!({ "grant_types": ["authorization_code", "refresh_token"] })),
    )
}

/// `GET /admin/console/clients?edit={id}`: the edit form with the client's values.
pub fn edit_page(cx: &Ctx<'_>, c: &Value, flash: Option<&str>) -> Response<Bytes> {
    let id = c["client_id"].as_str().unwrap_or_default();
    let body = format!(
        "<h1>Edit client <code>{}</code></h1><form class=\"stack\" method=\"post\" action=\"{}\">{}{}{}{}\
<p><button class=\"primary\" type=\"submit\" name=\"save\" value=\"1\">Save</button> \
<a href=\"{}\">Back to the clients</a></p></form>",
        t(id),
        a(&layout::url("clients")),
        hidden("csrf", &cx.csrf),
        hidden("action", "update"),
        hidden("client_id", id),
        fields(c),
        a(&layout::url("clients")),
    );
    layout::page(
        &cx.frame("clients"),
        StatusCode::OK,
        "Clients",
        flash,
        &body,
    )
}

/// The page showing a secret once: after creation or rotation.
pub fn secret_page(cx: &Ctx<'_>, id: &str, secret: Option<&str>, what: &str) -> Response<Bytes> {
    let shown = match secret {
        Some(s) => format!(
            "<p>Its secret is shown this once; store it now. Portcullis keeps only a hash.</p>\
<p><label for=\"client_secret\">Client secret</label><input type=\"text\" id=\"client_secret\" readonly value=\"{}\" size=\"48\"></p>",
            a(s)
        ),
        None => "<p class=\"muted\">This client has no secret.</p>".into(),
    };
    let body = format!(
        "<h1>Clients</h1><p class=\"ok\" role=\"status\">{}</p><p>Client id: <code id=\"new_client_id\">{}</code></p>{shown}\
<p><a href=\"{}\">Back to the clients</a></p>",
        t(what),
        t(id),
        a(&layout::url("clients")),
    );
    let mut resp = layout::page(&cx.frame("clients"), StatusCode::OK, "Clients", None, &body);
    // The page holds a secret: no caching anywhere (response::html sets no-store already).
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    resp
}
