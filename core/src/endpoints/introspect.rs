//! PLACEHOLDER: being written.

use bytes::Bytes;
use http::{Request, Response};

use crate::server::Portcullis;

/// Handles the endpoint.
pub async fn handle(server: &Portcullis, req: Request<Bytes>) -> Response<Bytes> {
    let _ = (server, req);
    unimplemented!()
}
