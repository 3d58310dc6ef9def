//! Test hosts other than the native binary: each starts a built edge artifact in a local
//! runtime, or the core in this process, and hands the suites a
//! [`crate::scenarios::Target`]; [`suite`] is the one scenario runner over them.

pub mod cimd;
pub mod in_process;
pub mod native;
pub mod process;
pub mod spin;
pub mod suite;
pub mod worker;
