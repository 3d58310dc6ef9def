//! The Portcullis native host as a library: SQLite/PostgreSQL storage, the ring crypto
//! provider, the SSRF-safe fetcher, configuration loading and the tokio HTTP server. The
//! `portcullis` binary (`main.rs`) and the shared test suites build on these.

#![forbid(unsafe_code)]

pub mod admin_cli;
pub mod argon2_pool;
pub mod config;
pub mod crypto_ring;
pub mod fetcher;
pub mod listener;
pub mod metrics;
pub mod server;
pub mod store;
