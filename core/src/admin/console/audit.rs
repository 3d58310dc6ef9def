//! Audit log: the events newest first, filtered by action, client, subject, outcome, trace id
//! (each passed to `GET /admin/audit` as is) and time range (`from` / `to` as
//! `YYYY-MM-DDTHH:MM` in UTC, passed as UNIX seconds), paged with the `before` cursor, and
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

/// The console's own filter values, as given (for its links).
fn filters(q: &Params) -> Vec<(&'static str, &str)> {
    let mut out: Vec<(&str, &str)> = FILTERS
        .iter()
        .map(|(k, _)| (*k, q.get(k).unwrap_or("").trim()))
        .collect();
    out.push(("outcome", q.get("outcome").unwrap_or("")));
    for k in ["from", "to"] {
        out.push((k, q.get(k).unwrap_or("").trim()));
    }
    out
}

/// The filters as the admin API takes them: the time range in UNIX seconds.
fn api_filters(q: &Params) -> Result<Vec<(&'static str, String)>> {
    filters(q)
        .into_iter()
        .map(|(k, v)| match k {
            "from" | "to" if !v.is_empty() => Ok((k, parse_time(k, v)?.to_string())),
            _ => Ok((k, v.to_owned())),
        })
        .collect()
}

fn refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A `datetime-local` value, `YYYY-MM-DDTHH:MM` (or with `:SS`), read as UTC, as UNIX
/// seconds (days-from-civil).
fn parse_time(name: &str, v: &str) -> Result<i64> {
    let bad =
        || Error::invalid_request(format!("'{name}' must be a time as YYYY-MM-DDTHH:MM (UTC)"));
    let (date, clock) = v.split_once('T').ok_or_else(bad)?;
    let num = |s: &str, max: i64| {
        s.parse::<i64>()
            .ok()
            .filter(|n| (0..=max).contains(n) && s.chars().all(|c| c.is_ascii_digit()))
    };
    let d: Vec<&str> = date.split('-').collect();
    let c: Vec<&str> = clock.split(':').collect();
    let ([y, m, dd], [h, mi, rest @ ..]) = (d.as_slice(), c.as_slice()) else {
        return Err(bad());
    };
    let sec = match rest {
        [] => Some(0),
        [s] => num(s, 59),
        _ => None,
    };
    let (Some(y), Some(m), Some(dd), Some(h), Some(mi), Some(sec)) = (
        num(y, 9999),
        num(m, 12),
        num(dd, 31),
        num(h, 23),
        num(mi, 59),
        sec,
    ) else {
        return Err(bad());
    };
    if m == 0 || dd == 0 {
        return Err(bad());
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + h * 3600 + mi * 60 + sec)
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
    let api = api_filters(q)?;
    let mut pairs = refs(&api);
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
    for (name, label) in [("from", "From (UTC)"), ("to", "To (UTC)")] {
        form.push_str(&format!(
            "<span><label for=\"{name}\">{label}</label><input type=\"datetime-local\" id=\"{name}\" name=\"{name}\" value=\"{}\"></span>",
            a(q.get(name).unwrap_or(""))
        ));
    }
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
<a href=\"{}\" download>CSV</a> <span class=\"muted\">(at most 10,000 per file; narrow the time range for more)</span></p><div class=\"wide\">{}</div>{paging}",
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
    let api = api_filters(q)?;
    let mut pairs = refs(&api);
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

#[cfg(test)]
mod tests {
    #[test]
    fn datetime_local_as_unix_seconds() {
        assert_eq!(super::parse_time("from", "1970-01-01T00:00").unwrap(), 0);
        assert_eq!(
            super::parse_time("from", "2025-12-05T12:00").unwrap(),
            1_764_936_000
        );
        assert_eq!(
            super::parse_time("to", "2024-02-29T23:59:59").unwrap(),
            1_709_251_199
        );
        for bad in [
            "",
            "2025-12-05",
            "2025-13-01T00:00",
            "2025-12-05T24:00",
            "x-y-zTa:b",
            "2025-12-05T12:00:00:00",
        ] {
            assert!(super::parse_time("from", bad).is_err(), "{bad}");
        }
    }
}
