//! The HTML the authorization server shows people: login, consent, sign-out and error pages.
//! Plain forms that work without JavaScript, no third-party resources, every value
//! HTML-escaped; the hygiene headers of SECURITY-CHECKLIST H2 come from
//! [`crate::response::html`], and the consent page's CSP also names the one origin its answer
//! redirects to ([`form_target`]).

use bytes::Bytes;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use http::{header, HeaderValue, Response, StatusCode};
use url::{Host, Url};

use crate::response::{html, page_csp_with_form_target};

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\
main{max-width:26rem;margin:4rem auto;background:#fff;border-radius:12px;padding:2rem;box-shadow:0 2px 12px #0002}\
h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.8rem 0 .3rem;font-weight:600}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.6rem;border:1px solid #bbb;border-radius:6px}\
button{padding:.6rem 1.2rem;border-radius:6px;border:0;font-size:1rem;margin:1rem .5rem 0 0;cursor:pointer}\
.primary{background:#2450d8;color:#fff}.secondary{background:#e3e6ec;color:#1d2330}\
.error{background:#fde8e8;color:#8a1c1c;padding:.7rem;border-radius:6px}\
.warn{background:#fff5d6;color:#6b4e00;padding:.7rem;border-radius:6px}\
.signout{margin-top:1.5rem;font-size:.9rem;color:#555}.signout button{font-size:.9rem;padding:.3rem .8rem;margin:0 0 0 .4rem}\
a.connector{display:block;text-align:center;padding:.6rem;border:1px solid #2450d8;border-radius:6px;color:#2450d8;text-decoration:none;font-weight:600}\
code{background:#eef0f4;padding:.1rem .3rem;border-radius:4px;word-break:break-all}ul{padding-left:1.2rem}";

/// The tab icon, inline (a portcullis), so browsers do not ask for `/favicon.ico`.
const ICON: &str =
    "data:image/svg+xml,%3Csvg xmlns='http%3A%2F%2Fwww.w3.org%2F2000%2Fsvg' viewBox='0 0 16 16'%3E\
%3Cpath d='M2 1h12v14h-2V9h-2v6H9V9H7v6H6V9H4v6H2z' fill='%232450d8'/%3E%3C/svg%3E";

pub(super) fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>{}</title><link rel=\"icon\" href=\"{ICON}\">\
<style>{STYLE}</style></head>\
<body><main>{body}</main></body></html>",
        text(title)
    )
}

pub(super) fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        attr(name),
        attr(value)
    )
}

/// An error shown at the server (never redirected: R1, R2, R8).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response<Bytes> {
    let body = format!(
        "<h1>{}</h1><p class=\"error\">{}</p><p>You can close this window and try again from the application.</p>",
        text(title),
        text(message)
    );
    html(status, layout(title, &body))
}

/// An error shown at the server with a link the person may follow back to the application
/// (never an automatic redirect: O1, RFC 9700 §4.11.2).
pub fn error_page_with_link(
    status: StatusCode,
    title: &str,
    message: &str,
    link_text: &str,
    href: &str,
) -> Response<Bytes> {
    let body = format!(
        "<h1>{}</h1><p class=\"error\">{}</p><p><a href=\"{}\" rel=\"noreferrer\">{}</a></p>",
        text(title),
        text(message),
        attr(href),
        text(link_text)
    );
    html(status, layout(title, &body))
}

/// What the login and consent pages say about the request.
pub struct RequestView<'a> {
    /// The pending request handle.
    pub request: &'a str,
    /// The CSRF token (double-submit partner of the `pc_csrf` cookie).
    pub csrf: &'a str,
    /// Client display name.
    pub client_name: &'a str,
    /// Client id (shown when it differs from the name).
    pub client_id: &'a str,
    /// The redirect URI the code will be sent to.
    pub redirect_uri: &'a str,
    /// Requested scopes.
    pub scopes: &'a [String],
    /// Scopes the user already granted this client for this resource (grants not revoked):
    /// a step-up consent lists only the requested scopes not among them.
    pub granted: &'a [String],
    /// The resource (audience).
    pub resource: &'a str,
    /// The agent that will act for the user (on-behalf-of `requested_actor`): its display
    /// name and client id.
    pub agent: Option<(&'a str, &'a str)>,
}

/// What a sign-in leads to: a pending authorization request (its handle), or a page of this
/// server to continue to (a vault connect).
#[derive(Debug, Clone, Copy)]
pub enum SignInFor<'a> {
    /// `request`: the pending authorization request's handle; `client_name` is shown.
    Authorization {
        /// The pending request handle.
        request: &'a str,
        /// The application's name.
        client_name: &'a str,
    },
    /// `continue`: a local path; `what` says what the user is doing ("connect GitHub").
    Continue {
        /// The path to continue to.
        path: &'a str,
        /// What the user is signing in for.
        what: &'a str,
    },
}

/// Ways to sign in besides the password form.
#[derive(Debug, Clone, Default)]
pub struct SignInOptions {
    /// "Sign in with {name}" links: `(name, href)`.
    pub connectors: Vec<(String, String)>,
    /// Whether the password form is shown.
    pub local_passwords: bool,
}

/// The login form (`username`, `password`), posted to `action`.
pub fn login_page(
    action: &str,
    purpose: SignInFor<'_>,
    csrf: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Bytes> {
    let options = SignInOptions {
        connectors: Vec::new(),
        local_passwords: true,
    };
    login_page_with(action, purpose, csrf, error, status, &options)
}

/// The login page with `options`: a "Sign in with {name}" link per connector (plain links,
/// so the page needs no script and its CSP's `form-action` is not involved), then the
/// password form unless local passwords are switched off.
pub fn login_page_with(
    action: &str,
    purpose: SignInFor<'_>,
    csrf: &str,
    error: Option<&str>,
    status: StatusCode,
    options: &SignInOptions,
) -> Response<Bytes> {
    let err = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", text(e)))
        .unwrap_or_default();
    let (lead, field) = match purpose {
        SignInFor::Authorization {
            request,
            client_name,
        } => (
            format!(
                "Sign in to continue to <strong>{}</strong>.",
                text(client_name)
            ),
            hidden("request", request),
        ),
        SignInFor::Continue { path, what } => (
            format!("Sign in to {}.", text(what)),
            hidden("continue", path),
        ),
    };
    let connectors: String = options
        .connectors
        .iter()
        .map(|(name, href)| {
            format!(
                "<p><a class=\"connector\" href=\"{}\">Sign in with {}</a></p>",
                attr(href),
                text(name)
            )
        })
        .collect();
    let form = if options.local_passwords {
        format!(
            "<form method=\"post\" action=\"{}\">{field}{}\
<label for=\"username\">Username</label><input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
<button class=\"primary\" type=\"submit\">Sign in</button></form>",
            attr(action),
            hidden("csrf", csrf),
        )
    } else {
        String::new()
    };
    let body = format!("<h1>Sign in</h1><p>{lead}</p>{err}{connectors}{form}");
    html(status, layout("Sign in", &body))
}

/// Where the consent page's forms go.
pub struct ConsentActions<'a> {
    /// The consent endpoint (Approve / Deny).
    pub consent: &'a str,
    /// The sign-out endpoint ("Not you? Sign out").
    pub logout: &'a str,
}

/// The consent form: client, redirect host (with a warning for loopback redirects),
/// scopes and resource, with Approve and Deny, and a way to sign out. Its CSP lets the
/// decision's redirect reach the client's redirect URI.
pub fn consent_page(
    actions: &ConsentActions<'_>,
    view: &RequestView<'_>,
    username: &str,
) -> Response<Bytes> {
    let redirect = url::Url::parse(view.redirect_uri).ok();
    let host = redirect
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| view.redirect_uri.to_owned());
    let loopback = redirect
        .as_ref()
        .is_some_and(crate::redirect::is_loopback_host);
    let warning = if loopback {
        "<p class=\"warn\">This application runs on your own computer (it redirects to a loopback address). \
Only approve if you started it yourself just now.</p>"
    } else {
        ""
    };
    let id_line = if view.client_id != view.client_name {
        format!("<p>Client ID: <code>{}</code></p>", text(view.client_id))
    } else {
        String::new()
    };
    // A step-up (some requested scopes granted before, some not) lists only the new ones; a
    // first or a repeated request lists them all.
    let (new, kept): (Vec<&String>, Vec<&String>) =
        view.scopes.iter().partition(|s| !view.granted.contains(s));
    let step_up = !new.is_empty() && !kept.is_empty();
    let listed: Vec<&String> = if step_up {
        new
    } else {
        view.scopes.iter().collect()
    };
    let scopes: String = if listed.is_empty() {
        "<li>basic access</li>".to_owned()
    } else {
        listed
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", text(s)))
            .collect()
    };
    let (with, kept) = match (step_up, kept.len()) {
        (false, _) => ("with these permissions", String::new()),
        (true, 1) => (
            "with these new permissions",
            "<p>It keeps the 1 permission you already granted it.</p>".to_owned(),
        ),
        (true, n) => (
            "with these new permissions",
            format!("<p>It keeps the {n} permissions you already granted it.</p>"),
        ),
    };
    // On-behalf-of: the agent the user lets act for them, named with its client id.
    let agent = match view.agent {
        Some((name, id)) => format!(
            "<p class=\"warn\">The agent <strong>{}</strong> (<code>{}</code>) will act on your behalf, \
through {}.</p>",
            text(name),
            text(id),
            text(view.client_name)
        ),
        None => String::new(),
    };
    let body = format!(
        "<h1>Authorize {}</h1><p>Signed in as <strong>{}</strong>.</p>{id_line}{agent}\
<p><strong>{}</strong> wants access to <code>{}</code> {with}:</p><ul>{scopes}</ul>{kept}\
<p>After you decide, you will be sent to <strong>{}</strong>.</p>{warning}\
<form method=\"post\" action=\"{}\">{}{}\
<button class=\"primary\" type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
<button class=\"secondary\" type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>\
<form class=\"signout\" method=\"post\" action=\"{}\">Not {}?{}<button class=\"secondary\" type=\"submit\">Sign out</button></form>",
        text(view.client_name),
        text(username),
        text(view.client_name),
        text(view.resource),
        text(&host),
        attr(actions.consent),
        hidden("request", view.request),
        hidden("csrf", view.csrf),
        attr(actions.logout),
        text(username),
        hidden("csrf", view.csrf),
    );
    let mut resp = html(StatusCode::OK, layout("Authorize access", &body));
    allow_form_redirect_to(&mut resp, view.redirect_uri);
    resp
}

/// Lets the forms of page `resp` end in a redirect to `url`'s origin: browsers apply
/// `form-action` to the whole redirect chain of a form post (CSP3 §6.3.3.2).
pub fn allow_form_redirect_to(resp: &mut Response<Bytes>, url: &str) {
    if let Some(source) = form_target(url) {
        if let Ok(v) = HeaderValue::from_str(&page_csp_with_form_target(&source)) {
            resp.headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
}

/// The CSP source expression (CSP3 §2.3.1) that lets a form post's redirect reach
/// `redirect_uri`: its origin (`https://app.example`, `http://127.0.0.1:3000`) when CSP's
/// grammar can say it, else its scheme (`com.example.app:` for a private-use scheme, `http:`
/// for an IPv6 loopback, which CSP host sources cannot name). `None` for what is not a URL.
pub fn form_target(redirect_uri: &str) -> Option<String> {
    let url = Url::parse(redirect_uri).ok()?;
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Some(format!("{scheme}:"));
    }
    let host = match url.host()? {
        Host::Domain(d)
            if !d.is_empty()
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') =>
        {
            d.to_owned()
        }
        Host::Ipv4(ip) => ip.to_string(),
        Host::Domain(_) | Host::Ipv6(_) => return Some(format!("{scheme}:")),
    };
    Some(match url.port() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// Asks before signing out (`GET /logout`): a plain link cannot end a session (H2).
pub fn logout_page(action: &str, csrf: &str, username: Option<&str>) -> Response<Bytes> {
    let who = username
        .map(|u| format!("<p>Signed in as <strong>{}</strong>.</p>", text(u)))
        .unwrap_or_else(|| "<p>You are not signed in.</p>".to_owned());
    let body = format!(
        "<h1>Sign out</h1>{who}<form method=\"post\" action=\"{}\">{}\
<button class=\"primary\" type=\"submit\">Sign out</button></form>",
        attr(action),
        hidden("csrf", csrf),
    );
    html(StatusCode::OK, layout("Sign out", &body))
}

/// Shown after logout.
pub fn logged_out_page() -> Response<Bytes> {
    html(
        StatusCode::OK,
        layout(
            "Signed out",
            "<h1>Signed out</h1><p>You have been signed out. To continue, start again from the application.</p>",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIONS: ConsentActions<'static> = ConsentActions {
        consent: "/oauth/consent",
        logout: "/logout",
    };

    #[test]
    fn consent_csp_names_the_redirect_origin_only() {
        for (uri, source) in [
            ("https://app.example/cb?x=1", "https://app.example"),
            ("https://app.example:8443/cb", "https://app.example:8443"),
            ("http://127.0.0.1:51234/callback", "http://127.0.0.1:51234"),
            ("http://localhost:3000/cb", "http://localhost:3000"),
            ("com.example.app:/oauth/cb", "com.example.app:"),
            ("cursor://anysphere.cursor-retrieval/oauth", "cursor:"),
            ("http://[::1]:8080/cb", "http:"),
        ] {
            assert_eq!(form_target(uri).as_deref(), Some(source), "{uri}");
        }
        assert_eq!(form_target("not a url"), None);
        let view = RequestView {
            request: "r",
            csrf: "c",
            client_name: "App",
            client_id: "App",
            redirect_uri: "https://app.example/cb",
            scopes: &[],
            granted: &[],
            resource: "https://mcp.example/mcp",
            agent: None,
        };
        let resp = consent_page(&ACTIONS, &view, "alice");
        let csp = resp.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("form-action 'self' https://app.example;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let login = login_page(
            "/oauth/login",
            SignInFor::Authorization {
                request: "r",
                client_name: "App",
            },
            "c",
            None,
            StatusCode::OK,
        );
        assert_eq!(
            login.headers()["content-security-policy"],
            crate::response::PAGE_CSP
        );
    }

    #[test]
    fn step_up_consent_lists_only_new_scopes() {
        let scopes = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let granted = ["a".to_owned(), "c".to_owned()];
        let view = RequestView {
            request: "r",
            csrf: "c",
            client_name: "App",
            client_id: "App",
            redirect_uri: "https://app.example/cb",
            scopes: &scopes,
            granted: &granted,
            resource: "https://mcp.example/mcp",
            agent: None,
        };
        let resp = consent_page(&ACTIONS, &view, "alice");
        let body = std::str::from_utf8(resp.body()).unwrap();
        assert!(body.contains("<li><code>b</code></li>"), "{body}");
        assert!(!body.contains("<code>a</code>") && !body.contains("<code>c</code>"));
        assert!(body.contains("these new permissions"), "{body}");
        assert!(
            body.contains("keeps the 2 permissions you already granted"),
            "{body}"
        );
        let all = RequestView {
            granted: &scopes,
            ..view
        };
        let resp = consent_page(&ACTIONS, &all, "alice");
        let body = std::str::from_utf8(resp.body()).unwrap();
        for s in ["a", "b", "c"] {
            assert!(
                body.contains(&format!("<li><code>{s}</code></li>")),
                "{body}"
            );
        }
        assert!(
            !body.contains("already granted"),
            "a repeated request lists all: {body}"
        );
    }

    #[test]
    fn values_are_escaped() {
        let view = RequestView {
            request: "r\"><script>",
            csrf: "c",
            client_name: "<b>evil</b>",
            client_id: "id",
            redirect_uri: "https://app.example/cb",
            scopes: &["a<b".to_owned()],
            granted: &[],
            resource: "https://mcp.example/mcp",
            agent: None,
        };
        let resp = consent_page(&ACTIONS, &view, "alice");
        let body = std::str::from_utf8(resp.body()).unwrap();
        assert!(!body.contains("<b>evil</b>"));
        assert!(!body.contains("\"><script>"));
        assert!(body.contains("&lt;b&gt;evil&lt;/b&gt;"));
    }

    #[test]
    fn h2_pages_carry_hygiene_headers_and_no_third_party_urls() {
        let view = RequestView {
            request: "r",
            csrf: "c",
            client_name: "App",
            client_id: "App",
            redirect_uri: "http://127.0.0.1:3000/cb",
            scopes: &[],
            granted: &[],
            resource: "https://mcp.example/mcp",
            agent: None,
        };
        let resp = login_page(
            "/oauth/login",
            SignInFor::Authorization {
                request: "r",
                client_name: "App",
            },
            "c",
            None,
            StatusCode::OK,
        );
        let h = resp.headers();
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        let body = std::str::from_utf8(resp.body()).unwrap();
        assert!(!body.contains("http://") && !body.contains("https://"));
        let consent = consent_page(&ACTIONS, &view, "alice");
        let body = std::str::from_utf8(consent.body()).unwrap();
        assert!(body.contains("loopback"));
    }

    #[test]
    fn consent_names_the_agent_acting_on_behalf_of_the_user_escaped() {
        let scopes = ["a".to_owned()];
        let view = RequestView {
            request: "r",
            csrf: "c",
            client_name: "Chat App",
            client_id: "chat",
            redirect_uri: "https://app.example/cb",
            scopes: &scopes,
            granted: &[],
            resource: "https://mcp.example/mcp",
            agent: Some(("<b>Travel agent</b>", "agent-1")),
        };
        let resp = consent_page(&ACTIONS, &view, "alice");
        let body = std::str::from_utf8(resp.body()).unwrap();
        assert!(
            body.contains("&lt;b&gt;Travel agent&lt;/b&gt;</strong> (<code>agent-1</code>) will act on your behalf"),
            "{body}"
        );
        assert!(!body.contains("<b>Travel"), "{body}");
        let plain = RequestView {
            agent: None,
            ..view
        };
        let resp = consent_page(&ACTIONS, &plain, "alice");
        let body = std::str::from_utf8(resp.body()).unwrap();
        assert!(!body.contains("on your behalf"), "{body}");
    }
}
