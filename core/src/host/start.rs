//! The answer of a host whose server could not start (a refused configuration, a missing
//! binding, storage unavailable during migrations): 503 `temporarily_unavailable` to every
//! client, without the reason (which names settings and storage); the host logs the reason
//! in full ([`StartFailure`]'s `Display`) and tries again on a later request.

use bytes::Bytes;
use http::Response;

use crate::error::{Error, ErrorCode};
use crate::response::error_json;

use super::settings::SettingsError;

/// Why a host could not start its server. `Display` is the line for the host's log.
#[derive(Debug, thiserror::Error)]
pub enum StartFailure {
    /// The settings were refused (naming the variable at fault).
    #[error("configuration refused: {0}")]
    Config(String),
    /// A runtime binding (database, cache) is missing or could not be opened.
    #[error("binding unavailable: {0}")]
    Binding(String),
    /// The core refused to start (storage during migrations or seeding, a seed, the key): the
    /// message of its `StartError` (`From` in [`crate::server`], above this module).
    #[error("start refused: {0}")]
    Start(String),
}

impl From<SettingsError> for StartFailure {
    fn from(e: SettingsError) -> Self {
        Self::Config(e.to_string())
    }
}

impl StartFailure {
    /// The answer to every request while the server cannot start: 503 with no detail.
    pub fn response(&self) -> Response<Bytes> {
        error_json(&Error::new(
            ErrorCode::TemporarilyUnavailable,
            "the server could not start; the reason is in the host's log",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_503_without_the_reason_which_the_log_line_has() {
        let failures = [
            StartFailure::from(SettingsError {
                variable: "PORTCULLIS_MASTER_KEY".into(),
                message: "must be at least 16 characters".into(),
            }),
            StartFailure::Binding("the D1 database binding `DB` is missing".into()),
            StartFailure::Start(
                "configuration error in 'code_ttl': must be between 1 and 600 seconds".into(),
            ),
        ];
        let logged = [
            "configuration refused: PORTCULLIS_MASTER_KEY",
            "binding unavailable: the D1",
            "start refused: configuration error in 'code_ttl'",
        ];
        for (f, line) in failures.iter().zip(logged) {
            assert!(f.to_string().starts_with(line), "{f}");
            let resp = f.response();
            assert_eq!(resp.status(), http::StatusCode::SERVICE_UNAVAILABLE);
            let body = String::from_utf8(resp.body().to_vec()).unwrap();
            assert!(body.contains("temporarily_unavailable"), "{body}");
            for leak in ["PORTCULLIS", "MASTER", "master", "D1", "code_ttl", "16"] {
                assert!(!body.contains(leak), "{leak} in {body}");
            }
        }
    }
}
