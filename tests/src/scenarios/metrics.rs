//! Prometheus metrics (`GET /admin/metrics`, and `/metrics` on the native admin listener),
//! parsed with a Prometheus text-format parser (`prometheus-parse`): the counters move as
//! tokens are issued and refused, only the admin key or the metrics token may read them,
//! and the metrics token opens nothing else.

use prometheus_parse::{Scrape, Value};

use super::support::*;
use super::Target;

/// The read-only token of the metrics scenarios' server.
pub const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef";

/// A server of its own with a metrics token.
pub const SETTINGS: &[(&str, &str)] = &[("metrics_token", METRICS_TOKEN)];

async fn scrape(url: &str, token: &str) -> Scrape {
    let r = send(http().get(url).bearer_auth(token)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ct = r.headers.get("content-type").unwrap().to_str().unwrap();
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    Scrape::parse(r.body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

/// The value of counter `name` with `labels` (0 when absent).
fn counter(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            Value::Counter(v) | Value::Untyped(v) | Value::Gauge(v) => v,
            _ => panic!("{name} is not a counter"),
        })
        .sum()
}

async fn cc(t: &Target, c: &ClientCreds, secret: &str, grant: &str, resource: &str) -> Resp {
    send(
        http()
            .post(t.url("/oauth/token"))
            .header("authorization", basic(&c.id, secret))
            .form(&[("grant_type", grant), ("resource", resource)]),
    )
    .await
}

/// Issued and refused token requests move `portcullis_tokens_issued_total` and
/// `portcullis_token_errors_total` by exactly what happened (the server is this test's own),
/// and the audit-event counter agrees.
pub async fn metrics_count_tokens_issued_and_refused(t: &Target) {
    let metrics = format!("{}/admin/metrics", t.admin);
    let before = scrape(&metrics, METRICS_TOKEN).await;
    let resource = new_resource(t, &SCOPES).await;
    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let secret = c.secret.clone().unwrap();
    for _ in 0..3 {
        let r = cc(t, &c, &secret, "client_credentials", &resource).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = cc(t, &c, "wrong-secret", "client_credentials", &resource).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = cc(t, &c, &secret, "urn:example:made-up", &resource).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // The admin key reads the same counters.
    let after = scrape(&metrics, &t.admin_key).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        counter(&after, name, labels) - counter(&before, name, labels)
    };
    let cc_label = [("grant_type", "client_credentials")];
    assert_eq!(moved("portcullis_tokens_issued_total", &cc_label), 3.0);
    assert_eq!(
        moved(
            "portcullis_token_errors_total",
            &[("error", "invalid_client")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "portcullis_token_errors_total",
            &[("error", "unsupported_grant_type")]
        ),
        1.0
    );
    let issued = [("action", "token.issued"), ("outcome", "success")];
    assert_eq!(moved("portcullis_audit_events_total", &issued), 3.0);
    // No client id or user appears anywhere in the exposition.
    for s in &after.samples {
        for v in s.labels.values() {
            assert_ne!(v, c.id.as_str(), "{s:?}");
        }
    }
    assert_eq!(counter(&after, "portcullis_build_info", &[]), 1.0);
    // Outcome-only counters are declared at 0 before anything happened.
    assert!(after.samples.iter().any(
        |s| s.metric == "portcullis_logins_total" && s.labels.get("outcome") == Some("failure")
    ));

    // The native admin listener also serves them at /metrics, with this process's request
    // duration histogram (route templates, never raw paths).
    if t.process_metrics {
        let native = scrape(&format!("{}/metrics", t.admin), METRICS_TOKEN).await;
        assert!(counter(&native, "portcullis_tokens_issued_total", &cc_label) >= 3.0);
        let routes: Vec<&str> = native
            .samples
            .iter()
            .filter(|s| s.metric.starts_with("http_server_request_duration_seconds"))
            .filter_map(|s| s.labels.get("http_route"))
            .collect();
        assert!(routes.contains(&"/oauth/token"), "{routes:?}");
        assert!(routes.contains(&"/admin/clients"), "{routes:?}");
        assert!(!routes.iter().any(|r| r.contains(&c.id)), "{routes:?}");
        // The process collector: resident memory (never zero) and CPU time (whole seconds, so
        // a young process may report 0) of this process.
        assert!(
            counter(&native, "process_resident_memory_bytes", &[]) > 0.0,
            "process_resident_memory_bytes missing or zero"
        );
        assert!(
            native
                .samples
                .iter()
                .any(|s| s.metric == "process_cpu_seconds_total"),
            "process_cpu_seconds_total missing"
        );
    }
}

/// Without a token, with a wrong one or with a wrong scheme: 401 with a challenge; the
/// metrics token opens the metrics and nothing else of the admin API.
pub async fn metrics_need_the_admin_key_or_the_metrics_token(t: &Target) {
    let metrics = format!("{}/admin/metrics", t.admin);
    for auth in [
        None,
        Some("Bearer wrong-token-0123456789"),
        Some("Basic bWV0cmljcw=="),
    ] {
        let mut rb = http().get(&metrics);
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        let r = send(rb).await;
        assert_eq!(r.status, 401, "{auth:?}: {}", r.body);
        assert!(r.headers.get("www-authenticate").is_some());
        assert!(!r.body.contains("portcullis_"), "{}", r.body);
    }
    let clients = format!("{}/admin/clients", t.admin);
    let r = send(http().get(&clients).bearer_auth(METRICS_TOKEN)).await;
    assert_eq!(
        r.status, 401,
        "the metrics token is not an admin key: {}",
        r.body
    );
    let r = send(http().post(&metrics).bearer_auth(METRICS_TOKEN)).await;
    assert_eq!(r.status, 405, "{}", r.body);
}
