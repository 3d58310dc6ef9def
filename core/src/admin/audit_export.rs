//! Admin API: `GET /admin/audit/export?format=jsonl|csv&…` exports the audit log, newest
//! first, as JSON Lines (one event object per line, the same objects `GET /admin/audit`
//! returns) or CSV (RFC 4180, a header row, `detail` as JSON text). It pages through the very
//! handler of `GET /admin/audit`, so every filter that takes (action, client_id, subject,
//! outcome, trace_id, before) applies here too. Bounded: at most `limit` events (default and
//! maximum [`MAX_EXPORT`]); when more remain, `X-Audit-Next-Before` names the cursor to pass
//! as `before` for the rest.

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use serde_json::Value;

use super::{audit, int_param, query, MAX_PAGE};
use crate::context::Context;
use crate::error::{Error, Result};

/// Most events in one export.
pub const MAX_EXPORT: i64 = 10_000;

/// The columns of the CSV export.
pub const CSV_COLUMNS: &[&str] = &[
    "seq",
    "at",
    "action",
    "outcome",
    "client_id",
    "subject",
    "reason",
    "request_id",
    "trace_id",
    "detail",
];

/// `GET /admin/audit/export`.
pub(super) async fn export(server: &Context, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    let params = query(req)?;
    let format = params.get("format").unwrap_or("jsonl");
    if format != "jsonl" && format != "csv" {
        return Err(Error::invalid_request("'format' must be 'jsonl' or 'csv'"));
    }
    let max = int_param(&params, "limit", 1, MAX_EXPORT)?.unwrap_or(MAX_EXPORT);
    let mut before = int_param(&params, "before", 1, i64::MAX)?;
    // The list's own filters, passed through unchanged.
    let filters: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| !matches!(*k, "format" | "limit" | "before"))
        .collect();
    let mut out = String::new();
    if format == "csv" {
        out.push_str(&CSV_COLUMNS.join(","));
        out.push_str("\r\n");
    }
    let mut written = 0;
    let next = loop {
        // Built apart: the serializer is not `Send` and must not live across an await.
        let qs = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &filters {
                q.append_pair(k, v);
            }
            q.append_pair("limit", &(max - written).min(MAX_PAGE).to_string());
            if let Some(b) = before {
                q.append_pair("before", &b.to_string());
            }
            q.finish()
        };
        let mut page_req = Request::new(Bytes::new());
        *page_req.uri_mut() = format!("/admin/audit?{qs}")
            .parse()
            .map_err(|_| Error::invalid_request("the filters cannot form a query"))?;
        let page = audit::list(server, &page_req).await?;
        let page: Value = serde_json::from_slice(page.body())
            .map_err(|_| Error::server("the audit page could not be read"))?;
        for e in page["events"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if format == "csv" {
                csv_row(&mut out, e);
            } else {
                out.push_str(&e.to_string());
                out.push('\n');
            }
            written += 1;
        }
        before = page["next_before"].as_i64();
        if before.is_none() || written >= max {
            break before;
        }
    };
    let (mime, ext) = if format == "csv" {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/jsonl; charset=utf-8", "jsonl")
    };
    let mut resp = Response::new(Bytes::from(out));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"audit.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(n) = next {
        h.insert("x-audit-next-before", HeaderValue::from(n));
    }
    Ok(resp)
}

/// Appends one event as a CSV record (RFC 4180: fields with `,`, `"` or line breaks are
/// quoted, quotes doubled). Cells starting with `=`, `+`, `-`, `@` are prefixed with `'` so a
/// spreadsheet does not run them as formulas.
fn csv_row(out: &mut String, e: &Value) {
    let cells: Vec<String> = CSV_COLUMNS
        .iter()
        .map(|c| match &e[*c] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let cell = if cell.starts_with(['=', '+', '-', '@']) {
            format!("'{cell}")
        } else {
            cell.clone()
        };
        if cell.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&cell);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let mut out = String::new();
        super::csv_row(
            &mut out,
            &serde_json::json!({"seq": 3, "at": 10, "action": "login", "outcome": "failure",
                "reason": "=cmd()", "detail": {"a": "b,c"}}),
        );
        assert_eq!(
            out,
            "3,10,login,failure,,,'=cmd(),,,\"{\"\"a\"\":\"\"b,c\"\"}\"\r\n"
        );
    }
}
