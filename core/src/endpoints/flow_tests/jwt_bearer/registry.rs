//! JWT bearer flow tests beyond X5: policies (403 without one), scope intersection,
//! resource agreement, subject mapping, metadata, remote JWKS and discovery through the
//! fetcher, the admin API for IdPs and policies, and the configuration seeds.

use super::*;

#[test]
fn jwt_bearer_without_policy_is_access_denied() {
    let (h, idp) = setup();
    // OTHER_AGENT is a jwt-bearer client, but no policy names it.
    let mut c = claims(&h);
    c["client_id"] = OTHER_AGENT.into();
    let (status, body) = grant_as(&h, OTHER_AGENT, &idp.sign(&c), &[]);
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "access_denied");
    assert!(audit(&h, "failure")
        .iter()
        .any(|e| e.reason.as_deref() == Some("no_policy")));
    // After the policy is removed, the agent is denied too.
    let (_, list) = admin(&h, Method::GET, "/admin/idp-policies", None);
    let id = list["policies"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = admin(
        &h,
        Method::DELETE,
        &format!("/admin/idp-policies/{id}"),
        None,
    );
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (status, body) = grant(&h, &idp.sign(&claims(&h)));
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[test]
fn jwt_bearer_scope_is_the_intersection() {
    let (h, idp) = setup();
    // Policy allows only mcp:tools now.
    let (s, _) = admin(
        &h,
        Method::POST,
        "/admin/idp-policies",
        Some(
            json!({"issuer": IDP, "client_id": AGENT, "resource": RESOURCE, "scopes": ["mcp:tools"]}),
        ),
    );
    assert_eq!(s, StatusCode::OK, "same triple: replaced");
    let (_, body) = grant(&h, &idp.sign(&claims(&h)));
    assert_eq!(body["scope"], "mcp:tools", "{body}");
    // Assertion grants only mcp:resources: nothing remains.
    let mut c = claims(&h);
    c["scope"] = "mcp:resources".into();
    let (status, body) = grant(&h, &idp.sign(&c));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope", "{body}");
    // A requested scope outside the catalog is invalid_scope; a requested scope narrows.
    let r = grant_as(&h, AGENT, &idp.sign(&claims(&h)), &[("scope", "admin")]);
    assert_eq!(r.1["error"], "invalid_scope", "{}", r.1);
    admin(
        &h,
        Method::POST,
        "/admin/idp-policies",
        Some(
            json!({"issuer": IDP, "client_id": AGENT, "resource": RESOURCE,
                    "scopes": ["mcp:tools", "mcp:resources"]}),
        ),
    );
    let r = grant_as(
        &h,
        AGENT,
        &idp.sign(&claims(&h)),
        &[("scope", "mcp:resources")],
    );
    assert_eq!(r.1["scope"], "mcp:resources", "{}", r.1);
    // No scope claim: the requested scope (or the whole allowed catalog).
    let mut c = claims(&h);
    c.as_object_mut().unwrap().remove("scope");
    let r = grant(&h, &idp.sign(&c));
    assert_eq!(r.1["scope"], "mcp:tools mcp:resources", "{}", r.1);
}

#[test]
fn jwt_bearer_resource_claim_and_parameter_must_agree() {
    let (h, idp) = setup();
    let r = grant_as(&h, AGENT, &idp.sign(&claims(&h)), &[("resource", RESOURCE)]);
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    let r = grant_as(
        &h,
        AGENT,
        &idp.sign(&claims(&h)),
        &[("resource", "https://mcp.example.com/mcp/")],
    );
    assert_eq!(r.1["error"], "invalid_target", "{}", r.1);
    // Only the parameter, or (with one registered resource) neither.
    let mut c = claims(&h);
    c.as_object_mut().unwrap().remove("resource");
    let r = grant_as(&h, AGENT, &idp.sign(&c), &[("resource", RESOURCE)]);
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    let mut c = claims(&h);
    c.as_object_mut().unwrap().remove("resource");
    assert_eq!(grant(&h, &idp.sign(&c)).0, StatusCode::OK);
    let mut c = claims(&h);
    c["resource"] = "https://mcp.example.com/mcp#frag".into();
    assert_eq!(grant(&h, &idp.sign(&c)).1["error"], "invalid_target");
}

#[test]
fn jwt_bearer_explicit_subject_mapping() {
    let (h, idp) = setup();
    let alice = block(repo::users::by_username(
        h.server.env().sql.as_ref(),
        "alice",
    ))
    .unwrap()
    .unwrap();
    let (s, body) = admin(
        &h,
        Method::POST,
        "/admin/idp-subjects",
        Some(json!({"issuer": IDP, "external_subject": "employee-42", "username": "alice"})),
    );
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["subject"], alice.id.as_str());
    let (_, body) = grant(&h, &idp.sign(&claims(&h)));
    let at = payload(body["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], alice.id.as_str(), "mapped to the local user");
    // Another employee of the same IdP gets the automatic subject.
    let mut c = claims(&h);
    c["sub"] = "employee-43".into();
    let (_, body) = grant(&h, &idp.sign(&c));
    let at = payload(body["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], crate::idp::automatic_subject(IDP, "employee-43"));
    // Removing the mapping restores the automatic subject.
    let (s, _) = admin(
        &h,
        Method::DELETE,
        "/admin/idp-subjects?issuer=https%3A%2F%2Fidp.example.com&external_subject=employee-42",
        None,
    );
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, body) = grant(&h, &idp.sign(&claims(&h)));
    let at = payload(body["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], crate::idp::automatic_subject(IDP, "employee-42"));
}

#[test]
fn jwt_bearer_metadata_and_registration() {
    let (h, _) = setup();
    let doc = crate::endpoints::discovery::metadata(&h.server);
    assert!(doc["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!(JWT_BEARER)));
    assert_eq!(
        doc["authorization_grant_profiles_supported"],
        json!(["urn:ietf:params:oauth:grant-profile:id-jag"])
    );
    // A client not registered for the grant cannot use it.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CONFIDENTIAL}:{SECRET}"))
    );
    let (status, body) = json_of(h.post_form(
        "/oauth/token",
        &[("grant_type", JWT_BEARER), ("assertion", "x")],
        &[("authorization", &basic)],
    ));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client");
    // Public clients cannot register it.
    let mut meta = crate::clients::ClientMetadata {
        grant_types: vec![JWT_BEARER.into()],
        token_endpoint_auth_method: "none".into(),
        ..Default::default()
    };
    assert!(crate::registration::validate_metadata(&mut meta).is_err());
    // A missing assertion is invalid_request.
    let (status, body) = json_of(h.post_form(
        "/oauth/token",
        &[("grant_type", JWT_BEARER)],
        &[("authorization", &self::basic(AGENT))],
    ));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
}

/// A fetcher serving fixed documents by URL, counting calls.
#[derive(Default)]
struct FakeFetcher {
    docs: Mutex<HashMap<String, Value>>,
    calls: AtomicUsize,
}

impl FakeFetcher {
    fn serve(&self, url: &str, doc: Value) {
        self.docs.lock().unwrap().insert(url.into(), doc);
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Fetcher for FakeFetcher {
    async fn get(&self, url: &url::Url, _max: usize) -> Result<FetchResponse, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.docs.lock().unwrap().get(url.as_str()) {
            Some(doc) => Ok(FetchResponse {
                status: 200,
                content_type: Some("application/json".into()),
                cache_control: Some("max-age=600".into()),
                body: doc.to_string().into_bytes(),
            }),
            None => Ok(FetchResponse {
                status: 404,
                content_type: Some("text/plain".into()),
                cache_control: None,
                body: b"not found".to_vec(),
            }),
        }
    }
}

fn with_fetcher(cfg: Config, fetcher: Arc<FakeFetcher>) -> H {
    let sql = Arc::new(TestSql::memory());
    let (mut env, clock) = test_env_on(sql.clone());
    env.fetcher = fetcher;
    let server = block(Portcullis::start(env, cfg)).expect("server starts");
    H { server, clock, sql }
}

#[test]
fn jwt_bearer_jwks_uri_is_cached_and_refreshed_on_unknown_kid() {
    const JWKS: &str = "https://idp.example.com/jwks";
    let fetcher = Arc::new(FakeFetcher::default());
    let k1 = TestIdp::new(11, "k1");
    let k2 = TestIdp::new(12, "k2");
    fetcher.serve(JWKS, k1.jwks());
    let h = with_fetcher(jb_config(None, Some(JWKS)), fetcher.clone());
    assert_eq!(grant(&h, &k1.sign(&claims(&h))).0, StatusCode::OK);
    assert_eq!(grant(&h, &k1.sign(&claims(&h))).0, StatusCode::OK);
    assert_eq!(fetcher.calls(), 1, "the JWKS is cached");

    // The IdP rolls to k2. Within the refresh interval an unknown kid is refused without
    // a fetch; after it, one refetch picks up the new key.
    fetcher.serve(JWKS, json!({ "keys": [k1.jwk(), k2.jwk()] }));
    h.clock.advance(3);
    assert_invalid_grant(grant(&h, &k2.sign(&claims(&h))), "kid not yet known");
    assert_eq!(fetcher.calls(), 1);
    h.clock.advance(crate::idp::UNKNOWN_KID_REFRESH_SECS);
    assert_eq!(grant(&h, &k2.sign(&claims(&h))).0, StatusCode::OK);
    assert_eq!(fetcher.calls(), 2, "refetched once");
    // A forged kid right after does not refetch.
    let forged = TestIdp::new(13, "k3");
    assert_invalid_grant(grant(&h, &forged.sign(&claims(&h))), "forged kid");
    assert_eq!(fetcher.calls(), 2);
    assert_eq!(grant(&h, &k1.sign(&claims(&h))).0, StatusCode::OK);
    assert_eq!(fetcher.calls(), 2);
}

#[test]
fn jwt_bearer_keys_by_discovery_and_fetch_failures() {
    let fetcher = Arc::new(FakeFetcher::default());
    let k = TestIdp::new(21, "d1");
    fetcher.serve(
        "https://idp.example.com/.well-known/openid-configuration",
        json!({ "issuer": IDP, "jwks_uri": "https://keys.idp.example.com/jwks.json" }),
    );
    fetcher.serve("https://keys.idp.example.com/jwks.json", k.jwks());
    let h = with_fetcher(jb_config(None, None), fetcher.clone());
    let (status, body) = grant(&h, &k.sign(&claims(&h)));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(fetcher.calls(), 2);

    // An IdP whose keys cannot be fetched: reported as such, and the failure is cached.
    let fetcher = Arc::new(FakeFetcher::default());
    let h = with_fetcher(
        jb_config(None, Some("https://idp.example.com/missing")),
        fetcher.clone(),
    );
    let why = assert_invalid_grant(grant(&h, &k.sign(&claims(&h))), "fetch failure");
    assert!(
        why.contains("could not be obtained") && why.contains("404"),
        "{why}"
    );
    assert_invalid_grant(grant(&h, &k.sign(&claims(&h))), "cached failure");
    assert_eq!(fetcher.calls(), 1);

    // Discovery whose issuer does not match is refused.
    let fetcher = Arc::new(FakeFetcher::default());
    fetcher.serve(
        "https://idp.example.com/.well-known/openid-configuration",
        json!({ "issuer": "https://evil.example.com", "jwks_uri": "https://keys.idp.example.com/jwks.json" }),
    );
    fetcher.serve("https://keys.idp.example.com/jwks.json", k.jwks());
    let h = with_fetcher(jb_config(None, None), fetcher);
    let why = assert_invalid_grant(grant(&h, &k.sign(&claims(&h))), "discovery issuer");
    assert!(why.contains("issuer"), "{why}");
}

#[test]
fn admin_idps_validate_and_cascade() {
    let (h, idp) = setup();
    let post = |body: Value| admin(&h, Method::POST, "/admin/idps", Some(body));
    for bad in [
        json!({ "issuer": "http://idp2.example.com", "jwks": idp.jwks() }),
        json!({ "issuer": "https://idp2.example.com?x", "jwks": idp.jwks() }),
        json!({ "issuer": "https://idp2.example.com", "jwks": idp.jwks(), "jwks_uri": "https://idp2.example.com/jwks" }),
        json!({ "issuer": "https://idp2.example.com", "jwks": { "keys": [{ "kty": "oct", "k": "AAAA" }] } }),
        json!({ "issuer": "https://idp2.example.com", "jwks": { "keys": [] } }),
        json!({ "issuer": "https://idp2.example.com", "jwks_uri": "https://169.254.169.254/jwks" }),
        json!({ "issuer": "https://idp2.example.com", "jwks_uri": "http://idp2.example.com/jwks" }),
        json!({ "issuer": "https://idp2.example.com", "allowed_audiences": ["not a uri"] }),
        json!({ "issuer": "https://idp2.example.com", "unknown": 1 }),
    ] {
        let (s, body) = post(bad.clone());
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let mut private = idp.jwk();
    private["d"] = b64([1u8; 32]).into();
    let (s, _) =
        post(json!({ "issuer": "https://idp2.example.com", "jwks": { "keys": [private] } }));
    assert_eq!(s, StatusCode::BAD_REQUEST, "private key refused");

    let (s, body) = post(
        json!({ "issuer": "https://idp2.example.com", "jwks": idp.jwks(),
                                  "allowed_audiences": [RESOURCE] }),
    );
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["key_source"], "inline");
    let (s, _) = post(
        json!({ "issuer": "https://idp2.example.com", "jwks_uri": "https://idp2.example.com/jwks" }),
    );
    assert_eq!(s, StatusCode::OK, "update");
    let (_, list) = admin(&h, Method::GET, "/admin/idps", None);
    assert_eq!(list["idps"].as_array().unwrap().len(), 2, "{list}");

    // Policies need a registered IdP and resource, and scopes from the catalog.
    let pol = |issuer: &str, resource: &str, scopes: Value| {
        admin(
            &h,
            Method::POST,
            "/admin/idp-policies",
            Some(
                json!({ "issuer": issuer, "client_id": AGENT, "resource": resource, "scopes": scopes }),
            ),
        )
    };
    assert_eq!(
        pol("https://nope.example.com", RESOURCE, json!(["mcp:tools"])).0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        pol(
            "https://idp2.example.com",
            "https://nope.example.com/mcp",
            json!(["mcp:tools"])
        )
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        pol("https://idp2.example.com", RESOURCE, json!(["admin"])).0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        pol("https://idp2.example.com", RESOURCE, json!([])).0,
        StatusCode::BAD_REQUEST
    );
    let (s, body) = pol("https://idp2.example.com", RESOURCE, json!(["mcp:tools"]));
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (_, list) = admin(
        &h,
        Method::GET,
        "/admin/idp-policies?issuer=https%3A%2F%2Fidp2.example.com",
        None,
    );
    assert_eq!(list["policies"].as_array().unwrap().len(), 1, "{list}");

    let (s, _) = admin(
        &h,
        Method::DELETE,
        "/admin/idps?issuer=https%3A%2F%2Fidp2.example.com",
        None,
    );
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = admin(
        &h,
        Method::DELETE,
        "/admin/idps?issuer=https%3A%2F%2Fidp2.example.com",
        None,
    );
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = admin(&h, Method::GET, "/admin/idp-policies", None);
    assert_eq!(
        list["policies"].as_array().unwrap().len(),
        1,
        "only the seeded policy: {list}"
    );
    let (s, _) = admin(&h, Method::DELETE, "/admin/idp-policies/nope", None);
    assert_eq!(s, StatusCode::NOT_FOUND);

    // An IdP restricted to other audiences cannot vouch for this resource.
    let (s, _) = post(
        json!({ "issuer": IDP, "jwks": idp.jwks(), "allowed_audiences": ["https://elsewhere.example.com/mcp"] }),
    );
    assert_eq!(s, StatusCode::OK);
    let (status, body) = grant(&h, &idp.sign(&claims(&h)));
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Deleting the IdP makes its assertions untrusted.
    admin(
        &h,
        Method::DELETE,
        "/admin/idps?issuer=https%3A%2F%2Fidp.example.com",
        None,
    );
    assert_invalid_grant(grant(&h, &idp.sign(&claims(&h))), "deleted IdP");
}

#[test]
fn idp_seeds_are_idempotent_and_validated() {
    let idp = TestIdp::new(101, "idp-key-1");
    let sql = Arc::new(TestSql::memory());
    for _ in 0..2 {
        let (env, _) = test_env_on(sql.clone());
        block(Portcullis::start(env, jb_config(Some(&idp), None))).expect("starts");
    }
    let db: &dyn crate::store::SqlStore = sql.as_ref();
    assert_eq!(block(repo::idps::list(db)).unwrap().len(), 1);
    assert_eq!(block(repo::idps::list_policies(db, None)).unwrap().len(), 1);

    let mut cfg = jb_config(Some(&idp), None);
    cfg.idps[0].issuer = "http://idp.example.com".into();
    let (env, _) = test_env_on(Arc::new(TestSql::memory()));
    let err = block(Portcullis::start(env, cfg)).err().expect("refused");
    assert!(
        err.to_string()
            .contains("seed idp 'http://idp.example.com'"),
        "{err}"
    );
    let mut cfg = jb_config(Some(&idp), None);
    cfg.idps.push(cfg.idps[0].clone());
    let (env, _) = test_env_on(Arc::new(TestSql::memory()));
    let err = block(Portcullis::start(env, cfg)).err().expect("refused");
    assert!(err.to_string().contains("more than once"), "{err}");
    let mut cfg = jb_config(Some(&idp), None);
    cfg.idp_policies[0].scopes.clear();
    let (env, _) = test_env_on(Arc::new(TestSql::memory()));
    assert!(block(Portcullis::start(env, cfg)).is_err());
}

#[test]
fn jwt_bearer_token_is_dpop_bound_with_a_proof() {
    let (h, idp) = setup();
    let prover = crate::dpop::test_support::Prover::new(31);
    let url = format!("{}/oauth/token", h.server.issuer());
    let proof = prover.proof("POST", &url, h.server.now());
    let form = [
        ("grant_type", JWT_BEARER),
        ("assertion", &idp.sign(&claims(&h))),
    ];
    let auth = basic(AGENT);
    let (status, body) = json_of(h.post_form(
        "/oauth/token",
        &form,
        &[("authorization", &auth), ("dpop", &proof)],
    ));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let at = payload(body["access_token"].as_str().unwrap());
    assert_eq!(at["cnf"], json!({ "jkt": prover.jkt() }));
}
