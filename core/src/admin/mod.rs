//! Admin API. PLACEHOLDER: being written.

pub mod seed;

use bytes::Bytes;
use http::{Request, Response};

use crate::server::Portcullis;

/// Routes an admin request.
pub async fn route(server: &Portcullis, req: Request<Bytes>) -> Response<Bytes> {
    let _ = (server, req);
    unimplemented!()
}
