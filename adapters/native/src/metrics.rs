//! Process metrics of the native host, appended to the core's counters at `/metrics` and
//! `/admin/metrics` on the admin listener: the HTTP server request duration histogram of the
//! OpenTelemetry HTTP conventions (`http_server_request_duration_seconds`, labelled with the
//! method, the route template ([`portcullis_core::host::route`]) and the status code), and on
//! Linux the process collector (`process_resident_memory_bytes`, CPU seconds, open file
//! descriptors). These are this process's own; the core's `portcullis_*` counters are
//! cluster-wide.

use portcullis_core::host::AccessLog;
use prometheus::{Encoder, HistogramOpts, HistogramVec, Registry, TextEncoder};

/// Bucket bounds in seconds (the OpenTelemetry default advice for HTTP server durations).
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Methods kept as label values; any other is `_OTHER` (as the conventions say).
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// The host's metrics.
#[derive(Clone)]
pub struct HttpMetrics {
    registry: Registry,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// An empty set.
    pub fn new() -> Self {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_server_request_duration_seconds",
                "Duration of HTTP server requests, by method, route template and status.",
            )
            .buckets(BUCKETS.to_vec()),
            &[
                "http_request_method",
                "http_route",
                "http_response_status_code",
            ],
        )
        .expect("static histogram options are valid");
        let registry = Registry::new();
        registry
            .register(Box::new(duration.clone()))
            .expect("one registration of a fresh metric");
        // The process's resident memory, CPU time and file descriptors (Linux /proc; on other
        // systems the collector reports nothing).
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("one registration of the process collector");
        Self { registry, duration }
    }

    /// Counts one finished request.
    pub fn observe(&self, log: &AccessLog) {
        let method = METHODS
            .iter()
            .find(|m| **m == log.method)
            .copied()
            .unwrap_or("_OTHER");
        self.duration
            .with_label_values(&[method, log.route, &log.status.to_string()])
            .observe(log.latency_ms / 1000.0);
    }

    /// The exposition text (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self::new()
    }
}
