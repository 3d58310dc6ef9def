//! Shared test suites.
