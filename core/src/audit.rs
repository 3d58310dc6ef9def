//! Audit events: every login, consent decision, registration, token issued or denied,
//! refresh, reuse detection and revocation is written to storage (time, action, client,
//! subject, outcome, reason, request id, trace id). Listed by the admin API newest first.

use crate::env::Env;
use crate::store::repo::audit::AuditRow;

/// An event to record. `reason` is an error code or a short phrase, never a secret.
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    /// What happened, dotted (`token.issued`, `login`, `refresh.reuse_detected`).
    pub action: &'a str,
    /// Whether it succeeded.
    pub success: bool,
    /// The client involved.
    pub client_id: Option<&'a str>,
    /// The user involved.
    pub subject: Option<&'a str>,
    /// Why (error code or short reason).
    pub reason: Option<&'a str>,
    /// The request (its request id and trace id).
    pub request: Option<&'a crate::request::RequestId>,
    /// Extra detail (grant type, scope, resource, jti).
    pub detail: Option<serde_json::Value>,
    /// The value a metric counts this event under (the grant type of `token.issued`, the
    /// provider of `vault.*`): a closed set, never a client or user (docs/metrics.md).
    pub label: Option<&'a str>,
}

/// Writes `event`. Audit failures are not shown to the client, but are returned so the
/// caller can decide; most callers use [`record`], which logs and continues.
pub async fn try_record(env: &Env, event: Event<'_>) -> Result<(), crate::store::StoreError> {
    let row = AuditRow {
        seq: 0,
        at: env.clock.now(),
        action: event.action.to_owned(),
        outcome: if event.success { "success" } else { "failure" }.to_owned(),
        client_id: event.client_id.map(str::to_owned),
        subject: event.subject.map(str::to_owned),
        reason: event.reason.map(str::to_owned),
        request_id: event.request.map(|r| r.id.clone()),
        trace_id: event.request.map(|r| r.trace_id.clone()),
        detail: event.detail,
        label: event.label.map(|l| crate::text::truncate(l, 64).to_owned()),
    };
    crate::store::repo::audit::insert(env.sql.as_ref(), &row).await
}

/// Writes `event`; a storage failure here does not fail the request that caused it.
pub async fn record(env: &Env, event: Event<'_>) {
    let action = event.action;
    if let Err(e) = try_record(env, event).await {
        tracing::warn!(action, error = %e, "audit event could not be written");
    }
}
