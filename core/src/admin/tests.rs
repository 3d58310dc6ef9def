//! Tests of the admin API over a real SQLite schema: key checks, every route, the secret
//! shown once, audit listing and paging, key rotation.

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::config::Config;
use crate::secret::Secret;
use crate::server::Portcullis;
use crate::store::repo;
use crate::store::test_store::test_server;

const KEY: &str = "admin-key-0123456789abcdef";

fn cfg() -> Config {
    Config {
        admin_api_key: Some(Secret::new(KEY)),
        ..Config::default()
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

fn request(method: Method, path: &str, body: Option<Value>, auth: Option<&str>) -> Request<Bytes> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Bytes::from(v.to_string()))
            .unwrap(),
        None => b.body(Bytes::new()).unwrap(),
    }
}

fn parse(resp: &http::Response<Bytes>) -> Value {
    if resp.body().is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(resp.body()).expect("admin responses are JSON")
    }
}

/// Calls the admin API with the right key.
async fn call(
    s: &Portcullis,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let resp = s
        .handle_admin(request(method, path, body, Some(&format!("Bearer {KEY}"))))
        .await;
    let v = parse(&resp);
    (resp.status(), v)
}

async fn raw(s: &Portcullis, req: Request<Bytes>) -> http::Response<Bytes> {
    s.handle_admin(req).await
}

async fn actions(s: &Portcullis) -> Vec<String> {
    let (_, v) = call(s, Method::GET, "/admin/audit?limit=1000", None).await;
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn missing_or_wrong_key_is_401_with_bearer_challenge() {
    run(async {
        let s = test_server(cfg()).await;
        let cases = [
            None,
            Some("Bearer wrong-key-0123456789abcdef".to_owned()),
            Some(format!("Basic {KEY}")),
            Some(format!("Bearer {KEY}x")),
            Some(format!("Bearer {}", &KEY[..KEY.len() - 1])),
            Some("Bearer".to_owned()),
            Some(KEY.to_owned()),
        ];
        for auth in cases {
            let resp = raw(
                &s,
                request(Method::GET, "/admin/users", None, auth.as_deref()),
            )
            .await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
            let challenge = resp.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            assert_eq!(parse(&resp)["error"], "unauthorized");
        }
        // The scheme is case-insensitive (RFC 7235 §2.1).
        let ok = raw(
            &s,
            request(
                Method::GET,
                "/admin/users",
                None,
                Some(&format!("bearer {KEY}")),
            ),
        )
        .await;
        assert_eq!(ok.status(), StatusCode::OK);
        // Two Authorization headers are refused, even if one is right.
        let mut two = request(
            Method::GET,
            "/admin/users",
            None,
            Some(&format!("Bearer {KEY}")),
        );
        two.headers_mut()
            .append(header::AUTHORIZATION, "Bearer other".parse().unwrap());
        assert_eq!(raw(&s, two).await.status(), StatusCode::UNAUTHORIZED);
        // Refused attempts are audited (without the key): once per window, counted (B4).
        let evs = repo::audit::list(
            s.env().sql.as_ref(),
            &repo::audit::AuditFilter {
                action: Some("admin.auth".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(evs.len(), 1);
        assert!(evs.iter().all(|e| e.outcome == "failure"));
        // A refused request changes nothing.
        let create = request(
            Method::POST,
            "/admin/users",
            Some(json!({"username": "mallory", "password": "password123"})),
            Some("Bearer nope"),
        );
        assert_eq!(raw(&s, create).await.status(), StatusCode::UNAUTHORIZED);
        assert!(repo::users::by_username(s.env().sql.as_ref(), "mallory")
            .await
            .unwrap()
            .is_none());
    });
}

#[test]
fn no_admin_key_configured_refuses_everything() {
    run(async {
        let s = test_server(Config::default()).await;
        for auth in [None, Some("Bearer anything-at-all-0123456789")] {
            let resp = raw(&s, request(Method::GET, "/admin/keys", None, auth)).await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
            let body = parse(&resp);
            assert_eq!(body["error"], "unauthorized");
            assert!(body["error_description"]
                .as_str()
                .unwrap()
                .contains("no admin API key is configured"));
        }
        // The trusted entry point (local CLI) needs no key.
        let resp = super::route_trusted(&s, request(Method::GET, "/admin/keys", None, None)).await;
        assert_eq!(resp.status(), StatusCode::OK);
    });
}

#[test]
fn routing_errors_are_4xx_never_500() {
    run(async {
        let s = test_server(cfg()).await;
        for (m, p, want) in [
            (Method::GET, "/admin/nope", StatusCode::NOT_FOUND),
            (Method::GET, "/admin", StatusCode::NOT_FOUND),
            (Method::GET, "/admin/users/", StatusCode::NOT_FOUND),
            (Method::GET, "/oauth/token", StatusCode::NOT_FOUND),
            (
                Method::GET,
                "/admin/keys/rotate",
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            (Method::PUT, "/admin/users", StatusCode::METHOD_NOT_ALLOWED),
            (Method::POST, "/admin/audit", StatusCode::METHOD_NOT_ALLOWED),
            (Method::GET, "/admin/users/%zz", StatusCode::BAD_REQUEST),
            (Method::GET, "/admin/users/%ff", StatusCode::BAD_REQUEST),
            (Method::GET, "/admin/users?limit=0", StatusCode::BAD_REQUEST),
            (Method::GET, "/admin/users?limit=x", StatusCode::BAD_REQUEST),
            (
                Method::GET,
                "/admin/users?offset=-1",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::GET,
                "/admin/users?limit=1&limit=2",
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (status, body) = call(&s, m.clone(), p, None).await;
            assert_eq!(status, want, "{m} {p}: {body}");
            assert!(body["error"].is_string(), "{m} {p}");
            assert_eq!(body["status"], want.as_u16(), "RFC 9457 status member");
        }
        let resp = raw(
            &s,
            request(
                Method::PUT,
                "/admin/users",
                None,
                Some(&format!("Bearer {KEY}")),
            ),
        )
        .await;
        assert_eq!(resp.headers()[header::ALLOW], "GET, POST");

        // Bad bodies: wrong content type, malformed JSON, unknown fields, too large.
        let auth = format!("Bearer {KEY}");
        let mut wrong_ct = request(Method::POST, "/admin/users", None, Some(&auth));
        *wrong_ct.body_mut() = Bytes::from_static(br#"{"username":"a","password":"password1"}"#);
        wrong_ct
            .headers_mut()
            .insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(raw(&s, wrong_ct).await.status(), StatusCode::BAD_REQUEST);
        let mut bad_json = request(Method::POST, "/admin/users", Some(json!({})), Some(&auth));
        *bad_json.body_mut() = Bytes::from_static(b"{\"username\": ");
        assert_eq!(raw(&s, bad_json).await.status(), StatusCode::BAD_REQUEST);
        let (status, _) = call(
            &s,
            Method::POST,
            "/admin/users",
            Some(json!({"username": "a", "password": "password1", "admin": true})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let mut huge = request(Method::POST, "/admin/users", Some(json!({})), Some(&auth));
        *huge.body_mut() = Bytes::from(vec![b' '; crate::host::MAX_BODY_BYTES + 1]);
        assert_eq!(raw(&s, huge).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
    });
}

/// `login.password_memory_kib` and `login.password_iterations` are the cost new hashes get,
/// from the admin API and from seeds; a hash made at another cost still verifies.
#[test]
fn users_are_hashed_at_the_configured_password_cost() {
    run(async {
        let mut c = cfg();
        c.login.password_memory_kib = 64;
        c.login.password_iterations = 3;
        c.users = vec![crate::config::SeedUser {
            username: "seeded".into(),
            password: crate::secret::Secret::new("seeded password"),
        }];
        let s = test_server(c).await;
        let db = s.env().sql.as_ref();
        let (status, created) = call(
            &s,
            Method::POST,
            "/admin/users",
            Some(json!({"username": "bob", "password": "correct horse"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        for (name, password) in [("bob", "correct horse"), ("seeded", "seeded password")] {
            let stored = repo::users::by_username(db, name).await.unwrap().unwrap();
            assert!(
                stored
                    .password_hash
                    .starts_with("$argon2id$v=19$m=64,t=3,p=1$"),
                "{}",
                stored.password_hash
            );
            assert!(crate::crypto::password::verify(
                password,
                &stored.password_hash
            ));
        }
    });
}

#[test]
fn users_create_list_password_delete() {
    run(async {
        let s = test_server(cfg()).await;
        let db = s.env().sql.as_ref();
        let (status, created) = call(
            &s,
            Method::POST,
            "/admin/users",
            Some(json!({"username": "alice@example.com", "password": "correct horse"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["username"], "alice@example.com");
        assert_eq!(created["created_at"], crate::store::test_store::TEST_NOW);
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 22, "16 random bytes, base64url");
        assert!(created.get("password").is_none() && created.get("password_hash").is_none());
        let stored = repo::users::by_username(db, "alice@example.com")
            .await
            .unwrap()
            .unwrap();
        assert!(stored.password_hash.starts_with("$argon2id$"));
        assert!(crate::crypto::password::verify(
            "correct horse",
            &stored.password_hash
        ));

        // Duplicate name: 409, and the stored user is untouched.
        let (status, body) = call(
            &s,
            Method::POST,
            "/admin/users",
            Some(json!({"username": "alice@example.com", "password": "another one"})),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::CONFLICT, Some("conflict"))
        );

        // Invalid input: 400 with a precise message.
        for (u, p) in [
            ("", "password1"),
            ("has space", "password1"),
            ("ünïcode", "password1"),
            (&"x".repeat(129), "password1"),
            ("bob", "short"),
            ("bob", &"p".repeat(1025)),
        ] {
            let (status, body) = call(
                &s,
                Method::POST,
                "/admin/users",
                Some(json!({"username": u, "password": p})),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{u:?}: {body}");
        }

        // Listing: no hashes.
        let (status, list) = call(&s, Method::GET, "/admin/users", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["users"].as_array().unwrap().len(), 1);
        assert_eq!(list["users"][0]["id"], id.as_str());
        assert!(!list.to_string().contains("argon2"));
        let (_, one) = call(&s, Method::GET, "/admin/users/alice%40example.com", None).await;
        assert_eq!(one["id"], id.as_str());

        // Password change.
        let (status, _) = call(
            &s,
            Method::POST,
            "/admin/users/alice@example.com/password",
            Some(json!({"password": "battery staple"})),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let stored = repo::users::by_username(db, "alice@example.com")
            .await
            .unwrap()
            .unwrap();
        assert!(crate::crypto::password::verify(
            "battery staple",
            &stored.password_hash
        ));
        assert!(!crate::crypto::password::verify(
            "correct horse",
            &stored.password_hash
        ));
        let (status, _) = call(
            &s,
            Method::POST,
            "/admin/users/nobody/password",
            Some(json!({"password": "battery staple"})),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Delete.
        let (status, _) = call(&s, Method::DELETE, "/admin/users/alice@example.com", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = call(&s, Method::DELETE, "/admin/users/alice@example.com", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(repo::users::by_username(db, "alice@example.com")
            .await
            .unwrap()
            .is_none());

        let acts = actions(&s).await;
        for a in [
            "admin.user.created",
            "admin.user.password_changed",
            "admin.user.deleted",
        ] {
            assert!(acts.iter().any(|x| x == a), "{a} in {acts:?}");
        }
        let created_ev = repo::audit::list(
            db,
            &repo::audit::AuditFilter {
                action: Some("admin.user.created".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(created_ev[0].subject.as_deref(), Some(id.as_str()));
    });
}

#[test]
fn users_list_pages() {
    run(async {
        let s = test_server(cfg()).await;
        let db = s.env().sql.as_ref();
        // Rows written directly: the paging, not argon2, is under test here.
        for name in ["carol", "alice", "bob"] {
            repo::users::insert(
                db,
                &repo::users::UserRow {
                    id: format!("id-{name}"),
                    username: name.into(),
                    password_hash: crate::crypto::password::DUMMY_HASH.into(),
                    disabled: false,
                    created_at: 1,
                },
            )
            .await
            .unwrap();
        }
        let names = |v: &Value| -> Vec<String> {
            v["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_owned())
                .collect()
        };
        let (_, p1) = call(&s, Method::GET, "/admin/users?limit=2", None).await;
        assert_eq!(names(&p1), ["alice", "bob"]);
        let (_, p2) = call(&s, Method::GET, "/admin/users?limit=2&offset=2", None).await;
        assert_eq!(names(&p2), ["carol"]);
    });
}

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
        clock.set(super::REFUSAL_WINDOW_SECS * 6_000_000);
        for _ in 0..50 {
            assert_eq!(raw(&s, refused()).await.status(), StatusCode::UNAUTHORIZED);
        }
        let evs = audited().await;
        assert_eq!(evs.len(), 1, "one row for 50 refusals in one window");
        // The next window writes one more row, reporting the 50 of the previous one.
        clock.advance(super::REFUSAL_WINDOW_SECS);
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
