//! Flow tests for the endpoints, driven through `Portcullis::handle` with a fixed clock, a
//! seeded RNG and the real schema on in-memory SQLite. Named after SECURITY-CHECKLIST IDs.
//!
//! Every flow test has moved into the scenario suite (`tests/src/scenarios/`) or next to the
//! code it tests (issue 10); this module and its harness, which has no users left, go next.

#[allow(dead_code)]
mod harness;
