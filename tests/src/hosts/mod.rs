//! Test hosts other than the native binary: each starts a built edge artifact in a local
//! runtime, or the core in this process, and hands the suites a
//! [`crate::scenarios::Target`]; [`suite`] is the one scenario runner over them.

pub mod cimd;
pub mod in_process;
pub mod miniflare;
pub mod native;
pub mod process;
pub mod spin;
pub mod suite;
pub mod worker;

/// The argon2id cost at which the test hosts hash new passwords (`login.password_memory_kib`,
/// `login.password_iterations`, as Spin and in-process settings): argon2's floor. At the
/// default cost the hashes took about a third of the suites' CPU (the Worker suite: 174
/// CPU-seconds, 116 at this cost). The suite against the Docker image (`tests/image.rs`), the
/// Node client tests and the core's unit tests keep the default cost.
pub const PASSWORD_COST: [(&str, &str); 2] = [
    ("login__password_memory_kib", "8"),
    ("login__password_iterations", "1"),
];

/// [`PASSWORD_COST`] as `PORTCULLIS_*` variables (the native and Worker hosts).
pub fn password_cost_vars() -> impl Iterator<Item = (String, String)> {
    PASSWORD_COST.iter().map(|(k, v)| {
        (
            format!("PORTCULLIS_{}", k.to_ascii_uppercase()),
            (*v).to_owned(),
        )
    })
}
