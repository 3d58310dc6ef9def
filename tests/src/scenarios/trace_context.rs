//! Trace ids (W3C Trace Context): a request's valid `traceparent` names the trace of every
//! audit row it causes, the admin API filters the audit log by it, and a malformed
//! `traceparent` is replaced by a new trace rather than trusted.

use serde_json::Value;

use super::support::*;
use super::Target;

async fn cc_token_traced(t: &Target, c: &ClientCreds, resource: &str, traceparent: &str) -> Resp {
    send(
        http()
            .post(t.url("/oauth/token"))
            .header("authorization", basic(&c.id, c.secret.as_deref().unwrap()))
            .header("traceparent", traceparent)
            .form(&[("grant_type", "client_credentials"), ("resource", resource)]),
    )
    .await
}

async fn by_trace(t: &Target, trace_id: &str) -> Vec<Value> {
    let v = admin_ok(
        t,
        reqwest::Method::GET,
        &format!("/admin/audit?trace_id={trace_id}"),
        None,
    )
    .await;
    v["events"].as_array().unwrap().clone()
}

/// A `client_credentials` token issued with a `traceparent` and one refused with another are
/// found by their trace ids; a malformed `traceparent` gets a fresh, valid trace id.
pub async fn trace_ids_in_audit_rows(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let trace = random_hex(16);
    let ok = cc_token_traced(t, &c, &resource, &format!("00-{trace}-00f067aa0ba902b7-01")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let events = by_trace(t, &trace).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["action"], "token.issued");
    assert_eq!(events[0]["trace_id"], trace.as_str());
    assert_eq!(events[0]["client_id"], c.id.as_str());

    let denied_trace = random_hex(16);
    let bad_client = ClientCreds {
        secret: Some("wrong-secret".into()),
        ..c.clone()
    };
    let denied = cc_token_traced(
        t,
        &bad_client,
        &resource,
        &format!("00-{denied_trace}-00f067aa0ba902b7-01"),
    )
    .await;
    assert_eq!(denied.status, 401, "{}", denied.body);
    let events = by_trace(t, &denied_trace).await;
    assert!(
        !events.is_empty(),
        "the refusal is in the audit log under its trace"
    );
    assert!(
        events.iter().all(|e| e["outcome"] == "failure"),
        "{events:?}"
    );

    // Upper-case hex is not a valid traceparent: the request gets a trace of its own.
    let upper = random_hex(16).to_uppercase();
    let r = cc_token_traced(t, &c, &resource, &format!("00-{upper}-00f067aa0ba902b7-01")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(by_trace(t, &upper).await.is_empty());
    let latest = admin_ok(
        t,
        reqwest::Method::GET,
        &format!(
            "/admin/audit?action=token.issued&client_id={}&limit=1",
            c.id
        ),
        None,
    )
    .await;
    let own = latest["events"][0]["trace_id"].as_str().unwrap().to_owned();
    assert_eq!(own.len(), 32, "{own}");
    assert!(own
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_ne!(own, trace);
}

/// `n` bytes as lower-case hex, unique to this call.
fn random_hex(n: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(crate::conformance::uid("trace").as_bytes());
    digest.iter().take(n).map(|b| format!("{b:02x}")).collect()
}
