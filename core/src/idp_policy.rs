//! The conditions of a JWT bearer (ID-JAG / cross-app access) policy, as a pure decision:
//! a policy (`idp_policies`, one per IdP, client and resource) may carry rules, each guarding
//! some of its scopes (or all of them) with group membership (from the assertion's `groups`
//! claim or from the groups the mapped local user's connector logins last stored), a maximum
//! authentication age (the assertion's `auth_time`, OpenID Connect Core 1.0 §2, as carried by
//! draft-ietf-oauth-identity-assertion-authz-grant §3) and an authentication context (its
//! `acr`, one of a list). A scope is granted when some policy listing it has every rule that
//! guards it satisfied; a refusal names the policy, the rule, the scope and the condition
//! that failed (for the audit row; the client only learns the error code).

use serde::{Deserialize, Serialize};

/// Most rules one policy may carry.
pub const MAX_RULES: usize = 16;
/// Most entries in one rule's `scopes`, `groups` or `acr_values`.
pub const MAX_LIST: usize = 64;
/// Longest group name or `acr` value, bytes.
pub const MAX_VALUE_LEN: usize = 256;
/// Largest `max_auth_age`, seconds (one year).
pub const MAX_AUTH_AGE: i64 = 365 * 24 * 3600;
/// Most groups read from an assertion's `groups` claim (the rest are ignored).
pub const MAX_ASSERTED_GROUPS: usize = 1024;

/// Where a rule reads the user's groups from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupsFrom {
    /// The assertion's `groups` claim (an array of strings, or one string).
    #[default]
    Assertion,
    /// The groups stored for the local user the assertion's subject maps to (the last login
    /// through each of that user's connector identities).
    Identity,
}

/// One condition set of a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The policy's scopes this rule guards; empty: all of them.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The user must be in at least one of these groups (empty: no group condition).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Where the groups come from (default: the assertion).
    #[serde(default)]
    pub groups_from: GroupsFrom,
    /// The assertion's `auth_time` must be present and at most this many seconds ago.
    #[serde(default)]
    pub max_auth_age: Option<i64>,
    /// The assertion's `acr` must be one of these (empty: no condition).
    #[serde(default)]
    pub acr_values: Vec<String>,
}

impl Rule {
    /// Whether this rule guards `scope`.
    fn guards(&self, scope: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|s| s == scope)
    }
}

/// A condition that failed. [`Condition::as_str`] is the audit reason's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The user is in none of the rule's groups.
    Groups,
    /// The rule needs `auth_time` and the assertion has none.
    AuthTimeMissing,
    /// `auth_time` is more than `max_auth_age` ago.
    AuthTooOld,
    /// `auth_time` is further in the future than the clock skew.
    AuthTimeInFuture,
    /// `acr` is absent or not one of the rule's values.
    Acr,
}

impl Condition {
    /// The condition's name in audit rows (`policy_<name>` is the reason).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Groups => "groups",
            Self::AuthTimeMissing => "auth_time_missing",
            Self::AuthTooOld => "auth_time_too_old",
            Self::AuthTimeInFuture => "auth_time_in_future",
            Self::Acr => "acr",
        }
    }

    /// Whether the failure is about who the user is (`access_denied`) rather than about how
    /// recently or how strongly they authenticated (the assertion is insufficient:
    /// `invalid_grant`, a fresher or stronger one may pass).
    pub fn is_membership(self) -> bool {
        matches!(self, Self::Groups)
    }
}

/// What the rules are checked against.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The assertion's `auth_time`.
    pub auth_time: Option<i64>,
    /// The assertion's `acr`.
    pub acr: Option<&'a str>,
    /// The groups in the assertion's `groups` claim.
    pub assertion_groups: &'a [String],
    /// The groups stored for the mapped local user.
    pub identity_groups: &'a [String],
    /// Now, seconds.
    pub now: i64,
    /// The configured clock skew (`jwt_clock_skew_seconds`).
    pub skew: i64,
}

/// Checks one rule.
pub fn check_rule(rule: &Rule, f: &Facts<'_>) -> Result<(), Condition> {
    if !rule.groups.is_empty() {
        let have = match rule.groups_from {
            GroupsFrom::Assertion => f.assertion_groups,
            GroupsFrom::Identity => f.identity_groups,
        };
        if !rule.groups.iter().any(|g| have.contains(g)) {
            return Err(Condition::Groups);
        }
    }
    if let Some(max) = rule.max_auth_age {
        let at = f.auth_time.ok_or(Condition::AuthTimeMissing)?;
        if at > f.now.saturating_add(f.skew) {
            return Err(Condition::AuthTimeInFuture);
        }
        if f.now.saturating_sub(at) > max {
            return Err(Condition::AuthTooOld);
        }
    }
    if !rule.acr_values.is_empty()
        && !f
            .acr
            .is_some_and(|a| rule.acr_values.iter().any(|v| v == a))
    {
        return Err(Condition::Acr);
    }
    Ok(())
}

/// A policy as the decision sees it: its id, its scopes and its rules.
#[derive(Debug, Clone, Copy)]
pub struct PolicyView<'a> {
    /// Its id.
    pub id: &'a str,
    /// The largest scope set it grants.
    pub scopes: &'a [String],
    /// Its rules.
    pub rules: &'a [Rule],
}

/// Why one scope was withheld: the first failing rule of the first policy that lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The scope.
    pub scope: String,
    /// The policy's id.
    pub policy: String,
    /// The rule's index in the policy.
    pub rule: usize,
    /// The condition that failed.
    pub condition: Condition,
}

/// The scopes granted and, for each withheld one, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Scopes every guarding rule of some policy allows, in the candidates' order.
    pub granted: Vec<String>,
    /// The scopes withheld by a rule.
    pub withheld: Vec<Failure>,
}

/// Decides which of `candidates` (already within the policies' scopes) the rules allow.
pub fn decide(policies: &[PolicyView<'_>], candidates: &[String], f: &Facts<'_>) -> Decision {
    let mut granted = Vec::new();
    let mut withheld = Vec::new();
    for scope in candidates {
        let mut first_failure = None;
        let allowed = policies
            .iter()
            .filter(|p| p.scopes.contains(scope))
            .any(|p| {
                let failed = p
                    .rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.guards(scope))
                    .find_map(|(i, r)| check_rule(r, f).err().map(|c| (i, c)));
                if let (Some((rule, condition)), None) = (failed, &first_failure) {
                    first_failure = Some(Failure {
                        scope: scope.clone(),
                        policy: p.id.to_owned(),
                        rule,
                        condition,
                    });
                }
                failed.is_none()
            });
        match (allowed, first_failure) {
            (true, _) => granted.push(scope.clone()),
            (false, Some(failure)) => withheld.push(failure),
            // Listed by no policy: not a candidate; nothing to report.
            (false, None) => {}
        }
    }
    Decision { granted, withheld }
}

/// The groups in an assertion's `groups` claim: an array of strings (other members are
/// ignored) or a single string; at most [`MAX_ASSERTED_GROUPS`].
pub fn asserted_groups(claims: &serde_json::Value) -> Vec<String> {
    match claims.get("groups") {
        Some(serde_json::Value::String(g)) => vec![g.clone()],
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(serde_json::Value::as_str)
            .take(MAX_ASSERTED_GROUPS)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Why a policy's rules are refused. `Display` is told to the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("a policy may carry at most {MAX_RULES} rules")]
    TooMany,
    #[error("rule {0}: needs at least one condition (groups, max_auth_age or acr_values)")]
    Empty(usize),
    #[error("rule {0}: '{1}' may hold at most {MAX_LIST} entries")]
    ListTooLong(usize, &'static str),
    #[error("rule {0}: every entry of '{1}' must be 1 to {MAX_VALUE_LEN} bytes without whitespace or control characters")]
    BadValue(usize, &'static str),
    #[error("rule {0}: scope '{1}' is not one of the policy's scopes")]
    ScopeNotInPolicy(usize, String),
    #[error("rule {0}: max_auth_age must be between 0 and {MAX_AUTH_AGE} seconds")]
    AuthAge(usize),
    #[error("rule {0}: groups_from is set but no groups are listed")]
    GroupsFromWithoutGroups(usize),
}

/// Checks the rules of a policy whose scopes are `policy_scopes`.
pub fn validate(rules: &[Rule], policy_scopes: &[String]) -> Result<(), RuleError> {
    if rules.len() > MAX_RULES {
        return Err(RuleError::TooMany);
    }
    for (i, r) in rules.iter().enumerate() {
        if r.groups.is_empty() && r.max_auth_age.is_none() && r.acr_values.is_empty() {
            return Err(RuleError::Empty(i));
        }
        for (name, list) in [
            ("scopes", &r.scopes),
            ("groups", &r.groups),
            ("acr_values", &r.acr_values),
        ] {
            if list.len() > MAX_LIST {
                return Err(RuleError::ListTooLong(i, name));
            }
            let bad = |v: &String| {
                v.is_empty()
                    || v.len() > MAX_VALUE_LEN
                    || v.chars().any(|c| c.is_whitespace() || c.is_control())
            };
            if list.iter().any(bad) {
                return Err(RuleError::BadValue(i, name));
            }
        }
        if let Some(s) = r.scopes.iter().find(|s| !policy_scopes.contains(s)) {
            return Err(RuleError::ScopeNotInPolicy(i, s.clone()));
        }
        if r.max_auth_age
            .is_some_and(|a| !(0..=MAX_AUTH_AGE).contains(&a))
        {
            return Err(RuleError::AuthAge(i));
        }
        if r.groups.is_empty() && r.groups_from != GroupsFrom::Assertion {
            return Err(RuleError::GroupsFromWithoutGroups(i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn facts<'a>(groups: &'a [String], identity: &'a [String]) -> Facts<'a> {
        Facts {
            auth_time: Some(NOW - 100),
            acr: Some("urn:mfa"),
            assertion_groups: groups,
            identity_groups: identity,
            now: NOW,
            skew: 60,
        }
    }

    #[test]
    fn groups_from_the_assertion_or_the_identity() {
        let eng = strings(&["eng"]);
        let ops = strings(&["ops"]);
        let rule = Rule {
            groups: strings(&["ops", "sre"]),
            ..Rule::default()
        };
        assert_eq!(
            check_rule(&rule, &facts(&eng, &ops)),
            Err(Condition::Groups)
        );
        assert_eq!(check_rule(&rule, &facts(&ops, &eng)), Ok(()));
        let from_identity = Rule {
            groups_from: GroupsFrom::Identity,
            ..rule
        };
        assert_eq!(check_rule(&from_identity, &facts(&eng, &ops)), Ok(()));
        assert_eq!(
            check_rule(&from_identity, &facts(&ops, &eng)),
            Err(Condition::Groups)
        );
        assert_eq!(
            check_rule(&from_identity, &facts(&ops, &[])),
            Err(Condition::Groups)
        );
    }

    #[test]
    fn auth_age_needs_a_recent_auth_time() {
        let rule = Rule {
            max_auth_age: Some(300),
            ..Rule::default()
        };
        let mut f = facts(&[], &[]);
        assert_eq!(check_rule(&rule, &f), Ok(()));
        f.auth_time = Some(NOW - 300);
        assert_eq!(check_rule(&rule, &f), Ok(()), "exactly the maximum age");
        f.auth_time = Some(NOW - 301);
        assert_eq!(check_rule(&rule, &f), Err(Condition::AuthTooOld));
        f.auth_time = None;
        assert_eq!(check_rule(&rule, &f), Err(Condition::AuthTimeMissing));
        f.auth_time = Some(NOW + 60);
        assert_eq!(check_rule(&rule, &f), Ok(()), "within the skew");
        f.auth_time = Some(NOW + 61);
        assert_eq!(check_rule(&rule, &f), Err(Condition::AuthTimeInFuture));
        f.skew = 0;
        f.auth_time = Some(NOW + 1);
        assert_eq!(check_rule(&rule, &f), Err(Condition::AuthTimeInFuture));
    }

    #[test]
    fn acr_must_be_listed() {
        let rule = Rule {
            acr_values: strings(&["urn:mfa", "phr"]),
            ..Rule::default()
        };
        let mut f = facts(&[], &[]);
        assert_eq!(check_rule(&rule, &f), Ok(()));
        f.acr = Some("urn:pwd");
        assert_eq!(check_rule(&rule, &f), Err(Condition::Acr));
        f.acr = None;
        assert_eq!(check_rule(&rule, &f), Err(Condition::Acr));
        f.acr = Some("URN:MFA");
        assert_eq!(check_rule(&rule, &f), Err(Condition::Acr), "exact match");
    }

    #[test]
    fn every_condition_of_a_rule_must_hold() {
        let rule = Rule {
            groups: strings(&["ops"]),
            max_auth_age: Some(60),
            acr_values: strings(&["urn:mfa"]),
            ..Rule::default()
        };
        let ops = strings(&["ops"]);
        let f = facts(&ops, &[]);
        assert_eq!(check_rule(&rule, &f), Err(Condition::AuthTooOld));
        let fresh = Facts {
            auth_time: Some(NOW - 10),
            ..f
        };
        assert_eq!(check_rule(&rule, &fresh), Ok(()));
        assert_eq!(check_rule(&Rule::default(), &facts(&[], &[])), Ok(()));
    }

    #[test]
    fn rules_guard_their_scopes_and_any_policy_may_grant() {
        let scopes = strings(&["read", "write"]);
        let write_needs_ops = [Rule {
            scopes: strings(&["write"]),
            groups: strings(&["ops"]),
            ..Rule::default()
        }];
        let p = PolicyView {
            id: "p1",
            scopes: &scopes,
            rules: &write_needs_ops,
        };
        let eng = strings(&["eng"]);
        let d = decide(&[p], &scopes, &facts(&eng, &[]));
        assert_eq!(d.granted, strings(&["read"]));
        assert_eq!(
            d.withheld,
            [Failure {
                scope: "write".into(),
                policy: "p1".into(),
                rule: 0,
                condition: Condition::Groups,
            }]
        );
        let ops = strings(&["ops"]);
        assert_eq!(decide(&[p], &scopes, &facts(&ops, &[])).granted, scopes);
        // A second policy listing the scope without rules grants it.
        let write_only = strings(&["write"]);
        let open = PolicyView {
            id: "p2",
            scopes: &write_only,
            rules: &[],
        };
        let d = decide(&[p, open], &scopes, &facts(&eng, &[]));
        assert_eq!(d.granted, scopes);
        assert!(d.withheld.is_empty());
        // A scope no policy lists is neither granted nor reported.
        let d = decide(&[open], &scopes, &facts(&eng, &[]));
        assert_eq!(d.granted, strings(&["write"]));
        assert!(d.withheld.is_empty());
    }

    #[test]
    fn asserted_groups_read_arrays_and_strings() {
        let v = serde_json::json!({ "groups": ["a", 1, "b"] });
        assert_eq!(asserted_groups(&v), strings(&["a", "b"]));
        let v = serde_json::json!({ "groups": "a" });
        assert_eq!(asserted_groups(&v), strings(&["a"]));
        assert!(asserted_groups(&serde_json::json!({ "groups": {} })).is_empty());
        let many: Vec<String> = (0..2000).map(|i| format!("g{i}")).collect();
        let v = serde_json::json!({ "groups": many });
        assert_eq!(asserted_groups(&v).len(), MAX_ASSERTED_GROUPS);
    }

    #[test]
    fn rules_are_validated() {
        let scopes = strings(&["read", "write"]);
        let ok = Rule {
            scopes: strings(&["write"]),
            groups: strings(&["ops"]),
            max_auth_age: Some(300),
            acr_values: strings(&["urn:mfa"]),
            ..Rule::default()
        };
        assert_eq!(validate(std::slice::from_ref(&ok), &scopes), Ok(()));
        let with = |f: &dyn Fn(&mut Rule)| {
            let mut r = ok.clone();
            f(&mut r);
            validate(&[r], &scopes).unwrap_err()
        };
        assert_eq!(with(&|r| *r = Rule::default()), RuleError::Empty(0));
        assert_eq!(
            with(&|r| r.scopes = strings(&["admin"])),
            RuleError::ScopeNotInPolicy(0, "admin".into())
        );
        assert_eq!(
            with(&|r| r.groups = strings(&["a b"])),
            RuleError::BadValue(0, "groups")
        );
        assert_eq!(
            with(&|r| r.acr_values = vec![String::new()]),
            RuleError::BadValue(0, "acr_values")
        );
        assert_eq!(with(&|r| r.max_auth_age = Some(-1)), RuleError::AuthAge(0));
        assert_eq!(
            with(&|r| r.groups = (0..65).map(|i| format!("g{i}")).collect()),
            RuleError::ListTooLong(0, "groups")
        );
        assert_eq!(
            with(&|r| {
                r.groups.clear();
                r.groups_from = GroupsFrom::Identity;
            }),
            RuleError::GroupsFromWithoutGroups(0)
        );
        let many = vec![ok.clone(); MAX_RULES + 1];
        assert_eq!(validate(&many, &scopes), Err(RuleError::TooMany));
        let parsed: Result<Rule, _> = serde_json::from_value(serde_json::json!({
            "groups": ["ops"], "groups_from": "token"
        }));
        assert!(parsed.is_err(), "unknown groups_from refused");
        let parsed: Result<Rule, _> =
            serde_json::from_value(serde_json::json!({ "group": ["ops"] }));
        assert!(parsed.is_err(), "unknown members refused");
    }
}
