//! Clean-up that outlives a panic or a kill of the test process: a small shell guard runs a
//! command (stop a server, remove a directory) when its [`OnExit`] is dropped or when this
//! process exits in any way, because it waits on a pipe only this process holds.

use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use crate::conformance::uid;

/// A process that runs a command once this guard is dropped or this test process has exited
/// (however it exits; statics are never dropped, so for them it is the exit).
pub struct OnExit {
    guard: Mutex<(Child, ChildStdin)>,
}

impl OnExit {
    /// Stops the guard without running its command.
    pub fn cancel(self) {
        let (mut child, stdin) = self.guard.into_inner().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        drop(stdin);
    }

    /// Starts the guard; `cmd` runs with its output discarded.
    pub fn run(cmd: &[&str]) -> Self {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"read -r _ignored; "$@" >/dev/null 2>&1"#)
            .arg("portcullis-cleanup")
            .args(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning a cleanup guard");
        let stdin = child.stdin.take().expect("piped stdin");
        Self {
            guard: Mutex::new((child, stdin)),
        }
    }
}

/// A fresh temporary directory, removed when the guard is dropped or this process exits.
pub fn temp_dir(tag: &str) -> (PathBuf, OnExit) {
    let dir = std::env::temp_dir().join(format!("portcullis-{}", uid(tag)));
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    let guard = OnExit::run(&["rm", "-rf", &dir.to_string_lossy()]);
    (dir, guard)
}
