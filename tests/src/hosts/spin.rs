//! The Spin component as a test host: the test component (`scripts/build-spin --test`, with
//! the `sql-bridge` feature) served by `portcullis-spin-host` (tests/spin-host, wasmtime with
//! Spin's SQLite, key-value and variables APIs) on a loopback port, with its own SQLite file.
//!
//! A host lives as long as its [`SpinHost`] or, for one kept in a static, until this test
//! process exits: it is started with `--exit-on-stdin-eof` and its stdin is a pipe only this
//! process holds, so it stops however this process ends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::HostProcess;
use crate::scenarios::support::random_b64;
use crate::scenarios::Target;

/// How long the host may take to print its address and answer `/health`.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

pub use crate::repo_root;

/// The shared cargo target directory (`CARGO_TARGET_DIR`, else `<repo>/target`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// Where `scripts/build-spin` puts the host binary (`PORTCULLIS_SPIN_HOST` overrides).
pub fn default_host_path() -> PathBuf {
    target_dir().join("release/portcullis-spin-host")
}

/// Where `scripts/build-spin --test` puts the test component (`PORTCULLIS_SPIN_COMPONENT`
/// overrides).
pub fn default_component_path() -> PathBuf {
    target_dir().join("spin/test/portcullis_spin.wasm")
}

/// The host binary and test component, or `None` (the caller skips, with a message) when
/// either is missing. With `TEST_REQUIRE_SPIN=1` (set by `scripts/test`) a missing artifact
/// is a failure instead.
pub fn artifacts() -> Option<(PathBuf, PathBuf)> {
    let host = std::env::var_os("PORTCULLIS_SPIN_HOST")
        .map(PathBuf::from)
        .unwrap_or_else(default_host_path);
    let component = std::env::var_os("PORTCULLIS_SPIN_COMPONENT")
        .map(PathBuf::from)
        .unwrap_or_else(default_component_path);
    let missing: Vec<String> = [(&host, "host"), (&component, "test component")]
        .iter()
        .filter(|(p, _)| !p.is_file())
        .map(|(p, what)| format!("the Spin {what} at {}", p.display()))
        .collect();
    if missing.is_empty() {
        return Some((host, component));
    }
    let why = format!(
        "{} missing (run scripts/build-spin --test)",
        missing.join(" and ")
    );
    assert!(
        std::env::var("TEST_REQUIRE_SPIN").map_or(true, |v| v.is_empty() || v == "0"),
        "TEST_REQUIRE_SPIN is set but {why}"
    );
    eprintln!("skipped: {why}");
    None
}

/// A running component in the Spin test host.
pub struct SpinHost {
    /// A scenario target: one listener, admin API under `/admin/`.
    pub target: Target,
    /// The admin API key.
    pub admin_key: String,
    /// The host's stderr (host messages and the component's output).
    pub log: PathBuf,
    process: HostProcess,
}

impl SpinHost {
    /// Starts the component with the suites' settings (issuer = its own URL, fresh admin and
    /// master keys, no registration rate limit) plus `settings` (core setting names such as
    /// `dpop__require_nonce`), on the SQLite file `database`, and waits until `/health`
    /// answers 200. Panics after three failed starts.
    pub async fn start(
        built: &(PathBuf, PathBuf),
        database: &Path,
        settings: &[(&str, &str)],
    ) -> Self {
        Self::start_checked(built, database, settings, true, &[]).await
    }

    /// [`Self::start`] with outbound HTTP allowed to `outbound` (the host's
    /// `--allow-outbound` rules, `scheme://host:port`, as spin.toml's `allowed_outbound_hosts`).
    pub async fn start_with_outbound(
        built: &(PathBuf, PathBuf),
        database: &Path,
        settings: &[(&str, &str)],
        outbound: &[&str],
    ) -> Self {
        Self::start_checked(built, database, settings, true, outbound).await
    }

    /// [`Self::start`] for a configuration the component is expected to refuse: waits until
    /// `/health` answers at all (whatever the status).
    pub async fn start_misconfigured(
        built: &(PathBuf, PathBuf),
        database: &Path,
        settings: &[(&str, &str)],
    ) -> Self {
        Self::start_checked(built, database, settings, false, &[]).await
    }

    async fn start_checked(
        (host, component): &(PathBuf, PathBuf),
        database: &Path,
        settings: &[(&str, &str)],
        healthy: bool,
        outbound: &[&str],
    ) -> Self {
        // One master key for every attempt: they share the database file.
        let master_key = random_b64(32);
        crate::start_with_retries("the Spin component", || {
            Self::try_start(
                host,
                component,
                database,
                settings,
                healthy,
                &master_key,
                outbound,
            )
        })
        .await
    }

    async fn try_start(
        host: &Path,
        component: &Path,
        database: &Path,
        settings: &[(&str, &str)],
        healthy: bool,
        master_key: &str,
        outbound: &[&str],
    ) -> Result<Self, String> {
        // The issuer must be the host's own URL, known only once it has bound a port: bind a
        // free port first (a lost race is retried by `start`).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| e.to_string())?;
        let base = format!("http://127.0.0.1:{port}");
        let admin_key = random_b64(32);
        let mut vars: Vec<(String, String)> = vec![
            ("issuer".into(), base.clone()),
            ("admin_api_key".into(), admin_key.clone()),
            ("master_key".into(), master_key.to_owned()),
            ("registration__rate_limit_per_minute".into(), "0".into()),
        ];
        vars.extend(super::PASSWORD_COST.map(|(k, v)| (k.to_owned(), v.to_owned())));
        vars.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let log = database.with_extension(format!("{port}.log"));
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(host);
        cmd.arg("--component")
            .arg(component)
            .arg("--sqlite")
            .arg(database)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--exit-on-stdin-eof",
            ]);
        for rule in outbound {
            cmd.arg("--allow-outbound").arg(rule);
        }
        for (k, v) in &vars {
            cmd.arg("--var")
                .arg(format!("{}={v}", spin_variable_name(k)));
        }
        // Spin's environment provider would add SPIN_VARIABLE_* from our environment.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SPIN_VARIABLE_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", host.display()))?;
        let stdout = child.stdout.take();
        let spawned = Self {
            target: Target::new(&base, &base, &admin_key),
            admin_key,
            log,
            process: HostProcess::new(child),
        };
        // The first line says where it listens; later output is not read (the pipe stays
        // open: a closed stdout would fail the component's writes).
        let first = tokio::task::spawn_blocking(move || {
            let mut out = BufReader::new(stdout?);
            let mut line = String::new();
            out.read_line(&mut line).ok()?;
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            Some(line)
        });
        match tokio::time::timeout(START_TIMEOUT, first).await {
            Ok(Ok(Some(line))) if line.starts_with("listening on ") => {}
            _ => {
                spawned.stop();
                return Err(format!("the host did not start:\n{}", spawned.log_text()));
            }
        }
        let log = || spawned.log_text();
        spawned
            .process
            .wait_for(&spawned.target.url("/health"), healthy, START_TIMEOUT, log)
            .await?;
        Ok(spawned)
    }

    /// The host's output so far, for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the host (closing its stdin) and waits for it.
    pub fn stop(&self) {
        self.process.stop();
    }
}

/// The Spin variable of a core setting: Spin variable names cannot contain `__`, so nested
/// settings use one underscore (`registration__mode` -> `registration_mode`), the core's
/// mapping ([`portcullis_core::host::Runtime::variable`]).
pub fn spin_variable_name(setting: &str) -> String {
    portcullis_core::host::Runtime::Spin.variable(setting)
}
