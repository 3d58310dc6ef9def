//! Shared test suites, reused unchanged by every host (native, Cloudflare Worker, Spin):
//! [`conformance`] for storage backends (reached through [`bridge`] inside edge runtimes), [`scenarios`] for black-box HTTP scenarios,
//! [`chromium`] for the page scenarios in a real browser.

pub mod bridge;
pub mod chromium;
pub mod conformance;
pub mod hosts;
pub mod scenarios;
