//! Audit log: the events newest first, filtered by action, client, subject, outcome and
//! trace id (each passed to `GET /admin/audit` as is), paged with the `before` cursor, and
//! exported as JSON Lines or CSV through `GET /admin/audit/export` with the same filters.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};

use super::api::{self, query};
use super::layout::{self, a, field, t, time};
use super::Ctx;
use crate::error::{Error, Result};
use crate::request::Params;

/// The filters the page passes through, with their labels.
const FILTERS: &[(&str, &str)] = &[
    ("action", "Action"),
    ("client_id", "Client"),
    ("subject", "Subject"),
    ("trace_id", "Trace id"),
];

fn filters(q: &Params) -> Vec<(&'static str, &str)> {
    let mut out: Vec<(&str, &str)> = FILTERS
        .iter()
        .map(|(k, _)| (*k, q.get(k).unwrap_or("").trim()))
        .collect();
    out.push(("outcome", q.get("outcome").unwrap_or("")));
    out
}

/// A trace id, shortened, as a link to every event of that trace.
fn trace_link(trace: Option<&str>) -> String {
    match trace {
        Some(id) if !id.is_empty() => format!(
            "<a href=\"{}\" title=\"{}\"><code>{}…</code></a>",
            a(&layout::url(&format!(
                "audit?{}",
                query(&[("trace_id", id)])
            ))),
            a(id),
            t(&id.chars().take(8).collect::<String>())
        ),
        _ => String::new(),
    }
}

/// `GET /admin/console/audit?action=&client_id=&subject=&outcome=&trace_id=&before=`.
pub async fn page(cx: &Ctx<'_>, q: &Params) -> Result<Response<Bytes>> {
    let chosen = filters(q);
    let mut pairs = chosen.clone();
    let before = q.get("before").unwrap_or("");
    pairs.push(("before", before));
    pairs.push(("limit", "50"));
    let list = api::call(cx, Method::GET, &format!("audit?{}", query(&pairs)), None).await?;
    let events = list["events"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let outcome = e["outcome"].as_str().unwrap_or_default();
            let class = if outcome == "failure" {
                "tag bad"
            } else {
                "tag good"
            };
            let detail = match &e["detail"] {
                serde_json::Value::Null => String::new(),
                d => format!("<code>{}</code>", t(&d.to_string())),
            };
            let reason = field(e, "reason");
            let subject = field(e, "subject");
            vec![
                field(e, "seq"),
                t(&time(e["at"].as_i64().unwrap_or(0))),
                field(e, "action"),
                format!(
                    "<span class=\"{class}\">{}</span>{}",
                    t(outcome),
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!("<br>{reason}")
                    }
                ),
                format!(
                    "{}{}",
                    field(e, "client_id"),
                    if subject.is_empty() {
                        String::new()
                    } else {
                        format!("<br><span class=\"muted\">user</span> {subject}")
                    }
                ),
                trace_link(e["trace_id"].as_str()),
                detail,
            ]
        })
        .collect();
    let mut form = format!(
        "<form class=\"filters\" method=\"get\" action=\"{}\">",
        a(&layout::url("audit"))
    );
    for (name, label) in FILTERS {
        let value = q.get(name).unwrap_or("");
        form.push_str(&format!(
            "<span><label for=\"{name}\">{label}</label><input type=\"text\" id=\"{name}\" name=\"{name}\" value=\"{}\"></span>",
            a(value)
        ));
    }
    let outcome = q.get("outcome").unwrap_or("");
    let option = |v: &str, l: &str| {
        let sel = if v == outcome { " selected" } else { "" };
        format!("<option value=\"{v}\"{sel}>{l}</option>")
    };
    form.push_str(&format!(
        "<span><label for=\"outcome\">Outcome</label><select id=\"outcome\" name=\"outcome\">{}{}{}</select></span>\
<button class=\"primary\" type=\"submit\">Filter</button></form>",
        option("", "any"),
        option("success", "success"),
        option("failure", "failure"),
    ));
    let export = |format: &str| {
        let mut p = chosen.clone();
        p.push(("format", format));
        layout::url(&format!("audit/export?{}", query(&p)))
    };
    let mut paging = String::from("<p>");
    if !before.is_empty() {
        paging.push_str(&format!(
            "<a href=\"{}\">Newest</a> ",
            a(&layout::url(&format!("audit?{}", query(&chosen))))
        ));
    }
    if let Some(next) = list["next_before"].as_i64() {
        let mut p = chosen.clone();
        let next = next.to_string();
        p.push(("before", &next));
        paging.push_str(&format!(
            "<a href=\"{}\">Older events</a>",
            a(&layout::url(&format!("audit?{}", query(&p))))
        ));
    }
    paging.push_str("</p>");
    let body = format!(
        "<h1>Audit log</h1>{form}<p>Export these events: <a href=\"{}\" download>JSON Lines</a> · \
<a href=\"{}\" download>CSV</a> <span class=\"muted\">(at most 10,000 per file)</span></p><div class=\"wide\">{}</div>{paging}",
        a(&export("jsonl")),
        a(&export("csv")),
        layout::table(
            &["#", "When", "Action", "Outcome, reason", "Client, subject", "Trace", "Detail"],
            &rows
        ),
    );
    Ok(layout::page(
        &cx.frame("audit"),
        StatusCode::OK,
        "Audit log",
        None,
        &body,
    ))
}

/// `GET /admin/console/audit/export?format=…&…`: the admin API's export, as a download.
pub async fn export(cx: &Ctx<'_>, q: &Params) -> Result<Response<Bytes>> {
    let format = q.get("format").unwrap_or("jsonl");
    if format != "jsonl" && format != "csv" {
        return Err(Error::invalid_request(
            "the export format must be jsonl or csv",
        ));
    }
    let mut pairs = filters(q);
    pairs.push(("format", format));
    let resp = api::raw(
        cx,
        Method::GET,
        &format!("audit/export?{}", query(&pairs)),
        None,
    )
    .await?;
    if !resp.status().is_success() {
        // The API's problem detail, shown as a page.
        api::into_value(&resp)?;
    }
    let mut resp = resp;
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(resp)
}
