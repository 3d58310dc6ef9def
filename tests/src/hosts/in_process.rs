//! The core as an in-process test host: a `portcullis_core::Portcullis` started inside the
//! test process on a test-controlled [`FixedClock`] and a [`SeededRng`], the native host's
//! SQLite store on a temporary file, its ring crypto provider and its SSRF-checked fetcher,
//! served by a minimal hyper server on two loopback listeners (public ->
//! [`Portcullis::handle`], admin -> [`Portcullis::handle_admin`], the native host's split),
//! so the reqwest and Chromium scenarios run against it unchanged.
//!
//! The clock starts at the wall-clock second the host starts and then stands still until a
//! scenario moves it ([`Target::advance_clock`]). Starting at the real time keeps the
//! server in step with what the scenario helpers do with the system clock: DPoP proofs,
//! client assertions and ID-JAGs they sign carry `iat = now` (the server allows 60 s of skew),
//! and they validate the `exp` of issued tokens against the system clock. Standing still
//! makes every request of a scenario fall in one rate-limit window, so limits and throttles
//! trip deterministically, and nothing expires unless the scenario says so. Because the
//! server's clock falls behind the real one while it stands still, each scenario gets a
//! host of its own ([`ScenarioHost::SHARES`] is false): a host is a few milliseconds of
//! migrations and a key, and a scenario takes seconds, far inside the 60 s skew.
//!
//! Each host serves on a thread of its own (a current-thread tokio runtime), so it does not
//! depend on the runtime of the test that started it and never waits for the test's thread.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use portcullis_core::host::Exchange;
use portcullis_core::runtime::{FixedClock, SeededRng};
use portcullis_core::store::{MemoryKv, SqlStore};
use portcullis_core::{Config, Env, Portcullis};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::suite::ScenarioHost;
use crate::scenarios::support::random_b64;
use crate::scenarios::Target;

/// The test's clock as the server sees it: the time stands still (or moves when a scenario
/// moves it), and waiting (`sleep_ms`, the vault's losers of a refresh race) takes real time
/// on the runtime's timer without moving it.
struct HeldClock(Arc<FixedClock>);

#[async_trait]
impl portcullis_core::runtime::Clock for HeldClock {
    fn now_millis(&self) -> i64 {
        self.0.now_millis()
    }
    async fn sleep_ms(&self, ms: u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// The in-process host for the scenario runner: one host per scenario, clock controlled.
pub struct InProcess;

#[async_trait]
impl ScenarioHost for InProcess {
    type Guard = InProcessHost;
    const SHARES: bool = false;
    const CLOCKED: bool = true;

    async fn start(settings: &[(&str, &str)]) -> Option<(Target, InProcessHost)> {
        let host = InProcessHost::start(settings).await;
        Some((host.target.clone(), host))
    }
}

/// A running in-process server; dropping it stops the server (and, with the last instance
/// on it, removes its database).
pub struct InProcessHost {
    /// The scenario target, with the server's clock.
    pub target: Target,
    /// The server itself (for checks the HTTP surface cannot make).
    pub server: Portcullis,
    /// The server's clock (the same one as `target.clock`).
    pub clock: Arc<FixedClock>,
    cfg: Config,
    database_url: String,
    stop: watch::Sender<bool>,
    _dir: Arc<tempfile::TempDir>,
}

impl Drop for InProcessHost {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Wraps the store a host's core is given (fault injection).
pub type StoreWrapper = Box<dyn FnOnce(Arc<dyn SqlStore>) -> Arc<dyn SqlStore> + Send>;

/// How to start an in-process host beyond the suites' defaults.
#[derive(Default)]
pub struct Options {
    /// Extra settings (core names), applied over the defaults.
    pub settings: Vec<(String, String)>,
    /// The path of the issuer below the host's origin (`/tenant`); empty for the origin.
    pub issuer_path: String,
    /// Wraps the SQL store before the core gets it.
    pub store: Option<StoreWrapper>,
}

/// Seeds of the hosts' RNGs: deterministic per host, different between hosts.
static SEEDS: AtomicU64 = AtomicU64::new(0x5EED_0000);

/// Two loopback listeners (public, admin), bound now so no other process can take them.
fn listeners() -> (std::net::TcpListener, std::net::TcpListener) {
    let bind = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        l.set_nonblocking(true).expect("a non-blocking listener");
        l
    };
    (bind(), bind())
}

fn port(l: &std::net::TcpListener) -> u16 {
    l.local_addr().expect("a bound address").port()
}

impl InProcessHost {
    /// Starts a server with the suites' settings (issuer = its own public URL, fresh admin
    /// and master keys, no registration rate limit) plus `settings` (core setting names);
    /// panics when the configuration is refused or the server does not start.
    pub async fn start(settings: &[(&str, &str)]) -> Self {
        Self::start_with(Options {
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Options::default()
        })
        .await
    }

    /// [`Self::start`] with [`Options`].
    pub async fn start_with(options: Options) -> Self {
        let (public, admin) = listeners();
        let origin = format!("http://127.0.0.1:{}", port(&public));
        let issuer = format!("{origin}{}", options.issuer_path);
        let mut vars: Vec<(String, String)> = vec![
            ("issuer".into(), issuer),
            ("admin_api_key".into(), random_b64(32)),
            ("master_key".into(), random_b64(32)),
            ("registration__rate_limit_per_minute".into(), "0".into()),
        ];
        vars.extend(super::PASSWORD_COST.map(|(k, v)| (k.to_owned(), v.to_owned())));
        for (k, v) in options.settings {
            vars.retain(|(name, _)| *name != k);
            vars.push((k, v));
        }
        let cfg =
            Config::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
                .unwrap_or_else(|e| panic!("the in-process host's settings are refused: {e}"));
        let dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
        let database_url = format!("sqlite://{}", dir.path().join("portcullis.db").display());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the system clock is after 1970")
            .as_secs() as i64;
        let clock = Arc::new(FixedClock::at(now));
        let spawned = Spawn {
            cfg,
            database_url,
            clock,
            dir,
            listeners: (public, admin),
            store: options.store,
        };
        spawned.run().await
    }

    /// The path of the host's SQLite database file.
    pub fn database_path(&self) -> &str {
        self.database_url
            .strip_prefix("sqlite://")
            .unwrap_or(&self.database_url)
    }

    /// Another instance of the same deployment: the same database file, clock, issuer and
    /// keys; listeners, RNG and caches of its own (`target.base` is its own public URL).
    pub async fn sibling(&self) -> Self {
        Spawn {
            cfg: self.cfg.clone(),
            database_url: self.database_url.clone(),
            clock: self.clock.clone(),
            dir: self._dir.clone(),
            listeners: listeners(),
            store: None,
        }
        .run()
        .await
    }
}

/// What starting one instance needs.
struct Spawn {
    cfg: Config,
    database_url: String,
    clock: Arc<FixedClock>,
    dir: Arc<tempfile::TempDir>,
    listeners: (std::net::TcpListener, std::net::TcpListener),
    store: Option<StoreWrapper>,
}

impl Spawn {
    /// Opens the store, starts the core and serves it on a thread of its own.
    async fn run(self) -> InProcessHost {
        let sql = portcullis_core::store::sqlite::SqliteStore::open(&self.database_url)
            .expect("a SQLite file");
        let mut sql: Arc<dyn SqlStore> = Arc::new(sql);
        if let Some(wrap) = self.store {
            sql = wrap(sql);
        }
        let fetcher = portcullis::fetcher::HttpFetcher::new(
            &portcullis::fetcher::FetcherConfig::from_config(&self.cfg),
        )
        .expect("the native fetcher");
        let env = Env {
            clock: Arc::new(HeldClock(self.clock.clone())),
            rng: Arc::new(SeededRng::new(SEEDS.fetch_add(1, Ordering::Relaxed))),
            sql,
            kv: Arc::new(MemoryKv::default()),
            crypto: Arc::new(portcullis::crypto_ring::RingCrypto::new()),
            fetcher: Arc::new(fetcher),
        };
        let server = Portcullis::start(env, self.cfg.clone())
            .await
            .unwrap_or_else(|e| panic!("the in-process server does not start: {e}"));
        let (public, admin) = self.listeners;
        let base = format!("http://127.0.0.1:{}", port(&public));
        let admin_url = format!("http://127.0.0.1:{}", port(&admin));
        let (stop, stopped) = watch::channel(false);
        let serving = server.clone();
        std::thread::Builder::new()
            .name(format!("in-process-{}", port(&public)))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the in-process host");
                rt.block_on(async move {
                    let public = TcpListener::from_std(public).expect("a tokio listener");
                    let admin = TcpListener::from_std(admin).expect("a tokio listener");
                    tokio::join!(
                        serve(public, serving.clone(), false, stopped.clone()),
                        serve(admin, serving, true, stopped),
                    );
                });
            })
            .expect("a thread for the in-process host");
        // The issuer may have a path below this instance's origin: the target's base is the
        // issuer as served here.
        let path = url::Url::parse(server.issuer())
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let admin_key = self
            .cfg
            .admin_api_key
            .as_ref()
            .map(|k| k.expose().to_owned())
            .unwrap_or_default();
        let target = Target::new(&format!("{base}{path}"), &admin_url, &admin_key)
            .with_clock(self.clock.clone());
        InProcessHost {
            target,
            server,
            clock: self.clock,
            cfg: self.cfg,
            database_url: self.database_url,
            stop,
            _dir: self.dir,
        }
    }
}

/// Accepts connections on `listener` until `stop` turns true; each connection is served on a
/// task of its own (ended with the runtime when the host stops).
async fn serve(
    listener: TcpListener,
    server: Portcullis,
    admin: bool,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(answer(&server, admin, peer, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One request through the core's host layer, as every adapter does it: the exchange (request
/// id, normalised request, `x-request-id` on the answer), the body read under the one limit
/// (413 and the connection closed beyond it), the peer address, then the core.
async fn answer(
    server: &Portcullis,
    admin: bool,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let exchange = Exchange::begin(&parts, server.env().rng.as_ref());
    let resp = match portcullis_core::host::body::read(&parts.headers, body).await {
        Ok(body) => {
            let req = exchange.request(parts, body, Some(peer.ip()));
            if admin {
                server.handle_admin(req).await
            } else {
                server.handle(req).await
            }
        }
        Err(e) => {
            let mut resp = e.response();
            resp.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    };
    exchange.finish(resp, 0.0).0.map(Full::new)
}
