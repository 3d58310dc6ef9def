//! The server object: a [`Context`] started once per process or isolate (migrations, seeds,
//! a signing key), and the two entry points [`Portcullis::handle`] (public listener) and
//! [`Portcullis::handle_admin`] (admin API).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};

use crate::config::Config;
use crate::context::Context;
use crate::env::Env;
pub use crate::error::StartError;

impl From<StartError> for crate::host::StartFailure {
    fn from(e: StartError) -> Self {
        Self::Start(e.to_string())
    }
}

/// A started authorization server. Cheap to share (`Arc` inside); stateless apart from caches.
/// Dereferences to its [`Context`], which is what the protocol modules take.
#[derive(Clone)]
pub struct Portcullis {
    ctx: Arc<Context>,
}

impl std::ops::Deref for Portcullis {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl Portcullis {
    /// Validates the configuration, applies migrations, applies seeds and makes sure a
    /// signing key exists.
    pub async fn start(env: Env, cfg: Config) -> Result<Self, StartError> {
        cfg.validate()?;
        let now = env.clock.now();
        crate::store::migrations::migrate(env.sql.as_ref(), now).await?;
        let server = Self {
            ctx: Arc::new(Context::new(env, cfg)),
        };
        crate::admin::seed::apply(&server).await?;
        server
            .keys()
            .ensure_active(server.env())
            .await
            .map_err(|e| StartError::Init(format!("signing key: {e}")))?;
        Ok(server)
    }

    /// The protocol modules' view of this server.
    pub fn context(&self) -> &Context {
        &self.ctx
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
        if path == crate::sql_bridge::PATH {
            return crate::sql_bridge::serve(self, req).await;
        }
        self.handle(req).await
    }

    /// Handles a request to the admin API (`/admin/...`).
    pub async fn handle_admin(&self, req: Request<Bytes>) -> Response<Bytes> {
        crate::admin::route(self, req).await
    }
}
