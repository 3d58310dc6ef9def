//! Every column that holds a value sealed under the master key, for the re-encryption after a
//! master key rotation: read each sealed value with the row it binds to, and replace one only
//! while it still holds what was read (a concurrent refresh or rotation wins).

use crate::store::{SqlStore, StoreError};

/// A column of sealed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    /// `signing_keys.private_enc`.
    SigningKey,
    /// `connections.access_token`.
    ConnectionAccessToken,
    /// `connections.refresh_token`.
    ConnectionRefreshToken,
    /// `providers.client_secret`.
    ProviderSecret,
    /// `connectors.client_secret`.
    ConnectorSecret,
}

impl SealedColumn {
    /// Every sealed column.
    pub const ALL: [SealedColumn; 5] = [
        Self::SigningKey,
        Self::ConnectionAccessToken,
        Self::ConnectionRefreshToken,
        Self::ProviderSecret,
        Self::ConnectorSecret,
    ];

    /// The name the re-encryption report uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::SigningKey => "signing_keys",
            Self::ConnectionAccessToken => "connection_access_tokens",
            Self::ConnectionRefreshToken => "connection_refresh_tokens",
            Self::ProviderSecret => "provider_client_secrets",
            Self::ConnectorSecret => "connector_client_secrets",
        }
    }

    /// `(table, key column, sealed column, owner expression, provider expression)`.
    fn shape(
        self,
    ) -> (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ) {
        match self {
            Self::SigningKey => ("signing_keys", "kid", "private_enc", "''", "''"),
            Self::ConnectionAccessToken => {
                ("connections", "id", "access_token", "owner", "provider")
            }
            Self::ConnectionRefreshToken => {
                ("connections", "id", "refresh_token", "owner", "provider")
            }
            Self::ProviderSecret => ("providers", "name", "client_secret", "''", "name"),
            Self::ConnectorSecret => ("connectors", "id", "client_secret", "''", "id"),
        }
    }
}

/// One sealed value and the row it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    /// The row's key (`kid`, connection id, provider name).
    pub id: String,
    /// The connection's owner (empty elsewhere).
    pub owner: String,
    /// The provider's name (empty for signing keys).
    pub provider: String,
    /// The sealed value.
    pub value: String,
}

/// The sealed values of `column` (empty ones, of removed connections, left out).
pub async fn values(
    db: &dyn SqlStore,
    column: SealedColumn,
) -> Result<Vec<SealedValue>, StoreError> {
    let (table, key, col, owner, provider) = column.shape();
    let rows = db
        .query(
            &format!(
                "SELECT {key}, {owner}, {provider}, {col} FROM {table} \
                 WHERE {col} IS NOT NULL AND {col} <> '' ORDER BY {key}"
            ),
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SealedValue {
                id: r.text(0)?,
                owner: r.text(1)?,
                provider: r.text(2)?,
                value: r.text(3)?,
            })
        })
        .collect()
}

/// Replaces `old` by `new` in `column` of row `id`, only while it still holds `old`; whether
/// it did.
pub async fn replace(
    db: &dyn SqlStore,
    column: SealedColumn,
    id: &str,
    old: &str,
    new: &str,
) -> Result<bool, StoreError> {
    let (table, key, col, _, _) = column.shape();
    let n = db
        .execute(
            &format!("UPDATE {table} SET {col} = ? WHERE {key} = ? AND {col} = ?"),
            &[new.into(), id.into(), old.into()],
        )
        .await?;
    Ok(n == 1)
}
