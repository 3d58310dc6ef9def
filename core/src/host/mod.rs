//! The host layer: what every adapter (native, Workers, Spin) does around a call into the
//! core, written once. An adapter translates its runtime's types and bindings and otherwise
//! asks this module:
//! - the body limit while it streams a request in and the 413 answer beyond it ([`body`]);
//! - one [`Exchange`] per request: the request id (the client's `x-request-id` when well
//!   formed, else fresh from the core's [`Rng`] seam), the request normalised so that it is
//!   the same on every runtime (the `Host` header from an absolute URI, as Spin hands it; the
//!   target in origin form), `x-request-id` on every response, the W3C trace id ([`trace`]:
//!   from a valid `traceparent`, else new) and the access-log fields (H3: the path without
//!   its query);
//! - the answer of a server that could not start ([`StartFailure`]: 503, no detail);
//! - the settings each runtime requires or cannot honour, and how a flat key/value source
//!   (Workers `[vars]`, Spin variables) names them ([`settings`]);
//! - what the edge fetchers share ([`outbound`]).

pub mod body;
mod exchange;
pub mod outbound;
pub mod route;
pub mod settings;
mod start;
pub mod trace;

pub use body::{too_large, BodyError, RequestBody, MAX_BODY_BYTES};
pub use exchange::{normalize, request_id, well_formed_request_id, AccessLog, Exchange};
pub use settings::{Deployment, Runtime, SettingsError};
pub use start::StartFailure;

#[cfg(doc)]
use crate::runtime::Rng;
