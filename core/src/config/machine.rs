//! Settings for machine clients (RFC 6749 §4.4 `client_credentials`): whether clients that
//! registered themselves may ever be allowed the grant, the default rate limit and daily
//! quota, and the seeded per-client policies.

use serde::{Deserialize, Serialize};

/// What dynamic registration (RFC 7591) does with a client that asks for
/// `client_credentials`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineRegistration {
    /// Refused with `invalid_client_metadata` (the default): machine clients are created by an
    /// operator (admin API, CLI, configuration).
    Refuse,
    /// Registered, but refused tokens (`unauthorized_client`) until an operator allows the
    /// client (`PUT /admin/clients/{id}/policy`, `portcullis client policy`).
    Approval,
}

/// `[machine_clients]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MachineClientsConfig {
    /// Dynamic registration of `client_credentials` clients (default `refuse`).
    pub dynamic_registration: MachineRegistration,
    /// `client_credentials` token requests per client per minute (0: no limit; default 600).
    pub rate_limit_per_minute: i64,
    /// `client_credentials` access tokens per client per UTC day (0: no quota; default 0).
    pub daily_token_quota: i64,
}

impl Default for MachineClientsConfig {
    fn default() -> Self {
        Self {
            dynamic_registration: MachineRegistration::Refuse,
            rate_limit_per_minute: 600,
            daily_token_quota: 0,
        }
    }
}

/// `[[client_policies]]`: an operator's policy for one client, applied on start.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SeedClientPolicy {
    /// The client id (a stored client's id or a client ID metadata document URL).
    pub client_id: String,
    /// Allow the `client_credentials` grant.
    #[serde(default)]
    pub client_credentials: bool,
    /// Token requests per minute (default: `machine_clients.rate_limit_per_minute`).
    #[serde(default)]
    pub rate_limit_per_minute: Option<i64>,
    /// Access tokens per UTC day (default: `machine_clients.daily_token_quota`).
    #[serde(default)]
    pub daily_token_quota: Option<i64>,
}
