//! Tests of the CLI's admin operations, each run in-process against a fresh SQLite database.

use super::*;

async fn server() -> (tempfile::TempDir, Portcullis) {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("a.db").display());
    let env = [("PORTCULLIS_DATABASE_URL".to_string(), db)];
    let settings = crate::config::load_from(None, &env).unwrap();
    let server = crate::server::start(&settings).await.unwrap();
    (dir, server)
}

#[test]
fn audit_query_is_encoded() {
    let op = Op::AuditList {
        limit: Some(5),
        action: Some("token issued&x".into()),
    };
    assert_eq!(
        op.request().1,
        "/admin/audit?limit=5&action=token+issued%26x"
    );
    let none = Op::AuditList {
        limit: None,
        action: None,
    };
    assert_eq!(none.request().1, "/admin/audit");
}

#[tokio::test]
async fn vault_providers_and_connections_from_the_cli() {
    let (_dir, server) = server().await;
    let body = json!({
        "name": "github", "preset": "github", "client_id": "Iv1.x",
        "client_secret": "cli-secret-value", "scopes": ["repo"],
        "resource": "https://api.github.com",
    });
    let (s, v) = run(&server, &Op::ProviderPut { body }).await.unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, list) = run(&server, &Op::ProviderList).await.unwrap();
    assert!(list.to_string().contains("github"), "{list}");
    assert!(!list.to_string().contains("cli-secret-value"), "{list}");
    let (s, v) = run(
        &server,
        &Op::ConnectionList {
            user: Some("nobody".into()),
            provider: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (s, v["connections"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let (s, _) = run(
        &server,
        &Op::ConnectionRevoke {
            id: "missing".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = run(
        &server,
        &Op::ProviderDelete {
            name: "github".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn connectors_and_identities_from_the_cli() {
    let (_dir, server) = server().await;
    let body = json!({
        "id": "okta", "name": "Okta", "issuer": "https://acme.okta.com",
        "client_id": "0oa1", "client_secret": "cli-connector-secret",
    });
    let (s, v) = run(&server, &Op::ConnectorPut { body }).await.unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["redirect_uri"]
        .as_str()
        .unwrap()
        .ends_with("/oauth/connectors/okta/callback"));
    let (_, list) = run(&server, &Op::ConnectorList).await.unwrap();
    assert!(list.to_string().contains("okta"), "{list}");
    assert!(!list.to_string().contains("cli-connector-secret"), "{list}");
    let (s, v) = run(
        &server,
        &Op::IdentityList {
            user: None,
            connector: Some("okta".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (s, v["identities"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let unlink = Op::IdentityUnlink {
        connector: "okta".into(),
        subject: "nobody".into(),
    };
    assert_eq!(
        run(&server, &unlink).await.unwrap().0,
        StatusCode::NOT_FOUND
    );
    let delete = Op::ConnectorDelete { id: "okta".into() };
    assert_eq!(
        run(&server, &delete).await.unwrap().0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn users_resources_clients_keys_roundtrip() {
    let (_dir, server) = server().await;
    let (s, v) = run(
        &server,
        &Op::UserAdd {
            username: "alice".into(),
            password: "correct horse battery".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(!v.to_string().contains("correct horse"));
    let (_, users) = run(&server, &Op::UserList).await.unwrap();
    assert!(users.to_string().contains("alice"), "{users}");

    let (s, v) = run(
        &server,
        &Op::ResourceAdd {
            uri: "https://mcp.example.com/mcp".into(),
            scopes: vec!["mcp:tools".into(), "mcp:read".into()],
            name: Some("Example".into()),
        },
    )
    .await
    .unwrap();
    assert!(s.is_success(), "{v}");
    let (_, res) = run(&server, &Op::ResourceList).await.unwrap();
    assert!(res.to_string().contains("mcp:read"), "{res}");

    let (s, v) = run(
        &server,
        &Op::ClientAdd {
            client_id: Some("cli-test".into()),
            confidential: Some(true),
            redirect_uris: vec!["https://app.example.com/cb".into()],
            grant_types: vec![],
            name: Some("CLI test".into()),
            scope: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["client_id"], "cli-test");
    assert!(
        v["client_secret"].as_str().is_some_and(|s| s.len() >= 32),
        "{v}"
    );
    let (_, clients) = run(&server, &Op::ClientList).await.unwrap();
    assert!(clients.to_string().contains("cli-test"));
    assert!(!clients
        .to_string()
        .contains(v["client_secret"].as_str().unwrap()));

    let (s, v) = run(
        &server,
        &Op::ClientAdd {
            client_id: None,
            confidential: Some(false),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            name: None,
            scope: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v.get("client_secret").is_none(), "{v}");

    let (_, before) = run(&server, &Op::KeyList).await.unwrap();
    let (s, _) = run(
        &server,
        &Op::KeyRotate {
            prepublish_secs: None,
        },
    )
    .await
    .unwrap();
    assert!(s.is_success());
    let (_, after) = run(&server, &Op::KeyList).await.unwrap();
    assert_ne!(before, after);
    let (s, pending) = run(
        &server,
        &Op::KeyRotate {
            prepublish_secs: Some(600),
        },
    )
    .await
    .unwrap();
    assert!(s.is_success(), "{pending}");
    assert_eq!(pending["status"], "pending", "{pending}");

    let (s, audit) = run(
        &server,
        &Op::AuditList {
            limit: Some(50),
            action: Some("admin.client.created".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(audit["events"].as_array().unwrap().len(), 2, "{audit}");
}

#[tokio::test]
async fn errors_come_back_as_status_and_json() {
    let (_dir, server) = server().await;
    let add = Op::UserAdd {
        username: "bob".into(),
        password: "another long password".into(),
    };
    run(&server, &add).await.unwrap();
    let (s, v) = run(&server, &add).await.unwrap();
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"], "conflict");
}

#[tokio::test]
async fn users_and_client_policies_from_the_cli() {
    let (_dir, server) = server().await;
    let add = Op::UserAdd {
        username: "bob".into(),
        password: "first password".into(),
    };
    assert_eq!(run(&server, &add).await.unwrap().0, StatusCode::CREATED);
    for op in [
        Op::UserPassword {
            username: "bob".into(),
            password: "second password".into(),
        },
        Op::UserDisabled {
            username: "bob".into(),
            disabled: true,
        },
    ] {
        let (s, v) = run(&server, &op).await.unwrap();
        assert_eq!(s, StatusCode::NO_CONTENT, "{op:?}: {v}");
    }
    let (_, users) = run(&server, &Op::UserList).await.unwrap();
    assert_eq!(users["users"][0]["disabled"], json!(true), "{users}");
    let (s, _) = run(
        &server,
        &Op::UserDisabled {
            username: "nobody".into(),
            disabled: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(s, StatusCode::NOT_FOUND);

    let id = "https://agent.example.com/client.json";
    let (s, v) = run(
        &server,
        &Op::ClientPolicy {
            client_id: id.into(),
            client_credentials: true,
            rate_limit_per_minute: Some(30),
            daily_token_quota: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["client_id"], json!(id));
    assert_eq!(v["effective_rate_limit_per_minute"], json!(30));
    let suspend = Op::ClientSuspended {
        client_id: id.into(),
        suspended: true,
    };
    assert_eq!(
        run(&server, &suspend).await.unwrap().0,
        StatusCode::NO_CONTENT
    );
    let (s, v) = run(
        &server,
        &Op::ClientPolicy {
            client_id: "no-such-client".into(),
            client_credentials: true,
            rate_limit_per_minute: Some(-1),
            daily_token_quota: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn workload_issuers_and_rules_from_the_cli() {
    let (_dir, server) = server().await;
    let issuer = "https://token.actions.githubusercontent.com";
    let resource = "https://mcp.example.com/mcp";
    let ok = |s: StatusCode| s.is_success();
    let add = Op::ResourceAdd {
        uri: resource.into(),
        scopes: vec!["mcp:tools".into()],
        name: None,
    };
    assert!(ok(run(&server, &add).await.unwrap().0));
    let client = Op::ClientAdd {
        client_id: Some("ci-agent".into()),
        confidential: Some(true),
        redirect_uris: Vec::new(),
        grant_types: vec!["client_credentials".into()],
        name: Some("CI agent".into()),
        scope: None,
    };
    let (s, v) = run(&server, &client).await.unwrap();
    assert!(ok(s), "{v}");
    let trust = Op::WorkloadIssuerPut {
        issuer: issuer.into(),
        jwks_uri: None,
        audiences: vec!["portcullis".into()],
    };
    let (s, v) = run(&server, &trust).await.unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["key_source"], "discovery");
    assert_eq!(v["accepted_audiences"], json!(["portcullis"]));
    let allow = Op::WorkloadRulePut {
        issuer: issuer.into(),
        subject: "repo:acme/agent:*".into(),
        resource: resource.into(),
        client_id: "ci-agent".into(),
        scopes: vec!["mcp:tools".into()],
    };
    let (s, rule) = run(&server, &allow).await.unwrap();
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    let (s, list) = run(
        &server,
        &Op::WorkloadRuleList {
            issuer: Some(issuer.into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["workload_rules"][0]["id"], rule["id"], "{list}");
    let (_, issuers) = run(&server, &Op::WorkloadIssuerList).await.unwrap();
    assert_eq!(issuers["workload_issuers"][0]["issuer"], issuer);
    let forbid = Op::WorkloadRuleDelete {
        id: rule["id"].as_str().unwrap().into(),
    };
    assert_eq!(
        run(&server, &forbid).await.unwrap().0,
        StatusCode::NO_CONTENT
    );
    let untrust = Op::WorkloadIssuerDelete {
        issuer: issuer.into(),
    };
    assert_eq!(
        run(&server, &untrust).await.unwrap().0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        run(&server, &untrust).await.unwrap().0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn idps_and_policies_with_rules_from_the_cli() {
    let (_dir, server) = server().await;
    let issuer = "https://acme.okta.com";
    let (s, v) = run(
        &server,
        &Op::IdpPut {
            body: json!({ "issuer": issuer }),
        },
    )
    .await
    .unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = run(
        &server,
        &Op::ResourceAdd {
            uri: "https://mcp.example.com/mcp".into(),
            scopes: vec!["tools:read".into(), "tools:write".into()],
            name: None,
        },
    )
    .await
    .unwrap();
    assert!(s.is_success());
    let rule = json!({ "scopes": ["tools:write"], "groups": ["ops"],
                       "max_auth_age": 300, "acr_values": ["urn:mfa"] });
    let body = json!({
        "issuer": issuer, "client_id": "agent", "resource": "https://mcp.example.com/mcp",
        "scopes": ["tools:read", "tools:write"], "rules": [rule],
    });
    let (s, v) = run(&server, &Op::IdpPolicyPut { body }).await.unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["rules"][0]["groups_from"], json!("assertion"), "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let list = Op::IdpPolicyList {
        issuer: Some(issuer.into()),
    };
    let (_, v) = run(&server, &list).await.unwrap();
    assert_eq!(v["policies"][0]["rules"][0]["max_auth_age"], json!(300));
    let (_, idps) = run(&server, &Op::IdpList).await.unwrap();
    assert!(idps.to_string().contains(issuer), "{idps}");
    let delete = Op::IdpPolicyDelete { id };
    assert_eq!(
        run(&server, &delete).await.unwrap().0,
        StatusCode::NO_CONTENT
    );
    let delete = Op::IdpDelete {
        issuer: issuer.into(),
    };
    assert_eq!(
        run(&server, &delete).await.unwrap().0,
        StatusCode::NO_CONTENT
    );
}
