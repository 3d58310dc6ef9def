//! The vault's upstream OAuth provider in the scenarios: a second Portcullis (`portcullis
//! serve` on its own SQLite file), started once per test process next to whichever host is
//! under test. It issues short-lived access tokens ([`ACCESS_TTL`]) and rotating refresh
//! tokens, so expiry, refresh and rotation happen within a scenario; its public URL uses the
//! name `localhost` while the hosts under test use `127.0.0.1`, so a browser keeps the two
//! servers' cookies apart as it would for two sites.

use std::time::Duration;

use tokio::sync::OnceCell;

use crate::hosts::native::{self, Server, Spec};
use crate::on_exit::{temp_dir, OnExit};
use crate::scenarios::Target;

/// The upstream's access token lifetime, seconds: the vault refreshes such a token after half
/// of it, and it has expired [`ACCESS_TTL`] + 1 seconds after it was issued.
pub const ACCESS_TTL: i64 = 5;

/// The running upstream, never dropped: its exit guards stop it when the test process ends.
static UPSTREAM: OnceCell<(Target, Server, OnExit)> = OnceCell::const_new();

/// The upstream server, started on first use.
pub async fn upstream() -> &'static Target {
    let (target, _, _) = UPSTREAM
        .get_or_init(|| async {
            let (dir, dir_guard) = temp_dir("upstream");
            let db = format!("sqlite://{}", dir.join("upstream.db").display());
            let server = native::start_retrying(|| {
                let mut spec =
                    Spec::new(&db).with("PORTCULLIS_ACCESS_TOKEN_TTL", &ACCESS_TTL.to_string());
                spec.issuer = format!("http://localhost:{}", spec.port);
                spec
            })
            .await;
            let target = Target::new(
                &server.spec.issuer,
                &server.spec.admin_url(),
                &server.spec.admin_key,
            );
            (target, server, dir_guard)
        })
        .await;
    target
}

/// Lets `secs` seconds pass for the host under test: its clock moves when the test holds it,
/// otherwise the test waits (the upstream always runs on the real clock).
pub async fn pass(t: &Target, secs: i64) {
    if t.clock.is_some() {
        t.advance_clock(secs);
    } else {
        tokio::time::sleep(Duration::from_secs(secs.unsigned_abs())).await;
    }
}
