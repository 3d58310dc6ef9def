//! Test hosts other than the native binary: each starts a built edge artifact in a local
//! runtime and hands the suites a [`crate::scenarios::Target`].

pub mod cimd;
pub mod process;
pub mod spin;
pub mod worker;
