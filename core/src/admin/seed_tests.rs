//! Unit tests of [`super`]: seeding users, resources and clients from the configuration at
//! start, on the in-memory test store.

use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::secret::Secret;
use crate::server::Portcullis;
use crate::store::repo;
use crate::store::test_store::{test_env_on, TestSql};

fn seeded(password: &str) -> Config {
    Config {
        users: vec![SeedUser {
            username: "alice".into(),
            password: Secret::new(password),
        }],
        resources: vec![SeedResource {
            uri: "https://mcp.example.com/mcp".into(),
            scopes: vec!["tools:read".into(), "tools:call".into()],
            name: Some("Example MCP".into()),
            introspection_clients: vec![],
            exchange_clients: vec![],
        }],
        clients: vec![
            SeedClient {
                client_id: "backend".into(),
                client_secret: Some(Secret::new("backend-secret-0123456789")),
                client_name: Some("Backend".into()),
                redirect_uris: vec!["https://app.example.com/cb".into()],
                grant_types: vec![],
                scope: None,
                token_endpoint_auth_method: None,
                jwks: None,
                jwks_uri: None,
            },
            SeedClient {
                client_id: "desktop".into(),
                client_secret: None,
                client_name: None,
                redirect_uris: vec!["http://127.0.0.1/callback".into()],
                grant_types: vec![],
                scope: Some("tools:read".into()),
                token_endpoint_auth_method: None,
                jwks: None,
                jwks_uri: None,
            },
        ],
        ..Config::default()
    }
}

async fn start(db: &Arc<TestSql>, cfg: Config, advance: i64) -> Result<Portcullis, StartError> {
    let (env, clock) = test_env_on(db.clone());
    clock.advance(advance);
    Portcullis::start(env, cfg).await
}

type Edit = Box<dyn Fn(&mut Config)>;

fn run<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

#[test]
fn seeds_are_idempotent_across_restarts() {
    run(async {
        let db = Arc::new(TestSql::memory());
        let s1 = start(&db, seeded("correct horse"), 0).await.unwrap();
        let sql = s1.env().sql.as_ref();
        let user1 = repo::users::by_username(sql, "alice")
            .await
            .unwrap()
            .unwrap();
        let res1 = repo::resources::get(sql, "https://mcp.example.com/mcp")
            .await
            .unwrap()
            .unwrap();
        let backend1 = repo::clients::get(sql, "backend").await.unwrap().unwrap();
        assert_eq!(backend1.source, "seed");
        assert_eq!(
            backend1.metadata.token_endpoint_auth_method,
            "client_secret_basic"
        );
        assert_eq!(
            backend1.secret_hash.as_deref(),
            Some(crate::crypto::token_hash("backend-secret-0123456789").as_str())
        );
        assert_eq!(
            backend1.metadata.grant_types,
            ["authorization_code", "refresh_token"]
        );
        let desktop = repo::clients::get(sql, "desktop").await.unwrap().unwrap();
        assert_eq!(desktop.metadata.token_endpoint_auth_method, "none");
        assert_eq!(desktop.secret_hash, None);

        // A second start on the same database, later, with the same seeds.
        let s2 = start(&db, seeded("correct horse"), 3600).await.unwrap();
        let sql = s2.env().sql.as_ref();
        let user2 = repo::users::by_username(sql, "alice")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user2, user1, "same id, same hash: nothing re-hashed");
        assert_eq!(repo::users::list(sql, 100, 0).await.unwrap().len(), 1);
        let res2 = repo::resources::get(sql, "https://mcp.example.com/mcp")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(res2, res1, "creation time kept");
        assert_eq!(repo::resources::list(sql).await.unwrap().len(), 1);
        let backend2 = repo::clients::get(sql, "backend").await.unwrap().unwrap();
        assert_eq!(backend2, backend1);
        assert_eq!(repo::clients::list(sql, 100, 0).await.unwrap().len(), 2);
        let created = repo::audit::list(
            sql,
            &repo::audit::AuditFilter {
                action: Some("admin.user.created".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(created.len(), 1);
    });
}

#[test]
fn a_start_skips_seeds_applied_unchanged_within_the_marker_ttl() {
    run(async {
        let db = Arc::new(TestSql::memory());
        let kv: Arc<dyn crate::store::KvStore> = Arc::new(crate::store::MemoryKv::default());
        let start_with = |cfg: Config, advance: i64| {
            let (mut env, clock) = test_env_on(db.clone());
            env.kv = kv.clone();
            clock.advance(advance);
            Portcullis::start(env, cfg)
        };
        let s1 = start_with(seeded("correct horse"), 0).await.unwrap();
        let sql = s1.env().sql.as_ref();
        assert!(repo::clients::delete(sql, "desktop").await.unwrap());
        // Same seeds, within the TTL: skipped, the deleted client stays deleted.
        start_with(seeded("correct horse"), 10).await.unwrap();
        assert!(repo::clients::get(sql, "desktop").await.unwrap().is_none());
        // Changed seeds: applied at once.
        start_with(seeded("another password"), 20).await.unwrap();
        assert!(repo::clients::get(sql, "desktop").await.unwrap().is_some());
        assert!(repo::clients::delete(sql, "desktop").await.unwrap());
        // After the TTL, the same seeds are applied again.
        start_with(seeded("another password"), 20 + SEED_MARKER_TTL + 1)
            .await
            .unwrap();
        assert!(repo::clients::get(sql, "desktop").await.unwrap().is_some());
    });
}

#[test]
fn changed_seed_password_takes_effect_on_restart() {
    run(async {
        let db = Arc::new(TestSql::memory());
        start(&db, seeded("correct horse"), 0).await.unwrap();
        let s = start(&db, seeded("battery staple"), 60).await.unwrap();
        let u = repo::users::by_username(s.env().sql.as_ref(), "alice")
            .await
            .unwrap()
            .unwrap();
        assert!(crate::crypto::password::verify(
            "battery staple",
            &u.password_hash
        ));
        assert!(!crate::crypto::password::verify(
            "correct horse",
            &u.password_hash
        ));
    });
}

/// [`seeded`] with a trusted IdP (inline keys) and a policy for the backend client.
fn with_idp() -> Config {
    let scalar = crate::crypto::rustcrypto::generate_scalar(&crate::runtime::SeededRng::new(101));
    let public = crate::crypto::rustcrypto::public_key_sec1(&scalar).unwrap();
    let mut key = crate::keys::public_jwk(&public);
    key["kid"] = "idp-key-1".into();
    let mut cfg = seeded("correct horse");
    cfg.idps.push(crate::config::SeedIdp {
        issuer: "https://idp.example.com".into(),
        jwks_uri: None,
        jwks: Some(serde_json::json!({ "keys": [key] })),
    });
    cfg.idp_policies.push(crate::config::SeedIdpPolicy {
        issuer: "https://idp.example.com".into(),
        client_id: "backend".into(),
        resource: "https://mcp.example.com/mcp".into(),
        scopes: vec!["tools:read".into()],
        rules: Vec::new(),
    });
    cfg
}

#[test]
fn idp_seeds_are_idempotent_and_validated() {
    run(async {
        let db = Arc::new(TestSql::memory());
        start(&db, with_idp(), 0).await.unwrap();
        let mut stepped_up = with_idp();
        let rule = crate::idp_policy::Rule {
            groups: vec!["ops".into()],
            max_auth_age: Some(600),
            acr_values: vec!["urn:mfa".into()],
            ..Default::default()
        };
        stepped_up.idp_policies[0].rules = vec![rule.clone()];
        start(&db, stepped_up, 3600).await.unwrap();
        let sql: &dyn crate::store::SqlStore = db.as_ref();
        assert_eq!(repo::idps::list(sql).await.unwrap().len(), 1);
        let policies = repo::idps::list_policies(sql, None).await.unwrap();
        assert_eq!(policies.len(), 1);
        assert_eq!(
            policies[0].rules,
            [rule],
            "seeded rules replace the old ones"
        );

        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|c| c.idps[0].issuer = "http://idp.example.com".into()),
                "seed idp 'http://idp.example.com'",
            ),
            (
                Box::new(|c| c.idps.push(c.idps[0].clone())),
                "more than once",
            ),
            (Box::new(|c| c.idp_policies[0].scopes.clear()), ""),
            (
                Box::new(|c| {
                    c.idp_policies[0].rules = vec![crate::idp_policy::Rule {
                        scopes: vec!["tools:write".into()],
                        groups: vec!["ops".into()],
                        ..Default::default()
                    }]
                }),
                "rule 0: scope 'tools:write' is not one of the policy's scopes",
            ),
            (
                Box::new(|c| c.idp_policies[0].rules = vec![Default::default()]),
                "rule 0: needs at least one condition",
            ),
        ];
        for (edit, want) in cases {
            let mut cfg = with_idp();
            edit(&mut cfg);
            let err = start(&Arc::new(TestSql::memory()), cfg, 0)
                .await
                .err()
                .expect("start refused")
                .to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    });
}

/// [`seeded`] with a GitHub-Actions-like workload issuer (discovery) and a rule.
fn with_workloads() -> Config {
    let mut cfg = seeded("correct horse");
    cfg.workload_issuers
        .push(crate::config::SeedWorkloadIssuer {
            issuer: "https://token.actions.githubusercontent.com".into(),
            jwks_uri: None,
            jwks: None,
            audiences: vec!["portcullis".into()],
        });
    cfg.workload_rules.push(crate::config::SeedWorkloadRule {
        issuer: "https://token.actions.githubusercontent.com".into(),
        subject: "repo:acme/agent:*".into(),
        resource: "https://mcp.example.com/mcp".into(),
        client_id: "backend".into(),
        scopes: vec!["tools:read".into()],
    });
    cfg
}

#[test]
fn workload_seeds_are_idempotent_and_validated() {
    run(async {
        let db = Arc::new(TestSql::memory());
        start(&db, with_workloads(), 0).await.unwrap();
        start(&db, with_workloads(), 3600).await.unwrap();
        let sql: &dyn crate::store::SqlStore = db.as_ref();
        assert_eq!(repo::workloads::list_issuers(sql).await.unwrap().len(), 1);
        assert_eq!(
            repo::workloads::list_rules(sql, None).await.unwrap().len(),
            1
        );
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|c| c.workload_rules[0].subject = "*".into()),
                "seed workload_rule",
            ),
            (
                Box::new(|c| c.workload_rules[0].client_id = "nobody".into()),
                "no client 'nobody'",
            ),
            (
                Box::new(|c| c.workload_rules[0].issuer = "https://other.example.com".into()),
                "not among workload_issuers",
            ),
            (
                Box::new(|c| c.workload_issuers[0].issuer = "spiffe://example.org".into()),
                "give jwks or jwks_uri",
            ),
        ];
        for (edit, want) in cases {
            let mut cfg = with_workloads();
            edit(&mut cfg);
            let err = start(&Arc::new(TestSql::memory()), cfg, 0)
                .await
                .err()
                .expect("start refused")
                .to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    });
}

#[test]
fn invalid_seeds_refuse_to_start_naming_the_seed() {
    run(async {
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|c| c.resources[0].uri = "http://mcp.example.com/mcp".into()),
                "seed resource 'http://mcp.example.com/mcp'",
            ),
            (Box::new(|c| c.resources[0].scopes.clear()), "seed resource"),
            (
                Box::new(|c| c.clients[0].redirect_uris = vec!["javascript:alert(1)".into()]),
                "seed client 'backend'",
            ),
            (
                Box::new(|c| c.clients[0].client_secret = Some(Secret::new("short"))),
                "at least 16",
            ),
            (
                Box::new(|c| {
                    c.clients[0].client_secret = None;
                    c.clients[0].token_endpoint_auth_method = Some("client_secret_post".into());
                }),
                "needs a client_secret",
            ),
            (
                Box::new(|c| c.clients[1].token_endpoint_auth_method = Some("none".into())),
                "",
            ),
            (
                Box::new(|c| {
                    c.clients[0].token_endpoint_auth_method = Some("client_secret_post".into())
                }),
                "",
            ),
            (
                Box::new(|c| c.clients[1].redirect_uris = vec!["com.example.app:/cb".into()]),
                "",
            ),
            (
                Box::new(|c| {
                    c.clients[1].client_secret = Some(Secret::new("desktop-secret-0123456789"));
                    c.clients[1].token_endpoint_auth_method = Some("none".into());
                }),
                "token_endpoint_auth_method is 'none'",
            ),
            (
                Box::new(|c| c.clients[1].client_id = "https://x.example/c".into()),
                "seed client",
            ),
            (
                Box::new(|c| c.users[0].password = Secret::new("short")),
                "seed user 'alice'",
            ),
            (
                Box::new(|c| c.users[0].username = "has space".into()),
                "seed user",
            ),
            (
                Box::new(|c| c.users.push(c.users[0].clone())),
                "username 'alice' is declared more than once",
            ),
            (
                Box::new(|c| c.clients.push(c.clients[0].clone())),
                "client_id 'backend' is declared more than once",
            ),
        ];
        for (edit, want) in cases {
            let mut cfg = seeded("correct horse");
            edit(&mut cfg);
            let db = Arc::new(TestSql::memory());
            let result = start(&db, cfg, 0).await;
            if want.is_empty() {
                // Controls: valid variations start fine.
                result.unwrap();
                continue;
            }
            let err = result.err().expect("start refused").to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
            // Nothing was written before the refusal.
            let sql: &dyn crate::store::SqlStore = db.as_ref();
            assert!(
                repo::users::list(sql, 10, 0).await.unwrap().is_empty(),
                "{err}"
            );
        }
    });
}
