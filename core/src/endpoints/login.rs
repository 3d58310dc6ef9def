//! PLACEHOLDER: being written.

use bytes::Bytes;
use http::{Request, Response};

use crate::server::Portcullis;

/// Handles the login form.
pub async fn handle(server: &Portcullis, req: Request<Bytes>) -> Response<Bytes> {
    let _ = (server, req);
    unimplemented!()
}

/// Handles logout.
pub async fn logout(server: &Portcullis, req: Request<Bytes>) -> Response<Bytes> {
    let _ = (server, req);
    unimplemented!()
}
