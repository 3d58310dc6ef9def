//! Declarative seeds. PLACEHOLDER: being written.

use crate::server::{Portcullis, StartError};

/// Applies the configured seeds.
pub async fn apply(server: &Portcullis) -> Result<(), StartError> {
    let _ = server;
    Ok(())
}
