//! Shared test suites, reused unchanged by every host (native, Cloudflare Worker, Spin):
//! [`conformance`] for storage backends (reached through [`bridge`] inside edge runtimes), [`scenarios`] for black-box HTTP scenarios.

pub mod bridge;
pub mod conformance;
pub mod hosts;
pub mod scenarios;
