//! Leased counts for the machine-client rate limit and daily quota (K3 in `docs/security.md`).
//! A replica (a native process, a Worker isolate, a Spin instance) reserves a run of counts in
//! the shared counter at once and hands them out itself, so a busy client costs one counter
//! write per run of requests instead of one per request.
//!
//! The limit still holds across replicas: every request a replica lets through is covered by
//! a count in the system of record. What a replica has reserved and not used yet (fewer than
//! [`run_for`] counts per window) is unavailable to the others, so with several replicas a
//! client may be refused up to that many requests early in a window, never let through one too
//! many. Limits up to 100 a window reserve one count at a time, exactly as without leases.

use std::collections::HashMap;
use std::sync::Mutex;

/// How many counts a replica reserves at once under `limit`: one up to a limit of 100, then
/// 1% of the limit, at most 64.
pub fn run_for(limit: i64) -> i64 {
    (limit / 100).clamp(1, 64)
}

/// How many of `asked` counts a reservation that brought the shared counter to `total` may
/// use under `limit`: all of them, the part below the limit, or none.
pub fn granted(asked: i64, total: i64, limit: i64) -> i64 {
    (asked - (total - limit).max(0)).clamp(0, asked)
}

/// A replica's unused reservations, by counter key.
#[derive(Debug, Default)]
pub struct Leases {
    held: Mutex<HashMap<String, Held>>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    left: i64,
    /// When the counter's window ends (its reservations end with it).
    ends: i64,
}

impl Leases {
    /// Uses one reserved count of `key` if one is left and its window is still open at `now`.
    pub fn take(&self, key: &str, now: i64) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match held.get_mut(key) {
            Some(h) if h.ends > now && h.left > 0 => {
                h.left -= 1;
                true
            }
            _ => false,
        }
    }

    /// Keeps `left` more reserved counts of `key` until `ends` (added to any still held, since
    /// two requests may reserve at once), and forgets the reservations of closed windows.
    pub fn keep(&self, key: &str, left: i64, ends: i64, now: i64) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|_, h| h.ends > now);
        if left <= 0 {
            return;
        }
        let h = held.entry(key.to_owned()).or_insert(Held { left: 0, ends });
        h.left += left;
        h.ends = ends;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_limits_are_counted_one_by_one() {
        assert_eq!(run_for(1), 1);
        assert_eq!(run_for(199), 1);
        assert_eq!(run_for(600), 6);
        assert_eq!(run_for(1_000_000), 64);
        assert_eq!(run_for(0), 1);
    }

    #[test]
    fn a_reservation_past_the_limit_grants_only_what_is_below_it() {
        assert_eq!(granted(6, 6, 600), 6);
        assert_eq!(granted(6, 600, 600), 6);
        assert_eq!(granted(6, 602, 600), 4);
        assert_eq!(granted(6, 606, 600), 0);
        assert_eq!(granted(6, 700, 600), 0);
        assert_eq!(granted(1, 3, 3), 1);
        assert_eq!(granted(1, 4, 3), 0);
    }

    #[test]
    fn reserved_counts_are_used_once_within_their_window() {
        let leases = Leases::default();
        assert!(!leases.take("k", 100));
        leases.keep("k", 2, 120, 100);
        leases.keep("k", 1, 120, 100);
        assert!(leases.take("k", 101));
        assert!(leases.take("k", 102));
        assert!(leases.take("k", 103));
        assert!(!leases.take("k", 104));
        leases.keep("k", 5, 120, 110);
        // The window closes: what is left is gone, and so is the entry once another is kept.
        assert!(!leases.take("k", 120));
        leases.keep("other", 1, 180, 120);
        assert!(leases.held.lock().unwrap().get("k").is_none());
        assert!(leases.take("other", 121));
        assert!(!leases.take("other", 122));
    }
}
