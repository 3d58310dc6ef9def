//! The black-box scenario suite (DESIGN.md rule 6): drives a running Portcullis over HTTP
//! only, so the same scenarios run unchanged against the native host, the Worker in
//! Miniflare and the Spin component. Each scenario is a `pub async fn(&Target)` that sets up
//! its own resource, client and user through the admin API with unique names and panics on
//! failure; a host's runner calls each as its own test. Names follow SECURITY-CHECKLIST IDs.
//!
//! Which host each scenario runs on is `tests/tests/common/scenario_lists.rs`: scenarios that
//! trip per-IP limits or change server-wide state are `isolated!` (a server of their own);
//! those that also wait out real time are `waits!` (the same, started first); scenarios that
//! move the server's clock are `clocked!` (hosts with a controlled clock only).

pub mod admin_api;
pub mod admin_openapi;
pub mod algorithms;
pub mod authorize;
pub mod bounded;
pub mod client_auth;
pub mod console;
pub mod console_admin;
pub mod discovery;
pub mod dpop;
pub mod exchange;
pub mod federation;
pub mod flow;
pub mod hardening;
pub mod hygiene;
pub mod jwt_bearer;
pub mod key_schedule;
pub mod kms;
pub mod mcp_conformance;
pub mod metrics;
pub mod on_behalf_of;
pub mod pages;
pub mod private_key_jwt;
pub mod registration;
pub mod rotation;
pub mod support;
pub mod tokens;
pub mod trace_context;
pub mod vault;
pub mod workload;

/// A running server.
#[derive(Debug, Clone)]
pub struct Target {
    /// The issuer URL (no trailing slash): public endpoints live under it.
    pub base: String,
    /// The admin listener's base URL (no trailing slash).
    pub admin: String,
    /// The admin API key.
    pub admin_key: String,
    /// The server's clock when the test controls it (the in-process host only); scenarios
    /// that move time forward (expiry) call [`Target::advance_clock`] and are listed only
    /// for hosts that have one.
    pub clock: Option<std::sync::Arc<portcullis_core::runtime::FixedClock>>,
    /// Whether the admin listener is the native `portcullis` process's, which adds its own
    /// request metrics at `/metrics` (the binary natively or in the container image).
    pub process_metrics: bool,
}

impl Target {
    /// A target; trailing slashes are removed.
    pub fn new(base: &str, admin: &str, admin_key: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            admin: admin.trim_end_matches('/').to_owned(),
            admin_key: admin_key.to_owned(),
            clock: None,
            process_metrics: false,
        }
    }
    /// The same target, served by the native `portcullis` process.
    pub fn with_process_metrics(mut self) -> Self {
        self.process_metrics = true;
        self
    }
    /// The same target with a clock the test controls.
    pub fn with_clock(
        mut self,
        clock: std::sync::Arc<portcullis_core::runtime::FixedClock>,
    ) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Moves the server's clock forward by `secs`; panics on a host whose clock is real
    /// (list such scenarios only for hosts with a controlled clock).
    pub fn advance_clock(&self, secs: i64) {
        self.clock
            .as_ref()
            .expect("this scenario needs a host whose clock the test controls (in-process)")
            .advance(secs);
    }
    /// The server's time in seconds since the epoch: its controlled clock when it has one,
    /// else the system clock. Claims a scenario signs (`iat`, `exp`) after moving the clock
    /// take their time from here.
    pub fn now(&self) -> i64 {
        match &self.clock {
            Some(clock) => portcullis_core::Clock::now(clock.as_ref()),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        }
    }
    /// The absolute URL of a public endpoint path (`/oauth/token`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    /// The issuer parsed.
    pub fn base_url(&self) -> url::Url {
        url::Url::parse(&self.base).expect("the issuer is a URL")
    }
    /// The origin of the issuer (for well-known documents at the origin root).
    pub fn origin(&self) -> String {
        self.base_url().origin().ascii_serialization()
    }
}
