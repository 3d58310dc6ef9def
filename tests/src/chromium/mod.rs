//! A real browser for the page scenarios: Debian's headless Chromium driven over WebDriver
//! (`chromedriver` and the `fantoccini` client), with the browser's console and security log
//! (CSP violations, script errors, failed loads) collected so a scenario can fail on any of
//! them. One `chromedriver` process (and the Chromium it starts) per session; a test that
//! finishes hands its session to the next page test of the same binary ([`pool`]), and a
//! session dropped without finishing (a failed test) ends with its Chromium.
//!
//! Install the browser with `scripts/setup-browser` (Debian's `chromium` and
//! `chromium-driver`). Without it the page scenarios skip with a message, unless
//! `TEST_REQUIRE_BROWSER=1` (which `scripts/test` sets) makes that a failure.

pub mod app;
mod pool;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use url::Url;

/// How long a page may take to arrive after a click or a navigation.
const PAGE_WAIT: Duration = Duration::from_secs(15);

/// The browser log entries a scenario has seen.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// `SEVERE`, `WARNING`, `INFO`, …
    pub level: String,
    /// What the browser said (CSP violations start with "Refused to" or name the directive).
    pub message: String,
}

impl LogEntry {
    /// Whether this entry is a problem a person would meet: an error, a CSP violation or a
    /// failed load.
    pub fn is_problem(&self) -> bool {
        self.level == "SEVERE"
            || self.message.contains("Content Security Policy")
            || self.message.contains("Refused to")
    }
}

/// A headless Chromium session with a fresh profile, or a pooled one reset to look like one
/// ([`pool`]).
pub struct Chromium {
    /// `None` only once [`Chromium::finish`] has handed the session back.
    session: Option<pool::Session>,
    log: Vec<LogEntry>,
}

/// Paths of Debian's packages (`chromium`, `chromium-driver`), or `CHROMIUM` / `CHROMEDRIVER`.
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let pick = |var: &str, default: &str| {
        let p = std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default));
        p.exists().then_some(p)
    };
    Some((
        pick("CHROMIUM", "/usr/bin/chromium")?,
        pick("CHROMEDRIVER", "/usr/bin/chromedriver")?,
    ))
}

/// Whether a missing browser fails the run (`TEST_REQUIRE_BROWSER=1`) instead of skipping.
fn required() -> bool {
    std::env::var("TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// `POST /session/{id}/se/log`: chromedriver's browser log (console, security, network),
/// emptied by each read.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &Url, session: Option<&str>) -> Result<Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

impl Chromium {
    /// A headless Chromium session: an idle one of this test binary's, or a new one (started
    /// through chromedriver); `None` (with a message) when the browser is not installed and not
    /// required.
    pub async fn start() -> Option<Self> {
        let Some((chromium, chromedriver)) = binaries() else {
            assert!(
                !required(),
                "TEST_REQUIRE_BROWSER=1 but /usr/bin/chromium or /usr/bin/chromedriver is missing (run scripts/setup-browser)"
            );
            eprintln!("skipping: Chromium is not installed (run scripts/setup-browser)");
            return None;
        };
        if let Some(session) = pool::take().await {
            return Some(Self::with(session));
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                // The flags this machine needs (no sandbox as root, no background connections
                // to a network that is closed), a fixed window for the screenshots.
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-extensions",
                    "--disable-features=Translate,OptimizationHints,MediaRouter",
                    "--window-size=900,820",
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
            "pageLoadStrategy": "normal",
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let session = crate::start_with_retries("headless Chromium through chromedriver", || {
            pool::Session::start(&chromium, &chromedriver, caps.clone())
        })
        .await;
        Some(Self::with(session))
    }

    fn with(session: pool::Session) -> Self {
        Self {
            session: Some(session),
            log: Vec::new(),
        }
    }

    fn client(&self) -> &Client {
        &self
            .session
            .as_ref()
            .expect("a live WebDriver session")
            .client
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&mut self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
        self.collect_log().await;
    }

    /// The address bar.
    pub async fn url(&self) -> Url {
        self.client().current_url().await.expect("the current URL")
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        match self.client().find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The page's `<h1>`, or "" when it has none.
    pub async fn heading(&self) -> String {
        match self.client().find(Locator::Css("h1")).await {
            Ok(h) => h.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Types into the input matched by `css` (clearing it first).
    pub async fn fill(&self, css: &str, value: &str) {
        let input = match self.client().find(Locator::Css(css)).await {
            Ok(i) => i,
            Err(e) => panic!("no input {css} on {}: {e}", self.url_text().await),
        };
        input.clear().await.expect("clearing an input");
        input.send_keys(value).await.expect("typing into an input");
    }

    /// A real mouse click on the element matched by `css`, then waits until the page the click
    /// leads to has loaded (its URL or document changed), and collects the browser log.
    pub async fn click(&mut self, css: &str) {
        let before = self.client().find(Locator::Css("html")).await.ok();
        let element = match self.client().find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("no element {css} on {}: {e}", self.url_text().await),
        };
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
        // The old document goes stale once the navigation commits.
        let deadline = Instant::now() + PAGE_WAIT;
        if let Some(old) = before {
            while old.tag_name().await.is_ok() {
                if Instant::now() > deadline {
                    self.collect_log().await;
                    panic!(
                        "clicking {css} on {} led nowhere within {PAGE_WAIT:?}; browser log: {:#?}",
                        self.url_text().await,
                        self.log
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.wait_loaded().await;
        self.collect_log().await;
    }

    /// Posts a form to `action` from the current page, as a second tab or a resubmission
    /// would (the form is built by WebDriver, which the page's CSP does not restrict; the
    /// post itself is subject to the page's CSP like any other), and waits for the answer.
    pub async fn post_from_page(&mut self, action: &str, fields: &[(&str, &str)]) {
        let before = self.client().find(Locator::Css("html")).await.ok();
        let fields: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        self.client()
            .execute(
                "const [action, fields] = arguments; const f = document.createElement('form');\
                 f.method = 'post'; f.action = action;\
                 for (const [k, v] of Object.entries(fields)) {\
                   const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);\
                 }\
                 document.body.appendChild(f); f.submit();",
                vec![json!(action), Value::Object(fields)],
            )
            .await
            .unwrap_or_else(|e| panic!("posting a form to {action}: {e}"));
        if let Some(old) = before {
            let deadline = Instant::now() + PAGE_WAIT;
            while old.tag_name().await.is_ok() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.wait_loaded().await;
        self.collect_log().await;
    }

    async fn wait_loaded(&self) {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let state = self
                .client()
                .execute("return document.readyState", vec![])
                .await
                .ok();
            if state == Some(json!("complete")) || Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn url_text(&self) -> String {
        self.client()
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|_| "the page".into())
    }

    /// Whether an element matching `css` is on the page.
    pub async fn has(&self, css: &str) -> bool {
        self.client().find(Locator::Css(css)).await.is_ok()
    }

    /// The `value` attribute of the element matched by `css`.
    pub async fn value_of(&self, css: &str) -> String {
        self.client()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .attr("value")
            .await
            .expect("reading an attribute")
            .unwrap_or_default()
    }

    /// An attribute of the element matched by `css` (`None` when absent).
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.client()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .attr(name)
            .await
            .expect("reading an attribute")
    }

    /// The value of one cookie the browser holds for the current page (`None` when absent).
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client()
            .get_named_cookie(name)
            .await
            .ok()
            .map(|c| c.value().to_owned())
    }

    /// Deletes one cookie of the current page's site (as when it expires).
    pub async fn delete_cookie(&self, name: &str) {
        self.client()
            .delete_cookie(name)
            .await
            .unwrap_or_else(|e| panic!("deleting cookie {name}: {e}"));
    }

    /// Goes back one page in history.
    pub async fn back(&mut self) {
        self.client().back().await.expect("history back");
        self.wait_loaded().await;
        self.collect_log().await;
    }

    /// Enters the first frame of the page (`None` when it has no frame document).
    pub async fn frame_text(&self) -> Option<String> {
        self.client().enter_frame(0).await.ok()?;
        let text = self.text().await;
        self.client().enter_parent_frame().await.ok()?;
        Some(text)
    }

    /// Writes a PNG screenshot of the page.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client().screenshot().await.expect("a screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("creating the screenshot directory");
        }
        std::fs::write(path, png).expect("writing a screenshot");
    }

    /// Reads and keeps what the browser logged since the last read.
    pub async fn collect_log(&mut self) {
        let Ok(Value::Array(entries)) = self.client().issue_cmd(BrowserLog).await else {
            return;
        };
        self.log.extend(entries.iter().map(|e| LogEntry {
            level: e["level"].as_str().unwrap_or_default().to_owned(),
            message: e["message"].as_str().unwrap_or_default().to_owned(),
        }));
    }

    /// Takes the log entries that are problems (errors, CSP violations), leaving the rest.
    pub async fn take_problems(&mut self) -> Vec<LogEntry> {
        self.collect_log().await;
        let (problems, rest) = std::mem::take(&mut self.log)
            .into_iter()
            .partition(LogEntry::is_problem);
        self.log = rest;
        problems
    }

    /// For an error page: takes the log, in which the only problem allowed is the browser's
    /// note that the page's own document came with `status` (Chromium logs a non-2xx document
    /// as "Failed to load resource").
    pub async fn expect_error_document(&mut self, status: u16) {
        let url = self.url().await;
        let problems = self.take_problems().await;
        let expected = format!("the server responded with a status of {status}");
        let path = url.path().to_owned();
        let unexpected: Vec<_> = problems
            .into_iter()
            .filter(|p| !(p.message.contains(&expected) && p.message.contains(&path)))
            .collect();
        assert!(
            unexpected.is_empty(),
            "the browser reported problems on the {status} page {url}: {unexpected:#?}"
        );
    }

    /// Fails when the browser reported any error or CSP violation so far.
    pub async fn assert_no_problems(&mut self, during: &str) {
        let problems = self.take_problems().await;
        assert!(
            problems.is_empty(),
            "the browser reported problems during {during}: {problems:#?}"
        );
    }

    /// Checks the log is clean and hands the session back for the next page test of this
    /// binary ([`pool`]). A session dropped without this (a failed test) ends with its Chromium.
    pub async fn finish(mut self, during: &str) {
        self.assert_no_problems(during).await;
        if let Some(session) = self.session.take() {
            pool::put(session).await;
        }
    }
}

/// Where the scenarios write screenshots: `PORTCULLIS_SCREENSHOT_DIR`, else
/// `<target dir>/screenshots`. Files are named after the test binary (`native-sign-in.png`).
pub fn screenshot_path(page: &str) -> PathBuf {
    let dir = std::env::var_os("PORTCULLIS_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("the test binary's path");
            // target/debug/deps/<binary> → target/screenshots
            exe.ancestors()
                .nth(3)
                .map(|t| t.join("screenshots"))
                .unwrap_or_else(|| PathBuf::from("screenshots"))
        });
    let host = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| {
            s.rsplit_once('-')
                .map_or(s.clone(), |(name, _)| name.to_owned())
        })
        .unwrap_or_else(|| "host".into());
    dir.join(format!("{host}-{page}.png"))
}
