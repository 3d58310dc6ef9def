//! Stored providers: declaring one (validated, its client secret sealed), loading one by name
//! or by the `resource` an MCP server names, listing and deleting. The only module that turns
//! provider rows into [`Provider`]s.

use super::provider::{validate, Provider, ProviderError, ProviderInput};
use super::seal::{self, Binding};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::store::repo::providers::{self as repo, ProviderRow};
use crate::store::StoreError;

/// Whether outbound calls may go to loopback (the `cimd.allow_loopback` switch).
fn allow_loopback(ctx: &Context) -> bool {
    crate::remote::allow_loopback(ctx.config())
}

/// Validates and stores a provider (`source`: `seed` or `admin`), replacing one of the same
/// name.
pub async fn declare(
    ctx: &Context,
    input: &ProviderInput,
    source: &str,
) -> std::result::Result<Provider, DeclareError> {
    let provider = validate(input, allow_loopback(ctx)).map_err(DeclareError::Invalid)?;
    let sealed = seal::seal_declaration(
        ctx,
        input,
        |public| public.client_secret = None,
        provider.client_secret.as_ref(),
        Binding::provider_secret(&provider.name),
    )
    .await
    .map_err(DeclareError::Other)?;
    repo::put(
        ctx.env().sql.as_ref(),
        &ProviderRow {
            name: provider.name.clone(),
            resource: provider.resource.clone(),
            config: sealed.config,
            client_secret: sealed.client_secret,
            source: source.to_owned(),
            created_at: ctx.now(),
        },
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict(_) => DeclareError::Invalid(ProviderError {
            field: "resource",
            message: "another provider already has this resource".into(),
        }),
        e => DeclareError::Other(e.into()),
    })?;
    Ok(provider)
}

/// Why a provider could not be declared.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    /// The declaration is invalid.
    #[error(transparent)]
    Invalid(ProviderError),
    /// Storage failed.
    #[error(transparent)]
    Other(Error),
}

/// The declaration of a stored provider as the admin API shows it (no secret).
pub fn public_input(row: &ProviderRow) -> Option<ProviderInput> {
    serde_json::from_str(&row.config).ok()
}

async fn from_row(ctx: &Context, row: &ProviderRow) -> Result<Provider> {
    let mut input = public_input(row)
        .ok_or_else(|| Error::server(format!("provider '{}' is stored unreadably", row.name)))?;
    let keys = ctx.sealing_keys_for(&row.client_secret).await?;
    let secret = seal::open(
        &keys,
        Binding::provider_secret(&row.name),
        &row.client_secret,
    )
    .map_err(|e| Error::server(format!("provider '{}' secret: {e}", row.name)))?;
    input.client_secret = Some(Secret::new(secret));
    validate(&input, allow_loopback(ctx))
        .map_err(|e| Error::server(format!("provider '{}' is no longer valid: {e}", row.name)))
}

/// The provider named `name`.
pub async fn load(ctx: &Context, name: &str) -> Result<Option<Provider>> {
    match repo::get(ctx.env().sql.as_ref(), name).await? {
        Some(row) => from_row(ctx, &row).await.map(Some),
        None => Ok(None),
    }
}

/// The provider whose `resource` is `resource` (what a vend names): one indexed read, made
/// for every token exchange that names a `resource`.
pub async fn for_resource(ctx: &Context, resource: &str) -> Result<Option<Provider>> {
    match repo::by_resource(ctx.env().sql.as_ref(), resource).await? {
        Some(row) => from_row(ctx, &row).await.map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store::test_server;

    fn github() -> ProviderInput {
        ProviderInput {
            name: "github".into(),
            preset: Some("github".into()),
            client_id: "Iv1.abc".into(),
            client_secret: Some(Secret::new("gh-client-secret-value")),
            scopes: vec!["repo".into()],
            resource: "https://api.github.com".into(),
            vend_resources: vec!["https://mcp.example.com/mcp".into()],
            ..Default::default()
        }
    }

    #[test]
    fn declared_providers_load_by_name_and_resource_with_the_secret_sealed() {
        futures::executor::block_on(async {
            let s = test_server(crate::Config::default()).await;
            declare(&s, &github(), "admin").await.unwrap();
            let p = load(&s, "github").await.unwrap().unwrap();
            assert_eq!(p.client_secret.unwrap().expose(), "gh-client-secret-value");
            let by_res = for_resource(&s, "https://api.github.com")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(by_res.name, "github");
            assert!(for_resource(&s, "https://slack.com")
                .await
                .unwrap()
                .is_none());
            let row = repo::get(s.env().sql.as_ref(), "github")
                .await
                .unwrap()
                .unwrap();
            assert!(!row.config.contains("gh-client-secret-value"));
            assert!(!row.client_secret.contains("gh-client-secret-value"));
            assert!(public_input(&row).unwrap().client_secret.is_none());
        });
    }

    #[test]
    fn invalid_declarations_are_refused_and_nothing_is_stored() {
        futures::executor::block_on(async {
            let s = test_server(crate::Config::default()).await;
            let mut bad = github();
            bad.preset = Some("gitlab".into());
            assert!(
                matches!(declare(&s, &bad, "admin").await, Err(DeclareError::Invalid(e)) if e.field == "preset")
            );
            assert!(load(&s, "github").await.unwrap().is_none());
        });
    }

    #[test]
    fn provider_seeds_are_declared_on_start_and_bad_ones_refuse_the_start() {
        futures::executor::block_on(async {
            let cfg = crate::Config {
                providers: vec![github()],
                ..Default::default()
            };
            let s = test_server(cfg).await;
            let p = load(&s, "github").await.unwrap().unwrap();
            assert_eq!(p.client_secret.unwrap().expose(), "gh-client-secret-value");
            let row = repo::get(s.env().sql.as_ref(), "github")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.source, "seed");

            let mut bad = github();
            bad.token_endpoint_auth_method = Some("private_key_jwt".into());
            let (env, _) = crate::store::test_store::test_env();
            let err = crate::Portcullis::start(
                env,
                crate::Config {
                    providers: vec![bad],
                    ..Default::default()
                },
            )
            .await
            .err()
            .expect("a bad provider seed refuses the start");
            let text = err.to_string();
            assert!(
                text.contains("provider 'github'") && text.contains("token_endpoint_auth_method"),
                "{text}"
            );
        });
    }
}
