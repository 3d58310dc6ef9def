//! `portcullis serve` as a child process, for the runners that start the native binary
//! (SQLite, PostgreSQL, two instances) and for scenarios that need a second server next to the
//! one under test (the vault's upstream): the binary (brought up to date with cargo, or
//! `PORTCULLIS_BIN`), servers started with explicit issuer, ports, keys and database URL.
//!
//! Nothing here outlives the test process: each server and its directory have an
//! [`OnExit`] guard.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::on_exit::{temp_dir, OnExit};
use crate::scenarios::support::random_b64;
use crate::scenarios::Target;

/// How long a server may take to answer `/health` after it was spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `portcullis` binary, built (a no-op when up to date) on first use.
pub fn binary() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("PORTCULLIS_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test>-<hash> -> target/<profile>/portcullis
        let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
        let bin = dir.join(format!("portcullis{}", std::env::consts::EXE_SUFFIX));
        build(&bin);
        assert!(
            bin.exists(),
            "the portcullis binary is missing at {}: build it with `cargo build -p portcullis` \
             or set PORTCULLIS_BIN",
            bin.display()
        );
        bin
    })
    .clone()
}

/// `cargo build --workspace --bins` (the same feature unification as `cargo test
/// --workspace`, so a no-op after it). Skipped when cargo is not running us.
///
/// The variables cargo sets for a running test (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, …) are
/// left out: build scripts watch some of them (ring's `rerun-if-env-changed`), so with them this
/// build reran ring's build script and rebuilt ring, rustls, reqwest and the binary, and the next
/// `cargo test` rebuilt them all back.
fn build(bin: &Path) {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return;
    };
    let profile_dir = bin.parent().expect("profile dir");
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let target_dir = profile_dir.parent().expect("target dir");
    let mut cmd = Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_for_a_test) {
            cmd.env_remove(name);
        }
    }
    cmd.args(["build", "--quiet", "--workspace", "--bins"])
        .arg("--manifest-path")
        .arg(crate::manifest_dir().join("../Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("running cargo build");
    assert!(status.success(), "cargo build --workspace --bins failed");
}

/// Whether cargo sets `name` for the test it runs (the Cargo book, "Environment variables Cargo
/// sets for crates"), as opposed to a setting of the user's for cargo itself.
fn set_for_a_test(name: &str) -> bool {
    const PREFIXES: [&str; 5] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_BIN_",
        "CARGO_CRATE_",
        "CARGO_CFG_",
    ];
    const NAMES: [&str; 4] = [
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

/// A free loopback port (free when asked; callers retry on a lost race).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// How to start one `portcullis serve`.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `PORTCULLIS_ISSUER`.
    pub issuer: String,
    /// Public port on 127.0.0.1.
    pub port: u16,
    /// Admin port on 127.0.0.1.
    pub admin_port: u16,
    /// `PORTCULLIS_DATABASE_URL`.
    pub database_url: String,
    /// `PORTCULLIS_ADMIN_API_KEY`.
    pub admin_key: String,
    /// `PORTCULLIS_MASTER_KEY` (instances sharing a database must share it).
    pub master_key: String,
    /// Extra `PORTCULLIS_*` settings.
    pub settings: Vec<(String, String)>,
}

impl Spec {
    /// A server on fresh ports whose issuer is its own public URL.
    pub fn new(database_url: &str) -> Self {
        let port = free_port();
        let mut admin_port = free_port();
        while admin_port == port {
            admin_port = free_port();
        }
        Self {
            issuer: format!("http://127.0.0.1:{port}"),
            port,
            admin_port,
            database_url: database_url.to_owned(),
            admin_key: random_b64(32),
            master_key: random_b64(32),
            settings: Vec::new(),
        }
    }

    /// Another instance of the same deployment: same issuer, database and keys, its own
    /// fresh ports.
    pub fn sibling(&self) -> Self {
        let mut s = Self::new(&self.database_url);
        s.issuer.clone_from(&self.issuer);
        s.admin_key.clone_from(&self.admin_key);
        s.master_key.clone_from(&self.master_key);
        s.settings.clone_from(&self.settings);
        s
    }

    /// Adds a `PORTCULLIS_*` setting.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// This instance's public base URL (where requests go; may differ from the issuer).
    pub fn public_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// This instance's admin base URL.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }
}

/// A running `portcullis serve`.
pub struct Server {
    /// How it was started.
    pub spec: Spec,
    /// A scenario target on this instance: its own public URL as `base`.
    pub target: Target,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    // Never reaped while this process runs, so its pid cannot be reused before the stop
    // guard signals it.
    _child: Mutex<Child>,
    _stop: OnExit,
    _dir: OnExit,
}

impl Server {
    /// The server's log so far, for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (`KILL`, `TERM`, as `kill -s` names them) to the server, waits until it
    /// has exited and returns how it was started (to start it again), its exit status and its
    /// log.
    pub fn stop_with(self, signal: &str) -> (Spec, std::process::ExitStatus, String) {
        let Server {
            spec,
            log,
            _child,
            _stop,
            _dir,
            ..
        } = self;
        _stop.cancel();
        let mut child = _child.into_inner().unwrap_or_else(|e| e.into_inner());
        let sent = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -s {signal} failed");
        let status = child.wait().expect("waiting for the server");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (spec, status, text)
    }
}

/// Starts a server and waits (at most [`START_TIMEOUT`]) until `/health` answers 200.
pub async fn start(spec: Spec) -> Result<Server, String> {
    let bin = binary();
    let (dir, dir_guard) = temp_dir("srv");
    let log = dir.join("server.log");
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&bin);
    cmd.arg("serve");
    // The server refuses unknown PORTCULLIS_* settings: start from a clean slate.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PORTCULLIS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PORTCULLIS_ISSUER", &spec.issuer)
        .env("PORTCULLIS_LISTEN", format!("127.0.0.1:{}", spec.port))
        .env(
            "PORTCULLIS_ADMIN_LISTEN",
            format!("127.0.0.1:{}", spec.admin_port),
        )
        .env("PORTCULLIS_DATABASE_URL", &spec.database_url)
        .env("PORTCULLIS_ADMIN_API_KEY", &spec.admin_key)
        .env("PORTCULLIS_MASTER_KEY", &spec.master_key)
        // The suites register many clients from one IP; the limit itself is a unit test.
        .env("PORTCULLIS_REGISTRATION__RATE_LIMIT_PER_MINUTE", "0")
        .env("PORTCULLIS_LOG_FORMAT", "text")
        .envs(super::password_cost_vars())
        .envs(spec.settings.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
    let stop = OnExit::run(&["kill", "-TERM", &child.id().to_string()]);
    let health = format!("{}/health", spec.public_url());
    let deadline = Instant::now() + START_TIMEOUT;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    loop {
        if let Ok(r) = client.get(&health).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            stop.cancel();
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("the server exited with {status}:\n{out}"));
        }
        if Instant::now() > deadline {
            stop.cancel();
            let _ = child.kill();
            let _ = child.wait();
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!(
                "no answer on {health} within {} s:\n{out}",
                START_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let target =
        Target::new(&spec.public_url(), &spec.admin_url(), &spec.admin_key).with_process_metrics();
    Ok(Server {
        spec,
        target,
        log,
        _child: Mutex::new(child),
        _stop: stop,
        _dir: dir_guard,
    })
}

/// Starts a server, retrying with fresh ports when a start fails (a port taken between
/// [`free_port`] and the bind; [`crate::start_with_retries`]). `make` builds the spec for each
/// attempt; every attempt keeps the first one's master key, because a failed attempt may
/// already have sealed the signing key into the database under it.
pub async fn start_retrying(make: impl Fn() -> Spec) -> Server {
    let mut master_key: Option<String> = None;
    crate::start_with_retries("portcullis serve", || {
        let mut spec = make();
        let key = master_key.get_or_insert_with(|| spec.master_key.clone());
        spec.master_key.clone_from(key);
        start(spec)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::set_for_a_test;

    #[test]
    fn the_inner_build_keeps_cargo_settings_and_drops_what_cargo_set_for_the_test() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "OUT_DIR",
        ] {
            assert!(set_for_a_test(name), "{name}");
        }
        for name in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_INCREMENTAL",
            "CARGO_BUILD_JOBS",
            "PATH",
        ] {
            assert!(!set_for_a_test(name), "{name}");
        }
    }
}
