//! The audit log: an append-only table of security events, listed newest first.

use crate::store::{SqlStore, StoreError, Value};

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRow {
    /// Monotonic sequence number (paging cursor).
    pub seq: i64,
    /// Time, seconds.
    pub at: i64,
    /// What happened (`login`, `token.issued`, …).
    pub action: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// The client involved.
    pub client_id: Option<String>,
    /// The user involved.
    pub subject: Option<String>,
    /// Why (error code or short reason); never a secret.
    pub reason: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
    /// The W3C trace id of the request.
    pub trace_id: Option<String>,
    /// Extra JSON detail.
    pub detail: Option<serde_json::Value>,
    /// The value a metric counts this event under (grant type, vault provider), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Filters for [`list`].
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this action.
    pub action: Option<String>,
    /// Only this client.
    pub client_id: Option<String>,
    /// Only this subject.
    pub subject: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Only this trace.
    pub trace_id: Option<String>,
    /// Only events with `seq` below this (paging cursor).
    pub before: Option<i64>,
    /// Only events at or after this time (UNIX seconds).
    pub from: Option<i64>,
    /// Only events before this time (UNIX seconds).
    pub to: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// Appends an event.
pub async fn insert(db: &dyn SqlStore, e: &AuditRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO audit_events (at, action, outcome, client_id, subject, reason, request_id, trace_id, detail, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            e.at.into(),
            e.action.as_str().into(),
            e.outcome.as_str().into(),
            e.client_id.clone().into(),
            e.subject.clone().into(),
            e.reason.clone().into(),
            e.request_id.clone().into(),
            e.trace_id.clone().into(),
            e.detail.as_ref().map(|d| d.to_string()).into(),
            e.label.clone().into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Lists events newest first.
pub async fn list(db: &dyn SqlStore, f: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
    let mut sql = String::from(
        "SELECT seq, at, action, outcome, client_id, subject, reason, request_id, trace_id, detail, label FROM audit_events WHERE 1 = 1",
    );
    let mut params: Vec<Value> = Vec::new();
    for (col, v) in [
        ("action", &f.action),
        ("client_id", &f.client_id),
        ("subject", &f.subject),
        ("outcome", &f.outcome),
        ("trace_id", &f.trace_id),
    ] {
        if let Some(v) = v {
            sql.push_str(&format!(" AND {col} = ?"));
            params.push(v.as_str().into());
        }
    }
    if let Some(before) = f.before {
        sql.push_str(" AND seq < ?");
        params.push(before.into());
    }
    if let Some(from) = f.from {
        sql.push_str(" AND at >= ?");
        params.push(from.into());
    }
    if let Some(to) = f.to {
        sql.push_str(" AND at < ?");
        params.push(to.into());
    }
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    params.push(f.limit.clamp(1, 1000).into());
    let rows = db.query(&sql, &params).await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                seq: r.int(0)?,
                at: r.int(1)?,
                action: r.text(2)?,
                outcome: r.text(3)?,
                client_id: r.opt_text(4)?,
                subject: r.opt_text(5)?,
                reason: r.opt_text(6)?,
                request_id: r.opt_text(7)?,
                trace_id: r.opt_text(8)?,
                detail: r.opt_text(9)?.and_then(|d| serde_json::from_str(&d).ok()),
                label: r.opt_text(10)?,
            })
        })
        .collect()
}
