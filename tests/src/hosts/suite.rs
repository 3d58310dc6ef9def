//! The one scenario runner: a small trait every host implements ([`ScenarioHost`]: start a
//! host with extra settings, get a [`Target`] and a guard), the per-test-binary host cells
//! ([`Suite`]) and the macro [`scenario_runner!`](crate::scenario_runner) that turns the
//! lists of `tests/tests/common/scenario_lists.rs` into one `#[tokio::test]` per scenario.
//!
//! A runner (`tests/tests/native.rs`, `in_process.rs`, `worker.rs`, ...) implements the trait
//! for its host, invokes the macro and includes the lists:
//!
//! ```ignore
//! struct NativeSqlite;
//! impl ScenarioHost for NativeSqlite { /* ... */ }
//! portcullis_tests::scenario_runner!(NativeSqlite);
//! include!("common/scenario_lists.rs");
//! ```

use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::scenarios::Target;

/// The lists of `scenario_lists.rs`: which host a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// One host shared by every scenario of the list (when the host shares at all).
    Shared,
    /// One shared host requiring DPoP nonces ([`NONCE_REQUIRED`]).
    NonceRequired,
    /// One shared host with low storage caps (`scenarios::bounded::SETTINGS`).
    Capped,
    /// A host of its own per scenario (per-IP throttles, server-wide state).
    Isolated,
    /// A host of its own per scenario whose clock the scenario moves
    /// ([`Target::advance_clock`]); only hosts with [`ScenarioHost::CLOCKED`] run these.
    Clocked,
}

/// The settings of the nonce-requiring host (`scenarios::dpop::d4_*`).
pub const NONCE_REQUIRED: &[(&str, &str)] = &[("dpop__require_nonce", "true")];

impl List {
    /// The extra settings (core names) of this list's hosts.
    pub fn settings(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::NonceRequired => NONCE_REQUIRED,
            Self::Capped => crate::scenarios::bounded::SETTINGS,
            Self::Shared | Self::Isolated | Self::Clocked => &[],
        }
    }
}

/// A host the scenario suite runs on.
#[async_trait]
pub trait ScenarioHost: 'static {
    /// Keeps a started host running; dropping it stops the host (and removes its files).
    type Guard: Send + Sync + 'static;
    /// Whether the scenarios of a shared list share one host per test binary. A host whose
    /// clock is frozen says no: each scenario then gets a host of its own, whose clock starts
    /// when the scenario does.
    const SHARES: bool = true;
    /// Whether [`Target::clock`] is set, so that the `clocked!` list runs on this host.
    const CLOCKED: bool = false;
    /// Starts a host with the suites' defaults plus `settings` (core setting names such as
    /// `dpop__require_nonce`; each host maps them to its own form) and waits until it answers;
    /// `None` when this host cannot run here (artifacts not built: the scenario is skipped,
    /// with a message, unless the host's `TEST_REQUIRE_*` says otherwise).
    async fn start(settings: &[(&str, &str)]) -> Option<(Target, Self::Guard)>;
}

/// A setting's `PORTCULLIS_*` environment name (native environment, Worker vars):
/// `dpop__require_nonce` -> `PORTCULLIS_DPOP__REQUIRE_NONCE`.
pub fn env_name(setting: &str) -> String {
    format!("PORTCULLIS_{}", setting.to_ascii_uppercase())
}

/// The shared hosts of one test binary, started on first use and kept until the process
/// exits (their guards stop them then).
pub struct Suite<H: ScenarioHost> {
    shared: OnceCell<Option<(Target, H::Guard)>>,
    nonce_required: OnceCell<Option<(Target, H::Guard)>>,
    capped: OnceCell<Option<(Target, H::Guard)>>,
}

impl<H: ScenarioHost> Default for Suite<H> {
    fn default() -> Self {
        Self::new()
    }
}

/// The host a scenario runs on: a shared one, or its own (stopped when this is dropped).
pub struct Lease<G> {
    target: Target,
    _own: Option<G>,
}

impl<G> Lease<G> {
    /// The host's target.
    pub fn target(&self) -> &Target {
        &self.target
    }
}

impl<H: ScenarioHost> Suite<H> {
    /// No host started yet.
    pub const fn new() -> Self {
        Self {
            shared: OnceCell::const_new(),
            nonce_required: OnceCell::const_new(),
            capped: OnceCell::const_new(),
        }
    }

    /// The host for a scenario of `list`; `None` when the host cannot run here (skip).
    /// Panics for a `clocked!` scenario on a host without a controlled clock (the runner
    /// macro generates none there).
    pub async fn host(&'static self, list: List) -> Option<Lease<H::Guard>> {
        self.host_with(list, &[]).await
    }

    /// [`Self::host`] for a scenario that needs `extra` settings (core names) besides its
    /// list's: such a scenario always gets a host of its own.
    pub async fn host_with(
        &'static self,
        list: List,
        extra: &[(&str, &str)],
    ) -> Option<Lease<H::Guard>> {
        assert!(
            list != List::Clocked || H::CLOCKED,
            "a clocked scenario needs a host whose clock the test controls"
        );
        let cell = match list {
            _ if !H::SHARES || !extra.is_empty() => None,
            List::Shared => Some(&self.shared),
            List::NonceRequired => Some(&self.nonce_required),
            List::Capped => Some(&self.capped),
            List::Isolated | List::Clocked => None,
        };
        if let Some(cell) = cell {
            let started = cell.get_or_init(|| H::start(list.settings())).await;
            return started.as_ref().map(|(target, _)| Lease {
                target: target.clone(),
                _own: None,
            });
        }
        let mut settings = list.settings().to_vec();
        settings.extend_from_slice(extra);
        H::start(&settings).await.map(|(target, guard)| Lease {
            target,
            _own: Some(guard),
        })
    }
}

/// Defines, for the host type `$host` (a [`ScenarioHost`]), the list macros of
/// `tests/tests/common/scenario_lists.rs` (`shared!`, `nonce_required!`, `capped!`,
/// `isolated!`, `waits!`, `clocked!`), each generating one `#[tokio::test]` per scenario on the
/// host [`Suite::host`] gives for that list (`waits!`: as `isolated!`, in a module that sorts
/// first). An entry `module::name with module::SETTINGS` (a
/// constant of a scenario module) runs on a host of its own with those extra settings (core
/// names). `scenario_runner!(Host, clocked)`
/// is for hosts with a controlled clock; without `clocked`, `clocked!` generates nothing.
/// Include the lists after it.
#[macro_export]
macro_rules! scenario_runner {
    ($host:ty) => {
        $crate::scenario_runner!(@define ($) $host, without_clock);
    };
    ($host:ty, clocked) => {
        $crate::scenario_runner!(@define ($) $host, clocked);
    };
    (@define ($d:tt) $host:ty, $clock:ident) => {
        static SUITE: $crate::hosts::suite::Suite<$host> = $crate::hosts::suite::Suite::new();

        macro_rules! scenario_tests {
            (
                $list:ident:
                $d($module:ident :: $name:ident $d(with $smodule:ident :: $settings:ident)?),*
                $d(,)?
            ) => {$d(
                #[tokio::test]
                async fn $name() {
                    let list = $crate::hosts::suite::List::$list;
                    let extra: &[(&str, &str)] = &[];
                    $d(let extra: &[(&str, &str)] = $crate::scenarios::$smodule::$settings;)?
                    let Some(host) = SUITE.host_with(list, extra).await else { return };
                    $crate::scenarios::$module::$name(host.target()).await;
                }
            )*};
        }
        macro_rules! shared {
            ($d($d t:tt)*) => { scenario_tests!(Shared: $d($d t)*); };
        }
        macro_rules! nonce_required {
            ($d($d t:tt)*) => { scenario_tests!(NonceRequired: $d($d t)*); };
        }
        macro_rules! capped {
            ($d($d t:tt)*) => { scenario_tests!(Capped: $d($d t)*); };
        }
        macro_rules! isolated {
            ($d($d t:tt)*) => { scenario_tests!(Isolated: $d($d t)*); };
        }
        macro_rules! waits {
            ($d($d t:tt)*) => {
                /// Scenarios that wait out real time on a host whose clock the test does not
                /// hold. libtest starts a binary's tests in name order and `_` sorts before
                /// letters, so these start first and their waiting overlaps the other
                /// scenarios; last, they left the suite's threads idle at its end.
                mod _waits_on_the_real_clock {
                    use super::*;
                    scenario_tests!(Isolated: $d($d t)*);
                }
            };
        }
        $crate::scenario_runner!(@clocked ($) $clock);
    };
    (@clocked ($d:tt) clocked) => {
        macro_rules! clocked {
            ($d($d t:tt)*) => { scenario_tests!(Clocked: $d($d t)*); };
        }
    };
    (@clocked ($d:tt) without_clock) => {
        macro_rules! clocked {
            ($d($d t:tt)*) => {};
        }
    };
}
