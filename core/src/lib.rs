//! Portcullis core: an OAuth 2.1 authorization server for the Model Context Protocol as a
//! library. It does no I/O of its own (DESIGN.md rule 1): time, randomness, storage,
//! outbound HTTP and signing come in through [`Env`]; requests come in as
//! `http::Request<Bytes>` and leave as `http::Response<Bytes>` (rule 2).

#![forbid(unsafe_code)]

pub mod access_token;
pub mod admin;
pub mod admin_key;
pub mod audit;
pub mod cimd;
pub mod client_auth;
pub mod client_lookup;
pub mod client_metadata;
pub mod client_policy;
pub mod clients;
pub mod config;
pub mod context;
pub mod crypto;
pub mod dpop;
pub mod endpoints;
pub mod env;
pub mod error;
pub mod federation;
pub mod grant_types;
pub mod host;
pub mod idp;
pub mod idp_policy;
pub mod jose;
pub mod keys;
pub mod kms;
pub mod limit_lease;
pub mod maintenance;
pub mod metrics;
pub mod paths;
pub mod pkce;
pub mod redirect;
pub mod registration;
pub mod remote;
pub mod request;
pub mod resource;
pub mod resource_server;
pub mod response;
pub mod runtime;
pub mod scope;
pub mod secret;
pub mod server;
pub mod sql_bridge;
pub mod ssrf;
pub mod store;
pub mod text;
pub mod throttle;
pub mod vault;
pub mod workload;

pub use bytes::Bytes;
pub use config::Config;
pub use context::Context;
pub use env::Env;
pub use error::{Error, ErrorCode};
pub use request::{RemoteAddr, RequestId};
pub use runtime::{Clock, Fetcher, Rng};
pub use secret::Secret;
pub use server::{Portcullis, StartError};
