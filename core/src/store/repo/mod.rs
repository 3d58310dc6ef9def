//! Every query the server runs, as typed functions over [`SqlStore`](super::SqlStore).
//! Security-relevant transitions are single conditional statements or one transaction (DESIGN.md rule 4):
//! [`codes::redeem`], [`refresh::rotate`], [`auth_requests::consume`].

pub mod access;
pub mod audit;
pub mod auth_requests;
pub mod client_policies;
pub mod clients;
pub mod codes;
pub mod connections;
pub mod counters;
pub mod federation;
pub mod grants;
pub mod idps;
pub mod keys;
pub mod kms;
pub mod maintenance;
pub mod metrics;
pub mod providers;
pub mod refresh;
pub mod replay;
pub mod resources;
pub mod sealed;
pub mod sessions;
pub mod users;
pub mod workloads;
