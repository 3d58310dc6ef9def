//! Stored connectors: declaring one (validated, its client secret sealed under the master
//! key), loading, listing and deleting. The only module that turns connector rows into
//! [`Connector`]s.

use super::connector::{validate, Connector, ConnectorError, ConnectorInput};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::paths;
use crate::secret::Secret;
use crate::store::repo::federation::{self as repo, ConnectorRow};
use crate::vault::seal::{self, Binding};

fn allow_loopback(ctx: &Context) -> bool {
    crate::remote::allow_loopback(ctx.config())
}

/// The connector's redirect URI at this server: `{issuer}/oauth/connectors/{id}/callback`.
pub fn redirect_uri(ctx: &Context, id: &str) -> String {
    format!("{}{}/{id}/callback", ctx.issuer(), paths::CONNECTORS)
}

/// Why a connector could not be declared.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    /// The declaration is invalid.
    #[error(transparent)]
    Invalid(ConnectorError),
    /// Storage failed.
    #[error(transparent)]
    Other(Error),
}

/// Validates and stores a connector (`source`: `seed` or `admin`), replacing one of the same
/// id, and forgets the IdP documents cached for it.
pub async fn declare(
    ctx: &Context,
    input: &ConnectorInput,
    source: &str,
) -> std::result::Result<Connector, DeclareError> {
    let connector = validate(input, allow_loopback(ctx)).map_err(DeclareError::Invalid)?;
    let sealed = seal::seal_declaration(
        ctx,
        input,
        |public| public.client_secret = None,
        connector.client_secret.as_ref(),
        Binding::connector_secret(&connector.id),
    )
    .await
    .map_err(DeclareError::Other)?;
    repo::put_connector(
        ctx.env().sql.as_ref(),
        &ConnectorRow {
            id: connector.id.clone(),
            config: sealed.config,
            client_secret: sealed.client_secret,
            source: source.to_owned(),
            created_at: ctx.now(),
        },
    )
    .await
    .map_err(|e| DeclareError::Other(e.into()))?;
    super::login::forget(ctx, &connector.id).await;
    Ok(connector)
}

/// The declaration of a stored connector as the admin API shows it (no secret).
pub fn public_input(row: &ConnectorRow) -> Option<ConnectorInput> {
    serde_json::from_str(&row.config).ok()
}

async fn from_row(ctx: &Context, row: &ConnectorRow) -> Result<Connector> {
    let mut input = public_input(row)
        .ok_or_else(|| Error::server(format!("connector '{}' is stored unreadably", row.id)))?;
    let keys = ctx.sealing_keys_for(&row.client_secret).await?;
    let secret = seal::open(
        &keys,
        Binding::connector_secret(&row.id),
        &row.client_secret,
    )
    .map_err(|e| Error::server(format!("connector '{}' secret: {e}", row.id)))?;
    input.client_secret = Some(Secret::new(secret));
    validate(&input, allow_loopback(ctx))
        .map_err(|e| Error::server(format!("connector '{}' is no longer valid: {e}", row.id)))
}

/// The connector `id`.
pub async fn load(ctx: &Context, id: &str) -> Result<Option<Connector>> {
    if !super::connector::valid_id(id) {
        return Ok(None);
    }
    match repo::get_connector(ctx.env().sql.as_ref(), id).await? {
        Some(row) => from_row(ctx, &row).await.map(Some),
        None => Ok(None),
    }
}

/// `(id, name)` of every connector, for the sign-in page (the declarations only: no secret
/// is opened).
pub async fn buttons(ctx: &Context) -> Result<Vec<(String, String)>> {
    Ok(repo::list_connectors(ctx.env().sql.as_ref())
        .await?
        .iter()
        .filter_map(|r| public_input(r).map(|i| (r.id.clone(), i.name)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store::test_server;

    fn input() -> ConnectorInput {
        ConnectorInput {
            id: "okta".into(),
            name: "Okta".into(),
            issuer: "https://acme.okta.com".into(),
            client_id: "0oa1".into(),
            client_secret: Some(Secret::new("connector-secret-value")),
            ..Default::default()
        }
    }

    #[test]
    fn declared_connectors_load_with_the_secret_sealed() {
        futures::executor::block_on(async {
            let s = test_server(crate::Config::default()).await;
            declare(&s, &input(), "admin").await.unwrap();
            let c = load(&s, "okta").await.unwrap().unwrap();
            assert_eq!(c.client_secret.unwrap().expose(), "connector-secret-value");
            let row = repo::get_connector(s.env().sql.as_ref(), "okta")
                .await
                .unwrap()
                .unwrap();
            assert!(!row.config.contains("connector-secret-value"));
            assert!(!row.client_secret.contains("connector-secret-value"));
            assert_eq!(buttons(&s).await.unwrap(), [("okta".into(), "Okta".into())]);
            assert!(load(&s, "Not An Id").await.unwrap().is_none());
        });
    }

    #[test]
    fn connector_seeds_are_declared_and_bad_ones_refuse_the_start() {
        futures::executor::block_on(async {
            let s = test_server(crate::Config {
                connectors: vec![input()],
                ..Default::default()
            })
            .await;
            let row = repo::get_connector(s.env().sql.as_ref(), "okta")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.source, "seed");
            let mut bad = input();
            bad.client_secret = None;
            let (env, _) = crate::store::test_store::test_env();
            let err = crate::Portcullis::start(
                env,
                crate::Config {
                    connectors: vec![bad],
                    ..Default::default()
                },
            )
            .await
            .err()
            .expect("a bad connector seed refuses the start");
            let text = err.to_string();
            assert!(
                text.contains("connector 'okta'") && text.contains("client_secret"),
                "{text}"
            );
        });
    }
}
