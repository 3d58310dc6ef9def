//! Groups to scopes: the declared table `[[group_scopes]]` says which scopes members of an IdP
//! group may consent to at a resource. A resource named in the table is group-gated: a person
//! gets only the scopes granted there to the groups their linked identities last asserted (a
//! local account without identities, none), so the requested scopes are narrowed, and a
//! request left with none is refused (`access_denied`). Other resources are not affected.

use crate::context::Context;
use crate::store::repo::federation as repo;
use crate::store::StoreError;

/// The scopes `user_id` may consent to at `resource`: `None` when the resource is not
/// group-gated.
pub async fn allowed_scopes(
    ctx: &Context,
    user_id: &str,
    resource: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let rows: Vec<_> = ctx
        .config()
        .group_scopes
        .iter()
        .filter(|r| r.resource == resource)
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let identities = repo::identity_list(ctx.env().sql.as_ref(), Some(user_id), None, 100).await?;
    let mut allowed: Vec<String> = Vec::new();
    for row in rows {
        let member = identities.iter().any(|i| i.groups.contains(&row.group));
        if member {
            for s in &row.scopes {
                if !allowed.contains(s) {
                    allowed.push(s.clone());
                }
            }
        }
    }
    Ok(Some(allowed))
}

/// `requested` narrowed to `allowed` (order kept).
pub fn narrow(requested: &[String], allowed: &[String]) -> Vec<String> {
    requested
        .iter()
        .filter(|s| allowed.contains(s))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, GroupScopes};
    use crate::store::repo::federation::IdentityRow;
    use crate::store::test_store::test_server;

    #[test]
    fn group_gated_resources_narrow_scopes_to_the_members_groups() {
        futures::executor::block_on(async {
            let cfg = Config {
                group_scopes: vec![
                    GroupScopes {
                        resource: "https://mcp.example/a".into(),
                        group: "eng".into(),
                        scopes: vec!["read".into(), "write".into()],
                    },
                    GroupScopes {
                        resource: "https://mcp.example/a".into(),
                        group: "sales".into(),
                        scopes: vec!["read".into()],
                    },
                ],
                ..Default::default()
            };
            let s = test_server(cfg).await;
            let db = s.env().sql.as_ref();
            repo::identity_insert(
                db,
                &IdentityRow {
                    connector: "okta".into(),
                    subject: "s1".into(),
                    user_id: "u1".into(),
                    email: None,
                    groups: vec!["sales".into()],
                    created_at: 0,
                    last_login_at: 0,
                },
            )
            .await
            .unwrap();
            let a = "https://mcp.example/a";
            assert_eq!(
                allowed_scopes(&s, "u1", "https://mcp.example/b")
                    .await
                    .unwrap(),
                None
            );
            assert_eq!(
                allowed_scopes(&s, "u1", a).await.unwrap(),
                Some(vec!["read".into()])
            );
            assert_eq!(allowed_scopes(&s, "local", a).await.unwrap(), Some(vec![]));
            let req = vec!["write".to_owned(), "read".to_owned()];
            assert_eq!(narrow(&req, &["read".into()]), ["read"]);
        });
    }
}
