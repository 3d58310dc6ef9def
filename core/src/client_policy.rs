//! Operator policy on clients (SECURITY-CHECKLIST K1–K5 in `docs/security.md`): who may use
//! the `client_credentials` grant (RFC 6749 §4.4: only clients the operator trusts, never a
//! client that merely registered itself), suspension, and the per-client rate limit and daily
//! token quota, counted in the system of record so they hold across replicas and isolates
//! (large limits a run of counts at a time, [`crate::limit_lease`]).
//! The decisions are plain functions over values; [`enforce_limits`] does the counting.

use http::header;

use crate::clients::{Client, ClientKind};
use crate::config::MachineClientsConfig;
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::limit_lease;
use crate::store::repo::client_policies::{self, ClientPolicy};
use crate::store::repo::counters;

/// A suspended client may do nothing at the token or authorization endpoint.
pub fn check_not_suspended(policy: Option<&ClientPolicy>) -> Result<()> {
    match policy.and_then(|p| p.suspended_at) {
        Some(_) => Err(Error::new(
            ErrorCode::UnauthorizedClient,
            "the client is suspended by the operator",
        )),
        None => Ok(()),
    }
}

/// Whether the operator trusts this client: created by an admin (API, CLI, seed). Clients
/// that registered themselves (RFC 7591) or present a metadata document are not trusted
/// unless a policy says so.
pub fn operator_trusted(client: &Client, policy: Option<&ClientPolicy>) -> bool {
    client.kind == ClientKind::Static || policy.is_some_and(|p| p.client_credentials)
}

/// K1: may `client` use `client_credentials`? It must be confidential, have registered the
/// grant, and be operator-trusted.
pub fn machine_grant(client: &Client, policy: Option<&ClientPolicy>) -> Result<()> {
    if client.is_public() {
        return Err(Error::new(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use the client_credentials grant",
        ));
    }
    if !operator_trusted(client, policy) {
        return Err(Error::new(
            ErrorCode::UnauthorizedClient,
            "the operator has not allowed this client to use the client_credentials grant",
        ));
    }
    Ok(())
}

/// The limits that apply to a client (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Token requests per minute.
    pub per_minute: i64,
    /// Access tokens per UTC day.
    pub per_day: i64,
}

/// The client's own limits, else the server's defaults.
pub fn limits(cfg: &MachineClientsConfig, policy: Option<&ClientPolicy>) -> Limits {
    Limits {
        per_minute: policy
            .and_then(|p| p.rate_limit_per_minute)
            .unwrap_or(cfg.rate_limit_per_minute),
        per_day: policy
            .and_then(|p| p.daily_token_quota)
            .unwrap_or(cfg.daily_token_quota),
    }
}

/// The counter keys and windows of a request at `now`: (key, window end, limit, what).
fn windows(client_id: &str, limits: Limits, now: i64) -> Vec<(String, i64, i64, &'static str)> {
    let id = crate::crypto::b64(crate::crypto::sha256(client_id));
    let minute = now.div_euclid(60);
    let day = now.div_euclid(86_400);
    let mut out = Vec::new();
    if limits.per_minute > 0 {
        out.push((
            format!("cc-rate:{id}:{minute}"),
            (minute + 1) * 60,
            limits.per_minute,
            "rate limit",
        ));
    }
    if limits.per_day > 0 {
        out.push((
            format!("cc-quota:{id}:{day}"),
            (day + 1) * 86_400,
            limits.per_day,
            "daily token quota",
        ));
    }
    out
}

/// K3: counts one request against the client's rate limit and daily quota. Over either: 429
/// `slow_down` with `Retry-After` until its window ends. A request that passes counts even if
/// the grant then fails. Counts are reserved in the system of record (atomic increments), a run
/// at a time for large limits ([`crate::limit_lease`]), so the limits hold across replicas.
pub async fn enforce_limits(ctx: &Context, client_id: &str, limits: Limits) -> Result<()> {
    let now = ctx.now();
    let leases = ctx.limit_leases();
    for (key, ends, limit, what) in windows(client_id, limits, now) {
        if leases.take(&key, now) {
            continue;
        }
        let asked = limit_lease::run_for(limit);
        let total = counters::add(ctx.env().sql.as_ref(), &key, asked, ends, now).await?;
        let granted = limit_lease::granted(asked, total, limit);
        if granted == 0 {
            return Err(Error::new(
                ErrorCode::SlowDown,
                format!("the client's {what} ({limit}) is used up; try again later"),
            )
            .with_header(header::RETRY_AFTER, (ends - now).max(1).to_string()));
        }
        leases.keep(&key, granted - 1, ends, now);
    }
    Ok(())
}

/// The stored policy of a client, if any.
pub async fn load(ctx: &Context, client_id: &str) -> Result<Option<ClientPolicy>> {
    Ok(client_policies::get(ctx.env().sql.as_ref(), client_id).await?)
}

/// K4: whether tokens held by `client_id` may still be reported active: the client is not
/// suspended and (for stored, non-URL ids) still registered.
pub async fn holder_active(ctx: &Context, client_id: &str) -> Result<bool> {
    if load(ctx, client_id)
        .await?
        .is_some_and(|p| p.suspended_at.is_some())
    {
        return Ok(false);
    }
    if crate::cimd::is_metadata_document_id(client_id) {
        return Ok(true);
    }
    Ok(
        crate::store::repo::clients::get(ctx.env().sql.as_ref(), client_id)
            .await?
            .is_some(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::ClientMetadata;
    use crate::store::test_store::{test_env_on, TestSql};

    /// K3 with leased counts: two replicas on one store share a limit of 300 a minute (runs
    /// of 3). Taking turns, they let exactly 300 requests through, each reservation is a run,
    /// and the shared counter covers every request let through.
    #[test]
    fn k3_two_replicas_share_a_leased_limit_and_never_pass_it() {
        futures::executor::block_on(async {
            let sql = std::sync::Arc::new(TestSql::memory());
            crate::store::migrations::migrate(sql.as_ref(), 0)
                .await
                .unwrap();
            let replica =
                || Context::new(test_env_on(sql.clone()).0, crate::config::Config::default());
            let (a, b) = (replica(), replica());
            let limits = Limits {
                per_minute: 300,
                per_day: 0,
            };
            let mut passed = 0;
            for i in 0..400 {
                let ctx = if i % 2 == 0 { &a } else { &b };
                match enforce_limits(ctx, "busy", limits).await {
                    Ok(()) => passed += 1,
                    Err(e) => assert_eq!(e.code, ErrorCode::SlowDown),
                }
                if i == 0 {
                    let (key, ..) = windows("busy", limits, a.now())[0].clone();
                    let reserved = counters::get(sql.as_ref(), &key, a.now()).await.unwrap();
                    assert_eq!(reserved, 3, "one request reserves a run of three");
                }
            }
            assert_eq!(passed, 300);
            // A small limit is counted one by one, exactly.
            let small = Limits {
                per_minute: 5,
                per_day: 0,
            };
            let mut passed = 0;
            for i in 0..8 {
                let ctx = if i % 2 == 0 { &a } else { &b };
                passed += usize::from(enforce_limits(ctx, "small", small).await.is_ok());
            }
            assert_eq!(passed, 5);
        });
    }

    fn client(kind: ClientKind, method: &str) -> Client {
        Client {
            client_id: "c".into(),
            secret_hash: None,
            metadata: ClientMetadata {
                token_endpoint_auth_method: method.into(),
                grant_types: vec!["client_credentials".into()],
                ..Default::default()
            },
            kind,
            last_used_at: None,
        }
    }

    fn policy(allowed: bool, suspended: bool) -> ClientPolicy {
        ClientPolicy {
            client_id: "c".into(),
            client_credentials: allowed,
            suspended_at: suspended.then_some(1),
            ..Default::default()
        }
    }

    #[test]
    fn k1_self_registered_clients_need_the_operator() {
        let basic = "client_secret_basic";
        assert!(machine_grant(&client(ClientKind::Static, basic), None).is_ok());
        for kind in [ClientKind::Dynamic, ClientKind::MetadataDocument] {
            let e = machine_grant(&client(kind, basic), None).unwrap_err();
            assert_eq!(e.code, ErrorCode::UnauthorizedClient);
            let denied = policy(false, false);
            assert!(machine_grant(&client(kind, basic), Some(&denied)).is_err());
            let allowed = policy(true, false);
            assert!(machine_grant(&client(kind, basic), Some(&allowed)).is_ok());
        }
        let public = client(ClientKind::Static, "none");
        assert!(machine_grant(&public, Some(&policy(true, false))).is_err());
    }

    #[test]
    fn k2_suspension_refuses() {
        assert!(check_not_suspended(None).is_ok());
        assert!(check_not_suspended(Some(&policy(true, false))).is_ok());
        let e = check_not_suspended(Some(&policy(true, true))).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnauthorizedClient);
    }

    #[test]
    fn k3_limits_fall_back_to_the_defaults_and_windows_are_aligned() {
        let cfg = MachineClientsConfig::default();
        assert_eq!(
            limits(&cfg, None),
            Limits {
                per_minute: 600,
                per_day: 0
            }
        );
        let own = ClientPolicy {
            rate_limit_per_minute: Some(5),
            daily_token_quota: Some(0),
            ..Default::default()
        };
        assert_eq!(
            limits(&cfg, Some(&own)),
            Limits {
                per_minute: 5,
                per_day: 0
            }
        );
        let w = windows(
            "c",
            Limits {
                per_minute: 5,
                per_day: 7,
            },
            86_400 + 125,
        );
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].1, 86_400 + 180, "the minute window ends on the minute");
        assert_eq!(w[1].1, 2 * 86_400, "the day window ends at midnight UTC");
        assert!(windows(
            "c",
            Limits {
                per_minute: 0,
                per_day: 0
            },
            0
        )
        .is_empty());
    }
}
