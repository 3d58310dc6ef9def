//! PLACEHOLDER: being written.

use super::{Issued, TokenRequest};
use crate::error::Result;

/// Handles the grant.
pub async fn exchange(ctx: &TokenRequest<'_>) -> Result<Issued> {
    let _ = ctx;
    unimplemented!()
}
