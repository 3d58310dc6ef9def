//! Tests of the admin API over a real SQLite schema: key checks, every route, the secret
//! shown once, audit listing and paging, key rotation.

mod records;
mod users;

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
