//! Client metadata validation (RFC 7591 §2). PLACEHOLDER signature: body being written.

use crate::clients::ClientMetadata;
use crate::error::Error;

/// Validates and normalizes client metadata (defaults filled in).
pub fn validate_metadata(meta: &mut ClientMetadata) -> Result<(), Error> {
    let _ = meta;
    unimplemented!()
}
