//! Admin API tests of the stored records: resources, clients (the secret shown once, public
//! clients, conflicts), the audit log and its paging, key rotation, refused requests counted.

use super::*;

#[test]
fn resources_create_update_list_delete() {
    run(async {
        let s = test_server(cfg()).await;
        let (status, r) = call(
            &s,
            Method::POST,
            "/admin/resources",
            Some(json!({"uri": "https://mcp.example.com/mcp", "scopes": ["tools:read", "tools:call", "tools:read"], "name": "Example"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
        assert_eq!(r["scopes"], json!(["tools:read", "tools:call"]));
        assert_eq!(
            r["metadata_url"],
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        // Posting again replaces the catalog and keeps the creation time.
        let (status, r2) = call(
            &s,
            Method::POST,
            "/admin/resources",
            Some(json!({"uri": "https://mcp.example.com/mcp", "scopes": ["files"]})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(r2["scopes"], json!(["files"]));
        assert_eq!(r2["created_at"], r["created_at"]);
        let (status, _) = call(
            &s,
            Method::POST,
            "/admin/resources",
            Some(json!({"uri": "http://127.0.0.1:8080/mcp", "scopes": ["a"]})),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "plain http on loopback is allowed"
        );

        for bad in [
            json!({"uri": "http://mcp.example.com/mcp", "scopes": ["a"]}),
            json!({"uri": "https://mcp.example.com/mcp#frag", "scopes": ["a"]}),
            json!({"uri": "https://mcp.example.com/mcp#", "scopes": ["a"]}),
            json!({"uri": "/mcp", "scopes": ["a"]}),
            json!({"uri": "ftp://mcp.example.com/", "scopes": ["a"]}),
            json!({"uri": "https://user@mcp.example.com/", "scopes": ["a"]}),
            json!({"uri": "https://mcp.example.com/ x", "scopes": ["a"]}),
            json!({"uri": "https://mcp.example.com/", "scopes": []}),
            json!({"uri": "https://mcp.example.com/", "scopes": ["two words"]}),
            json!({"uri": "https://mcp.example.com/", "scopes": [""]}),
            json!({"uri": "https://mcp.example.com/", "scopes": ["quote\"d"]}),
            json!({"uri": "https://mcp.example.com/", "scopes": "a"}),
            json!({"uri": "https://mcp.example.com/", "scopes": ["a"], "name": ""}),
        ] {
            let (status, body) =
                call(&s, Method::POST, "/admin/resources", Some(bad.clone())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        }

        let (_, list) = call(&s, Method::GET, "/admin/resources", None).await;
        let all = list["resources"].as_array().unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|r| r["metadata_url"].is_string()));

        let (status, _) = call(
            &s,
            Method::DELETE,
            "/admin/resources?uri=https%3A%2F%2Fmcp.example.com%2Fmcp",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = call(
            &s,
            Method::DELETE,
            "/admin/resources?uri=https%3A%2F%2Fmcp.example.com%2Fmcp",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(&s, Method::DELETE, "/admin/resources", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let acts = actions(&s).await;
        for a in [
            "admin.resource.created",
            "admin.resource.updated",
            "admin.resource.deleted",
        ] {
            assert!(acts.iter().any(|x| x == a), "{a} in {acts:?}");
        }
    });
}

#[test]
fn a4_client_secret_returned_once_and_stored_hashed() {
    run(async {
        let s = test_server(cfg()).await;
        let (status, c) = call(
            &s,
            Method::POST,
            "/admin/clients",
            Some(json!({
                "client_id": "backend",
                "client_name": "Backend",
                "redirect_uris": ["https://app.example.com/cb"],
                "token_endpoint_auth_method": "client_secret_basic",
            })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
        assert_eq!(c["client_id"], "backend");
        assert_eq!(c["confidential"], true);
        assert_eq!(c["source"], "static");
        let secret = c["client_secret"].as_str().unwrap().to_owned();
        assert!(secret.len() >= 43, "256-bit secret");
        let row = repo::clients::get(s.env().sql.as_ref(), "backend")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.secret_hash.as_deref(),
            Some(crate::crypto::token_hash(&secret).as_str())
        );
        assert_eq!(row.source, "static");

        // Never shown again.
        let (_, one) = call(&s, Method::GET, "/admin/clients/backend", None).await;
        let (_, list) = call(&s, Method::GET, "/admin/clients", None).await;
        for v in [&one, &list] {
            let text = v.to_string();
            assert!(!text.contains(&secret));
            assert!(!text.contains(row.secret_hash.as_deref().unwrap()));
            assert!(!text.contains("client_secret\""));
        }
        assert_eq!(one["confidential"], true);
        assert_eq!(list["clients"][0]["client_id"], "backend");
        // And the secret is not in the audit log either.
        let (_, audit) = call(&s, Method::GET, "/admin/audit", None).await;
        assert!(!audit.to_string().contains(&secret));
    });
}

#[test]
fn public_clients_generated_ids_conflicts_and_delete() {
    run(async {
        let s = test_server(cfg()).await;
        let (status, c) = call(
            &s,
            Method::POST,
            "/admin/clients",
            Some(json!({
                "redirect_uris": ["http://127.0.0.1/callback"],
                "token_endpoint_auth_method": "none",
            })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
        assert_eq!(c["confidential"], false);
        assert!(c.get("client_secret").is_none());
        let id = c["client_id"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 22);

        let (status, native) = call(
            &s,
            Method::POST,
            "/admin/clients",
            Some(json!({"redirect_uris": ["com.example.app:/cb"], "token_endpoint_auth_method": "none"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{native}");
        assert_eq!(native["application_type"], "native");
        assert_eq!(native["grant_types"], json!(["authorization_code"]));

        let body = json!({"client_id": "cli", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"});
        let (status, _) = call(&s, Method::POST, "/admin/clients", Some(body.clone())).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, err) = call(&s, Method::POST, "/admin/clients", Some(body)).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::CONFLICT, Some("conflict"))
        );

        for bad in [
            json!({"client_id": "https://evil.example/doc", "redirect_uris": ["https://a.example/cb"]}),
            json!({"client_id": "", "redirect_uris": ["https://a.example/cb"]}),
            json!({"client_id": "sp ace", "redirect_uris": ["https://a.example/cb"]}),
            json!({"redirect_uris": ["javascript:alert(1)"], "token_endpoint_auth_method": "none"}),
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "magic"}),
            json!({"redirect_uris": "https://a.example/cb"}),
        ] {
            let (status, body) = call(&s, Method::POST, "/admin/clients", Some(bad.clone())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        }

        let (_, list) = call(&s, Method::GET, "/admin/clients?limit=1", None).await;
        assert_eq!(list["clients"].as_array().unwrap().len(), 1);
        let (status, _) = call(&s, Method::DELETE, "/admin/clients/cli", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = call(&s, Method::GET, "/admin/clients/cli", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(&s, Method::DELETE, "/admin/clients/cli", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let acts = actions(&s).await;
        assert_eq!(
            acts.iter().filter(|a| *a == "admin.client.created").count(),
            3
        );
        assert_eq!(
            acts.iter().filter(|a| *a == "admin.client.deleted").count(),
            1
        );
    });
}

#[test]
fn audit_lists_newest_first_with_filters_and_paging() {
    run(async {
        let s = test_server(cfg()).await;
        for i in 0..7 {
            crate::audit::record(
                s.env(),
                crate::audit::Event {
                    action: if i % 2 == 0 { "token.issued" } else { "login" },
                    success: i != 3,
                    client_id: Some(if i < 4 { "c1" } else { "c2" }),
                    subject: Some("u1"),
                    reason: (i == 3).then_some("invalid_grant"),
                    ..Default::default()
                },
            )
            .await;
        }
        let seqs = |v: &Value| -> Vec<i64> {
            v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap())
                .collect()
        };
        let (_, all) = call(&s, Method::GET, "/admin/audit?subject=u1", None).await;
        let all_seqs = seqs(&all);
        assert_eq!(all_seqs.len(), 7);
        assert!(all_seqs.windows(2).all(|w| w[0] > w[1]), "newest first");
        assert_eq!(all["next_before"], Value::Null);
        assert_eq!(all["events"][0]["client_id"], "c2");

        // Paging with the cursor walks every event exactly once.
        let mut seen = Vec::new();
        let mut path = "/admin/audit?subject=u1&limit=3".to_owned();
        loop {
            let (status, page) = call(&s, Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK);
            seen.extend(seqs(&page));
            match page["next_before"].as_i64() {
                Some(b) => path = format!("/admin/audit?subject=u1&limit=3&before={b}"),
                None => break,
            }
        }
        assert_eq!(seen, all_seqs);

        let (_, logins) = call(&s, Method::GET, "/admin/audit?action=login", None).await;
        assert_eq!(seqs(&logins).len(), 3);
        let (_, failed) = call(&s, Method::GET, "/admin/audit?outcome=failure", None).await;
        assert_eq!(failed["events"].as_array().unwrap().len(), 1);
        assert_eq!(failed["events"][0]["reason"], "invalid_grant");
        let (_, c2) = call(
            &s,
            Method::GET,
            "/admin/audit?client_id=c2&action=token.issued",
            None,
        )
        .await;
        assert_eq!(seqs(&c2).len(), 2);

        for bad in [
            "/admin/audit?limit=0",
            "/admin/audit?limit=1001",
            "/admin/audit?limit=ten",
            "/admin/audit?before=0",
            "/admin/audit?before=x",
            "/admin/audit?outcome=maybe",
        ] {
            let (status, _) = call(&s, Method::GET, bad, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        }
    });
}

#[test]
fn key_rotation_shows_new_active_and_old_retired() {
    run(async {
        let s = test_server(cfg()).await;
        let (status, before) = call(&s, Method::GET, "/admin/keys", None).await;
        assert_eq!(status, StatusCode::OK);
        let keys = before["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["status"], "active");
        let old_kid = keys[0]["kid"].as_str().unwrap().to_owned();

        let (status, new) = call(&s, Method::POST, "/admin/keys/rotate", None).await;
        assert_eq!(status, StatusCode::CREATED, "{new}");
        assert_eq!(new["status"], "active");
        let new_kid = new["kid"].as_str().unwrap().to_owned();
        assert_ne!(new_kid, old_kid);

        let (_, after) = call(&s, Method::GET, "/admin/keys", None).await;
        let keys = after["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        let find = |kid: &str| keys.iter().find(|k| k["kid"] == kid).unwrap().clone();
        assert_eq!(find(&new_kid)["status"], "active");
        let old = find(&old_kid);
        assert_eq!(old["status"], "retired");
        assert!(old["retired_at"].is_i64());
        assert!(old["remove_after"].as_i64().unwrap() > old["retired_at"].as_i64().unwrap());
        assert_eq!(s.keys().active(s.env()).await.unwrap().kid, new_kid);
    });
}

#[test]
fn b4_refused_admin_requests_are_counted_not_each_recorded() {
    run(async {
        let (env, clock) = crate::store::test_store::test_env();
        let s = Portcullis::start(env, cfg()).await.unwrap();
        let refused = || request(Method::GET, "/admin/users", None, Some("Bearer nope"));
        let audited = || async {
            repo::audit::list(
                s.env().sql.as_ref(),
                &repo::audit::AuditFilter {
                    action: Some("admin.auth".into()),
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
        };
        clock.set(crate::admin::REFUSAL_WINDOW_SECS * 6_000_000);
        for _ in 0..50 {
            assert_eq!(raw(&s, refused()).await.status(), StatusCode::UNAUTHORIZED);
        }
        let evs = audited().await;
        assert_eq!(evs.len(), 1, "one row for 50 refusals in one window");
        // The next window writes one more row, reporting the 50 of the previous one.
        clock.advance(crate::admin::REFUSAL_WINDOW_SECS);
        for _ in 0..3 {
            raw(&s, refused()).await;
        }
        let evs = audited().await;
        assert_eq!(evs.len(), 2);
        assert_eq!(
            evs[0].detail.as_ref().unwrap()["previous_window_refusals"],
            50
        );
        // The right key still works and writes nothing for refusals.
        let (status, _) = call(&s, Method::GET, "/admin/users", None).await;
        assert_eq!(status, StatusCode::OK);
    });
}
