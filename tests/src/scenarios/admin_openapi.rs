//! The admin API's OpenAPI 3.1 document (`GET /admin/openapi.json`) against the real API:
//! every operation it describes is called (successes and refusals), each answer's status must
//! be one the document lists for that operation, and each JSON body must validate against the
//! documented schema (JSON Schema 2020-12, with the `jsonschema` crate). That every routed path
//! is in the document is checked from the router's source by `tests/tests/admin_openapi.rs`.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use super::support::*;
use super::Target;

/// Resolves a `$ref` to `#/components/...` once.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("no {pointer} in the document")),
        None => v,
    }
}

/// The JSON pointer escape of one token (RFC 6901 §3), as a URI fragment.
fn escape(s: &str) -> String {
    // Then percent-encoded for a URI fragment (RFC 6901 §6).
    s.replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

struct Checker {
    doc: Value,
    seen: BTreeSet<(String, String)>,
}

impl Checker {
    /// Calls `method template` (its `{…}` filled from `args`, in order, plus `query`) and checks
    /// the answer against the document; the answer.
    async fn call(
        &mut self,
        t: &Target,
        method: Method,
        template: &str,
        args: &[&str],
        query: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut path = String::new();
        let mut args = args.iter();
        for seg in template.split('/').skip(1) {
            path.push('/');
            if seg.starts_with('{') {
                let v = args.next().expect("an argument per path parameter");
                path.push_str(
                    &url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>(),
                );
            } else {
                path.push_str(seg);
            }
        }
        if !query.is_empty() {
            path = format!("{path}?{query}");
        }
        let r = admin(t, method.clone(), &path, body).await;
        let m = method.as_str().to_ascii_lowercase();
        let op = &self.doc["paths"][template][&m];
        assert!(
            op.is_object(),
            "{method} {template} is not in the OpenAPI document"
        );
        let status = r.status.to_string();
        let documented = op["responses"].get(&status).unwrap_or_else(|| {
            panic!(
                "{method} {path} answered {status}, which the document does not list: {}",
                short(&r.body)
            )
        });
        let documented = deref(&self.doc, documented);
        let mime = mime(&r);
        match documented.get("content") {
            None => assert!(
                r.body.is_empty(),
                "{method} {path} {status}: a body the document does not describe"
            ),
            Some(content) => {
                let kind = mime.split(';').next().unwrap_or("").trim();
                assert!(
                    content.get(kind).is_some(),
                    "{method} {path} {status}: content type {kind} is not documented"
                );
                if kind == "application/json" {
                    let pointer = format!(
                        "#/paths/{}/{m}/responses/{status}/content/application~1json/schema",
                        escape(template)
                    );
                    let pointer = if op["responses"][&status].get("$ref").is_some() {
                        format!(
                            "{}/content/application~1json/schema",
                            op["responses"][&status]["$ref"].as_str().unwrap()
                        )
                    } else {
                        pointer
                    };
                    let mut root = self.doc.clone();
                    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
                    root["$ref"] = json!(pointer);
                    let validator = jsonschema::validator_for(&root).unwrap_or_else(|e| {
                        panic!("the schema at {pointer} does not compile: {e}")
                    });
                    let body = r.json();
                    let errors: Vec<String> = validator
                        .iter_errors(&body)
                        .map(|e| format!("{} at {}", e, e.instance_path()))
                        .collect();
                    assert!(
                        errors.is_empty(),
                        "{method} {path} {status} does not match {pointer}: {errors:?}; body {}",
                        short(&r.body)
                    );
                }
            }
        }
        self.seen.insert((template.to_owned(), m));
        r
    }
}

/// Calls every documented operation and checks each answer against the document.
pub async fn admin_openapi_matches_responses(t: &Target) {
    let served = admin(t, Method::GET, "/admin/openapi.json", None).await;
    assert_eq!(served.status, 200);
    let doc = served.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let anonymous = send(http().get(format!("{}/admin/openapi.json", t.admin))).await;
    assert_eq!(
        anonymous.status, 401,
        "the document needs the admin key like the API"
    );
    let mut c = Checker {
        doc,
        seen: BTreeSet::new(),
    };
    let g = Method::GET;
    let p = Method::POST;
    let d = Method::DELETE;

    c.call(t, g.clone(), "/admin/openapi.json", &[], "", None)
        .await;
    let metrics = c.call(t, g.clone(), "/admin/metrics", &[], "", None).await;
    assert!(metrics.body.contains("portcullis_logins_total"));
    // Users.
    let name = crate::conformance::uid("oa-user");
    let pw = json!({ "username": name, "password": "correct horse battery" });
    c.call(t, p.clone(), "/admin/users", &[], "", Some(pw.clone()))
        .await;
    c.call(t, p.clone(), "/admin/users", &[], "", Some(pw))
        .await;
    c.call(
        t,
        p.clone(),
        "/admin/users",
        &[],
        "",
        Some(json!({ "username": "x" })),
    )
    .await;
    c.call(t, g.clone(), "/admin/users", &[], "limit=5", None)
        .await;
    c.call(t, g.clone(), "/admin/users", &[], "limit=0", None)
        .await;
    c.call(t, g.clone(), "/admin/users/{username}", &[&name], "", None)
        .await;
    c.call(
        t,
        g.clone(),
        "/admin/users/{username}",
        &["nobody-here"],
        "",
        None,
    )
    .await;
    c.call(
        t,
        p.clone(),
        "/admin/users/{username}/disable",
        &[&name],
        "",
        None,
    )
    .await;
    c.call(
        t,
        p.clone(),
        "/admin/users/{username}/enable",
        &[&name],
        "",
        None,
    )
    .await;
    let npw = json!({ "password": "another good password" });
    c.call(
        t,
        p.clone(),
        "/admin/users/{username}/password",
        &[&name],
        "",
        Some(npw),
    )
    .await;
    c.call(
        t,
        g.clone(),
        "/admin/users/{username}/sessions",
        &[&name],
        "",
        None,
    )
    .await;
    c.call(
        t,
        d.clone(),
        "/admin/users/{username}/sessions",
        &[&name],
        "",
        None,
    )
    .await;
    c.call(
        t,
        d.clone(),
        "/admin/users/{username}/sessions/{session_id}",
        &[&name, "nope"],
        "",
        None,
    )
    .await;
    c.call(t, d.clone(), "/admin/users/{username}", &[&name], "", None)
        .await;
    // Resources.
    let uri = format!("https://{}.example/mcp", crate::conformance::uid("oa"));
    let res = json!({ "uri": uri, "scopes": ["mcp:tools"] });
    c.call(t, p.clone(), "/admin/resources", &[], "", Some(res.clone()))
        .await;
    c.call(t, p.clone(), "/admin/resources", &[], "", Some(res))
        .await;
    c.call(t, g.clone(), "/admin/resources", &[], "", None)
        .await;
    c.call(
        t,
        d.clone(),
        "/admin/resources",
        &[],
        "",
        Some(json!({ "uri": uri })),
    )
    .await;
    c.call(
        t,
        d.clone(),
        "/admin/resources",
        &[],
        "",
        Some(json!({ "uri": uri })),
    )
    .await;
    // Clients.
    let r = c
        .call(
            t,
            p.clone(),
            "/admin/clients",
            &[],
            "",
            Some(json!({ "grant_types": ["client_credentials"], "scope": "mcp:tools" })),
        )
        .await;
    let id = r.json()["client_id"].as_str().unwrap().to_owned();
    c.call(
        t,
        p.clone(),
        "/admin/clients",
        &[],
        "",
        Some(json!({ "client_id": id })),
    )
    .await;
    c.call(
        t,
        p.clone(),
        "/admin/clients",
        &[],
        "",
        Some(json!({ "redirect_uris": ["http://x/"] })),
    )
    .await;
    c.call(t, g.clone(), "/admin/clients", &[], "limit=1000", None)
        .await;
    c.call(t, g.clone(), "/admin/clients/{client_id}", &[&id], "", None)
        .await;
    c.call(
        t,
        g.clone(),
        "/admin/clients/{client_id}",
        &["nope"],
        "",
        None,
    )
    .await;
    c.call(
        t,
        Method::PATCH,
        "/admin/clients/{client_id}",
        &[&id],
        "",
        Some(json!({ "client_name": "OA" })),
    )
    .await;
    c.call(
        t,
        Method::PATCH,
        "/admin/clients/{client_id}",
        &[&id],
        "",
        Some(json!({})),
    )
    .await;
    c.call(
        t,
        p.clone(),
        "/admin/clients/{client_id}/secret",
        &[&id],
        "",
        None,
    )
    .await;
    c.call(
        t,
        p.clone(),
        "/admin/clients/{client_id}/secret",
        &["nope"],
        "",
        None,
    )
    .await;
    c.call(
        t,
        g.clone(),
        "/admin/clients/{client_id}/policy",
        &[&id],
        "",
        None,
    )
    .await;
    c.call(
        t,
        Method::PUT,
        "/admin/clients/{client_id}/policy",
        &[&id],
        "",
        Some(json!({ "rate_limit_per_minute": 10 })),
    )
    .await;
    c.call(
        t,
        Method::PUT,
        "/admin/clients/{client_id}/policy",
        &[&id],
        "",
        Some(json!({ "rate_limit_per_minute": -1 })),
    )
    .await;
    c.call(
        t,
        p.clone(),
        "/admin/clients/{client_id}/suspend",
        &[&id],
        "",
        None,
    )
    .await;
    c.call(
        t,
        p.clone(),
        "/admin/clients/{client_id}/resume",
        &[&id],
        "",
        None,
    )
    .await;
    c.call(
        t,
        p.clone(),
        "/admin/clients/{client_id}/resume",
        &["nope"],
        "",
        None,
    )
    .await;
    // Grants and tokens, with a real grant from a browser flow.
    let f = Fixture::confidential(t).await;
    let held = f.tokens(t).await;
    let jti = jwt_claims(&held.access)["jti"].as_str().unwrap().to_owned();
    let q = format!("subject={}", f.user.id);
    let grants = c.call(t, g.clone(), "/admin/grants", &[], &q, None).await;
    let gid = grants.json()["grants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.call(t, g.clone(), "/admin/grants", &[], "active=yes", None)
        .await;
    c.call(t, g.clone(), "/admin/tokens", &[], &q, None).await;
    c.call(t, g.clone(), "/admin/tokens", &[], "", None).await;
    c.call(t, g.clone(), "/admin/tokens/{jti}", &[&jti], "", None)
        .await;
    c.call(t, g.clone(), "/admin/tokens/{jti}", &["nope"], "", None)
        .await;
    c.call(
        t,
        p.clone(),
        "/admin/tokens/revoke",
        &[],
        "",
        Some(json!({ "jti": jti })),
    )
    .await;
    let rt = held.refresh.clone().unwrap();
    c.call(
        t,
        p.clone(),
        "/admin/tokens/revoke",
        &[],
        "",
        Some(json!({ "refresh_token": rt })),
    )
    .await;
    c.call(
        t,
        p.clone(),
        "/admin/tokens/revoke",
        &[],
        "",
        Some(json!({ "jti": "nope" })),
    )
    .await;
    c.call(
        t,
        p.clone(),
        "/admin/grants/{grant_id}/revoke",
        &[&gid],
        "",
        None,
    )
    .await;
    c.call(
        t,
        p.clone(),
        "/admin/grants/{grant_id}/revoke",
        &["nope"],
        "",
        None,
    )
    .await;
    c.call(t, d.clone(), "/admin/clients/{client_id}", &[&id], "", None)
        .await;
    c.call(t, d.clone(), "/admin/clients/{client_id}", &[&id], "", None)
        .await;
    // The audit log.
    c.call(
        t,
        g.clone(),
        "/admin/audit",
        &[],
        "limit=20&from=0&to=99999999999",
        None,
    )
    .await;
    c.call(t, g.clone(), "/admin/audit", &[], "outcome=maybe", None)
        .await;
    c.call(
        t,
        g.clone(),
        "/admin/audit/export",
        &[],
        "format=csv&limit=3",
        None,
    )
    .await;
    c.call(t, g.clone(), "/admin/audit/export", &[], "limit=3", None)
        .await;
    c.call(t, g.clone(), "/admin/audit/export", &[], "format=xml", None)
        .await;
    // Keys.
    c.call(t, g.clone(), "/admin/keys", &[], "", None).await;
    c.call(
        t,
        p.clone(),
        "/admin/keys/rotate",
        &[],
        "",
        Some(json!({ "prepublish_secs": -1 })),
    )
    .await;
    c.call(
        t,
        p.clone(),
        "/admin/keys/rotate",
        &[],
        "",
        Some(json!({ "prepublish_secs": 0 })),
    )
    .await;
    c.call(t, p.clone(), "/admin/rekey", &[], "", None).await;
    // Federation and the vault: their lists, and refusals of bad input.
    for (path, list) in [
        ("/admin/idps", true),
        ("/admin/idp-policies", true),
        ("/admin/idp-subjects", true),
        ("/admin/providers", true),
        ("/admin/connections", false),
    ] {
        c.call(t, g.clone(), path, &[], "", None).await;
        if list {
            c.call(t, p.clone(), path, &[], "", Some(json!({ "bogus": 1 })))
                .await;
        }
    }
    for path in ["/admin/idps", "/admin/idp-subjects"] {
        c.call(t, d.clone(), path, &[], "", Some(json!({ "bogus": 1 })))
            .await;
    }
    c.call(
        t,
        d.clone(),
        "/admin/idp-policies/{id}",
        &["nope"],
        "",
        None,
    )
    .await;
    // A JWT bearer policy with rules (groups, step-up), its replacement, a refused rule, the
    // list and the deletion.
    let idp = format!(
        "https://idp.example.com/{}",
        crate::conformance::uid("oa-idp")
    );
    let r = c
        .call(
            t,
            p.clone(),
            "/admin/idps",
            &[],
            "",
            Some(json!({ "issuer": idp })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", short(&r.body));
    let policy_resource = format!("https://{}.example/mcp", crate::conformance::uid("oa"));
    let res = json!({ "uri": policy_resource, "scopes": ["mcp:tools", "mcp:admin"] });
    c.call(t, p.clone(), "/admin/resources", &[], "", Some(res))
        .await;
    let rule = json!({
        "scopes": ["mcp:admin"], "groups": ["ops"], "groups_from": "identity",
        "max_auth_age": 300, "acr_values": ["urn:mfa"],
    });
    let policy = |rules: Value| {
        json!({
            "issuer": idp, "client_id": "oa-agent", "resource": policy_resource,
            "scopes": ["mcp:tools", "mcp:admin"], "rules": rules,
        })
    };
    let r = c
        .call(
            t,
            p.clone(),
            "/admin/idp-policies",
            &[],
            "",
            Some(policy(json!([rule]))),
        )
        .await;
    assert_eq!(r.status, 201, "{}", short(&r.body));
    let created = r.json();
    assert_eq!(created["rules"], json!([rule]), "{created}");
    let r = c
        .call(
            t,
            p.clone(),
            "/admin/idp-policies",
            &[],
            "",
            Some(policy(json!([]))),
        )
        .await;
    assert_eq!(r.status, 200, "replaced: {}", short(&r.body));
    assert_eq!(r.ok_json()["rules"], json!([]));
    let r = c
        .call(
            t,
            p.clone(),
            "/admin/idp-policies",
            &[],
            "",
            Some(policy(
                json!([{ "scopes": ["mcp:other"], "groups": ["ops"] }]),
            )),
        )
        .await;
    assert_eq!(r.status, 400, "{}", short(&r.body));
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    c.call(
        t,
        g.clone(),
        "/admin/idp-policies",
        &[],
        &format!("issuer={}", enc(&idp)),
        None,
    )
    .await;
    let id = created["id"].as_str().expect("the policy's id").to_owned();
    let r = c
        .call(t, d.clone(), "/admin/idp-policies/{id}", &[&id], "", None)
        .await;
    assert_eq!(r.status, 204, "{}", short(&r.body));
    c.call(t, d.clone(), "/admin/providers/{name}", &["nope"], "", None)
        .await;
    // Workload identity federation: an issuer created, updated and removed; rules refused.
    let workload_issuer = format!(
        "https://workloads.example.com/{}",
        crate::conformance::uid("oa")
    );
    let issuer_body = json!({ "issuer": workload_issuer, "audiences": ["portcullis"] });
    for _ in 0..2 {
        c.call(
            t,
            p.clone(),
            "/admin/workload-issuers",
            &[],
            "",
            Some(issuer_body.clone()),
        )
        .await;
    }
    c.call(t, g.clone(), "/admin/workload-issuers", &[], "", None)
        .await;
    c.call(t, g.clone(), "/admin/workload-rules", &[], "", None)
        .await;
    for path in ["/admin/workload-issuers", "/admin/workload-rules"] {
        c.call(t, p.clone(), path, &[], "", Some(json!({ "bogus": 1 })))
            .await;
    }
    let q = format!(
        "issuer={}",
        url::form_urlencoded::byte_serialize(workload_issuer.as_bytes()).collect::<String>()
    );
    c.call(t, d.clone(), "/admin/workload-issuers", &[], &q, None)
        .await;
    c.call(t, d.clone(), "/admin/workload-issuers", &[], &q, None)
        .await;
    c.call(
        t,
        d.clone(),
        "/admin/workload-rules/{id}",
        &["nope"],
        "",
        None,
    )
    .await;
    // Federation: connectors and identities.
    c.call(t, g.clone(), "/admin/connectors", &[], "", None)
        .await;
    let bad = json!({ "id": "Not An Id!", "name": "x" });
    let r = c
        .call(t, p.clone(), "/admin/connectors", &[], "", Some(bad))
        .await;
    assert_eq!(r.status, 400, "{}", short(&r.body));
    c.call(t, d.clone(), "/admin/connectors/{id}", &["nope"], "", None)
        .await;
    c.call(t, g.clone(), "/admin/identities", &[], "limit=5", None)
        .await;
    c.call(
        t,
        d.clone(),
        "/admin/identities/{connector}/{subject}",
        &["nope", "nobody"],
        "",
        None,
    )
    .await;
    c.call(t, d.clone(), "/admin/connections/{id}", &["nope"], "", None)
        .await;

    // Every documented JSON operation was called (the console is HTML, checked elsewhere).
    let mut missing = Vec::new();
    for (path, item) in c.doc["paths"].as_object().unwrap() {
        if path.starts_with("/admin/console/") {
            continue;
        }
        for m in ["get", "post", "put", "patch", "delete"] {
            if item.get(m).is_some() && !c.seen.contains(&(path.clone(), m.to_owned())) {
                missing.push(format!("{m} {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "documented but not exercised: {missing:?}"
    );
}
