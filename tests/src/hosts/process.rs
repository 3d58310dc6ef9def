//! A host process that stops when its stdin closes (the Spin test host): started with a pipe
//! only this test process holds, so it also stops when the tests end however they end; and the
//! wait for a host's `/health` (also used for the Worker instances of [`super::miniflare`]).

use std::process::{Child, ChildStdin, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A running host process.
pub struct HostProcess {
    child: Mutex<Child>,
    // Dropping it closes the process's stdin, which stops the process.
    stdin: Mutex<Option<ChildStdin>>,
}

impl HostProcess {
    /// Takes over `child`, whose stdin must be a pipe.
    pub fn new(mut child: Child) -> Self {
        let stdin = child.stdin.take();
        Self {
            child: Mutex::new(child),
            stdin: Mutex::new(stdin),
        }
    }

    /// How the process ended, if it has.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_wait()
            .ok()
            .flatten()
    }

    /// Stops the process (closing its stdin; killing it after 10 s) and waits for it.
    pub fn stop(&self) {
        drop(self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take());
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Polls `health` until it answers 200 (or anything at all, unless `healthy`), the process
    /// exits, or `timeout` passes (then the process is stopped). Errors carry `log()`.
    pub async fn wait_for(
        &self,
        health: &str,
        healthy: bool,
        timeout: Duration,
        log: impl Fn() -> String,
    ) -> Result<(), String> {
        let exited = || {
            self.exit_status()
                .map(|s| format!("the host exited with {s}"))
        };
        let result = wait_for_health(health, healthy, timeout, exited, &log).await;
        if result.is_err() && self.exit_status().is_none() {
            self.stop();
        }
        result
    }
}

/// Polls `health` until it answers 200 (or anything at all, unless `healthy`), `exited()` says
/// why the host is gone, or `timeout` passes. Errors carry `log()`.
pub async fn wait_for_health(
    health: &str,
    healthy: bool,
    timeout: Duration,
    exited: impl Fn() -> Option<String>,
    log: impl Fn() -> String,
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = client.get(health).send().await {
            if r.status().is_success() || !healthy {
                return Ok(());
            }
        }
        if let Some(why) = exited() {
            return Err(format!("{why}:\n{}", log()));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no answer on {health} within {} s:\n{}",
                timeout.as_secs(),
                log()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
