//! Black-box tests of the `portcullis` binary with a temporary SQLite file: `serve` with
//! health and readiness, clean stop on SIGTERM, refusal of an unsafe issuer, and the
//! `user add` / `user list` administration commands, `maintenance` (the purge, B1/B2).

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use portcullis_core::store::sqlite::SqliteStore;
use portcullis_core::store::{SqlStore, Value};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary with a clean environment pointing at a database in `dir`.
fn portcullis(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTCULLIS_") || k == "PORT" {
            cmd.env_remove(k);
        }
    }
    cmd.env(
        "PORTCULLIS_DATABASE_URL",
        format!("sqlite://{}", dir.join("portcullis.db").display()),
    )
    .env("PORTCULLIS_LOG_FORMAT", "json")
    .current_dir(dir);
    cmd
}

struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `portcullis serve` on free ports; waits (bounded) until `/health` answers.
async fn serve(dir: &Path) -> Served {
    let (port, admin) = (free_port(), free_port());
    let child = portcullis(dir)
        .arg("serve")
        .env("PORTCULLIS_LISTEN", format!("127.0.0.1:{port}"))
        .env("PORTCULLIS_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut served = Served {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/health", served.base)).await {
            assert_eq!(r.status(), 200);
            return served;
        }
        if let Some(status) = served.child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            let _ = served.child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("serve exited early ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "server did not become healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn serve_health_ready_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path()).await;
    let ready = reqwest::get(format!("{}/ready", served.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.headers().contains_key("x-request-id"));
    let meta = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        served.base
    ))
    .await
    .unwrap();
    assert_eq!(meta.status(), 200);
    let meta: serde_json::Value = meta.json().await.unwrap();
    assert_eq!(meta["issuer"], served.base.as_str());

    let pid = served.child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let status = wait_exit(&mut served.child);
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let mut logs = String::new();
    use std::io::Read;
    served
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("\"path\":\"/ready\""), "{logs}");
    assert!(logs.contains("stopped"), "{logs}");
}

#[test]
fn plain_http_issuer_off_loopback_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = portcullis(dir.path())
        .arg("serve")
        .env("PORTCULLIS_ISSUER", "http://auth.example.com")
        .env("PORTCULLIS_ADMIN_API_KEY", "0123456789abcdef0123")
        .env("PORTCULLIS_MASTER_KEY", "0123456789abcdef0123")
        .env("PORTCULLIS_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env(
            "PORTCULLIS_ADMIN_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("issuer"), "{err}");
}

fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = portcullis(dir);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

#[test]
fn user_add_and_list_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let add = run(
        dir.path(),
        &[
            "user",
            "add",
            "alice",
            "--password",
            "correct horse battery",
        ],
        None,
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let from_stdin = run(
        dir.path(),
        &["user", "add", "bob"],
        Some("another long secret\n"),
    );
    assert!(
        from_stdin.status.success(),
        "{}",
        String::from_utf8_lossy(&from_stdin.stderr)
    );
    let list = run(dir.path(), &["user", "list"], None);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let out = String::from_utf8_lossy(&list.stdout);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = v.to_string();
    assert!(text.contains("alice") && text.contains("bob"), "{text}");
    assert!(!text.contains("correct horse") && !text.contains("another long"));
    // A duplicate is refused with a non-zero exit and the JSON error on stderr.
    let dup = run(
        dir.path(),
        &[
            "user",
            "add",
            "alice",
            "--password",
            "correct horse battery",
        ],
        None,
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("conflict"));
}

#[test]
fn migrate_reports_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["migrate"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["schema_version"].as_i64().unwrap() >= 1);
    assert!(dir.path().join("portcullis.db").exists());
}

/// L6: a loopback issuer on a listener that is not loopback (`docker run -e
/// PORTCULLIS_ISSUER=http://localhost:9000 -p 9000:9000`, listening on 0.0.0.0) refuses to
/// start without the admin key, then without the master key, naming each setting.
#[test]
fn l6_loopback_issuer_on_a_public_listener_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[(&str, &str)]| -> String {
        let port = free_port();
        let mut cmd = portcullis(dir.path());
        cmd.arg("serve")
            .env("PORTCULLIS_ISSUER", format!("http://localhost:{port}"))
            .env("PORTCULLIS_LISTEN", format!("0.0.0.0:{port}"))
            .env(
                "PORTCULLIS_ADMIN_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        // Wrapped so that a server that wrongly starts is killed when the test fails.
        let mut served = Served {
            child: cmd.spawn().unwrap(),
            base: String::new(),
        };
        let status = wait_exit(&mut served.child);
        assert!(!status.success(), "started: {}", served.base);
        let mut err = String::new();
        use std::io::Read;
        let _ = served.child.stderr.take().unwrap().read_to_string(&mut err);
        err
    };
    let err = run(&[]);
    assert!(err.contains("'admin_api_key'"), "{err}");
    assert!(err.contains("0.0.0.0"), "{err}");
    let err = run(&[("PORTCULLIS_ADMIN_API_KEY", "0123456789abcdef0123")]);
    assert!(err.contains("'master_key'"), "{err}");
}

#[test]
fn b1_maintenance_purges_expired_rows_and_prints_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["migrate"], None);
    assert!(out.status.success());
    let url = format!("sqlite://{}", dir.path().join("portcullis.db").display());
    let db = SqliteStore::open(&url).unwrap();
    let far = 4_000_000_000_i64;
    let rows = [
        format!("INSERT INTO sessions (id_hash, subject, auth_time, expires_at) VALUES ('dead', 'u', 1, 2), ('live', 'u', 1, {far})"),
        format!("INSERT INTO replay_cache (key, expires_at) VALUES ('dead-1', 5), ('dead-2', 6), ('live', {far})"),
        "INSERT INTO audit_events (at, action, outcome) VALUES (1, 'old.event', 'success')".to_owned(),
    ];
    let rows: Vec<(String, Vec<Value>)> = rows.into_iter().map(|sql| (sql, Vec::new())).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(db.batch(&rows)).unwrap();
    let counts = |out: &Output| -> serde_json::Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Retention 0 (from the environment) keeps audit events forever.
    let mut keep = portcullis(dir.path());
    keep.args(["maintenance"])
        .env("PORTCULLIS_STORAGE__AUDIT_RETENTION_DAYS", "0");
    let first = counts(&keep.output().unwrap());
    assert_eq!(first["deleted"]["sessions"], 1, "{first}");
    assert_eq!(first["deleted"]["replay_cache"], 2, "{first}");
    assert_eq!(first["deleted"]["audit_events"], 0, "{first}");
    assert_eq!(first["complete"], true);
    // The default retention (90 days) removes the old event; nothing else is left to purge.
    let second = counts(&run(dir.path(), &["maintenance", "--until-complete"], None));
    assert_eq!(second["deleted"]["audit_events"], 1, "{second}");
    assert_eq!(second["deleted"]["sessions"], 0, "{second}");
    let live = rt
        .block_on(db.query(
            "SELECT (SELECT COUNT(*) FROM sessions) + (SELECT COUNT(*) FROM replay_cache)",
            &[],
        ))
        .unwrap();
    assert_eq!(
        live[0].int(0).unwrap(),
        2,
        "only the live session and replay key remain"
    );
    // A bad setting is refused with a message naming it, not a panic.
    let mut bad = portcullis(dir.path());
    bad.args(["maintenance"])
        .env("PORTCULLIS_STORAGE__PURGE_BATCH_SIZE", "0");
    let out = bad.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("purge_batch_size"));
}
