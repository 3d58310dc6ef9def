//! Shared test suites, reused unchanged by every host (native, Cloudflare Worker, Spin):
//! [`conformance`] for storage backends, [`scenarios`] for black-box HTTP scenarios.

pub mod conformance;
pub mod hosts;
pub mod scenarios;
