//! Revocation through token exchange (RFC 8693 with RFC 7009): revoking a token reaches the
//! tokens exchanged from it and never its ancestors, revoking a grant reaches every token
//! exchanged from its access tokens, a `client_credentials` root works the same, and an
//! exchange lineage has a bounded length.

use super::super::support::*;
use super::super::Target;
use super::{access, exchange_token, exchanged, Setup, ACCESS};

/// Longest exchange lineage (`store::repo::access::MAX_LINEAGE`): a token, and the tokens
/// exchanged one from the other after it.
const MAX_LINEAGE: usize = 32;

/// Revoking a token (by its owner) or its grant revokes every token exchanged from it,
/// directly or through other exchanges; revoking an exchanged token leaves its parent and
/// its siblings alone.
pub async fn exchange_revocation_reaches_descendants(t: &Target) {
    let s = Setup::new(t).await;
    let tok = s.f.tokens(t).await;
    let orch = s.orch_token(t).await;
    let actor = [("actor_token", orch.as_str()), ("actor_token_type", ACCESS)];
    let to_target = [("resource", s.target.as_str())];
    let child = access(&exchanged(t, &tok.access, &to_target, s.orch_auth()).await);
    let grandchild = access(&exchanged(t, &child, &actor, s.orch_auth()).await);
    let sibling = access(&exchanged(t, &tok.access, &[], s.f.auth()).await);
    assert!(is_active(t, &grandchild, s.orch_auth()).await);
    // Revoking the child reaches the grandchild only.
    let r = revoke(t, &child, None, s.orch_auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!is_active(t, &grandchild, s.orch_auth()).await);
    assert!(
        is_active(t, &tok.access, s.f.auth()).await,
        "the parent stays"
    );
    assert!(
        is_active(t, &sibling, s.f.auth()).await,
        "the sibling stays"
    );

    // Revoking the root reaches every descendant.
    let child = access(&exchanged(t, &tok.access, &to_target, s.orch_auth()).await);
    let grandchild = access(&exchanged(t, &child, &[], s.orch_auth()).await);
    let r = revoke(t, &tok.access, Some("access_token"), s.f.auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for token in [&child, &grandchild] {
        assert!(
            !is_active(t, token, s.orch_auth()).await,
            "revoking the subject token revokes what was exchanged from it"
        );
    }
    assert!(!is_active(t, &sibling, s.f.auth()).await);
    exchange_token(t, &grandchild, &[], s.orch_auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    exchange_token(t, &sibling, &[], s.f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");

    // Through the grant: revoking the refresh token ends the exchanged tokens too.
    let rotated = tokens(&refresh(t, tok.refresh.as_deref().unwrap(), s.f.auth()).await);
    let child = access(&exchanged(t, &rotated.access, &to_target, s.orch_auth()).await);
    let grandchild = access(&exchanged(t, &child, &[], s.orch_auth()).await);
    assert!(is_active(t, &grandchild, s.orch_auth()).await);
    let rt = rotated.refresh.as_deref().unwrap();
    assert_eq!(revoke(t, rt, None, s.f.auth()).await.status, 200);
    for token in [&child, &grandchild] {
        assert!(!is_active(t, token, s.orch_auth()).await);
        exchange_token(t, token, &[], s.orch_auth())
            .await
            .assert_oauth_error(400, "invalid_grant");
    }
}

/// A `client_credentials` token has no grant; revoking it after it was exchanged still
/// reaches the exchanged token.
pub async fn exchange_revoking_a_machine_root_reaches_the_child(t: &Target) {
    let s = Setup::new(t).await;
    let root = s.orch_token_for(t, &s.target).await;
    let child = access(&exchanged(t, &root, &[], s.orch_auth()).await);
    assert!(is_active(t, &child, s.orch_auth()).await);
    let r = revoke(t, &root, None, s.orch_auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!is_active(t, &child, s.orch_auth()).await);
}

/// A lineage of exchanges is bounded: after the longest allowed chain the next exchange is
/// `invalid_request`, and revoking the root's grant still reaches the last token.
pub async fn exchange_lineage_is_bounded(t: &Target) {
    let s = Setup::new(t).await;
    let root = s.f.tokens(t).await;
    let mut token = root.access.clone();
    for _ in 1..MAX_LINEAGE {
        token = access(&exchanged(t, &token, &[], s.f.auth()).await);
    }
    let r = exchange_token(t, &token, &[], s.f.auth()).await;
    r.assert_oauth_error(400, "invalid_request");
    assert!(r.body.contains("exchanges"), "{}", r.body);
    assert!(is_active(t, &token, s.f.auth()).await);
    let rt = root.refresh.as_deref().expect("a refresh token");
    assert_eq!(revoke(t, rt, None, s.f.auth()).await.status, 200);
    assert!(
        !is_active(t, &token, s.f.auth()).await,
        "the root's grant reaches the end of the lineage"
    );
}
