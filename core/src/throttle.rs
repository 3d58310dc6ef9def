//! Fixed-window limits on unauthenticated traffic (SECURITY-CHECKLIST H4, G2; T1–T2 in
//! `docs/security.md`): failed sign-ins per username and per client address, registrations per
//! client address. Counters live in the system of record ([`counters`]), never in a cache an
//! attacker can fill and flush, and each attempt is reserved with one atomic increment before
//! it is checked, so parallel attempts cannot slip past the limit. IPv6 peers are counted per
//! /64, which one host usually owns whole.

use std::net::IpAddr;

use crate::context::Context;
use crate::error::Result;
use crate::store::repo::counters;

/// The bucket of a peer address ([`crate::request::ip_bucket`]: the address, or its /64
/// for IPv6). Requests without a peer address share one bucket.
pub fn ip_bucket(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "unknown".into(), crate::request::ip_bucket)
}

/// One counted window: the counter's key and when the window ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Counter key (the name and the window number).
    pub key: String,
    /// End of the window, seconds since the epoch.
    pub ends: i64,
}

impl Window {
    /// The window of length `secs` containing `now`, for counter `name`.
    pub fn at(name: &str, secs: i64, now: i64) -> Self {
        let secs = secs.max(1);
        let n = now.div_euclid(secs);
        Self {
            key: format!("{name}:{n}"),
            ends: (n + 1) * secs,
        }
    }

    /// Seconds until the window ends (at least 1), for `Retry-After`.
    pub fn retry_after(&self, now: i64) -> i64 {
        (self.ends - now).max(1)
    }
}

/// Reserves one attempt in `w`; `true` when it is within `limit` (0: no limit).
pub async fn reserve(ctx: &Context, w: &Window, limit: i64) -> Result<bool> {
    if limit <= 0 {
        return Ok(true);
    }
    let n = counters::increment(ctx.env().sql.as_ref(), &w.key, w.ends, ctx.now()).await?;
    Ok(n <= limit)
}

/// Gives back one reserved attempt (a sign-in that succeeded).
pub async fn refund(ctx: &Context, w: &Window) -> Result<()> {
    counters::add(ctx.env().sql.as_ref(), &w.key, -1, w.ends, ctx.now()).await?;
    Ok(())
}

/// Forgets a window's count (a user's failures after a successful sign-in).
pub async fn clear(ctx: &Context, w: &Window) -> Result<()> {
    counters::reset(ctx.env().sql.as_ref(), &w.key).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t2_ipv6_peers_share_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_bucket(Some(a)), ip_bucket(Some(b)));
        assert_ne!(ip_bucket(Some(a)), ip_bucket(Some(c)));
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        assert_eq!(ip_bucket(Some(mapped)), "198.51.100.7");
        assert_eq!(ip_bucket(None), "unknown");
    }

    #[test]
    fn windows_are_aligned() {
        let w = Window::at("x", 60, 125);
        assert_eq!(
            w,
            Window {
                key: "x:2".into(),
                ends: 180
            }
        );
        assert_eq!(w.retry_after(125), 55);
        assert_eq!(w.retry_after(400), 1);
    }
}
