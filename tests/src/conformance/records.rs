//! Conformance cases for the records the admin manages and the server reads: migrations,
//! sessions, clients, users, resources, the audit log and signing keys.

use portcullis_core::clients::ClientMetadata;
use portcullis_core::crypto::token_hash;
use portcullis_core::store::migrations;
use portcullis_core::store::repo::{audit, clients, keys, resources, sessions, users};
use portcullis_core::store::StoreError;

use super::{latest_version, setup, uid, Store, NOW};

/// Migrations run twice leave the schema at the latest version and every table usable.
pub async fn migrations_idempotent(store: Store) {
    let first = migrations::migrate(store.as_ref(), NOW)
        .await
        .expect("first migration run");
    let second = migrations::migrate(store.as_ref(), NOW + 1)
        .await
        .expect("second migration run");
    assert_eq!(first, latest_version());
    assert_eq!(second, latest_version());
    assert_eq!(
        migrations::current_version(store.as_ref()).await.unwrap(),
        latest_version()
    );
    let recorded = store
        .query(
            "SELECT COUNT(*) FROM schema_migrations WHERE version = ?",
            &[latest_version().into()],
        )
        .await
        .unwrap();
    assert_eq!(
        recorded[0].int(0).unwrap(),
        1,
        "each version is recorded exactly once"
    );
    for table in [
        "users",
        "resources",
        "clients",
        "grants",
        "auth_codes",
        "refresh_tokens",
        "access_tokens",
        "sessions",
        "auth_requests",
        "signing_keys",
        "audit_events",
    ] {
        store
            .query(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .await
            .unwrap_or_else(|e| panic!("table {table} is missing after migrations: {e}"));
    }
}

/// Browser sessions: live until expiry, gone after logout.
pub async fn sessions_lifecycle(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let s = sessions::SessionRow {
        id_hash: token_hash(&uid("sess")),
        subject: uid("user"),
        auth_time: NOW,
        expires_at: NOW + 100,
    };
    sessions::insert(db, &s).await.unwrap();
    assert_eq!(
        sessions::get_live(db, &s.id_hash, NOW).await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        sessions::get_live(db, &s.id_hash, NOW + 100).await.unwrap(),
        None
    );
    assert!(matches!(
        sessions::insert(db, &s).await,
        Err(StoreError::Conflict(_))
    ));
    sessions::delete(db, &s.id_hash).await.unwrap();
    assert_eq!(sessions::get_live(db, &s.id_hash, NOW).await.unwrap(), None);
}

/// Clients: insert, get, upsert, list, delete; a duplicate id is a conflict.
pub async fn clients_crud_and_conflict(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let metadata = ClientMetadata {
        redirect_uris: vec![
            "https://client.example/cb".into(),
            "http://127.0.0.1/cb".into(),
        ],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        response_types: vec!["code".into()],
        token_endpoint_auth_method: "client_secret_basic".into(),
        client_name: Some("Conformance client ü".into()),
        scope: Some("mcp:tools".into()),
        application_type: "web".into(),
        ..ClientMetadata::default()
    };
    let c = clients::ClientRow {
        client_id: uid("client"),
        secret_hash: Some(token_hash("s3cret")),
        metadata: metadata.clone(),
        source: "static".into(),
        created_at: NOW,
        last_used_at: None,
    };
    clients::insert(db, &c).await.unwrap();
    assert_eq!(
        clients::get(db, &c.client_id).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(clients::get(db, &uid("missing")).await.unwrap(), None);
    match clients::insert(db, &c).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a duplicate client id must be a Conflict, got {other:?}"),
    }

    let mut updated = c.clone();
    updated.secret_hash = None;
    updated.metadata.token_endpoint_auth_method = "none".into();
    updated.metadata.client_name = None;
    updated.source = "seed".into();
    clients::upsert(db, &updated).await.unwrap();
    let got = clients::get(db, &c.client_id).await.unwrap().unwrap();
    assert_eq!(got.secret_hash, None);
    assert_eq!(got.metadata, updated.metadata);
    assert_eq!(got.source, "seed");
    assert_eq!(got.created_at, NOW, "upsert keeps the creation time");

    let fresh = clients::ClientRow {
        client_id: uid("client"),
        created_at: NOW + 1,
        ..c.clone()
    };
    clients::upsert(db, &fresh).await.unwrap();
    assert_eq!(
        clients::get(db, &fresh.client_id).await.unwrap(),
        Some(fresh.clone())
    );

    let listed = clients::list(db, 10_000, 0).await.unwrap();
    let pos = |id: &str| listed.iter().position(|r| r.client_id == id);
    let (a, b) = (pos(&c.client_id), pos(&fresh.client_id));
    assert!(a.is_some() && b.is_some(), "both clients are listed");
    assert!(a < b, "clients are listed oldest first");
    assert!(
        clients::list(db, 1, 0).await.unwrap().len() <= 1,
        "limit applies"
    );

    assert!(clients::delete(db, &c.client_id).await.unwrap());
    assert!(!clients::delete(db, &c.client_id).await.unwrap());
    assert_eq!(clients::get(db, &c.client_id).await.unwrap(), None);
}

/// Users: insert, lookups, password change, list, delete; a taken username is a conflict.
pub async fn users_crud_and_conflict(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let u = users::UserRow {
        id: uid("sub"),
        username: uid("alice"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        disabled: false,
        created_at: NOW,
    };
    users::insert(db, &u).await.unwrap();
    assert_eq!(
        users::by_username(db, &u.username).await.unwrap(),
        Some(u.clone())
    );
    assert_eq!(users::by_id(db, &u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(users::by_username(db, &uid("nobody")).await.unwrap(), None);

    let dup = users::UserRow {
        id: uid("sub"),
        ..u.clone()
    };
    match users::insert(db, &dup).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a taken username must be a Conflict, got {other:?}"),
    }

    assert!(users::set_password(db, &u.username, "$argon2id$new")
        .await
        .unwrap());
    assert!(!users::set_password(db, &uid("nobody"), "$argon2id$new")
        .await
        .unwrap());
    assert_eq!(
        users::by_id(db, &u.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$new"
    );

    let disabled = users::UserRow {
        id: uid("sub"),
        username: uid("bob"),
        disabled: true,
        ..u.clone()
    };
    users::insert(db, &disabled).await.unwrap();
    assert!(
        users::by_id(db, &disabled.id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );

    let listed = users::list(db, 10_000, 0).await.unwrap();
    assert!(listed.iter().any(|r| r.id == u.id));
    assert!(listed.iter().any(|r| r.id == disabled.id));
    let names: Vec<&str> = listed.iter().map(|r| r.username.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "users are listed by name");

    assert!(users::delete(db, &u.username).await.unwrap());
    assert!(!users::delete(db, &u.username).await.unwrap());
    assert_eq!(users::by_id(db, &u.id).await.unwrap(), None);
}

/// Resources: upsert creates then updates, get is exact, list is by URI, delete.
pub async fn resources_crud(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let id = uid("r");
    let r = resources::ResourceRow {
        uri: format!("https://mcp.example.com/{id}/mcp"),
        name: Some("Example MCP".into()),
        scopes: vec!["mcp:tools".into(), "mcp:read".into()],
        introspection_clients: vec!["rs-a".into(), "rs-b".into()],
        exchange_clients: vec!["orchestrator".into()],
        created_at: NOW,
    };
    resources::upsert(db, &r).await.unwrap();
    assert_eq!(resources::get(db, &r.uri).await.unwrap(), Some(r.clone()));
    assert_eq!(
        resources::get(db, &format!("{}/", r.uri)).await.unwrap(),
        None,
        "lookup is by exact URI"
    );
    let updated = resources::ResourceRow {
        name: None,
        scopes: vec!["mcp:admin".into()],
        introspection_clients: Vec::new(),
        created_at: NOW + 50,
        ..r.clone()
    };
    resources::upsert(db, &updated).await.unwrap();
    let got = resources::get(db, &r.uri).await.unwrap().unwrap();
    assert_eq!(got.scopes, vec!["mcp:admin".to_owned()]);
    assert_eq!(got.name, None);
    assert!(got.introspection_clients.is_empty());
    assert_eq!(got.created_at, NOW, "upsert keeps the creation time");

    let second = resources::ResourceRow {
        uri: format!("https://mcp.example.com/{id}/a"),
        ..r.clone()
    };
    resources::upsert(db, &second).await.unwrap();
    let listed = resources::list(db).await.unwrap();
    let uris: Vec<&str> = listed.iter().map(|r| r.uri.as_str()).collect();
    let mut sorted = uris.clone();
    sorted.sort_unstable();
    assert_eq!(uris, sorted, "resources are listed by URI");
    assert!(uris.contains(&r.uri.as_str()) && uris.contains(&second.uri.as_str()));

    assert!(resources::delete(db, &r.uri).await.unwrap());
    assert!(!resources::delete(db, &r.uri).await.unwrap());
    assert_eq!(resources::get(db, &r.uri).await.unwrap(), None);
}

/// The audit log lists newest first, filters by action, client, subject and outcome, and
/// pages with `before` and `limit`.
pub async fn audit_list_filters_and_paging(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let client = uid("audit-client");
    let subject = uid("audit-sub");
    let events = [
        ("login", "success", Some(subject.as_str())),
        ("token.issued", "success", Some(subject.as_str())),
        ("token.denied", "failure", None),
        ("token.issued", "success", None),
        ("revocation", "success", Some(subject.as_str())),
    ];
    for (i, (action, outcome, sub)) in events.iter().enumerate() {
        audit::insert(
            db,
            &audit::AuditRow {
                seq: 0,
                at: NOW + i as i64,
                action: (*action).into(),
                outcome: (*outcome).into(),
                client_id: Some(client.clone()),
                subject: sub.map(str::to_owned),
                reason: (*outcome == "failure").then(|| "invalid_grant".to_owned()),
                request_id: Some(format!("req-{i}")),
                // Events 1 and 3 belong to one trace.
                trace_id: Some(format!("{:032x}", 0xabc + (i % 2))),
                detail: Some(serde_json::json!({ "i": i, "scope": "mcp:tools" })),
                label: None,
            },
        )
        .await
        .unwrap();
    }
    let base = audit::AuditFilter {
        client_id: Some(client.clone()),
        limit: 100,
        ..Default::default()
    };
    let all = audit::list(db, &base).await.unwrap();
    assert_eq!(all.len(), 5);
    let ats: Vec<i64> = all.iter().map(|e| e.at).collect();
    assert_eq!(
        ats,
        vec![NOW + 4, NOW + 3, NOW + 2, NOW + 1, NOW],
        "newest first"
    );
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq));
    assert_eq!(all[0].action, "revocation");
    assert_eq!(all[2].reason.as_deref(), Some("invalid_grant"));
    assert_eq!(all[2].request_id.as_deref(), Some("req-2"));
    assert_eq!(
        all[4].detail,
        Some(serde_json::json!({ "i": 0, "scope": "mcp:tools" }))
    );

    let issued = audit::list(
        db,
        &audit::AuditFilter {
            action: Some("token.issued".into()),
            ..base.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        issued.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![NOW + 3, NOW + 1]
    );

    let failures = audit::list(
        db,
        &audit::AuditFilter {
            outcome: Some("failure".into()),
            ..base.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].action, "token.denied");

    let one_trace = audit::list(
        db,
        &audit::AuditFilter {
            trace_id: Some(format!("{:032x}", 0xabd)),
            ..base.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        one_trace.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![NOW + 3, NOW + 1],
        "filtered by trace id"
    );

    let by_subject = audit::list(
        db,
        &audit::AuditFilter {
            subject: Some(subject.clone()),
            ..base.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(by_subject.len(), 3);
    assert!(by_subject
        .iter()
        .all(|e| e.subject.as_deref() == Some(subject.as_str())));

    // Paging: two pages of two, then the last one, then nothing.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = audit::list(
            db,
            &audit::AuditFilter {
                limit: 2,
                before,
                ..base.clone()
            },
        )
        .await
        .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2, "limit applies");
        before = page.last().map(|e| e.seq);
        seen.extend(page.into_iter().map(|e| e.at));
        assert!(seen.len() <= 5, "paging terminates");
    }
    assert_eq!(seen, ats, "paging visits every event once, newest first");
}

/// Signing keys: published newest first; retiring keeps a key published until
/// `remove_after`, then drops it from the set.
pub async fn keys_published_and_retire(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let key = |kid: String, created_at: i64| keys::KeyRow {
        public_jwk: format!(r#"{{"kty":"EC","crv":"P-256","kid":"{kid}","x":"x","y":"y"}}"#),
        kid,
        alg: "ES256".into(),
        private_enc: "sealed".into(),
        created_at,
        retired_at: None,
        remove_after: None,
    };
    let old = key(uid("kid"), NOW - 100);
    let new = key(uid("kid"), NOW);
    keys::insert(db, &old).await.unwrap();
    keys::insert(db, &new).await.unwrap();
    assert!(matches!(
        keys::insert(db, &old).await,
        Err(StoreError::Conflict(_))
    ));
    let ours = |rows: Vec<keys::KeyRow>| -> Vec<keys::KeyRow> {
        rows.into_iter()
            .filter(|k| k.kid == old.kid || k.kid == new.kid)
            .collect()
    };
    let published = ours(keys::published(db, NOW).await.unwrap());
    assert_eq!(
        published,
        vec![new.clone(), old.clone()],
        "newest first, unchanged"
    );

    let retired = keys::retire_others(db, &new.kid, NOW, NOW + 1000)
        .await
        .unwrap();
    assert!(retired >= 1);
    let published = ours(keys::published(db, NOW + 999).await.unwrap());
    assert_eq!(
        published.len(),
        2,
        "a retired key stays published until remove_after"
    );
    assert_eq!(published[0].retired_at, None, "the kept key stays active");
    assert_eq!(published[1].retired_at, Some(NOW));
    assert_eq!(published[1].remove_after, Some(NOW + 1000));
    let published = ours(keys::published(db, NOW + 1000).await.unwrap());
    assert_eq!(published, vec![new.clone()], "then it leaves the JWKS");

    // Retiring again does not touch already retired keys.
    keys::retire_others(db, &new.kid, NOW + 5, NOW + 5000)
        .await
        .unwrap();
    let all = ours(keys::published(db, NOW).await.unwrap());
    let o = all.iter().find(|k| k.kid == old.kid).unwrap();
    assert_eq!(
        (o.retired_at, o.remove_after),
        (Some(NOW), Some(NOW + 1000))
    );
}
