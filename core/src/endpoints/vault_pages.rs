//! The vault's pages: a provider connected, and the signed-in user's connections with a way
//! to remove each. Same layout, escaping and hygiene headers as every other page
//! ([`super::pages`]).

use bytes::Bytes;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use http::{Response, StatusCode};

use super::pages::{hidden, layout};
use crate::response::html;

/// One row of the connections page.
pub struct ConnectionView<'a> {
    /// The connection id.
    pub id: &'a str,
    /// The provider's name.
    pub provider: &'a str,
    /// `active`, `needs_reauthorization` or `revoked`.
    pub state: &'a str,
    /// Granted scopes.
    pub scope: &'a str,
    /// Where to connect again.
    pub connect_url: String,
}

/// Shown after a successful connect.
pub fn connected_page(provider: &str, scope: &str, connections_url: &str) -> Response<Bytes> {
    let granted = if scope.is_empty() {
        String::new()
    } else {
        format!("<p>Granted: <code>{}</code></p>", text(scope))
    };
    let body = format!(
        "<h1>Connected</h1><p class=\"ok\">Your <strong>{}</strong> account is connected. \
Applications you use through this server can now act with it on your behalf; they never see \
its credentials.</p>{granted}<p>You can close this window. \
<a href=\"{}\">Manage your connected accounts</a>.</p>",
        text(provider),
        attr(connections_url),
    );
    html(StatusCode::OK, layout("Connected", &body))
}

/// The signed-in user's connections; each active one has a Remove button (POST `action`).
pub fn connections_page(
    username: &str,
    rows: &[ConnectionView<'_>],
    action: &str,
    csrf: &str,
) -> Response<Bytes> {
    let mut list = String::new();
    for r in rows {
        let state = match r.state {
            "active" => "connected".to_owned(),
            "needs_reauthorization" => format!(
                "needs to be connected again (<a href=\"{}\">connect</a>)",
                attr(&r.connect_url)
            ),
            other => text(other).into_owned(),
        };
        let remove = if r.state == "revoked" {
            String::new()
        } else {
            format!(
                "<form method=\"post\" action=\"{}\">{}{}<button class=\"secondary\" type=\"submit\">Remove</button></form>",
                attr(action),
                hidden("csrf", csrf),
                hidden("connection", r.id),
            )
        };
        list.push_str(&format!(
            "<li><strong>{}</strong>: {state}{}{remove}</li>",
            text(r.provider),
            if r.scope.is_empty() {
                String::new()
            } else {
                format!(" <code>{}</code>", text(r.scope))
            },
        ));
    }
    if list.is_empty() {
        list.push_str("<li>No connected accounts yet.</li>");
    }
    let body = format!(
        "<h1>Connected accounts</h1><p>Signed in as <strong>{}</strong>.</p><ul>{list}</ul>",
        text(username)
    );
    html(StatusCode::OK, layout("Connected accounts", &body))
}
