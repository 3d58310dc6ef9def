//! Admin API tests of `/admin/users`: the password cost of new hashes, create, list and page,
//! password change, delete.

use super::*;

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
