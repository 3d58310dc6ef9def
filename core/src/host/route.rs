//! The route template of a request path (`/admin/clients/{id}`), the bounded `http.route`
//! of the OpenTelemetry HTTP server conventions: request metrics and access logs are labelled
//! with it, never with the raw path (which can hold ids and would grow without bound).

use crate::paths;

/// Fixed public paths, served as they are.
const FIXED: &[&str] = &[
    "/",
    "/health",
    paths::AUTHORIZE,
    paths::LOGIN,
    paths::CONSENT,
    paths::LOGOUT,
    paths::TOKEN,
    paths::REGISTER,
    paths::REVOKE,
    paths::INTROSPECT,
    paths::CONNECTIONS,
    paths::JWKS,
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-protected-resource",
];

/// The template of `path`: fixed paths as they are, path-inserted well-known documents and
/// vault connect pages with their variable part as `{…}`, admin paths by collection, and
/// anything else `other`.
pub fn template(path: &str) -> &'static str {
    if let Some(fixed) = FIXED.iter().find(|p| **p == path) {
        return fixed;
    }
    let prefixed = [
        (
            "/.well-known/oauth-authorization-server/",
            "/.well-known/oauth-authorization-server/{issuer_path}",
        ),
        (
            "/.well-known/openid-configuration/",
            "/.well-known/openid-configuration/{issuer_path}",
        ),
        (
            "/.well-known/oauth-protected-resource/",
            "/.well-known/oauth-protected-resource/{resource_path}",
        ),
        ("/connect/", "/connect/{provider}"),
        ("/admin/console/", "/admin/console/{page}"),
    ];
    if let Some((_, t)) = prefixed.iter().find(|(p, _)| path.starts_with(p)) {
        if *t == "/connect/{provider}" && path.ends_with("/callback") {
            return "/connect/{provider}/callback";
        }
        return t;
    }
    admin(path).unwrap_or("other")
}

/// `/admin/{collection}` and `/admin/{collection}/{id}[/{action}]`, for the collections the
/// admin API has.
fn admin(path: &str) -> Option<&'static str> {
    const COLLECTIONS: &[(&str, &str, &str)] = &[
        ("users", "/admin/users", "/admin/users/{name}"),
        ("clients", "/admin/clients", "/admin/clients/{id}"),
        ("resources", "/admin/resources", "/admin/resources/{id}"),
        ("audit", "/admin/audit", "/admin/audit/{view}"),
        ("tokens", "/admin/tokens", "/admin/tokens/{jti}"),
        ("keys", "/admin/keys", "/admin/keys/{action}"),
        ("idps", "/admin/idps", "/admin/idps/{id}"),
        (
            "idp-policies",
            "/admin/idp-policies",
            "/admin/idp-policies/{id}",
        ),
        ("providers", "/admin/providers", "/admin/providers/{id}"),
        (
            "connections",
            "/admin/connections",
            "/admin/connections/{id}",
        ),
        ("connectors", "/admin/connectors", "/admin/connectors/{id}"),
        ("metrics", "/admin/metrics", "/admin/metrics"),
        ("rekey", "/admin/rekey", "/admin/rekey"),
        ("console", "/admin/console", "/admin/console/{page}"),
    ];
    let rest = path.strip_prefix("/admin/")?;
    let mut parts = rest.splitn(2, '/');
    let first = parts.next()?;
    let (_, list, item) = COLLECTIONS.iter().find(|(c, _, _)| *c == first)?;
    Some(match parts.next() {
        None | Some("") => list,
        Some(_) => item,
    })
}

#[cfg(test)]
mod tests {
    use super::template;

    #[test]
    fn templates_are_bounded() {
        for (path, want) in [
            ("/oauth/token", "/oauth/token"),
            ("/health", "/health"),
            (
                "/.well-known/oauth-protected-resource/mcp/x",
                "/.well-known/oauth-protected-resource/{resource_path}",
            ),
            ("/connect/github", "/connect/{provider}"),
            ("/connect/github/callback", "/connect/{provider}/callback"),
            ("/admin/clients", "/admin/clients"),
            ("/admin/clients/abc/suspend", "/admin/clients/{id}"),
            ("/admin/metrics", "/admin/metrics"),
            ("/admin/console/clients", "/admin/console/{page}"),
            ("/admin/nope/1", "other"),
            ("/wp-login.php", "other"),
            ("/oauth/token/../x", "other"),
        ] {
            assert_eq!(template(path), want, "{path}");
        }
    }
}
