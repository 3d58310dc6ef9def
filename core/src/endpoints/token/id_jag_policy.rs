//! The rules of the JWT bearer policies (RFC 7523 §3 rule 12 leaves "additional
//! requirements" to the authorization server; [`crate::idp_policy`] decides) applied to one
//! verified ID-JAG: the facts come from the assertion (`groups`, `auth_time`, `acr`) and,
//! only when a rule reads them, from the groups stored for the mapped local user's connector
//! identities. Scopes a rule withholds are dropped; when the client asked for them by name,
//! or when none is left, the grant is refused: `access_denied` when a group is missing,
//! `invalid_grant` when the assertion's authentication is too old or of the wrong context
//! (a fresher or stronger one may pass). The client learns only that code; which policy,
//! rule, scope and condition failed goes to the audit row.

use serde_json::{json, Value};

use crate::context::Context;
use crate::error::{Error, ErrorCode};
use crate::idp_policy::{self, Facts, Failure, GroupsFrom, PolicyView};
use crate::store::repo::federation;
use crate::store::repo::idps::PolicyRow;

/// Most identities whose groups are read for one subject.
const MAX_IDENTITIES: i64 = 64;

/// A refusal: the audit reason, the client's error and the audit detail.
pub(super) struct Refused {
    /// `policy_<condition>` (or `storage`).
    pub reason: &'static str,
    /// What the client is told.
    pub error: Error,
    /// Which policy, rule, scope and condition failed (audit only).
    pub detail: Value,
}

/// The scopes of `candidates` the rules of `policies` allow for this assertion and local
/// `subject`; `explicit` when the client named the scopes it wants.
pub(super) async fn apply(
    ctx: &Context,
    policies: &[PolicyRow],
    candidates: Vec<String>,
    claims: &Value,
    subject: &str,
    explicit: bool,
) -> Result<Vec<String>, Refused> {
    if policies.iter().all(|p| p.rules.is_empty()) {
        return Ok(candidates);
    }
    let identity_groups = if needs_identity_groups(policies) {
        identity_groups(ctx, subject).await.map_err(|e| Refused {
            reason: "storage",
            error: e.into(),
            detail: Value::Null,
        })?
    } else {
        Vec::new()
    };
    let assertion_groups = idp_policy::asserted_groups(claims);
    let facts = Facts {
        auth_time: claims.get("auth_time").and_then(Value::as_i64),
        acr: claims.get("acr").and_then(Value::as_str),
        assertion_groups: &assertion_groups,
        identity_groups: &identity_groups,
        now: ctx.now(),
        skew: ctx.config().jwt_clock_skew_seconds,
    };
    let views: Vec<PolicyView<'_>> = policies
        .iter()
        .map(|p| PolicyView {
            id: &p.id,
            scopes: &p.scopes,
            rules: &p.rules,
        })
        .collect();
    let decision = idp_policy::decide(&views, &candidates, &facts);
    match decision.withheld.first() {
        Some(failure) if explicit || decision.granted.is_empty() => Err(refusal(failure)),
        _ => Ok(decision.granted),
    }
}

/// Whether some rule reads the mapped identity's groups.
fn needs_identity_groups(policies: &[PolicyRow]) -> bool {
    policies
        .iter()
        .flat_map(|p| &p.rules)
        .any(|r| r.groups_from == GroupsFrom::Identity && !r.groups.is_empty())
}

/// The groups last stored for the local user `subject` by its connector logins (none for a
/// subject that is not a local user, such as an automatic `idp:` subject).
async fn identity_groups(
    ctx: &Context,
    subject: &str,
) -> Result<Vec<String>, crate::store::StoreError> {
    let db = ctx.env().sql.as_ref();
    let mut groups = Vec::new();
    for identity in federation::identity_list(db, Some(subject), None, MAX_IDENTITIES).await? {
        for g in identity.groups {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    Ok(groups)
}

/// The client's error and the audit detail for a withheld scope.
fn refusal(f: &Failure) -> Refused {
    use idp_policy::Condition::*;
    let reason = match f.condition {
        Groups => "policy_groups",
        AuthTimeMissing => "policy_auth_time_missing",
        AuthTooOld => "policy_auth_time_too_old",
        AuthTimeInFuture => "policy_auth_time_in_future",
        Acr => "policy_acr",
    };
    let error = if f.condition.is_membership() {
        Error::new(
            ErrorCode::AccessDenied,
            "the policy does not allow this user the requested scope",
        )
    } else {
        Error::invalid_grant("the assertion does not satisfy the policy for the requested scope")
    };
    Refused {
        reason,
        error,
        detail: json!({
            "id": f.policy,
            "rule": f.rule,
            "scope": f.scope,
            "condition": f.condition.as_str(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idp_policy::{Condition, Rule};

    #[test]
    fn membership_is_access_denied_authentication_is_invalid_grant() {
        let failure = |condition| Failure {
            scope: "write".into(),
            policy: "p1".into(),
            rule: 2,
            condition,
        };
        let r = refusal(&failure(Condition::Groups));
        assert_eq!(r.reason, "policy_groups");
        assert_eq!(r.error.code, ErrorCode::AccessDenied);
        assert_eq!(
            r.detail,
            json!({ "id": "p1", "rule": 2, "scope": "write", "condition": "groups" })
        );
        for (c, reason) in [
            (Condition::AuthTimeMissing, "policy_auth_time_missing"),
            (Condition::AuthTooOld, "policy_auth_time_too_old"),
            (Condition::AuthTimeInFuture, "policy_auth_time_in_future"),
            (Condition::Acr, "policy_acr"),
        ] {
            let r = refusal(&failure(c));
            assert_eq!(r.reason, reason);
            assert_eq!(r.error.code, ErrorCode::InvalidGrant);
            assert!(
                !r.error.description.contains(c.as_str()),
                "the client is not told which condition failed"
            );
        }
    }

    #[test]
    fn identity_groups_are_read_only_when_a_rule_needs_them() {
        let policy = |rules: Vec<Rule>| PolicyRow {
            id: "p".into(),
            issuer: "https://idp.example".into(),
            client_id: "c".into(),
            resource: "https://mcp.example/mcp".into(),
            scopes: vec!["a".into()],
            rules,
            created_at: 0,
        };
        let from = |groups_from| Rule {
            groups: vec!["ops".into()],
            groups_from,
            ..Rule::default()
        };
        assert!(!needs_identity_groups(&[policy(vec![from(
            GroupsFrom::Assertion
        )])]));
        assert!(needs_identity_groups(&[
            policy(Vec::new()),
            policy(vec![from(GroupsFrom::Identity)])
        ]));
    }
}
