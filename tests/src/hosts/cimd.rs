//! Client ID metadata documents fetched by an edge host through its runtime's outbound HTTP
//! (Workers `fetch`, Spin's `wasi:http`): a loopback document server and the checks every edge
//! runner makes against it (the native host's fetcher has its own tests).

use crate::doc_server::DocServer;
use crate::scenarios::support::{authorize_url, authz_params, new_resource, pairs};
use crate::scenarios::Target;

/// The documents the checks fetch, on a new [`DocServer`]: `/client.json` (a valid document),
/// `/redirect.json` (302 to `/client.json`), `/big.json` (a valid document padded past the
/// size limit).
fn document_server() -> DocServer {
    let docs = DocServer::start();
    let document = |path: &str, padding: usize| {
        serde_json::json!({
            "client_id": format!("{}{path}", docs.base),
            "client_name": "Edge CIMD client",
            "redirect_uris": ["https://client.example/cb"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "padding": "x".repeat(padding),
        })
    };
    docs.json("/client.json", &document("/client.json", 0));
    docs.json("/big.json", &document("/big.json", 200_000));
    docs.redirect("/redirect.json", &format!("{}/client.json", docs.base));
    docs
}

/// Client ID metadata documents through the host's outbound HTTP, on a server configured with
/// `cimd.allow_loopback = true` (and, on Spin, outbound HTTP to loopback allowed): a valid
/// loopback document is fetched once and accepted (then cached); a redirect is not followed
/// (S4); an oversized document is refused (S5); a private-address IP literal is refused
/// without a fetch (S1/S3 at URL level: edge hosts have no DNS step). `log` gives the host's
/// output for failure messages.
pub async fn cimd_documents_through_outbound_http(t: &Target, log: impl Fn() -> String) {
    let docs = document_server();
    let resource = new_resource(t, &["mcp:tools"]).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let authorize = |client_id: String| {
        let params = authz_params(
            &client_id,
            "https://client.example/cb",
            &resource,
            "mcp:tools",
            "st",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        );
        let url = authorize_url(t, &pairs(&params));
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.expect("authorize answers");
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
    };

    for _ in 0..2 {
        let (status, body) = authorize(format!("{}/client.json", docs.base)).await;
        assert!(
            status < 400,
            "a valid metadata document is accepted: {status} {body}\n{}",
            log()
        );
    }
    assert_eq!(docs.hits("/client.json"), 1, "fetched once, then cached");

    let (status, _) = authorize(format!("{}/redirect.json", docs.base)).await;
    assert_eq!(status, 400, "a redirecting document URL is refused");
    assert_eq!(docs.hits("/redirect.json"), 1);
    assert_eq!(
        docs.hits("/client.json"),
        1,
        "the redirect was not followed"
    );

    let (status, _) = authorize(format!("{}/big.json", docs.base)).await;
    assert_eq!(status, 400, "an oversized document is refused");

    let (status, _) = authorize("https://10.0.0.1/client.json".to_owned()).await;
    assert_eq!(status, 400, "a private address is refused");
}
