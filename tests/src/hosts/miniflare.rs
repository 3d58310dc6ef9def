//! One Miniflare runner per test process (`node tests/worker/run.mjs --many`) for all of its
//! Worker hosts: each [`Instance`] is a Miniflare instance with a workerd of its own, started
//! and stopped by a JSON line on the runner's stdin. A process of its own per Worker cost Node
//! about 0.75 CPU-seconds to load Miniflare each time, and a Worker suite starts about fifty
//! (one per isolated scenario): some 40 CPU-seconds per suite.
//!
//! The runner writes `N|<line>` for each line instance `N` logs and `N!exited` when it has
//! stopped or failed to start; a reader thread files the lines under their instance. The
//! runner stops every instance and exits when its stdin closes, which happens when this test
//! process ends, however it ends. A runner that has exited is replaced on the next start.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::lock;

/// What the reader thread keeps for one instance.
#[derive(Default)]
struct Lines {
    text: Mutex<String>,
    exited: AtomicBool,
}

/// The runner process and the instances it runs.
struct Runner {
    child: Mutex<Child>,
    stdin: Mutex<ChildStdin>,
    instances: Arc<Mutex<HashMap<u64, Arc<Lines>>>>,
    /// The runner's own stderr (not an instance's), for failure messages.
    stderr: Arc<Mutex<String>>,
}

static RUNNER: Mutex<Option<Arc<Runner>>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Runner {
    fn spawn() -> Result<Self, String> {
        let mut cmd = Command::new(crate::node());
        // Each instance gets exactly the vars it is started with: in this mode the runner
        // passes none of its own environment to a Worker.
        cmd.arg(crate::repo_root().join("tests/worker/run.mjs"))
            .arg("--many");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning node tests/worker/run.mjs --many: {e}"))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let instances: Arc<Mutex<HashMap<u64, Arc<Lines>>>> = Arc::default();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (by_id, all) = (instances.clone(), instances.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                file_line(&by_id, &line);
            }
            // The runner is gone: so is every instance it ran.
            for lines in lock(&all).values() {
                lines.exited.store(true, Ordering::SeqCst);
            }
        });
        let err_log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                let mut log = lock(&err_log);
                log.push_str(&line);
                log.push('\n');
            }
        });
        Ok(Self {
            child: Mutex::new(child),
            stdin: Mutex::new(stdin),
            instances,
            stderr,
        })
    }

    fn running(&self) -> bool {
        matches!(lock(&self.child).try_wait(), Ok(None))
    }

    fn send(&self, message: serde_json::Value) -> Result<(), String> {
        let mut stdin = lock(&self.stdin);
        writeln!(stdin, "{message}")
            .and_then(|()| stdin.flush())
            .map_err(|e| {
                format!(
                    "writing to the Miniflare runner: {e}; it said: {}",
                    lock(&self.stderr)
                )
            })
    }
}

/// Files one line of the runner's output under its instance (`N|text` or `N!exited`).
fn file_line(instances: &Mutex<HashMap<u64, Arc<Lines>>>, line: &str) {
    let split = line
        .find(['|', '!'])
        .and_then(|at| Some((line[..at].parse::<u64>().ok()?, &line[at..])));
    let Some((id, rest)) = split else { return };
    let Some(lines) = lock(instances).get(&id).cloned() else {
        return;
    };
    if rest == "!exited" {
        lines.exited.store(true, Ordering::SeqCst);
    } else if let Some(text) = rest.strip_prefix('|') {
        let mut log = lock(&lines.text);
        log.push_str(text);
        log.push('\n');
    }
}

/// The running runner, started (again) if there is none.
fn runner() -> Result<Arc<Runner>, String> {
    let mut slot = lock(&RUNNER);
    if let Some(r) = slot.as_ref().filter(|r| r.running()) {
        return Ok(r.clone());
    }
    let r = Arc::new(Runner::spawn()?);
    *slot = Some(r.clone());
    Ok(r)
}

/// One Worker in the shared runner; dropping it stops the instance.
pub struct Instance {
    id: u64,
    lines: Arc<Lines>,
    runner: Arc<Runner>,
    stopped: AtomicBool,
}

impl Instance {
    /// Starts an instance with `tests/worker/run.mjs` arguments (`--build DIR --port N ...`);
    /// returns at once: wait for its `/health` and its "listening on" line.
    pub fn start(args: &[OsString]) -> Result<Self, String> {
        let runner = runner()?;
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        let lines = Arc::new(Lines::default());
        lock(&runner.instances).insert(id, lines.clone());
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        runner.send(json!({"op": "start", "id": id, "args": args}))?;
        Ok(Self {
            id,
            lines,
            runner,
            stopped: AtomicBool::new(false),
        })
    }

    /// What the instance logged so far (its "listening on" line, the Worker's console output).
    pub fn log_text(&self) -> String {
        lock(&self.lines.text).clone()
    }

    /// Whether the instance has stopped (or never started, or the runner is gone).
    pub fn exited(&self) -> bool {
        self.lines.exited.load(Ordering::SeqCst) || !self.runner.running()
    }

    /// Stops the instance and waits (up to 10 s) until the runner says it has.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        if !self.exited()
            && self
                .runner
                .send(json!({"op": "stop", "id": self.id}))
                .is_ok()
        {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.exited() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        lock(&self.runner.instances).remove(&self.id);
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
}
