//! One request through a host: its request id, the normalised request the core is handed,
//! `x-request-id` on the answer, and the access-log fields (SECURITY-CHECKLIST H3: method,
//! path without the query, status, latency and request id; never headers or bodies).

use std::net::IpAddr;

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, Uri};

use super::trace;
use crate::request::{RemoteAddr, RequestId};
use crate::runtime::Rng;

/// The request id header, read from requests and set on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest request id taken from a client.
const MAX_REQUEST_ID: usize = 128;

/// Whether a client's `x-request-id` may be used as the request id: 1 to 128 characters of
/// letters, digits and `-_.:+/=` (UUIDs, base64, trace ids), so that it cannot break a log
/// line or carry markup.
pub fn well_formed_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=".contains(&b))
}

/// The ids of a request with `headers`: its `x-request-id` when there is exactly one and it
/// is well formed, else 12 fresh random bytes from `rng`, base64url (16 characters); and its
/// trace id ([`trace::trace_id`]).
pub fn request_id(headers: &HeaderMap, rng: &dyn Rng) -> RequestId {
    let trace_id = trace::trace_id(headers, rng);
    let mut given = headers.get_all(REQUEST_ID_HEADER).iter();
    if let (Some(v), None) = (given.next(), given.next()) {
        if let Some(id) = v.to_str().ok().filter(|id| well_formed_request_id(id)) {
            return RequestId {
                id: id.to_owned(),
                trace_id,
            };
        }
    }
    let mut buf = [0u8; 12];
    rng.fill(&mut buf);
    RequestId {
        id: crate::crypto::b64(buf),
        trace_id,
    }
}

/// Makes a request the same on every runtime: a target in absolute form (what Spin hands its
/// component: `wasi:http` carries the authority, never a `Host` header) becomes origin form
/// with its authority (without user information) as the `Host` header, which it overrides
/// (RFC 9112 §3.2.2). A request in origin form is left as it is.
pub fn normalize(head: &mut Parts) {
    let Some(authority) = head.uri.authority() else {
        return;
    };
    let host = authority.as_str().rsplit('@').next().unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(host) {
        head.headers.insert(header::HOST, v);
    }
    let target = head.uri.path_and_query().map_or("/", |pq| pq.as_str());
    head.uri = Uri::try_from(target).unwrap_or_else(|_| Uri::from_static("/"));
}

/// One request through a host, from its head to the access-log line.
#[derive(Debug)]
pub struct Exchange {
    id: RequestId,
    method: Method,
    path: String,
    route: &'static str,
}

impl Exchange {
    /// Starts the exchange of a request with `head`: its request id ([`request_id`]) and what
    /// the access log will say about it.
    pub fn begin(head: &Parts, rng: &dyn Rng) -> Self {
        Self {
            id: request_id(&head.headers, rng),
            method: head.method.clone(),
            path: head.uri.path().to_owned(),
            route: super::route::template(head.uri.path()),
        }
    }

    /// The request id.
    pub fn id(&self) -> &str {
        &self.id.id
    }

    /// The trace id.
    pub fn trace_id(&self) -> &str {
        &self.id.trace_id
    }

    /// The request the core is handed: `head` [`normalize`]d, with `body`, the client
    /// address the runtime vouches for (if any) and the request id as extensions.
    pub fn request(&self, mut head: Parts, body: Bytes, client: Option<IpAddr>) -> Request<Bytes> {
        normalize(&mut head);
        head.extensions.remove::<RemoteAddr>();
        if let Some(ip) = client {
            head.extensions.insert(RemoteAddr(ip));
        }
        head.extensions.insert(self.id.clone());
        Request::from_parts(head, body)
    }

    /// The answer sent for this exchange (the core's, or the host's own refusal): with
    /// `x-request-id`, and the access-log fields for a request that took `elapsed_ms`.
    pub fn finish(
        self,
        mut resp: Response<Bytes>,
        elapsed_ms: f64,
    ) -> (Response<Bytes>, AccessLog) {
        if let Ok(v) = HeaderValue::from_str(&self.id.id) {
            resp.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
        let log = AccessLog {
            method: self.method.to_string(),
            path: self.path,
            route: self.route,
            status: resp.status().as_u16(),
            latency_ms: elapsed_ms.max(0.0),
            request_id: self.id.id,
            trace_id: self.id.trace_id,
        };
        (resp, log)
    }
}

/// The fields of one access-log line (H3): no query string, header or body. Each host writes
/// them with its logger (structured fields natively; [`std::fmt::Display`] on the edge).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLog {
    /// The request method.
    pub method: String,
    /// The path, without the query (which can carry codes and state).
    pub path: String,
    /// The path's route template ([`super::route::template`]), a bounded metric label.
    pub route: &'static str,
    /// The response status.
    pub status: u16,
    /// Time from the request's arrival to the answer, milliseconds.
    pub latency_ms: f64,
    /// The request id (also in `x-request-id` and in audit events).
    pub request_id: String,
    /// The trace id (also in audit events).
    pub trace_id: String,
}

impl std::fmt::Display for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {:.0}ms request_id={} trace_id={}",
            self.method, self.path, self.status, self.latency_ms, self.request_id, self.trace_id
        )
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;
    use crate::runtime::SeededRng;

    fn head(req: http::request::Builder) -> Parts {
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_well_formed_incoming_request_id_is_kept() {
        let rng = SeededRng::new(1);
        for id in [
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "8a1b2c3d4e5f6a7b-LHR",
            "YWJj+/=",
        ] {
            let h = head(Request::get("/").header(REQUEST_ID_HEADER, id));
            assert_eq!(request_id(&h.headers, &rng).id, id);
        }
    }

    #[test]
    fn a_malformed_or_repeated_request_id_is_replaced_from_the_rng() {
        let long = "a".repeat(129);
        for bad in [
            "",
            "two words",
            "line\tbreak",
            "<script>",
            "é",
            long.as_str(),
        ] {
            let h = head(Request::get("/").header(REQUEST_ID_HEADER, bad.as_bytes()));
            let id = request_id(&h.headers, &SeededRng::new(7)).id;
            assert_ne!(id, bad);
            assert_eq!(id.len(), 16, "{id}");
            // Deterministic through the seam.
            assert_eq!(request_id(&h.headers, &SeededRng::new(7)).id, id);
        }
        let twice = head(
            Request::get("/")
                .header(REQUEST_ID_HEADER, "a")
                .header(REQUEST_ID_HEADER, "b"),
        );
        let id = request_id(&twice.headers, &SeededRng::new(7)).id;
        assert!(id != "a" && id != "b" && id.len() == 16, "{id}");
        let none = head(Request::get("/"));
        assert_ne!(
            request_id(&none.headers, &SeededRng::new(1)),
            request_id(&none.headers, &SeededRng::new(2))
        );
    }

    #[test]
    fn an_absolute_target_becomes_origin_form_with_its_host() {
        // What Spin hands the component: absolute URI, no Host header.
        let mut h = head(Request::get("http://mcp-a.example:8080/.well-known/x?y=1"));
        normalize(&mut h);
        assert_eq!(h.uri.to_string(), "/.well-known/x?y=1");
        assert_eq!(h.headers[header::HOST], "mcp-a.example:8080");
        // The authority wins over a Host header (RFC 9112 §3.2.2); user information is dropped.
        let mut h = head(Request::get("https://u:p@b.example/").header(header::HOST, "evil"));
        normalize(&mut h);
        assert_eq!(h.uri.to_string(), "/");
        assert_eq!(h.headers[header::HOST], "b.example");
        // Origin form (the native host, the Worker) is left alone.
        let mut h = head(Request::get("/p?q").header(header::HOST, "c.example"));
        normalize(&mut h);
        assert_eq!(h.uri.to_string(), "/p?q");
        assert_eq!(h.headers[header::HOST], "c.example");
    }

    #[test]
    fn the_same_request_whatever_the_runtime_handed_over() {
        let rng = SeededRng::new(3);
        let spin = head(Request::post("http://as.example/oauth/token?a=b"));
        let native = head(
            Request::post("/oauth/token?a=b")
                .header(header::HOST, "as.example")
                .header(REQUEST_ID_HEADER, "rid-1"),
        );
        let mut seen = Vec::new();
        for h in [spin, native] {
            let ex = Exchange::begin(&h, &rng);
            let id = ex.id().to_owned();
            let req = ex.request(h, Bytes::from_static(b"x=1"), "192.0.2.1".parse().ok());
            assert_eq!(req.uri(), "/oauth/token?a=b");
            assert_eq!(req.headers()[header::HOST], "as.example");
            assert_eq!(req.extensions().get::<RequestId>().unwrap().id, id);
            assert_eq!(
                req.extensions().get::<RemoteAddr>().unwrap().0.to_string(),
                "192.0.2.1"
            );
            seen.push(id);
        }
        assert_eq!(seen[1], "rid-1");
    }

    #[test]
    fn finish_sets_the_request_id_and_logs_the_path_without_query() {
        let rng = SeededRng::new(4);
        let h = head(Request::get("/oauth/authorize?code=SECRET&state=s"));
        let ex = Exchange::begin(&h, &rng);
        let id = ex.id().to_owned();
        let ex_trace = ex.trace_id().to_owned();
        let mut answer = Response::new(Bytes::new());
        *answer.status_mut() = StatusCode::SEE_OTHER;
        answer
            .headers_mut()
            .insert(REQUEST_ID_HEADER, HeaderValue::from_static("spoofed"));
        let (resp, log) = ex.finish(answer, 12.4);
        assert_eq!(resp.headers()[REQUEST_ID_HEADER], id.as_str());
        assert_eq!(resp.headers().get_all(REQUEST_ID_HEADER).iter().count(), 1);
        assert_eq!(
            log,
            AccessLog {
                method: "GET".into(),
                path: "/oauth/authorize".into(),
                route: "/oauth/authorize",
                status: 303,
                latency_ms: 12.4,
                request_id: id.clone(),
                trace_id: ex_trace.clone(),
            }
        );
        let line = log.to_string();
        assert_eq!(
            line,
            format!("GET /oauth/authorize 303 12ms request_id={id} trace_id={ex_trace}")
        );
        assert!(!line.contains("SECRET"));
    }
}
