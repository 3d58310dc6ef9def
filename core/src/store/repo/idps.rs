//! Trusted enterprise IdPs for the JWT bearer grant (RFC 7523 §2.1 with ID-JAG assertions,
//! draft-ietf-oauth-identity-assertion-authz-grant): the registry (`trusted_idps`), explicit
//! subject mappings (`idp_subjects`) and the policies that say which IdP / client / resource
//! combinations may get tokens and with which scopes at most (`idp_policies`).

use crate::idp_policy::Rule;
use crate::store::{Row, SqlStore, StoreError, Value};

/// A trusted IdP.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IdpRow {
    /// Its issuer identifier (the `iss` of its assertions).
    pub issuer: String,
    /// Where its JWK Set is published (fetched through the SSRF-safe fetcher).
    pub jwks_uri: Option<String>,
    /// Its JWK Set inline (JSON text), instead of a URI.
    pub jwks: Option<String>,
    /// Resource URIs this IdP may vouch for; empty means any (policies still decide).
    pub allowed_audiences: Vec<String>,
    /// Creation time.
    pub created_at: i64,
}

const IDP_COLS: &str = "issuer, jwks_uri, jwks, allowed_audiences, created_at";

fn idp_from_row(r: &Row) -> Result<IdpRow, StoreError> {
    Ok(IdpRow {
        issuer: r.text(0)?,
        jwks_uri: r.opt_text(1)?,
        jwks: r.opt_text(2)?,
        allowed_audiences: r.text(3)?.split_whitespace().map(str::to_owned).collect(),
        created_at: r.int(4)?,
    })
}

/// Inserts an IdP or replaces its keys and audiences (the creation time is kept).
pub async fn upsert(db: &dyn SqlStore, idp: &IdpRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO trusted_idps (issuer, jwks_uri, jwks, allowed_audiences, created_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (issuer) DO UPDATE SET jwks_uri = excluded.jwks_uri, \
         jwks = excluded.jwks, allowed_audiences = excluded.allowed_audiences",
        &[
            idp.issuer.as_str().into(),
            idp.jwks_uri.clone().into(),
            idp.jwks.clone().into(),
            idp.allowed_audiences.join(" ").into(),
            idp.created_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Looks an IdP up by its exact issuer.
pub async fn get(db: &dyn SqlStore, issuer: &str) -> Result<Option<IdpRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {IDP_COLS} FROM trusted_idps WHERE issuer = ?"),
            &[issuer.into()],
        )
        .await?;
    rows.first().map(idp_from_row).transpose()
}

/// Every IdP, by issuer.
pub async fn list(db: &dyn SqlStore) -> Result<Vec<IdpRow>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {IDP_COLS} FROM trusted_idps ORDER BY issuer"),
            &[],
        )
        .await?;
    rows.iter().map(idp_from_row).collect()
}

/// Deletes an IdP with its policies and subject mappings, in one batch; returns whether it
/// existed.
pub async fn delete(db: &dyn SqlStore, issuer: &str) -> Result<bool, StoreError> {
    let existed = get(db, issuer).await?.is_some();
    db.batch(&[
        (
            "DELETE FROM idp_policies WHERE issuer = ?".to_owned(),
            vec![issuer.into()],
        ),
        (
            "DELETE FROM idp_subjects WHERE issuer = ?".to_owned(),
            vec![issuer.into()],
        ),
        (
            "DELETE FROM trusted_idps WHERE issuer = ?".to_owned(),
            vec![issuer.into()],
        ),
    ])
    .await?;
    Ok(existed)
}

/// ` WHERE issuer = ?` and its parameter when filtering by issuer (no untyped NULL
/// parameters, which PostgreSQL cannot type).
fn issuer_filter(issuer: Option<&str>) -> (&'static str, Vec<Value>) {
    match issuer {
        Some(i) => (" WHERE issuer = ?", vec![i.into()]),
        None => ("", Vec::new()),
    }
}

/// An explicit mapping of an IdP's subject to a local subject.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubjectRow {
    /// The IdP issuer.
    pub issuer: String,
    /// The `sub` in the IdP's assertions.
    pub external_subject: String,
    /// The `sub` of the tokens we issue.
    pub subject: String,
}

/// Sets the local subject of `(issuer, external_subject)`.
pub async fn put_subject(db: &dyn SqlStore, s: &SubjectRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO idp_subjects (issuer, external_subject, subject) VALUES (?, ?, ?) \
         ON CONFLICT (issuer, external_subject) DO UPDATE SET subject = excluded.subject",
        &[
            s.issuer.as_str().into(),
            s.external_subject.as_str().into(),
            s.subject.as_str().into(),
        ],
    )
    .await
    .map(|_| ())
}

/// The local subject mapped to `(issuer, external_subject)`, if any.
pub async fn subject(
    db: &dyn SqlStore,
    issuer: &str,
    external_subject: &str,
) -> Result<Option<String>, StoreError> {
    let rows = db
        .query(
            "SELECT subject FROM idp_subjects WHERE issuer = ? AND external_subject = ?",
            &[issuer.into(), external_subject.into()],
        )
        .await?;
    rows.first().map(|r| r.text(0)).transpose()
}

/// Every mapping, optionally of one IdP.
pub async fn list_subjects(
    db: &dyn SqlStore,
    issuer: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<SubjectRow>, StoreError> {
    let (filter, mut params) = issuer_filter(issuer);
    params.push(limit.into());
    params.push(offset.into());
    let rows = db
        .query(
            &format!(
                "SELECT issuer, external_subject, subject FROM idp_subjects{filter} \
                 ORDER BY issuer, external_subject LIMIT ? OFFSET ?"
            ),
            &params,
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SubjectRow {
                issuer: r.text(0)?,
                external_subject: r.text(1)?,
                subject: r.text(2)?,
            })
        })
        .collect()
}

/// Removes a mapping; returns whether it existed.
pub async fn delete_subject(
    db: &dyn SqlStore,
    issuer: &str,
    external_subject: &str,
) -> Result<bool, StoreError> {
    Ok(db
        .execute(
            "DELETE FROM idp_subjects WHERE issuer = ? AND external_subject = ?",
            &[issuer.into(), external_subject.into()],
        )
        .await?
        > 0)
}

/// A JWT bearer policy: `client_id` may get tokens for `resource` on the strength of
/// `issuer`'s assertions, with at most `scopes`, each scope only when the `rules` guarding
/// it hold ([`crate::idp_policy`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyRow {
    /// Identifier.
    pub id: String,
    /// The IdP issuer.
    pub issuer: String,
    /// The client.
    pub client_id: String,
    /// The resource URI.
    pub resource: String,
    /// The largest scope set granted.
    pub scopes: Vec<String>,
    /// The conditions on its scopes (groups, authentication age, `acr`).
    pub rules: Vec<Rule>,
    /// Creation time.
    pub created_at: i64,
}

const POLICY_COLS: &str = "id, issuer, client_id, resource, scopes, created_at, rules";

fn policy_from_row(r: &Row) -> Result<PolicyRow, StoreError> {
    // Rules that do not parse (never written so) fail closed: the policy cannot be used.
    let rules = serde_json::from_str(&r.text(6)?)
        .map_err(|e| StoreError::Corrupt(format!("idp_policies.rules: {e}")))?;
    Ok(PolicyRow {
        id: r.text(0)?,
        issuer: r.text(1)?,
        client_id: r.text(2)?,
        resource: r.text(3)?,
        scopes: r.text(4)?.split_whitespace().map(str::to_owned).collect(),
        created_at: r.int(5)?,
        rules,
    })
}

fn rules_json(rules: &[Rule]) -> String {
    serde_json::to_string(rules).unwrap_or_else(|_| "[]".into())
}

/// Stores a policy. When one for the same issuer, client and resource exists, its scopes and
/// rules are replaced and its id kept. Returns the stored policy.
pub async fn upsert_policy(db: &dyn SqlStore, p: &PolicyRow) -> Result<PolicyRow, StoreError> {
    let scopes = p.scopes.join(" ");
    let rules = rules_json(&p.rules);
    let n = db
        .execute(
            "UPDATE idp_policies SET scopes = ?, rules = ? \
             WHERE issuer = ? AND client_id = ? AND resource = ?",
            &[
                scopes.as_str().into(),
                rules.as_str().into(),
                p.issuer.as_str().into(),
                p.client_id.as_str().into(),
                p.resource.as_str().into(),
            ],
        )
        .await?;
    if n == 0 {
        db.execute(
            &format!("INSERT INTO idp_policies ({POLICY_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"),
            &[
                p.id.as_str().into(),
                p.issuer.as_str().into(),
                p.client_id.as_str().into(),
                p.resource.as_str().into(),
                scopes.into(),
                p.created_at.into(),
                rules.into(),
            ],
        )
        .await?;
    }
    let found = matching_policies(db, &p.issuer, &p.client_id, &p.resource).await?;
    Ok(found.into_iter().next().unwrap_or_else(|| p.clone()))
}

/// The policies for exactly this issuer, client and resource.
pub async fn matching_policies(
    db: &dyn SqlStore,
    issuer: &str,
    client_id: &str,
    resource: &str,
) -> Result<Vec<PolicyRow>, StoreError> {
    let rows = db
        .query(
            &format!(
                "SELECT {POLICY_COLS} FROM idp_policies \
                 WHERE issuer = ? AND client_id = ? AND resource = ? ORDER BY created_at, id"
            ),
            &[issuer.into(), client_id.into(), resource.into()],
        )
        .await?;
    rows.iter().map(policy_from_row).collect()
}

/// Every policy, optionally of one IdP.
pub async fn list_policies(
    db: &dyn SqlStore,
    issuer: Option<&str>,
) -> Result<Vec<PolicyRow>, StoreError> {
    let (filter, params) = issuer_filter(issuer);
    let rows = db
        .query(
            &format!(
                "SELECT {POLICY_COLS} FROM idp_policies{filter} \
                 ORDER BY issuer, client_id, resource, id"
            ),
            &params,
        )
        .await?;
    rows.iter().map(policy_from_row).collect()
}

/// Deletes a policy by id; returns whether it existed.
pub async fn delete_policy(db: &dyn SqlStore, id: &str) -> Result<bool, StoreError> {
    Ok(db
        .execute("DELETE FROM idp_policies WHERE id = ?", &[id.into()])
        .await?
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store::TestSql;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    fn idp(issuer: &str) -> IdpRow {
        IdpRow {
            issuer: issuer.into(),
            jwks_uri: Some("https://idp.example/jwks".into()),
            jwks: None,
            allowed_audiences: vec!["https://mcp.example/a".into()],
            created_at: 10,
        }
    }

    fn policy(id: &str, scopes: &[&str]) -> PolicyRow {
        PolicyRow {
            id: id.into(),
            issuer: "https://idp.example".into(),
            client_id: "c".into(),
            resource: "https://mcp.example/a".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            rules: Vec::new(),
            created_at: 5,
        }
    }

    #[test]
    fn idp_upsert_keeps_creation_time_and_delete_cascades() {
        run(async {
            let db = TestSql::memory();
            crate::store::migrations::migrate(&db, 0).await.unwrap();
            upsert(&db, &idp("https://idp.example")).await.unwrap();
            let mut changed = idp("https://idp.example");
            changed.jwks_uri = None;
            changed.jwks = Some(r#"{"keys":[]}"#.into());
            changed.created_at = 99;
            upsert(&db, &changed).await.unwrap();
            let got = get(&db, "https://idp.example").await.unwrap().unwrap();
            assert_eq!(got.created_at, 10);
            assert_eq!(got.jwks.as_deref(), Some(r#"{"keys":[]}"#));
            assert_eq!(got.jwks_uri, None);
            assert_eq!(got.allowed_audiences, ["https://mcp.example/a"]);
            assert_eq!(list(&db).await.unwrap().len(), 1);

            upsert_policy(&db, &policy("p1", &["a"])).await.unwrap();
            let mut p2 = policy("p2", &["a", "b"]);
            p2.rules = vec![Rule {
                groups: vec!["ops".into()],
                max_auth_age: Some(300),
                ..Rule::default()
            }];
            let again = upsert_policy(&db, &p2).await.unwrap();
            assert_eq!(again.id, "p1", "same triple: updated in place");
            assert_eq!(again.scopes, ["a", "b"]);
            assert_eq!(again.rules, p2.rules, "rules stored and replaced");
            put_subject(
                &db,
                &SubjectRow {
                    issuer: "https://idp.example".into(),
                    external_subject: "ext".into(),
                    subject: "local".into(),
                },
            )
            .await
            .unwrap();
            assert_eq!(
                subject(&db, "https://idp.example", "ext")
                    .await
                    .unwrap()
                    .as_deref(),
                Some("local")
            );
            assert!(subject(&db, "https://idp.example", "other")
                .await
                .unwrap()
                .is_none());

            assert!(delete(&db, "https://idp.example").await.unwrap());
            assert!(!delete(&db, "https://idp.example").await.unwrap());
            assert!(list_policies(&db, None).await.unwrap().is_empty());
            assert!(list_subjects(&db, None, 10, 0).await.unwrap().is_empty());
        });
    }

    #[test]
    fn policies_match_exactly_and_filter_by_issuer() {
        run(async {
            let db = TestSql::memory();
            crate::store::migrations::migrate(&db, 0).await.unwrap();
            upsert_policy(&db, &policy("p1", &["a"])).await.unwrap();
            let mut other = policy("p2", &["b"]);
            other.issuer = "https://other.example".into();
            upsert_policy(&db, &other).await.unwrap();
            let m = matching_policies(&db, "https://idp.example", "c", "https://mcp.example/a")
                .await
                .unwrap();
            assert_eq!(m.len(), 1);
            assert!(
                matching_policies(&db, "https://idp.example", "C", "https://mcp.example/a")
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert!(
                matching_policies(&db, "https://idp.example", "c", "https://mcp.example/a/")
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(list_policies(&db, None).await.unwrap().len(), 2);
            assert_eq!(
                list_policies(&db, Some("https://other.example"))
                    .await
                    .unwrap()[0]
                    .id,
                "p2"
            );
            assert!(delete_policy(&db, "p2").await.unwrap());
            assert!(!delete_policy(&db, "p2").await.unwrap());
        });
    }
}
