//! The admin API key check, shared by the admin listener, `admin_only` client registration
//! and the storage bridge. It lives below the routers so none of those need to import
//! [`crate::admin`].

use http::header;

use crate::crypto::{ct_eq, sha256};

/// Whether the request carries exactly one `Authorization: Bearer <key>` header with `key`.
/// Both sides are hashed first, so the comparison is constant time and independent of the
/// key's length (used by the admin API and by `admin_only` client registration).
pub fn presents_key(headers: &http::HeaderMap, key: &crate::secret::Secret) -> bool {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, t)| ct_eq(&sha256(t.trim()), &sha256(key.expose())))
}
