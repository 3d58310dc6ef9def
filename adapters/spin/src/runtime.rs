//! Time and randomness on wasm32-wasip2: `SystemTime` (WASI wall clock) and `getrandom`
//! (WASI random), behind the core's [`Clock`] and [`Rng`] seams.

use portcullis_core::runtime::{Clock, Rng};

/// The WASI wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait::async_trait(?Send)]
impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
    /// WASI's monotonic clock.
    async fn sleep_ms(&self, ms: u64) {
        spin_sdk::wasip3::clocks::monotonic_clock::wait_for(ms.saturating_mul(1_000_000)).await;
    }
}

/// WASI's secure random source.
#[derive(Debug, Default, Clone, Copy)]
pub struct WasiRng;

impl Rng for WasiRng {
    fn fill(&self, buf: &mut [u8]) {
        // WASI random cannot fail short of a broken host; a zeroed buffer would be unsafe,
        // so refuse to go on.
        if let Err(e) = getrandom::getrandom(buf) {
            panic!("the host's random source failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_after_2024_and_randomness_differs() {
        assert!(SystemClock.now() > 1_704_067_200);
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        WasiRng.fill(&mut a);
        WasiRng.fill(&mut b);
        assert_ne!(a, b);
    }
}
