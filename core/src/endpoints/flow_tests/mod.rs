//! Flow tests for the endpoints, driven through `Portcullis::handle` with a fixed clock, a
//! seeded RNG and the real schema on in-memory SQLite. Named after SECURITY-CHECKLIST IDs.

mod dpop;
mod exchange;
mod harness;
mod jwt_bearer;
mod private_key_jwt;
