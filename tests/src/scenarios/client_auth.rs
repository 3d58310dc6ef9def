//! Client authentication at the token endpoint (RFC 6749 §2.3.1, §5.2): SECURITY-CHECKLIST
//! A1–A3.

use base64::Engine;

use super::support::*;
use super::Target;

fn b64std(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn cc_with_header(t: &Target, resource: &str, authorization: &str) -> Resp {
    send(
        http()
            .post(t.url("/oauth/token"))
            .header("authorization", authorization)
            .form(&[("grant_type", "client_credentials"), ("resource", resource)]),
    )
    .await
}

/// A1: malformed Basic headers are `invalid_client` with `WWW-Authenticate`.
pub async fn a1_basic_header_edge_cases(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let secret = c.secret.clone().unwrap();
    let cases = [
        ("bad base64", "Basic !!!not-base64!!!".to_owned()),
        ("no colon", format!("Basic {}", b64std(c.id.as_bytes()))),
        (
            "bad percent-encoding",
            format!(
                "Basic {}",
                b64std(format!("{}%ZZ:{secret}", c.id).as_bytes())
            ),
        ),
        (
            "empty id",
            format!("Basic {}", b64std(format!(":{secret}").as_bytes())),
        ),
        ("wrong secret", basic(&c.id, "not-the-secret")),
        ("unknown client", basic("no-such-client", &secret)),
        ("empty", "Basic ".to_owned()),
        ("not utf-8", format!("Basic {}", b64std(b"\xff\xfe:\xff"))),
    ];
    for (why, header) in cases {
        let r = cc_with_header(t, &resource, &header).await;
        r.assert_oauth_error(401, "invalid_client");
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.to_ascii_lowercase().starts_with("basic"),
            "A1 {why}: WWW-Authenticate: Basic, got {challenge:?}"
        );
    }
    // The genuine header works.
    tokens(&cc_with_header(t, &resource, &basic(&c.id, &secret)).await);
}

/// A2: credentials in two places at once are `invalid_request`.
pub async fn a2_credentials_in_two_places(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let secret = c.secret.clone().unwrap();
    let r = send(
        http()
            .post(t.url("/oauth/token"))
            .header("authorization", basic(&c.id, &secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", &resource),
                ("client_id", &c.id),
                ("client_secret", &secret),
            ]),
    )
    .await;
    r.assert_oauth_error(400, "invalid_request");
}

/// A3: the registered `token_endpoint_auth_method` is enforced.
pub async fn a3_registered_auth_method_enforced(t: &Target) {
    let f = Fixture::public(t).await;
    // A public client cannot send a secret.
    let b = Browser::new();
    let p = pkce();
    let code = f.code(t, &b, &p).await;
    exchange(
        t,
        &code,
        &f.client.redirect_uri,
        &p.verifier,
        Some(&f.resource),
        Auth::Post(&f.client.id, "made-up-secret"),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    // ... and the refused attempt does not burn the code (C5).
    tokens(
        &exchange(
            t,
            &code,
            &f.client.redirect_uri,
            &p.verifier,
            Some(&f.resource),
            f.auth(),
        )
        .await,
    );

    // A confidential client cannot omit its secret.
    let conf = Fixture::confidential(t).await;
    let b = Browser::new();
    let p = pkce();
    let code = conf.code(t, &b, &p).await;
    exchange(
        t,
        &code,
        &conf.client.redirect_uri,
        &p.verifier,
        Some(&conf.resource),
        Auth::Public(&conf.client.id),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    // A client_secret_basic client cannot switch to client_secret_post.
    exchange(
        t,
        &code,
        &conf.client.redirect_uri,
        &p.verifier,
        Some(&conf.resource),
        Auth::Post(&conf.client.id, conf.client.secret.as_deref().unwrap()),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    tokens(
        &exchange(
            t,
            &code,
            &conf.client.redirect_uri,
            &p.verifier,
            Some(&conf.resource),
            conf.auth(),
        )
        .await,
    );
}
