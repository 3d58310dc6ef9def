//! The tower `Layer`: answers the protected resource metadata (RFC 9728 §3) at its
//! path-inserted well-known path, verifies every other request (RFC 9068, RFC 9449 §7),
//! applies the per-tool scope policy to JSON-RPC bodies, answers refusals with their
//! challenges (RFC 6750 §3), and puts the [`VerifiedToken`] into the request's extensions for
//! the handler (axum's `Extension<VerifiedToken>`, or in rmcp tools through
//! `http::request::Parts::extensions`). MCP sessions (`Mcp-Session-Id`) are bound to the
//! subject and issuer of the token that opened them, so another user's token cannot ride
//! someone else's session (the MCP security best practices on session hijacking).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt as _, Either, Full, Limited};

use crate::claims::VerifiedToken;
use crate::decision::{Decision, Denial};
use crate::verifier::Verifier;

/// The response body: the inner service's, or one of ours.
pub type LayerBody<B> = Either<B, Full<Bytes>>;

/// Wraps a service with token verification.
#[derive(Debug, Clone)]
pub struct ResourceServerLayer {
    verifier: Arc<Verifier>,
    sessions: Arc<Sessions>,
}

/// The MCP session header (MCP streamable HTTP transport).
const SESSION_HEADER: &str = "mcp-session-id";
/// Most sessions remembered; the oldest binding is forgotten first.
const MAX_SESSIONS: usize = 100_000;

/// Which caller opened each MCP session.
#[derive(Debug, Default)]
struct Sessions {
    inner: Mutex<(HashMap<String, String>, VecDeque<String>)>,
}

impl Sessions {
    /// Whether `caller` may use `session` (unknown sessions are the MCP server's business).
    fn allows(&self, session: &str, caller: &str) -> bool {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.get(session).is_none_or(|owner| owner == caller)
    }

    fn bind(&self, session: &str, caller: &str) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *guard;
        if map.contains_key(session) {
            return;
        }
        if map.len() >= MAX_SESSIONS {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
        map.insert(session.to_owned(), caller.to_owned());
        order.push_back(session.to_owned());
    }
}

impl ResourceServerLayer {
    /// A layer around `verifier`.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self {
            verifier,
            sessions: Arc::default(),
        }
    }

    /// The verifier.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }
}

impl<S> tower_layer::Layer<S> for ResourceServerLayer {
    type Service = ResourceServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResourceServerService {
            inner,
            verifier: self.verifier.clone(),
            sessions: self.sessions.clone(),
        }
    }
}

/// The service the layer produces.
#[derive(Debug, Clone)]
pub struct ResourceServerService<S> {
    inner: S,
    verifier: Arc<Verifier>,
    sessions: Arc<Sessions>,
}

fn ours<B>(
    status: StatusCode,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> Response<LayerBody<B>> {
    let mut res = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *res.status_mut() = status;
    for (name, value) in headers {
        if let Ok(v) = http::HeaderValue::try_from(value.as_str()) {
            res.headers_mut().append(*name, v);
        }
    }
    res
}

fn denied<B>(d: &Denial) -> Response<LayerBody<B>> {
    let (parts, body) = d.to_response().into_parts();
    let mut res = Response::from_parts(parts, Either::Right(Full::new(Bytes::from(body))));
    // Browser-based MCP clients must be able to read the challenge (and the DPoP nonce).
    res.headers_mut().insert(
        http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        http::HeaderValue::from_static("WWW-Authenticate, DPoP-Nonce"),
    );
    res
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The layer's future: `Send` natively; on wasm32 the fetch futures are not `Send`, and
/// single-threaded runtimes (Workers, Spin) do not need it.
#[cfg(not(target_arch = "wasm32"))]
pub type LayerFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;
/// The layer's future (wasm32: not `Send`).
#[cfg(target_arch = "wasm32")]
pub type LayerFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>>>>;

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for ResourceServerService<S>
where
    S: tower_service::Service<Request<Full<Bytes>>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<LayerBody<ResBody>>;
    type Error = S::Error;
    type Future = LayerFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready does the work; a fresh clone stays for next time.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let verifier = self.verifier.clone();
        let sessions = self.sessions.clone();
        Box::pin(async move {
            let config = verifier.config();
            let path_and_query = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".to_owned());
            let metadata_path = verifier.metadata_path();
            if req.uri().path() == metadata_path.split('?').next().unwrap_or_default() {
                return Ok(match *req.method() {
                    Method::GET | Method::HEAD => ours(
                        StatusCode::OK,
                        &[
                            ("content-type", "application/json".into()),
                            ("access-control-allow-origin", "*".into()),
                            ("cache-control", "max-age=300".into()),
                        ],
                        verifier.metadata_document().to_string().into_bytes(),
                    ),
                    Method::OPTIONS => ours(
                        StatusCode::NO_CONTENT,
                        &[
                            ("access-control-allow-origin", "*".into()),
                            ("access-control-allow-methods", "GET, HEAD, OPTIONS".into()),
                        ],
                        Vec::new(),
                    ),
                    _ => ours(
                        StatusCode::METHOD_NOT_ALLOWED,
                        &[("allow", "GET, HEAD, OPTIONS".into())],
                        Vec::new(),
                    ),
                });
            }
            // CORS preflights carry no credentials; the inner service answers them.
            let (mut parts, body) = req.into_parts();
            if parts.method == Method::OPTIONS {
                let res = inner
                    .call(Request::from_parts(parts, Full::new(Bytes::new())))
                    .await?;
                return Ok(res.map(Either::Left));
            }
            // The URL the client addressed, rebuilt from the configured origin: the Host
            // header is the client's to choose.
            let url = format!("{}{}", config.origin(), path_and_query);
            let token: VerifiedToken = match verifier
                .authorize(parts.method.as_str(), &url, &parts.headers)
                .await
            {
                Decision::Allow(t) => t,
                Decision::Deny(d) => return Ok(denied(&d)),
            };
            let bytes = match Limited::new(body, config.max_body_bytes).collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => {
                    return Ok(ours(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &[("content-type", "application/json".into())],
                        br#"{"error":"invalid_request","error_description":"the request body is too large or unreadable"}"#.to_vec(),
                    ))
                }
            };
            if config.tools().is_active() && parts.method == Method::POST {
                if let Some(d) = verifier.check_tools(&token, &bytes) {
                    return Ok(denied(&d));
                }
            }
            let caller = format!("{} {}", token.claims.iss, token.claims.sub);
            let session = parts
                .headers
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(id) = &session {
                if !sessions.allows(id, &caller) {
                    return Ok(ours(
                        StatusCode::FORBIDDEN,
                        &[("content-type", "application/json".into())],
                        br#"{"error":"access_denied","error_description":"this MCP session belongs to another user"}"#.to_vec(),
                    ));
                }
            }
            parts.extensions.insert(token);
            let res = inner
                .call(Request::from_parts(parts, Full::new(bytes)))
                .await?;
            if let Some(id) = res
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                sessions.bind(id, &caller);
            }
            Ok(res.map(Either::Left))
        })
    }
}
