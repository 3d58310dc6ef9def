//! One `jose` signer per test process (`node tests/node/idp/sign.mjs`): keys and JWTs from an
//! implementation independent of the server's, for the RS256/PS256/EdDSA, workload-identity
//! and algorithm-confusion scenarios. A Node process per request spent most of its CPU loading
//! Node and `jose` (about 12 CPU-seconds a full run); this one answers a JSON line with a JSON
//! line, one request at a time, and exits when its stdin closes, which happens when this test
//! process ends, however it ends. A signer that has exited is replaced on the next request.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

use crate::lock;

/// The signer process and its pipes.
struct Signer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

static SIGNER: Mutex<Option<Signer>> = Mutex::new(None);

impl Signer {
    fn spawn() -> Result<Self, String> {
        let script = crate::repo_root().join("tests/node/idp/sign.mjs");
        let mut child = Command::new(crate::node())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("running node (tests/node, scripts/setup): {e}"))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// One request and its answer line; an error when the process has gone.
    fn ask(&mut self, line: &str) -> Result<Value, String> {
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("writing to sign.mjs: {e}"))?;
        let mut answer = String::new();
        match self.stdout.read_line(&mut answer) {
            Ok(0) => Err(format!("sign.mjs exited ({:?})", self.child.try_wait())),
            Ok(_) => serde_json::from_str(&answer)
                .map_err(|e| format!("sign.mjs printed {answer:?}, not JSON: {e}")),
            Err(e) => Err(format!("reading from sign.mjs: {e}")),
        }
    }
}

/// Sends `line` to the running signer, started first if there is none; on an error the signer
/// is stopped and removed, so the next request starts a new one.
fn ask(slot: &mut Option<Signer>, line: &str) -> Result<Value, String> {
    if slot.is_none() {
        *slot = Some(Signer::spawn()?);
    }
    let answer = slot.as_mut().expect("started above").ask(line);
    if answer.is_err() {
        if let Some(mut gone) = slot.take() {
            let _ = gone.child.kill();
            let _ = gone.child.wait();
        }
    }
    answer
}

/// Sends `input` (see `tests/node/idp/sign.mjs`) and returns the answer. Panics when the
/// signer cannot be run or answers `{"error": …}`, as a test helper does.
pub async fn sign(input: Value) -> Value {
    let answer = tokio::task::spawn_blocking(move || {
        let line = input.to_string();
        let mut slot = lock(&SIGNER);
        // A signer that has exited (killed from outside, say) is replaced once.
        ask(&mut slot, &line).or_else(|_| ask(&mut slot, &line))
    })
    .await
    .expect("the signing task");
    match answer {
        Ok(v) if v.get("error").is_none() => v,
        Ok(v) => panic!("sign.mjs refused the request: {}", v["error"]),
        Err(e) => panic!("{e}"),
    }
}
