//! Admin API: the audit log (`GET /admin/audit`), newest first, filtered by action, client,
//! subject, outcome, trace id and time range (`from` inclusive, `to` exclusive, UNIX seconds),
//! paged with a `before` sequence cursor.

use bytes::Bytes;
use http::Request;
use serde_json::json;

use super::{int_param, ok, query, MAX_PAGE};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::request::Params;
use crate::store::repo::audit::{self as repo, AuditFilter};

/// Default page size.
const DEFAULT_LIMIT: i64 = 50;
/// Latest time a range may name (year 9999), UNIX seconds.
const MAX_TIME: i64 = 253_402_300_799;
/// Longest filter value, bytes.
const MAX_FILTER: usize = 2048;

fn filter(params: &Params, name: &str) -> Result<Option<String>> {
    match params.get(name) {
        Some(v) if v.len() > MAX_FILTER => Err(Error::invalid_request(format!(
            "'{name}' must be at most {MAX_FILTER} bytes"
        ))),
        v => Ok(v.map(str::to_owned)),
    }
}

/// `GET /admin/audit?action=&client_id=&subject=&outcome=&trace_id=&from=&to=&before=&limit=`:
/// `{"events": [...], "next_before": <seq of the last event, or null on the last page>}`.
pub(super) async fn list(server: &Context, req: &Request<Bytes>) -> Result<http::Response<Bytes>> {
    let params = query(req)?;
    let outcome = filter(&params, "outcome")?;
    if let Some(o) = &outcome {
        if o != "success" && o != "failure" {
            return Err(Error::invalid_request(
                "'outcome' must be 'success' or 'failure'",
            ));
        }
    }
    let limit = int_param(&params, "limit", 1, MAX_PAGE)?.unwrap_or(DEFAULT_LIMIT);
    // One extra row tells whether another page exists (the repo caps a page at MAX_PAGE).
    let f = AuditFilter {
        action: filter(&params, "action")?,
        client_id: filter(&params, "client_id")?,
        subject: filter(&params, "subject")?,
        outcome,
        trace_id: filter(&params, "trace_id")?,
        before: int_param(&params, "before", 1, i64::MAX)?,
        from: int_param(&params, "from", 0, MAX_TIME)?,
        to: int_param(&params, "to", 0, MAX_TIME)?,
        limit: (limit + 1).min(MAX_PAGE),
    };
    let mut events = repo::list(server.env().sql.as_ref(), &f).await?;
    let more = events.len() as i64 > limit || (limit == MAX_PAGE && events.len() as i64 == limit);
    events.truncate(limit as usize);
    let next_before = if more {
        events.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(ok(json!({ "events": events, "next_before": next_before })))
}
