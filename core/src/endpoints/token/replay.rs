//! A one-time credential presented twice (an authorization code, RFC 6749 §4.1.2; a rotated
//! refresh token, RFC 9700 §4.14.2; checks C2 and F2): the grant it came from is revoked with
//! every token issued under it, the replay is recorded, and the client gets `invalid_grant`.

use crate::audit::{self, Event};
use crate::context::Context;
use crate::error::Error;
use crate::request::RequestId;
use crate::store::repo::grants;

/// What kind of credential was replayed, as the audit log and the client see it.
pub struct Replay {
    /// The audit action (`code.replay_detected`, `refresh.reuse_detected`).
    pub action: &'static str,
    /// The audit reason (`grant_revoked`, `family_revoked`).
    pub reason: &'static str,
    /// The `error_description` the client gets.
    pub description: &'static str,
}

/// Revokes `grant_id` and records `replay` for `client_id`; the error to answer with (a
/// storage failure when the revocation could not be written, so the client may retry).
pub async fn revoke_replayed(
    server: &Context,
    grant_id: &str,
    client_id: &str,
    rid: Option<&RequestId>,
    replay: Replay,
) -> Error {
    if let Err(e) = grants::revoke(server.env().sql.as_ref(), grant_id, server.now()).await {
        return e.into();
    }
    audit::record(
        server.env(),
        Event {
            action: replay.action,
            success: false,
            client_id: Some(client_id),
            reason: Some(replay.reason),
            request: rid,
            ..Default::default()
        },
    )
    .await;
    Error::invalid_grant(replay.description)
}
