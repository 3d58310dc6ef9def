//! Runs the black-box scenario suite against the Docker image: `scripts/test-image` builds it
//! from the repository's `Dockerfile` with podman and runs this test binary with
//! `PORTCULLIS_TEST_IMAGE` (the image) and `PORTCULLIS_TEST_PODMAN` (the podman command, with
//! the flags the machine needs). Each host is one container of the image, `portcullis serve`
//! as the image runs it (its entrypoint, user, working directory, and SQLite in its
//! `/var/lib/portcullis` volume, an anonymous volume removed with the container), on the host
//! network with loopback ports of its own; the runner is `portcullis_tests::hosts::suite`, the
//! lists `common/scenario_lists.rs`. Skipped, with a message, when `PORTCULLIS_TEST_IMAGE` is
//! unset, unless `TEST_REQUIRE_IMAGE=1`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use portcullis_tests::conformance::uid;
use portcullis_tests::hosts::native::free_port;
use portcullis_tests::hosts::suite::{env_name, ScenarioHost};
use portcullis_tests::on_exit::OnExit;
use portcullis_tests::scenarios::support::random_b64;
use portcullis_tests::scenarios::Target;

/// How long a container may take to answer `/health`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The image and the podman command, or `None` (skip) when no image is given.
fn image() -> Option<(String, String)> {
    match std::env::var("PORTCULLIS_TEST_IMAGE") {
        Ok(image) if !image.is_empty() => {
            let podman = std::env::var("PORTCULLIS_TEST_PODMAN")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "podman".to_owned());
            Some((image, podman))
        }
        _ => {
            assert!(
                std::env::var("TEST_REQUIRE_IMAGE").map_or(true, |v| v.is_empty() || v == "0"),
                "TEST_REQUIRE_IMAGE is set but PORTCULLIS_TEST_IMAGE is not"
            );
            eprintln!("skipped: PORTCULLIS_TEST_IMAGE is not set (scripts/test-image sets it)");
            None
        }
    }
}

/// A running container of the image; dropping it (or this process exiting) removes it and
/// its volume.
struct Container {
    _remove: OnExit,
}

/// `podman <args>`: its stdout, or an error with its stderr.
fn podman(podman: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(podman)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {podman}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "{podman} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The container's output so far, for failure messages.
fn logs(cmd: &str, name: &str) -> String {
    podman(cmd, &["logs", name]).unwrap_or_else(|e| e)
}

/// Starts one container with the suites' settings plus `settings` (core names) and waits
/// until `/health` answers 200.
async fn start(
    cmd: &str,
    image: &str,
    settings: &[(&str, &str)],
) -> Result<(Target, Container), String> {
    let port = free_port();
    let mut admin_port = free_port();
    while admin_port == port {
        admin_port = free_port();
    }
    let name = uid("portcullis-scenario");
    let admin_key = random_b64(32);
    let public = format!("http://127.0.0.1:{port}");
    let admin = format!("http://127.0.0.1:{admin_port}");
    let mut env: Vec<(String, String)> = vec![
        ("PORTCULLIS_ISSUER".into(), public.clone()),
        ("PORTCULLIS_LISTEN".into(), format!("127.0.0.1:{port}")),
        (
            "PORTCULLIS_ADMIN_LISTEN".into(),
            format!("127.0.0.1:{admin_port}"),
        ),
        ("PORTCULLIS_ADMIN_API_KEY".into(), admin_key.clone()),
        ("PORTCULLIS_MASTER_KEY".into(), random_b64(32)),
        // The suites register many clients from one IP; the limit itself is a unit test.
        (
            "PORTCULLIS_REGISTRATION__RATE_LIMIT_PER_MINUTE".into(),
            "0".into(),
        ),
        ("PORTCULLIS_LOG_FORMAT".into(), "text".into()),
    ];
    env.extend(settings.iter().map(|(k, v)| (env_name(k), (*v).to_owned())));
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut args = vec!["run", "-d", "--name", &name, "--network=host"];
    for e in &env {
        args.extend(["-e", e]);
    }
    args.push(image);
    let remove = OnExit::run(&[cmd, "rm", "-f", "-v", "-t", "5", &name]);
    podman(cmd, &args)?;
    let health = format!("{public}/health");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + START_TIMEOUT;
    let mut next_state_check = Instant::now() + Duration::from_secs(1);
    loop {
        if let Ok(r) = client.get(&health).send().await {
            if r.status().is_success() {
                break;
            }
        }
        // Asking podman costs more than asking the server: once a second.
        if Instant::now() > next_state_check {
            next_state_check = Instant::now() + Duration::from_secs(1);
            let state = podman(cmd, &["inspect", "--format", "{{.State.Status}}", &name])?;
            if state != "running" && state != "created" {
                return Err(format!(
                    "container {name} is {state}:\n{}",
                    logs(cmd, &name)
                ));
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no answer on {health} within {} s:\n{}",
                START_TIMEOUT.as_secs(),
                logs(cmd, &name)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let target = Target::new(&public, &admin, &admin_key).with_process_metrics();
    Ok((target, Container { _remove: remove }))
}

/// The image in a container per host (SQLite in the container's volume).
struct Image;

#[async_trait]
impl ScenarioHost for Image {
    type Guard = Container;

    async fn start(settings: &[(&str, &str)]) -> Option<(Target, Self::Guard)> {
        let (image, cmd) = image()?;
        // Retried with fresh ports: a port may be taken between choosing and binding it.
        let mut last_err = String::new();
        for _attempt in 0..3 {
            match start(&cmd, &image, settings).await {
                Ok(started) => return Some(started),
                Err(e) => last_err = e,
            }
        }
        panic!("the image did not start: {last_err}");
    }
}

portcullis_tests::scenario_runner!(Image);
include!("common/scenario_lists.rs");
