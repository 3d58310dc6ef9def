//! Several `portcullis serve` processes on one database serve one issuer consistently (issue 3,
//! "Native at scale"): two instances share the issuer URL (instance A's), the database and the
//! master and admin keys, as replicas behind a load balancer would, and requests go to either
//! port. Everything that must be consistent lives in the database, so:
//!
//! - a browser flow may hop between instances (authorization request, login session and CSRF
//!   pair are stored, not kept in memory);
//! - when both instances race to redeem a code, at most one issues tokens (C1) and the loser's
//!   replay revokes whatever the winner issued (C2);
//! - a refresh token rotated on B and replayed on A revokes the family (F2);
//! - a client registered on A authenticates on B;
//! - a key rotated on A is in B's JWKS at once, and tokens from either instance verify against
//!   either instance's JWKS;
//! - a workload JWT sent to both at once is accepted once (its `jti` is reserved in the database).
//!
//! Each check runs on PostgreSQL (`TEST_POSTGRES_URL`; skipped when unset, like the PostgreSQL
//! conformance suite) and on one SQLite file opened by both processes (WAL).

mod common;

use std::time::Duration;

use common::{OnExit, PgDatabase, Server, Spec};
use portcullis_tests::scenarios::support::*;
use portcullis_tests::scenarios::Target;
use reqwest::Method;
use serde_json::{json, Value};
use url::Url;

/// The storage both instances share.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Postgres,
    Sqlite,
}

/// Whatever keeps the shared database alive until the test process exits.
#[allow(dead_code)] // held for its drop-at-exit guard only
enum DbGuard {
    Postgres(PgDatabase),
    Sqlite(OnExit),
}

/// A fresh database URL for `backend` (`None`: PostgreSQL is not configured, skip).
async fn fresh_database(backend: Backend) -> Option<(String, DbGuard)> {
    match backend {
        Backend::Postgres => {
            let db = common::pg_database("pc_multi").await?;
            Some((db.url.clone(), DbGuard::Postgres(db)))
        }
        Backend::Sqlite => {
            let (dir, guard) = common::temp_dir("multi");
            let url = format!("sqlite://{}", dir.join("shared.db").display());
            Some((url, DbGuard::Sqlite(guard)))
        }
    }
}

/// Two instances of one deployment.
struct Pair {
    a: Server,
    b: Server,
    _db: DbGuard,
}

impl Pair {
    /// Instance A; its public URL is the issuer.
    fn ta(&self) -> &Target {
        &self.a.target
    }
    /// Instance B: requests go to its own port, the issuer is still A's URL.
    fn tb(&self) -> &Target {
        &self.b.target
    }
    /// The shared issuer.
    fn issuer(&self) -> &str {
        &self.a.spec.issuer
    }
    /// Both instances, for checks that must hold on each.
    fn both(&self) -> [&Target; 2] {
        [self.ta(), self.tb()]
    }
}

/// Starts A (which migrates the fresh database), then B with A's issuer, database and keys.
async fn start_pair(backend: Backend) -> Option<Pair> {
    let (url, db) = fresh_database(backend).await?;
    let a = common::start_retrying(|| Spec::new(&url)).await;
    let b = common::start_retrying(|| a.spec.sibling()).await;
    assert_eq!(b.spec.issuer, a.spec.issuer);
    Some(Pair { a, b, _db: db })
}

static POSTGRES: tokio::sync::OnceCell<Option<Pair>> = tokio::sync::OnceCell::const_new();
static SQLITE: tokio::sync::OnceCell<Option<Pair>> = tokio::sync::OnceCell::const_new();

/// The pair of this test binary for `backend`, started once and shared by the checks (they
/// use fresh clients, users and resources each).
async fn pair(backend: Backend) -> Option<&'static Pair> {
    let cell = match backend {
        Backend::Postgres => &POSTGRES,
        Backend::Sqlite => &SQLITE,
    };
    cell.get_or_init(|| start_pair(backend)).await.as_ref()
}

// ---- helpers ---------------------------------------------------------------------------------

/// `url` moved onto instance `t` (same path and query): the server builds absolute URLs from
/// the shared issuer, a load balancer could send the next request anywhere.
fn on(t: &Target, url: &Url) -> String {
    let base = t.base_url();
    let mut u = url.clone();
    u.set_scheme(base.scheme()).expect("http scheme");
    u.set_host(base.host_str()).expect("loopback host");
    u.set_port(base.port()).expect("port");
    u.to_string()
}

/// Runs authorize on `first`, login (if asked) on `second`, the consent page on `first` and the
/// consent decision on `second`, all in one browser; returns the code. The response must name
/// the shared issuer (RFC 9207).
async fn code_across(
    p: &Pair,
    first: &Target,
    second: &Target,
    b: &Browser,
    f: &Fixture,
    pkce: &Pkce,
) -> String {
    let state = random_b64(12);
    let mut page = b
        .get(&authorize_url(first, &pairs(&f.params(pkce, &state))))
        .await;
    if is_login_page(&page) {
        let form = form_inputs(&page.body);
        let r = b
            .post_form(
                &second.url("/oauth/login"),
                &[
                    ("request", form.get("request").map_or("", String::as_str)),
                    ("csrf", form.get("csrf").map_or("", String::as_str)),
                    ("username", &f.user.username),
                    ("password", &f.user.password),
                ],
            )
            .await;
        let next = r.location().unwrap_or_else(|| {
            panic!(
                "login on the second instance redirects to consent, got {}: {}",
                r.status,
                short(&r.body)
            )
        });
        assert!(
            next.as_str().starts_with(p.issuer()),
            "the server's absolute URLs use the shared issuer: {next}"
        );
        page = b.get(&on(first, &next)).await;
    }
    assert!(
        is_consent_page(&page),
        "expected the consent page on {}, got {}: {}",
        page.url,
        page.status,
        short(&page.body)
    );
    let form = form_inputs(&page.body);
    let r = b
        .post_form(
            &second.url("/oauth/consent"),
            &[
                ("request", form.get("request").map_or("", String::as_str)),
                ("csrf", form.get("csrf").map_or("", String::as_str)),
                ("decision", "approve"),
            ],
        )
        .await;
    let resp = AuthzResponse::from_redirect(&r);
    // Checks state and exactly one `iss` equal to A's URL, whichever instance answered.
    resp.assert_to_client(p.ta(), &f.client.redirect_uri, &state);
    resp.get("code")
        .unwrap_or_else(|| panic!("an approved request returns a code: {}", resp.location))
        .to_owned()
}

/// Verifies an access token (with `jsonwebtoken`) against the JWKS published by instance `t`,
/// for the shared issuer and `audience`; returns the claims.
async fn verify_on(t: &Target, issuer: &str, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("the access token is a JWS");
    let kid = header.kid.expect("the header carries a kid");
    let jwks = send(http().get(t.url("/.well-known/jwks.json")))
        .await
        .ok_json();
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"] == json!(kid)))
        .unwrap_or_else(|| panic!("kid {kid} is in the JWKS of {}: {jwks}", t.base))
        .clone();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).expect("a valid JWK");
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("a usable public key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat"]);
    v.leeway = 5;
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap_or_else(|e| panic!("the token verifies against the JWKS of {}: {e}", t.base))
        .claims
}

/// A `client_credentials` token from instance `t`.
async fn cc_token(t: &Target, id: &str, secret: &str, resource: &str) -> String {
    tokens(
        &token(
            t,
            &[
                ("grant_type", "client_credentials"),
                ("resource", resource),
                ("scope", "mcp:read"),
            ],
            Auth::Basic(id, secret),
        )
        .await,
    )
    .access
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWS")
        .kid
        .expect("a kid")
}

fn jwks_kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .map(|ks| {
            ks.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

// ---- the checks ------------------------------------------------------------------------------

/// Both instances publish the same metadata, naming the shared issuer.
async fn metadata_names_the_shared_issuer(p: &Pair) {
    let mut docs = Vec::new();
    for t in p.both() {
        let v = send(http().get(t.url("/.well-known/oauth-authorization-server")))
            .await
            .ok_json();
        assert_eq!(v["issuer"], json!(p.issuer()), "{}: {v}", t.base);
        assert_eq!(
            v["token_endpoint"],
            json!(format!("{}/oauth/token", p.issuer())),
            "{}: {v}",
            t.base
        );
        docs.push(v);
    }
    assert_eq!(docs[0], docs[1], "both instances publish the same metadata");
}

/// C1 and C2 across instances: a code obtained through a flow that hops between A and B is
/// redeemed by at most one of two simultaneous redemptions (one on each instance); the loser
/// gets `invalid_grant` and its replay revokes what the winner was issued, seen on both. When
/// the loser's revocation lands between the winner's redemption and its grant check, the
/// winner is refused as well (`invalid_grant`, nothing issued): never two tokens, never a live
/// token from a replayed code.
async fn code_redeemed_once_across_instances(p: &'static Pair) {
    let f = Fixture::confidential(p.ta()).await;
    let b = Browser::new();
    for round in 0..4 {
        let (first, second) = if round % 2 == 0 {
            (p.tb(), p.ta())
        } else {
            (p.ta(), p.tb())
        };
        let pk = pkce();
        let code = code_across(p, first, second, &b, &f, &pk).await;
        // Each redemption on its own task, so the two run in parallel.
        let redeem = |t: &'static Target| {
            let (code, pk, f) = (code.clone(), pk.verifier.clone(), f.clone());
            async move {
                exchange(
                    t,
                    &code,
                    &f.client.redirect_uri,
                    &pk,
                    Some(&f.resource),
                    f.auth(),
                )
                .await
            }
        };
        let (ra, rb) = tokio::join!(tokio::spawn(redeem(p.ta())), tokio::spawn(redeem(p.tb())));
        let (ra, rb) = (ra.expect("redemption on A"), rb.expect("redemption on B"));
        for r in [&ra, &rb] {
            if r.status != 200 {
                r.assert_oauth_error(400, "invalid_grant");
            }
        }
        let winner = match (ra.status, rb.status) {
            (200, 200) => panic!("round {round}: C1: the code was redeemed twice"),
            (200, _) => Some(ra),
            (_, 200) => Some(rb),
            // The loser's replay revoked the grant between the winner's redemption and its
            // grant check, so the winner was refused too: no token was issued. Safe (C2).
            _ => None,
        };
        // The code is spent on both instances.
        for t in p.both() {
            exchange(
                t,
                &code,
                &f.client.redirect_uri,
                &pk.verifier,
                Some(&f.resource),
                f.auth(),
            )
            .await
            .assert_oauth_error(400, "invalid_grant");
        }
        let Some(winner) = winner else {
            continue;
        };
        let tok = tokens(&winner);
        for t in p.both() {
            assert!(
                !is_active(t, &tok.access, f.auth()).await,
                "round {round}: C2: the replay revoked the winner's access token (seen on {})",
                t.base
            );
            refresh(t, tok.refresh.as_deref().expect("refresh token"), f.auth())
                .await
                .assert_oauth_error(400, "invalid_grant");
        }
    }
}

/// F2 across instances: a refresh token rotated on B and replayed on A revokes the family.
async fn refresh_rotated_on_b_replayed_on_a_revokes_family(p: &Pair) {
    let f = Fixture::confidential(p.ta()).await;
    let b = Browser::new();
    let pk = pkce();
    let code = code_across(p, p.ta(), p.ta(), &b, &f, &pk).await;
    let tok = tokens(
        &exchange(
            p.ta(),
            &code,
            &f.client.redirect_uri,
            &pk.verifier,
            Some(&f.resource),
            f.auth(),
        )
        .await,
    );
    let rt1 = tok.refresh.expect("refresh token");
    let tok2 = tokens(&refresh(p.tb(), &rt1, f.auth()).await);
    let rt2 = tok2.refresh.clone().expect("a rotated refresh token");
    assert_ne!(rt1, rt2);
    assert!(is_active(p.ta(), &tok2.access, f.auth()).await);

    refresh(p.ta(), &rt1, f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    refresh(p.tb(), &rt2, f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    for t in p.both() {
        assert!(
            !is_active(t, &tok2.access, f.auth()).await,
            "F2: the family's access token is revoked (seen on {})",
            t.base
        );
        assert!(!is_active(t, &tok.access, f.auth()).await);
    }
}

/// A client registered on A (RFC 7591, and through the admin API) authenticates on B, and B's
/// token names the shared issuer and verifies against A's JWKS; a policy set on A (K3: a rate
/// limit of one request a minute) holds on B, because its counter is in the shared store.
async fn client_registered_on_a_authenticates_on_b(p: &Pair) {
    let resource = new_resource(p.ta(), &SCOPES).await;
    let r = register(
        p.ta(),
        json!({
            "client_name": "Multi-instance client",
            "redirect_uris": ["https://app.example/callback"],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    let id = v["client_id"].as_str().expect("client_id");
    let secret = v["client_secret"].as_str().expect("client_secret");
    // It authenticates on B (introspection needs an authenticated client); a wrong secret is
    // refused on B as on A.
    let answer = introspect(p.tb(), "not-a-token", Auth::Basic(id, secret))
        .await
        .ok_json();
    assert_eq!(answer["active"], json!(false), "{answer}");
    for t in p.both() {
        introspect(t, "not-a-token", Auth::Basic(id, "not-the-secret"))
            .await
            .assert_oauth_error(401, "invalid_client");
    }

    let c = new_client(p.ta(), "client_secret_basic", &["client_credentials"]).await;
    let access = cc_token(p.tb(), &c.id, c.secret.as_deref().unwrap(), &resource).await;
    let claims = verify_on(p.ta(), p.issuer(), &access, &resource).await;
    assert_eq!(claims["client_id"], json!(c.id));
    // K3 across instances: one request a minute, set on A. Three requests over at most two
    // minute windows (they take well under a minute) on B, A, B: at least one is refused.
    admin_ok(
        p.ta(),
        Method::PUT,
        &format!("/admin/clients/{}/policy", c.id),
        Some(json!({ "client_credentials": true, "rate_limit_per_minute": 1 })),
    )
    .await;
    let mut statuses = Vec::new();
    for t in [p.tb(), p.ta(), p.tb()] {
        let r = token(
            t,
            &[
                ("grant_type", "client_credentials"),
                ("resource", &resource),
            ],
            Auth::Basic(&c.id, c.secret.as_deref().unwrap()),
        )
        .await;
        statuses.push(r.status);
    }
    assert!(
        statuses.contains(&429),
        "a limit set on A is counted across both instances: {statuses:?}"
    );
    let listed = admin_ok(p.tb(), Method::GET, "/admin/clients", None).await;
    assert!(
        listed.to_string().contains(&c.id),
        "B's admin API lists the client created on A"
    );
}

/// A key rotated on A (`POST /admin/keys/rotate`) is in B's JWKS and key list at once; tokens
/// from either instance verify against either instance's JWKS, and B introspects A's token
/// signed with the new key.
async fn keys_rotated_on_a_are_seen_by_b(p: &Pair) {
    let resource = new_resource(p.ta(), &SCOPES).await;
    let c = new_client(p.ta(), "client_secret_basic", &["client_credentials"]).await;
    let secret = c.secret.as_deref().unwrap();
    // Warm B's key cache before the rotation, so B keeps its cached (older) key for a while.
    let before = cc_token(p.tb(), &c.id, secret, &resource).await;

    let rotated = admin_ok(
        p.ta(),
        Method::POST,
        "/admin/keys/rotate",
        Some(json!({ "prepublish_secs": 0 })),
    )
    .await;
    let kid = rotated["kid"]
        .as_str()
        .unwrap_or_else(|| panic!("the rotation returns the new kid: {rotated}"))
        .to_owned();

    for t in p.both() {
        let jwks = send(http().get(t.url("/.well-known/jwks.json")))
            .await
            .ok_json();
        let kids = jwks_kids(&jwks);
        assert!(
            kids.contains(&kid),
            "{} publishes the key rotated on A at once: {kids:?}",
            t.base
        );
        assert!(
            kids.contains(&kid_of(&before)),
            "{} still publishes the key that signed before the rotation",
            t.base
        );
        let listed = admin_ok(t, Method::GET, "/admin/keys", None).await;
        let entry = listed["keys"]
            .as_array()
            .and_then(|ks| ks.iter().find(|k| k["kid"] == json!(kid)))
            .unwrap_or_else(|| panic!("{} lists the new key: {listed}", t.base))
            .clone();
        assert_eq!(entry["status"], json!("active"), "{}: {entry}", t.base);
    }

    let from_a = cc_token(p.ta(), &c.id, secret, &resource).await;
    assert_eq!(kid_of(&from_a), kid, "A signs with the key it rotated in");
    let from_b = cc_token(p.tb(), &c.id, secret, &resource).await;
    for token in [&before, &from_a, &from_b] {
        for t in p.both() {
            verify_on(t, p.issuer(), token, &resource).await;
            assert!(
                is_active(t, token, Auth::Basic(&c.id, secret)).await,
                "{} introspects a token of either instance as active",
                t.base
            );
        }
    }
}

/// Workload identity federation across instances: an issuer trusted and a rule added on A;
/// the same workload JWT sent to A and B at once is accepted exactly once (its `jti` is
/// reserved in the shared database), and the loser, like any later replay on either
/// instance, gets `invalid_grant`.
async fn workload_jwt_accepted_once_across_instances(p: &Pair) {
    use portcullis_tests::scenarios::algorithms::{node_sign, token_spec};
    let resource = new_resource(p.ta(), &SCOPES).await;
    let c = new_client(p.ta(), "client_secret_basic", &["client_credentials"]).await;
    let issuer = format!(
        "https://token.actions.example.com/{}",
        portcullis_tests::conformance::uid("multi")
    );
    let now = p.ta().now();
    let claims = json!({
        "iss": issuer, "sub": "repo:acme/agent:ref:refs/heads/main",
        "aud": format!("{}/oauth/token", p.issuer()),
        "jti": portcullis_tests::conformance::uid("jti"), "iat": now, "exp": now + 300,
    });
    let signed = node_sign(json!({
        "alg": "RS256", "kid": "k1", "tokens": [token_spec(json!({ "typ": "JWT" }), claims)],
    }))
    .await;
    admin_ok(
        p.ta(),
        Method::POST,
        "/admin/workload-issuers",
        Some(json!({ "issuer": issuer, "jwks": { "keys": [signed.jwk] } })),
    )
    .await;
    admin_ok(
        p.ta(),
        Method::POST,
        "/admin/workload-rules",
        Some(json!({
            "issuer": issuer, "subject": "repo:acme/agent:*", "resource": resource,
            "client_id": c.id, "scopes": ["mcp:tools"],
        })),
    )
    .await;
    let jwt = signed.tokens[0].clone();
    let form = |t: &Target| {
        let t = t.clone();
        let (jwt, resource) = (jwt.clone(), resource.clone());
        async move {
            token(
                &t,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &jwt),
                    ("resource", &resource),
                ],
                Auth::Nothing,
            )
            .await
        }
    };
    let (on_a, on_b) = tokio::join!(form(p.ta()), form(p.tb()));
    let mut statuses = [on_a.status, on_b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "{} / {}", on_a.body, on_b.body);
    let loser = if on_a.status == 400 { &on_a } else { &on_b };
    loser.assert_oauth_error(400, "invalid_grant");
    for t in p.both() {
        form(t).await.assert_oauth_error(400, "invalid_grant");
    }
}

/// The checks, each on PostgreSQL and on SQLite.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(p) = super::pair(super::Backend::Postgres).await else { return };
                    super::$name(p).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(p) = super::pair(super::Backend::Sqlite).await else { return };
                    super::$name(p).await;
                }
            )*
        }
    };
}

on_both_backends!(
    metadata_names_the_shared_issuer,
    code_redeemed_once_across_instances,
    refresh_rotated_on_b_replayed_on_a_revokes_family,
    client_registered_on_a_authenticates_on_b,
    keys_rotated_on_a_are_seen_by_b,
    workload_jwt_accepted_once_across_instances,
);

/// Replicas started at the same moment on an empty database (a fresh deployment scaled to two)
/// both come up: migrations tolerate a concurrent run.
async fn concurrent_first_start(backend: Backend) {
    let Some((url, db)) = fresh_database(backend).await else {
        return;
    };
    let a = Spec::new(&url);
    let b = a.sibling();
    let (ra, rb) = tokio::time::timeout(common::START_TIMEOUT + Duration::from_secs(10), async {
        tokio::join!(common::start(a), common::start(b))
    })
    .await
    .expect("both starts finish in time");
    let (a, b) = match (ra, rb) {
        (Ok(a), Ok(b)) => (a, b),
        (ra, rb) => panic!(
            "both replicas start on an empty database: A: {}; B: {}",
            ra.err().unwrap_or_else(|| "ok".into()),
            rb.err().unwrap_or_else(|| "ok".into())
        ),
    };
    let pair = Pair { a, b, _db: db };
    metadata_names_the_shared_issuer(&pair).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_first_start() {
    concurrent_first_start(Backend::Sqlite).await;
}

/// Both replicas start at once on an empty database: migrations are serialized with a
/// transaction-scoped advisory lock, so neither refuses to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_first_start() {
    concurrent_first_start(Backend::Postgres).await;
}
