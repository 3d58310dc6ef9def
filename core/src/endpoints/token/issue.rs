//! RFC 9068 access tokens and refresh tokens; defined in [`crate::access_token`] (below the
//! routers, so the resource-server middleware can verify tokens without importing the token
//! endpoint) and re-exported here.

pub use crate::access_token::*;
