//! The server object: configuration plus the runtime seams, started once per process or
//! isolate, and the two entry points [`Portcullis::handle`] (public listener) and
//! [`Portcullis::handle_admin`] (admin API).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};

use crate::config::{Config, ConfigError};
use crate::crypto::CryptoProvider;
use crate::env::{Clock, Fetcher, Rng};
use crate::keys::KeyRing;
use crate::store::{KvStore, SqlStore, StoreError};

/// Everything the core needs from its host.
#[derive(Clone)]
pub struct Env {
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Secure randomness.
    pub rng: Arc<dyn Rng>,
    /// System of record.
    pub sql: Arc<dyn SqlStore>,
    /// Caches.
    pub kv: Arc<dyn KvStore>,
    /// Signing and verification.
    pub crypto: Arc<dyn CryptoProvider>,
    /// Outbound HTTP (SSRF-checked by the implementation after DNS resolution).
    pub fetcher: Arc<dyn Fetcher>,
}

/// Why the server refused to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An unsafe or malformed setting.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Storage failed during migrations or seeding.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A seed or key could not be prepared.
    #[error("{0}")]
    Init(String),
}

impl From<StartError> for crate::host::StartFailure {
    fn from(e: StartError) -> Self {
        Self::Start(e.to_string())
    }
}

/// A started authorization server. Cheap to share (`Arc` inside); stateless apart from caches.
#[derive(Clone)]
pub struct Portcullis {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub cfg: Config,
    pub env: Env,
    pub keys: KeyRing,
    /// The issuer without a trailing slash.
    pub issuer: String,
}

impl Portcullis {
    /// Validates the configuration, applies migrations, applies seeds and makes sure a
    /// signing key exists.
    pub async fn start(env: Env, cfg: Config) -> Result<Self, StartError> {
        cfg.validate()?;
        let now = env.clock.now();
        crate::store::migrations::migrate(env.sql.as_ref(), now).await?;
        let keys = KeyRing::new(&cfg);
        let server = Self {
            inner: Arc::new(Inner {
                issuer: cfg.issuer().to_owned(),
                cfg,
                env,
                keys,
            }),
        };
        crate::admin::seed::apply(&server).await?;
        server
            .inner
            .keys
            .ensure_active(&server.inner.env)
            .await
            .map_err(|e| StartError::Init(format!("signing key: {e}")))?;
        Ok(server)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// The runtime seams.
    pub fn env(&self) -> &Env {
        &self.inner.env
    }

    /// The issuer identifier, without a trailing slash.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The signing key ring.
    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    /// Current time, seconds.
    pub fn now(&self) -> i64 {
        self.inner.env.clock.now()
    }

    /// Handles a request to the public listener.
    pub async fn handle(&self, req: Request<Bytes>) -> Response<Bytes> {
        crate::endpoints::route(self, req).await
    }

    /// Handles every request of a host with one listener (the edge runtimes): `/admin/...`
    /// goes to the admin API (same API-key rule as the native admin listener), the SQL bridge
    /// path to the bridge when built with the `sql-bridge` feature, everything else to
    /// [`Self::handle`].
    pub async fn handle_any(&self, req: Request<Bytes>) -> Response<Bytes> {
        let path = req.uri().path();
        if path == "/admin" || path.starts_with("/admin/") {
            return self.handle_admin(req).await;
        }
        #[cfg(feature = "sql-bridge")]
        if path == crate::store::bridge::PATH {
            return crate::store::bridge::serve(self, req).await;
        }
        self.handle(req).await
    }

    /// Handles a request to the admin API (`/admin/...`).
    pub async fn handle_admin(&self, req: Request<Bytes>) -> Response<Bytes> {
        crate::admin::route(self, req).await
    }
}
