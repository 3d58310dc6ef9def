//! Flow tests for the endpoints, driven through `Portcullis::handle` with a fixed clock, a
//! seeded RNG and the real schema on in-memory SQLite. Named after SECURITY-CHECKLIST IDs.

mod code;
mod discovery;
mod harness;
mod refresh;
mod revoke;
mod rotation;
