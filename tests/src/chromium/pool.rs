//! Chromium sessions kept for the next page test of the same test binary. Starting Chromium
//! costs about 0.7 CPU-seconds, a third of what a page test's browser uses in all
//! (BENCHMARKS.md, "The test run"), so a finished page test hands its session back here and the
//! next one takes it, with a new tab, no cookies and an empty cache (see [`Session::reset`]).
//!
//! The WebDriver client's connection task runs on one runtime of its own ([`runtime`]), so a
//! session outlives the test (and the test's runtime) that started it. Every chromedriver has
//! an [`OnExit`] guard: when the session is dropped, or the test binary exits in any way, it
//! kills chromedriver's process group (Chromium is in it) and removes Chromium's throwaway
//! profile, so nothing outlives the binary.

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use url::Url;

use crate::on_exit::OnExit;

/// The sessions no test is using.
static IDLE: Mutex<Vec<Session>> = Mutex::new(Vec::new());

/// The runtime that owns every session's WebDriver connection.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("chromium-pool")
            .enable_all()
            .build()
            .expect("a runtime for the browser sessions")
    })
}

/// One chromedriver, its Chromium and the WebDriver session on it.
pub(super) struct Session {
    pub(super) client: Client,
    _driver: Driver,
}

/// chromedriver (in a process group of its own, which Chromium joins) and the guard that ends
/// the group and removes the profile directory.
struct Driver {
    child: Child,
    cleanup: Option<OnExit>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        drop(self.cleanup.take());
        // The guard kills the group; this only makes sure the wait cannot hang.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An idle session that still answers, if one is waiting (one whose Chromium has gone is
/// dropped).
pub(super) async fn take() -> Option<Session> {
    loop {
        let session = IDLE.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
        if session.client.window().await.is_ok() {
            return Some(session);
        }
    }
}

/// Keeps a session for the next test, after [`Session::reset`]; a session that cannot be reset
/// is dropped (and so ends).
pub(super) async fn put(session: Session) {
    if session.reset().await.is_ok() {
        IDLE.lock().unwrap_or_else(|e| e.into_inner()).push(session);
    }
}

/// `POST /session/{id}/goog/cdp/execute`: one Chrome DevTools Protocol command through
/// chromedriver.
#[derive(Debug)]
struct Cdp(&'static str);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &Url, session: Option<&str>) -> Result<Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }
    fn method_and_body(&self, _: &Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"cmd": self.0, "params": {}}).to_string()),
        )
    }
}

impl Session {
    /// Starts chromedriver and a headless Chromium session with a fresh profile.
    pub(super) async fn start(
        chromium: &Path,
        chromedriver: &Path,
        caps: serde_json::Map<String, Value>,
    ) -> Result<Self, String> {
        let (chromium, chromedriver) = (chromium.to_owned(), chromedriver.to_owned());
        runtime()
            .spawn(async move { Self::start_here(&chromium, &chromedriver, caps).await })
            .await
            .map_err(|e| format!("starting the browser session: {e}"))?
    }

    async fn start_here(
        chromium: &Path,
        chromedriver: &Path,
        mut caps: serde_json::Map<String, Value>,
    ) -> Result<Self, String> {
        caps["goog:chromeOptions"]["binary"] = json!(chromium);
        // Chromium puts its throwaway profile in chromedriver's TMPDIR; the guard removes the
        // directory when it ends them.
        let tmp = tempfile::Builder::new()
            .prefix("portcullis-chromium-")
            .tempdir()
            .map_err(|e| format!("a temporary directory for Chromium: {e}"))?
            .keep();
        // Port 0: chromedriver binds an ephemeral port itself and prints it, so no other
        // process started at the same moment can take it first.
        let mut child = Command::new(chromedriver)
            .arg("--port=0")
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group, so the guard can end chromedriver and Chromium together.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", chromedriver.display()))?;
        let group = child.id().to_string();
        let cleanup = OnExit::run(&[
            "sh",
            "-c",
            // `-GROUP`, without `--`: dash's `kill` reads `--` as a process id.
            r#"kill -KILL "-$1"; rm -rf "$2""#,
            "portcullis-chromium",
            &group,
            &tmp.to_string_lossy(),
        ]);
        let stdout = child.stdout.take().expect("piped stdout");
        let driver = Driver {
            child,
            cleanup: Some(cleanup),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Reads to the end, so chromedriver never blocks on a full pipe.
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|p| p.trim_end_matches('.').trim().parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| "chromedriver did not report its port".to_owned())?;
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&webdriver)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("WebDriver session at {webdriver}: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Ok(Self {
            client,
            _driver: driver,
        })
    }

    /// Leaves the session as a new one would be, for the profile state the page scenarios
    /// touch: one new tab (no history, no session storage), no cookies for any site, an empty
    /// HTTP cache and an empty browser log.
    async fn reset(&self) -> Result<(), fantoccini::error::CmdError> {
        let c = &self.client;
        let tab = c.new_window(true).await?;
        c.close_window().await?;
        c.switch_to_window(tab.handle).await?;
        c.issue_cmd(Cdp("Network.clearBrowserCookies")).await?;
        c.issue_cmd(Cdp("Network.clearBrowserCache")).await?;
        c.issue_cmd(super::BrowserLog).await?;
        Ok(())
    }
}
