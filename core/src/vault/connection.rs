//! A user's connection to an upstream provider and the single-flight refresh decision: given
//! the stored row and the time, whether a vend may use the stored token, must refresh it
//! (after winning the atomic claim), must wait for another instance's refresh, or must send
//! the user to connect again. Plain values; the store performs the claim.

use serde::{Deserialize, Serialize};

/// How long before the upstream access token's expiry a vend refreshes it, at most: a token
/// that lived less than twice this is refreshed after half its lifetime instead, so a short
/// lived token (a provider's 60 s tokens) is not refreshed on every vend.
pub const REFRESH_SKEW_SECS: i64 = 60;

/// How long a refresh claim holds other instances off (longer than the upstream call's
/// timeout, so a crashed refresher's claim lapses and another instance takes over).
pub const CLAIM_SECS: i64 = 30;

/// The state of a connection (the admin API's `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Tokens are usable (or refreshable).
    Active,
    /// The provider refused the refresh token: the user must connect again.
    NeedsReauthorization,
    /// Removed by the user or an admin; its tokens are gone.
    Revoked,
}

impl ConnectionState {
    /// The stored and returned name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::NeedsReauthorization => "needs_reauthorization",
            Self::Revoked => "revoked",
        }
    }

    /// The state named `value`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(Self::Active),
            "needs_reauthorization" => Some(Self::NeedsReauthorization),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// What the refresh decision reads from a stored connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The connection's state.
    pub state: ConnectionState,
    /// When the stored access token expires (`None`: the provider gave no lifetime).
    pub expires_at: Option<i64>,
    /// When the stored access token was obtained.
    pub obtained_at: i64,
    /// Whether a refresh token is stored.
    pub has_refresh_token: bool,
    /// Until when another vend holds the refresh claim (0: nobody).
    pub claimed_until: i64,
}

/// What a vend does with the stored token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Use the stored access token.
    Fresh,
    /// Claim the refresh (atomically; the loser re-reads) and refresh.
    Refresh,
    /// Another vend is refreshing: re-read after a short wait.
    Wait,
    /// The user must connect (again).
    Reauthorize,
}

/// The refresh decision at `now`. A vend that has already `waited` for another's refresh
/// takes whatever unexpired token it finds rather than refreshing again (the other vend's new
/// token may be short-lived enough to count as near expiry already).
pub fn freshness(t: Timing, now: i64, waited: bool) -> Freshness {
    if t.state != ConnectionState::Active {
        return Freshness::Reauthorize;
    }
    match t.expires_at {
        None => Freshness::Fresh,
        Some(at) if at - skew(at - t.obtained_at) > now => Freshness::Fresh,
        Some(at) if waited && at > now && t.claimed_until <= now => Freshness::Fresh,
        Some(_) if !t.has_refresh_token => Freshness::Reauthorize,
        Some(_) if t.claimed_until > now => Freshness::Wait,
        Some(_) => Freshness::Refresh,
    }
}

/// How long before expiry a token that lives `lifetime` seconds is refreshed.
fn skew(lifetime: i64) -> i64 {
    (lifetime / 2).clamp(0, REFRESH_SKEW_SECS)
}

/// Whether a stored access token can still be handed out while its refresh failed for a
/// transient reason (it has not actually expired yet).
pub fn usable_despite_failed_refresh(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|at| at > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIVE: Timing = Timing {
        state: ConnectionState::Active,
        expires_at: Some(1_000),
        obtained_at: 0,
        has_refresh_token: true,
        claimed_until: 0,
    };

    #[test]
    fn fresh_until_the_skew_then_refresh() {
        assert_eq!(freshness(ACTIVE, 900, false), Freshness::Fresh);
        assert_eq!(freshness(ACTIVE, 940, false), Freshness::Refresh);
        assert_eq!(freshness(ACTIVE, 5_000, false), Freshness::Refresh);
        let forever = Timing {
            expires_at: None,
            ..ACTIVE
        };
        assert_eq!(freshness(forever, 1_000_000, false), Freshness::Fresh);
    }

    #[test]
    fn after_waiting_for_another_refresh_an_unexpired_token_is_taken() {
        // The other vend's refresh stored a 10-second token, already within half its life.
        let refreshed = Timing {
            expires_at: Some(1_010),
            obtained_at: 1_000,
            ..ACTIVE
        };
        assert_eq!(freshness(refreshed, 1_006, false), Freshness::Refresh);
        assert_eq!(freshness(refreshed, 1_006, true), Freshness::Fresh);
        assert_eq!(freshness(refreshed, 1_010, true), Freshness::Refresh);
        let still_claimed = Timing {
            claimed_until: 1_020,
            ..refreshed
        };
        assert_eq!(freshness(still_claimed, 1_006, true), Freshness::Wait);
    }

    #[test]
    fn a_short_lived_token_is_refreshed_after_half_its_life() {
        // A 10-second token: fresh for 5 s, not refreshed on every vend.
        let short = Timing {
            expires_at: Some(1_010),
            obtained_at: 1_000,
            ..ACTIVE
        };
        assert_eq!(freshness(short, 1_004, false), Freshness::Fresh);
        assert_eq!(freshness(short, 1_005, false), Freshness::Refresh);
        // A one-second token is used until it expires.
        let tiny = Timing {
            expires_at: Some(1_001),
            obtained_at: 1_000,
            ..ACTIVE
        };
        assert_eq!(freshness(tiny, 1_000, false), Freshness::Fresh);
        assert_eq!(freshness(tiny, 1_001, false), Freshness::Refresh);
    }

    #[test]
    fn a_held_claim_means_wait_and_a_lapsed_one_means_refresh() {
        let claimed = Timing {
            claimed_until: 1_010,
            ..ACTIVE
        };
        assert_eq!(freshness(claimed, 1_000, false), Freshness::Wait);
        assert_eq!(freshness(claimed, 1_010, false), Freshness::Refresh);
    }

    #[test]
    fn reauthorize_without_refresh_token_or_when_not_active() {
        let no_rt = Timing {
            has_refresh_token: false,
            ..ACTIVE
        };
        assert_eq!(freshness(no_rt, 900, false), Freshness::Fresh);
        assert_eq!(freshness(no_rt, 990, false), Freshness::Reauthorize);
        for state in [
            ConnectionState::NeedsReauthorization,
            ConnectionState::Revoked,
        ] {
            assert_eq!(
                freshness(Timing { state, ..ACTIVE }, 0, false),
                Freshness::Reauthorize
            );
        }
        assert!(usable_despite_failed_refresh(Some(1_000), 999));
        assert!(!usable_despite_failed_refresh(Some(1_000), 1_000));
    }

    #[test]
    fn states_round_trip() {
        for s in [
            ConnectionState::Active,
            ConnectionState::NeedsReauthorization,
            ConnectionState::Revoked,
        ] {
            assert_eq!(ConnectionState::parse(s.as_str()), Some(s));
        }
        assert_eq!(ConnectionState::parse("gone"), None);
    }
}
