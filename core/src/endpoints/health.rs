//! Liveness (`/health`, touches nothing) and readiness (`/ready`, checks storage).

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::json;

use crate::context::Context;
use crate::response::json as json_response;

/// `GET /health`: the process answers.
pub fn live() -> Response<Bytes> {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

/// `GET /ready`: storage answers and the schema is migrated.
pub async fn ready(server: &Context) -> Response<Bytes> {
    match crate::store::migrations::current_version(server.env().sql.as_ref()).await {
        Ok(v) => json_response(
            StatusCode::OK,
            &json!({ "status": "ready", "schema_version": v }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "status": "unavailable", "reason": "storage" }),
            )
        }
    }
}
