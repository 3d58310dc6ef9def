//! A minimal MCP server (MCP 2025-06-18 streamable HTTP transport, stateless, JSON responses
//! only): `initialize`, `ping`, `tools/list` and `tools/call` for `whoami` (the caller, from
//! the [`VerifiedToken`] the resource-server layer put into the request's extensions) and
//! `write_note`. Runtime-agnostic: an `http::Request` in, an `http::Response` out.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use portcullis_resource_server::VerifiedToken;
use serde_json::{json, Value};

/// Protocol versions this server speaks (the client's is echoed when listed).
const VERSIONS: &[&str] = &["2025-06-18", "2025-03-26", "2025-11-25"];

/// Notes saved by this isolate (the example has no storage).
static NOTES: AtomicU64 = AtomicU64::new(0);

fn reply(status: StatusCode, body: Option<Value>) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(
        body.map(|b| b.to_string()).unwrap_or_default(),
    )));
    *res.status_mut() = status;
    if status == StatusCode::OK {
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    res
}

fn text(s: String) -> Value {
    json!({ "content": [{ "type": "text", "text": s }] })
}

fn tools() -> Value {
    json!({ "tools": [
        { "name": "whoami", "description": "Who is calling (needs mcp:read).",
          "inputSchema": { "type": "object", "properties": {} } },
        { "name": "write_note", "description": "Saves a note (needs mcp:write).",
          "inputSchema": { "type": "object", "properties": { "text": { "type": "string" } }, "required": ["text"] } },
    ]})
}

/// The result of one JSON-RPC request, or its error (code, message).
fn call(method: &str, params: &Value, token: &VerifiedToken) -> Result<Value, (i64, String)> {
    match method {
        "initialize" => {
            let asked = params.get("protocolVersion").and_then(Value::as_str);
            let version = asked
                .filter(|v| VERSIONS.contains(v))
                .unwrap_or(VERSIONS[0]);
            Ok(json!({
                "protocolVersion": version,
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "portcullis-edge-example", "version": "1.0.0" },
            }))
        }
        "ping" => Ok(json!({})),
        "tools/list" => Ok(tools()),
        "tools/call" => match params.get("name").and_then(Value::as_str) {
            Some("whoami") => Ok(text(
                json!({
                    "sub": token.subject(),
                    "client_id": token.client_id(),
                    "scopes": token.scopes(),
                    "scheme": token.scheme.as_str(),
                })
                .to_string(),
            )),
            Some("write_note") => {
                let n = NOTES.fetch_add(1, Ordering::Relaxed) + 1;
                Ok(text(format!("saved note {n} for {}", token.subject())))
            }
            _ => Err((-32602, "unknown tool".into())),
        },
        _ => Err((-32601, "method not found".into())),
    }
}

/// Handles one HTTP request to the MCP endpoint. The layer has verified the token.
pub fn handle(req: &Parts, body: &[u8]) -> Response<Full<Bytes>> {
    if req.method != Method::POST {
        let mut res = reply(StatusCode::METHOD_NOT_ALLOWED, None);
        res.headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
        return res;
    }
    let Some(token) = req.extensions.get::<VerifiedToken>() else {
        return reply(StatusCode::UNAUTHORIZED, None);
    };
    let Ok(msg) = serde_json::from_slice::<Value>(body) else {
        let err = json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32700, "message": "parse error" } });
        return reply(StatusCode::BAD_REQUEST, Some(err));
    };
    let method = msg
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(id) = msg.get("id").cloned() else {
        // A notification or a response from the client: accepted, nothing to answer.
        return reply(StatusCode::ACCEPTED, None);
    };
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    let answer = match call(method, &params, token) {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err((code, message)) => {
            json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
        }
    };
    reply(StatusCode::OK, Some(answer))
}
