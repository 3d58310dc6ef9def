//! Fuzz target: redirect URIs (RFC 6749 §3.1.2, RFC 8252 §7, OAuth 2.1 §2.3.1 exact
//! matching): the registration check, the private-use scheme rule, the dangerous-scheme
//! check and matching a requested URI against registered ones.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::redirect;
use portcullis_fuzz::{split, text};

fuzz_target!(|data: &[u8]| {
    let (registered, requested) = split(data, b'\n');
    let (registered, requested) = (text(registered), text(requested));
    for app in ["web", "native"] {
        if redirect::validate_for_registration(&registered, app).is_ok() {
            // Whatever registration accepts is never a dangerous scheme and matches itself.
            assert!(!redirect::is_dangerous_scheme(&registered));
            assert!(redirect::matches(
                std::slice::from_ref(&registered),
                &registered
            ));
        }
    }
    let _ = redirect::check_private_use_scheme(&registered, &["cursor".to_string()]);
    let list = vec![registered.clone()];
    if redirect::matches(&list, &requested) {
        assert!(!redirect::is_dangerous_scheme(&requested));
        assert!(!requested.is_empty());
    }
});
