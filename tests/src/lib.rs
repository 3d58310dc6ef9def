//! Shared test suites, reused unchanged by every host (native, Cloudflare Worker, Spin):
//! [`conformance`] for storage backends (reached through [`bridge`] inside edge runtimes), [`scenarios`] for black-box HTTP scenarios,
//! [`chromium`] for the page scenarios in a real browser.

pub mod bridge;
pub mod chromium;
pub mod conformance;
pub mod doc_server;
pub mod hosts;
pub mod jose_signer;
pub mod on_exit;
pub mod scenarios;
pub mod transit_server;

/// Locks `m`, going on after a panic in another test thread poisoned it.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Node binary for the helpers this crate runs (the Miniflare runner, the `jose` signer):
/// `PORTCULLIS_NODE`, else `node` on PATH (Miniflare runs on Node 20; wrangler itself needs 22,
/// which `tests/worker/node_modules/.bin/node` provides).
pub fn node() -> std::path::PathBuf {
    std::env::var_os("PORTCULLIS_NODE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("node"))
}

/// The repository root (the parent of [`manifest_dir`]).
pub fn repo_root() -> std::path::PathBuf {
    manifest_dir()
        .parent()
        .expect("the test crate lives in the repository")
        .to_path_buf()
}

/// This crate's directory (`tests/`): the `CARGO_MANIFEST_DIR` cargo sets when it runs a test,
/// else the one this crate was compiled in. A test binary reused from a build cache shared
/// with another checkout (CI's clean clone) must read the files of the checkout it runs in.
pub fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Starts a host or the browser with `attempt`, trying twice more when a start fails (another
/// process may take a host's port between choosing it and the bind; a loaded machine may time
/// out a browser session's start); panics with every attempt's error. Host attempts that share
/// a database share its master key, made once outside `attempt`: a failed attempt may already
/// have sealed the signing key into the database under it.
pub async fn start_with_retries<T, F>(what: &str, mut attempt: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Result<T, String>>,
{
    let mut errors = Vec::new();
    for _ in 0..3 {
        match attempt().await {
            Ok(started) => return started,
            Err(e) => errors.push(e),
        }
    }
    panic!(
        "{what} did not start in {} attempts:\n{}",
        errors.len(),
        errors.join("\n--- the next attempt:\n")
    );
}
