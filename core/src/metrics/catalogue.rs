//! The metric catalogue (docs/metrics.md): which audit events count towards which
//! Prometheus counter, and under which labels. Pure: tallies of audit rows in, samples out.
//! Label values come from a closed set (error codes, grant types, DPoP reasons, outcomes) or
//! from operator configuration (vault provider ids); anything else is counted as `other`, and
//! no client id or user is ever a label.

use crate::store::repo::metrics::Tally;

/// One counter of the catalogue.
#[derive(Debug, PartialEq, Eq)]
pub struct Counter {
    /// The metric name (`portcullis_tokens_issued_total`).
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// The label names, in order.
    pub labels: &'static [&'static str],
}

/// Access tokens issued at the token endpoint, by grant type.
pub const TOKENS_ISSUED: Counter = Counter {
    name: "portcullis_tokens_issued_total",
    help: "Access tokens issued by the token endpoint, by grant type.",
    labels: &["grant_type"],
};
/// Token endpoint errors, by OAuth error code.
pub const TOKEN_ERRORS: Counter = Counter {
    name: "portcullis_token_errors_total",
    help: "Token requests refused, by OAuth error code.",
    labels: &["error"],
};
/// Sign-ins, by outcome.
pub const LOGINS: Counter = Counter {
    name: "portcullis_logins_total",
    help: "Sign-in attempts on the login page, by outcome.",
    labels: &["outcome"],
};
/// Refresh token reuse detected (the grant was revoked).
pub const REFRESH_REUSE: Counter = Counter {
    name: "portcullis_refresh_reuse_detected_total",
    help: "Rotated refresh tokens presented again (the whole grant is revoked).",
    labels: &[],
};
/// DPoP proofs refused, by reason.
pub const DPOP_REJECTIONS: Counter = Counter {
    name: "portcullis_dpop_rejections_total",
    help: "DPoP proofs refused, by reason.",
    labels: &["reason"],
};
/// Client ID metadata document fetches, by outcome.
pub const CIMD_FETCHES: Counter = Counter {
    name: "portcullis_cimd_fetches_total",
    help: "Client ID metadata documents fetched (cache misses), by outcome.",
    labels: &["outcome"],
};
/// Dynamic client registrations, by outcome.
pub const REGISTRATIONS: Counter = Counter {
    name: "portcullis_registrations_total",
    help: "Dynamic client registrations (RFC 7591), by outcome.",
    labels: &["outcome"],
};
/// Token vault vends, by provider and outcome.
pub const VAULT_VENDS: Counter = Counter {
    name: "portcullis_vault_vends_total",
    help: "Upstream tokens handed to MCP servers by the token vault, by provider and outcome.",
    labels: &["provider", "outcome"],
};
/// Token vault refreshes at the upstream, by provider and outcome.
pub const VAULT_REFRESHES: Counter = Counter {
    name: "portcullis_vault_upstream_refreshes_total",
    help: "Upstream refresh token grants made by the token vault, by provider and outcome.",
    labels: &["provider", "outcome"],
};
/// Every audit event, by action and outcome.
pub const AUDIT_EVENTS: Counter = Counter {
    name: "portcullis_audit_events_total",
    help: "Audit events written, by action and outcome.",
    labels: &["action", "outcome"],
};

/// The catalogue, in the order it is rendered.
pub const CATALOGUE: &[&Counter] = &[
    &TOKENS_ISSUED,
    &TOKEN_ERRORS,
    &LOGINS,
    &REFRESH_REUSE,
    &DPOP_REJECTIONS,
    &CIMD_FETCHES,
    &REGISTRATIONS,
    &VAULT_VENDS,
    &VAULT_REFRESHES,
    &AUDIT_EVENTS,
];

/// One counter value with its label values (in [`Counter::labels`] order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Which counter.
    pub counter: &'static Counter,
    /// Label values.
    pub labels: Vec<String>,
    /// The count.
    pub value: i64,
}

/// A label value from the audit log, kept only when it has the shape of the closed sets it
/// comes from (lower-case codes, grant type URNs, provider ids); anything else is `other`.
pub fn label_value(v: &str) -> String {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b':')
        });
    if ok {
        v.to_owned()
    } else {
        "other".to_owned()
    }
}

/// The samples one tally of audit rows counts towards: always [`AUDIT_EVENTS`], and the
/// counter of its action, if it has one. `providers` are the vault providers configured
/// now: a vend naming any other provider is counted under `other`.
pub fn samples(t: &Tally, providers: &[String]) -> Vec<Sample> {
    let sample = |counter: &'static Counter, labels: Vec<String>| Sample {
        counter,
        labels,
        value: t.count,
    };
    let outcome = label_value(&t.outcome);
    let provider = || {
        if providers.contains(&t.label) {
            label_value(&t.label)
        } else {
            "other".to_owned()
        }
    };
    let mut out = vec![sample(
        &AUDIT_EVENTS,
        vec![label_value(&t.action), outcome.clone()],
    )];
    let specific = match t.action.as_str() {
        "token.issued" => Some(sample(&TOKENS_ISSUED, vec![label_value(&t.label)])),
        "token.denied" => Some(sample(&TOKEN_ERRORS, vec![label_value(&t.reason)])),
        "login" => Some(sample(&LOGINS, vec![outcome])),
        "refresh.reuse_detected" => Some(sample(&REFRESH_REUSE, vec![])),
        "dpop.rejected" => Some(sample(&DPOP_REJECTIONS, vec![label_value(&t.reason)])),
        "cimd.fetch" => Some(sample(&CIMD_FETCHES, vec![outcome])),
        "client.registered" => Some(sample(&REGISTRATIONS, vec![outcome])),
        "vault.vend" => Some(sample(&VAULT_VENDS, vec![provider(), outcome])),
        "vault.refresh" => Some(sample(&VAULT_REFRESHES, vec![provider(), outcome])),
        _ => None,
    };
    out.extend(specific);
    out
}

/// Every sample of `tallies`, with equal label sets summed (several tallies can map to one
/// sample, such as two reasons of one login outcome), sorted by counter and labels.
pub fn aggregate(tallies: &[Tally], providers: &[String]) -> Vec<Sample> {
    let mut sums: std::collections::BTreeMap<(&'static str, Vec<String>), Sample> =
        std::collections::BTreeMap::new();
    for s in tallies.iter().flat_map(|t| samples(t, providers)) {
        sums.entry((s.counter.name, s.labels.clone()))
            .and_modify(|e| e.value += s.value)
            .or_insert(s);
    }
    sums.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(action: &str, outcome: &str, reason: &str, label: &str, count: i64) -> Tally {
        Tally {
            action: action.into(),
            outcome: outcome.into(),
            reason: reason.into(),
            label: label.into(),
            count,
        }
    }

    fn value(samples: &[Sample], name: &str, labels: &[&str]) -> Option<i64> {
        samples
            .iter()
            .find(|s| s.counter.name == name && s.labels == labels)
            .map(|s| s.value)
    }

    #[test]
    fn tokens_are_counted_by_grant_type_and_errors_by_code() {
        let s = aggregate(
            &[
                t("token.issued", "success", "", "client_credentials", 3),
                t("token.issued", "success", "", "authorization_code", 2),
                t(
                    "token.denied",
                    "failure",
                    "invalid_grant",
                    "refresh_token",
                    1,
                ),
                t(
                    "token.denied",
                    "failure",
                    "invalid_grant",
                    "authorization_code",
                    4,
                ),
            ],
            &[],
        );
        let issued = TOKENS_ISSUED.name;
        assert_eq!(value(&s, issued, &["client_credentials"]), Some(3));
        assert_eq!(value(&s, issued, &["authorization_code"]), Some(2));
        // The grant type of a refused request is not a label: anyone can send any string.
        assert_eq!(value(&s, TOKEN_ERRORS.name, &["invalid_grant"]), Some(5));
        assert_eq!(
            value(&s, AUDIT_EVENTS.name, &["token.denied", "failure"]),
            Some(5)
        );
    }

    #[test]
    fn logins_sum_over_reasons_and_reuse_has_no_labels() {
        let s = aggregate(
            &[
                t("login", "failure", "invalid_credentials", "", 2),
                t("login", "failure", "throttled", "", 1),
                t("login", "success", "", "", 7),
                t("refresh.reuse_detected", "failure", "", "", 1),
            ],
            &[],
        );
        assert_eq!(value(&s, LOGINS.name, &["failure"]), Some(3));
        assert_eq!(value(&s, LOGINS.name, &["success"]), Some(7));
        assert_eq!(value(&s, REFRESH_REUSE.name, &[]), Some(1));
    }

    #[test]
    fn label_values_outside_the_closed_shapes_become_other() {
        assert_eq!(
            label_value("urn:ietf:params:oauth:grant-type:jwt-bearer"),
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        );
        assert_eq!(label_value("github"), "github");
        for bad in ["", "Robert'); DROP", "a b", "x\"y", "é", &"a".repeat(65)] {
            assert_eq!(label_value(bad), "other", "{bad}");
        }
        let known = ["github".to_owned()];
        let s = aggregate(
            &[
                t("vault.vend", "success", "", "github", 2),
                t("vault.vend", "failure", "", "made-up-by-a-caller", 1),
                t("vault.vend", "failure", "", "<script>", 1),
            ],
            &known,
        );
        assert_eq!(value(&s, VAULT_VENDS.name, &["github", "success"]), Some(2));
        assert_eq!(value(&s, VAULT_VENDS.name, &["other", "failure"]), Some(2));
    }
}
