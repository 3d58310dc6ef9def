//! SQLite when its disk fills up or is read-only (issue 16, "Staying power"): `portcullis
//! serve` on a SQLite file in a small tmpfs of this test's own.
//!
//! Disk full: token and refresh requests while the filesystem is filled to the last byte,
//! then emptied:
//! - every answer during the fault is 200 or 503 `temporarily_unavailable`: never another
//!   error, never a panic, never `invalid_grant` for a refresh token that was live;
//! - reads that need no write still work (`/health`, the JWK Set);
//! - once space returns, the server recovers by itself: tokens are issued and the refresh
//!   chain still refreshes (F7).
//!
//! Read-only: the volume remounted read-only while the server is down: `serve` refuses to
//! start with an error that says so; writable again, it starts and serves.
//!
//! Both: nothing stored is lost and the file passes `PRAGMA integrity_check`.
//!
//! Mounting a tmpfs needs root (CAP_SYS_ADMIN); without it the test is skipped unless
//! `TEST_REQUIRE_DISK_FAULTS` is set (`scripts/test` sets it when it runs as root).
//! docs/operations.md "Staying power".

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{OnExit, Server, Spec};
use portcullis_core::store::sqlite::SqliteStore;
use portcullis_core::store::SqlStore;
use portcullis_tests::scenarios::support::*;
use portcullis_tests::scenarios::Target;
use serde_json::Value;

/// Requests sent while the fault lasts (each kind).
const DURING: usize = 40;

/// A tmpfs of this test's own, unmounted and then removed at exit.
struct Tmpfs {
    dir: PathBuf,
    _cleanup: OnExit,
}

impl Tmpfs {
    fn mount(tag: &str, megabytes: u32) -> Option<Self> {
        let (dir, rm) = common::temp_dir(tag);
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(
                std::env::var("TEST_REQUIRE_DISK_FAULTS").is_err(),
                "TEST_REQUIRE_DISK_FAULTS is set but a tmpfs cannot be mounted (needs root)"
            );
            eprintln!("skipped: cannot mount a tmpfs (needs root)");
            return None;
        }
        // One guard, in order: a removal running beside the unmount found the mount point busy
        // and left it behind in /tmp.
        rm.cancel();
        let cleanup = OnExit::run(&[
            "sh",
            "-c",
            r#"umount -l "$1"; rm -rf "$1""#,
            "portcullis-tmpfs",
            &dir.to_string_lossy(),
        ]);
        Some(Self {
            dir,
            _cleanup: cleanup,
        })
    }

    fn remount(&self, opts: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.dir)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "mount -o remount,{opts}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn database_url(&self) -> String {
        format!("sqlite://{}", self.db().display())
    }

    fn db(&self) -> PathBuf {
        self.dir.join("portcullis.db")
    }
}

/// Fills the filesystem of `dir` to the last byte; returns the filler file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("creating the filler");
    let chunk = vec![0xA5u8; 64 * 1024];
    loop {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    // The last partial chunk, byte by byte in small pieces.
    for size in [4096usize, 512, 1] {
        while f.write_all(&chunk[..size]).is_ok() {}
    }
    path
}

/// A token request: its status and JSON body.
async fn post_token(t: &Target, form: &[(&str, &str)], auth: Auth<'_>) -> (u16, Value) {
    let r = token(t, form, auth).await;
    let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

fn fault_answer_ok(status: u16, body: &Value) -> bool {
    status == 200 || (status == 503 && body["error"] == "temporarily_unavailable")
}

/// What the load needs: a refresh chain and a machine client.
struct Load {
    fx: Fixture,
    chain: String,
    cc: ClientCreds,
}

impl Load {
    async fn new(t: &Target) -> Self {
        let fx = Fixture::public(t).await;
        let chain = fx.tokens(t).await.refresh.expect("a refresh token");
        let cc = new_client(t, "client_secret_basic", &["client_credentials"]).await;
        Self { fx, chain, cc }
    }

    async fn client_credentials(&self, t: &Target) -> (u16, Value) {
        let form = [
            ("grant_type", "client_credentials"),
            ("resource", self.fx.resource.as_str()),
        ];
        let secret = self.cc.secret.as_deref().expect("a secret");
        post_token(t, &form, Auth::Basic(&self.cc.id, secret)).await
    }

    /// Refreshes the chain; a 200 moves it on.
    async fn refresh(&mut self, t: &Target) -> (u16, Value) {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", self.chain.as_str()),
        ];
        let (status, v) = post_token(t, &form, Auth::Public(&self.fx.client.id)).await;
        if status == 200 {
            self.chain = v["refresh_token"].as_str().expect("a refresh token").into();
        }
        (status, v)
    }

    /// Sends [`DURING`] requests of each kind during a fault: only 200 or 503; returns how
    /// many of each kind (client credentials, refresh) were refused.
    async fn during_fault(&mut self, t: &Target) -> [usize; 2] {
        let mut refused = [0, 0];
        for _ in 0..DURING {
            for (i, what, (status, v)) in [
                (0, "client_credentials", self.client_credentials(t).await),
                (1, "refresh", self.refresh(t).await),
            ] {
                assert!(
                    fault_answer_ok(status, &v),
                    "{what} during the fault: {status} {v}"
                );
                refused[i] += usize::from(status == 503);
            }
        }
        for path in ["/health", "/.well-known/jwks.json"] {
            let r = send(http().get(t.url(path))).await;
            assert_eq!(r.status, 200, "{path} during the fault: {}", r.body);
        }
        refused
    }

    /// After the fault: both kinds succeed again within 30 s, without a restart.
    async fn recovers(&mut self, t: &Target, server: &Server) -> Duration {
        let since = Instant::now();
        loop {
            let (a, _) = self.client_credentials(t).await;
            let (b, v) = self.refresh(t).await;
            if a == 200 && b == 200 {
                return since.elapsed();
            }
            assert!(
                fault_answer_ok(b, &v),
                "refresh after the fault: {b} {v}\n{}",
                server.log_text()
            );
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "no recovery within 30 s of the fault's end\n{}",
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Stops the server and checks the file: integrity, and the fixture's rows all there.
async fn check_file(server: Server, fs: &Tmpfs, load: &Load) {
    let (_, status, log) = server.stop_with("TERM");
    assert!(status.success(), "the server did not exit cleanly:\n{log}");
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    let store = SqliteStore::open(&fs.database_url()).expect("reopening the file");
    let rows = store
        .query("PRAGMA integrity_check", &[])
        .await
        .expect("integrity_check");
    assert_eq!(rows[0].text(0).unwrap(), "ok", "the SQLite file is damaged");
    for (table, key, id) in [
        ("clients", "client_id", load.cc.id.as_str()),
        ("clients", "client_id", load.fx.client.id.as_str()),
        ("resources", "uri", load.fx.resource.as_str()),
    ] {
        let found = store
            .query(
                &format!("SELECT 1 FROM {table} WHERE {key} = ?"),
                &[id.into()],
            )
            .await
            .expect("reading the file");
        assert_eq!(found.len(), 1, "{table} {id} was lost");
    }
}

async fn start(fs: &Tmpfs) -> Server {
    let url = fs.database_url();
    common::start_retrying(|| {
        Spec::new(&url).with("PORTCULLIS_MACHINE_CLIENTS__RATE_LIMIT_PER_MINUTE", "0")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_gives_503_and_recovers_without_loss() {
    let Some(fs) = Tmpfs::mount("disk-full", 32) else {
        return;
    };
    let server = start(&fs).await;
    let t = server.target.clone();
    let mut load = Load::new(&t).await;
    let filler = fill(&fs.dir);
    let [cc, refresh] = load.during_fault(&t).await;
    std::fs::remove_file(&filler).expect("removing the filler");
    let recovered_in = load.recovers(&t, &server).await;
    eprintln!(
        "disk full: {cc} of {DURING} client_credentials and {refresh} of {DURING} refreshes \
         answered 503 while the disk was full, recovered {recovered_in:?} after space returned"
    );
    check_file(server, &fs, &load).await;
}

/// A read-only filesystem under a running server cannot be made here (Linux refuses to remount
/// a filesystem with files open for writing), so this is the operator's case: the volume
/// turned read-only (or mounted so) while the server was down. `serve` refuses to start with
/// a clear error naming the database, no panic; once the volume is writable again it starts
/// and every row is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_only_refuses_to_start_clearly_and_recovers_without_loss() {
    let Some(fs) = Tmpfs::mount("read-only", 32) else {
        return;
    };
    let server = start(&fs).await;
    let t = server.target.clone();
    let mut load = Load::new(&t).await;
    let spec = server.spec.clone();
    let (_, status, log) = server.stop_with("TERM");
    assert!(status.success(), "the server did not exit cleanly:\n{log}");
    fs.remount("ro");
    let refused = common::start(spec.clone())
        .await
        .err()
        .expect("the server started on a read-only database");
    assert!(
        !refused.contains("panicked"),
        "a panic instead of an error:\n{refused}"
    );
    assert!(
        refused.contains("is not writable") && refused.contains("Read-only file system"),
        "the error does not say the database is read-only:\n{refused}"
    );
    fs.remount("rw");
    let server = common::start(spec)
        .await
        .expect("starting again once writable");
    let t = server.target.clone();
    let recovered_in = load.recovers(&t, &server).await;
    eprintln!("read-only: refused to start; serving again {recovered_in:?} after a writable start");
    check_file(server, &fs, &load).await;
}
