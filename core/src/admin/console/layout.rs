//! The console's page frame: navigation (Overview, Clients, Users, Tokens, Audit log, Keys,
//! Resources, System, Providers, Connections), sign-out, flash messages and small HTML
//! helpers. Every value is HTML-escaped; the hygiene headers and the strict CSP (no script at
//! all) come from [`crate::response::html`].

use bytes::Bytes;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use http::{Response, StatusCode};

use super::session::BASE;
use crate::response::html;

/// The pages, in navigation order: (path below the console, name).
pub const PAGES: &[(&str, &str)] = &[
    ("overview", "Overview"),
    ("clients", "Clients"),
    ("users", "Users"),
    ("tokens", "Tokens"),
    ("audit", "Audit log"),
    ("keys", "Keys"),
    ("resources", "Resources"),
    ("system", "System"),
    ("providers", "Providers"),
    ("connections", "Connections"),
];

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\
header{background:#1d2330;color:#fff;padding:.6rem 1.5rem;display:flex;flex-wrap:wrap;align-items:center;gap:.4rem 1rem}\
header strong{margin-right:1rem}header a{color:#cfd8ff;text-decoration:none;padding:.2rem .3rem;border-radius:4px}\
header a[aria-current]{background:#2450d8;color:#fff}header form{margin-left:auto}\
main{max-width:72rem;margin:1.5rem auto;background:#fff;border-radius:12px;padding:1.5rem 2rem;box-shadow:0 2px 12px #0002}\
main.narrow{max-width:26rem;margin-top:4rem}\
h1{font-size:1.4rem;margin-top:0}h2{font-size:1.1rem;margin-top:1.6rem}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e3e6ec;vertical-align:top}\
th{background:#f0f2f6}td form{display:inline}label{font-weight:600;margin-right:.3rem}\
input[type=text],input[type=password],input[type=number],input[type=datetime-local],select,textarea{padding:.4rem;border:1px solid #bbb;border-radius:6px;font:inherit}\
textarea{width:100%;box-sizing:border-box;font-family:monospace}\
.stack label{display:block;margin:.8rem 0 .3rem}.stack input{width:100%;box-sizing:border-box}\
.stack label.check{display:inline-block;font-weight:normal;margin-right:1rem}.stack label.check input{width:auto}\
fieldset{border:1px solid #e3e6ec;border-radius:6px;margin-top:.8rem}details{margin:1rem 0}summary{cursor:pointer;font-weight:600}\
button{padding:.35rem .8rem;border-radius:6px;border:0;font-size:.9rem;cursor:pointer;background:#e3e6ec;color:#1d2330;margin:.1rem}\
button.primary{background:#2450d8;color:#fff}button.danger{background:#b42318;color:#fff}\
.error{background:#fde8e8;color:#8a1c1c;padding:.7rem;border-radius:6px}.ok{background:#e6f6ea;color:#135c26;padding:.7rem;border-radius:6px}\
.cards{display:flex;flex-wrap:wrap;gap:1rem}.card{background:#f0f2f6;border-radius:8px;padding:.8rem 1.2rem;min-width:9rem}\
.card b{display:block;font-size:1.6rem}.muted{color:#666}.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center}\
code,pre{background:#eef0f4;padding:.1rem .3rem;border-radius:4px;word-break:break-all;white-space:pre-wrap}pre{padding:.6rem}\
.scroll{overflow-x:auto}.wide td:last-child{min-width:18rem}.actions td:last-child{min-width:12rem}td code{word-break:break-word}a code{white-space:nowrap}.tag{display:inline-block;padding:0 .4rem;border-radius:4px;background:#e3e6ec;font-size:.8rem}.bad{background:#fde8e8;color:#8a1c1c}.good{background:#e6f6ea;color:#135c26}";

/// What a signed-in page needs from the session.
pub struct Frame<'a> {
    /// The current page's path (`clients`).
    pub current: &'a str,
    /// The session's CSRF token.
    pub csrf: &'a str,
}

/// Escapes text.
pub fn t(s: &str) -> String {
    text(s).into_owned()
}

/// Escapes an attribute value.
pub fn a(s: &str) -> String {
    attr(s).into_owned()
}

/// A console URL (`page` below the console, e.g. `clients` or `audit?x=1`).
pub fn url(page: &str) -> String {
    format!("{BASE}{page}")
}

/// A hidden form field.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        a(name),
        a(value)
    )
}

/// A one-button form posting `fields` (plus the CSRF token) to `page`.
pub fn button(
    f: &Frame<'_>,
    page: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
) -> String {
    let fields: String = fields.iter().map(|(k, v)| hidden(k, v)).collect();
    format!(
        "<form method=\"post\" action=\"{}\">{}{fields}<button type=\"submit\" class=\"{}\">{}</button></form>",
        a(&url(page)),
        hidden("csrf", f.csrf),
        a(class),
        t(label)
    )
}

fn document(title: &str, header: &str, main_class: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>{} · Portcullis console</title>\
<link rel=\"icon\" href=\"data:,\"><style>{STYLE}</style></head>\
<body>{header}<main class=\"{main_class}\">{body}</main></body></html>",
        t(title)
    )
}

/// A signed-in page: navigation, sign-out, an optional flash message, then `body`.
pub fn page(
    f: &Frame<'_>,
    status: StatusCode,
    title: &str,
    flash: Option<&str>,
    body: &str,
) -> Response<Bytes> {
    let mut nav = String::from("<strong>Portcullis console</strong><nav>");
    for (path, name) in PAGES {
        let current = if *path == f.current {
            " aria-current=\"page\""
        } else {
            ""
        };
        nav.push_str(&format!(
            "<a href=\"{}\"{current}>{}</a> ",
            a(&url(path)),
            t(name)
        ));
    }
    nav.push_str("</nav>");
    let sign_out = format!(
        "<form method=\"post\" action=\"{}\">{}<button type=\"submit\">Sign out</button></form>",
        a(&url("sign-out")),
        hidden("csrf", f.csrf)
    );
    let flash = flash
        .map(|m| format!("<p class=\"ok\" role=\"status\">{}</p>", t(m)))
        .unwrap_or_default();
    let header = format!("<header>{nav}{sign_out}</header>");
    html(
        status,
        document(title, &header, "", &format!("{flash}{body}")),
    )
}

/// A page without navigation (sign-in, signed out, errors before sign-in).
pub fn bare(status: StatusCode, title: &str, body: &str) -> Response<Bytes> {
    html(status, document(title, "", "narrow", body))
}

/// A table with `head` columns and pre-rendered (escaped) cells.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "<p class=\"muted\">Nothing here yet.</p>".into();
    }
    let mut out = String::from("<div class=\"scroll\"><table><thead><tr>");
    for h in head {
        out.push_str(&format!("<th>{}</th>", t(h)));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&format!("<td>{c}</td>"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A UNIX time as `YYYY-MM-DD HH:MM:SS UTC` (civil-from-days, no clock read).
pub fn time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A JSON value's string field, escaped ("" when absent).
pub fn field(v: &serde_json::Value, name: &str) -> String {
    match &v[name] {
        serde_json::Value::String(s) => t(s),
        serde_json::Value::Null => String::new(),
        other => t(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_time() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::time(1_764_936_000), "2025-12-05 12:00:00 UTC");
    }
}
