//! Time and randomness on Workers: the clock is `Date.now()` (`SystemTime::now()` panics on
//! wasm32-unknown-unknown) and randomness is `crypto.getRandomValues` (getrandom's `js`
//! backend).

use portcullis_core::{Clock, Rng};

/// `Date.now()`. Workers advance it only across I/O (a Spectre mitigation), which is
/// precise enough for token lifetimes in seconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkersClock;

#[async_trait::async_trait(?Send)]
impl Clock for WorkersClock {
    fn now_millis(&self) -> i64 {
        i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX)
    }
    /// A JavaScript timer (`setTimeout`).
    async fn sleep_ms(&self, ms: u64) {
        worker::Delay::from(std::time::Duration::from_millis(ms)).await;
    }
}

/// `crypto.getRandomValues`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsRng;

impl Rng for JsRng {
    fn fill(&self, buf: &mut [u8]) {
        // Without secure randomness no secret can be minted safely: stop rather than go on.
        getrandom::getrandom(buf).expect("crypto.getRandomValues unavailable");
    }
}
