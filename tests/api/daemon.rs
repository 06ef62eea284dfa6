//! The real binary as a child process: `serve` with the test environment, its stderr kept.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::helpers::test_env;

pub const BIN: &str = env!("CARGO_BIN_EXE_stripe-reconciler");

/// A `serve` process, killed if the test ends without stopping it.
pub struct Daemon {
    child: Child,
    /// The address it listens on.
    pub addr: String,
    /// Every stderr line up to "listening"; the reader thread collects the rest.
    head: Vec<String>,
    tail: Option<JoinHandle<Vec<String>>>,
}

/// How a daemon ended, with everything it wrote to stderr.
pub struct Exited {
    pub status: ExitStatus,
    pub stderr: Vec<String>,
}

impl Daemon {
    /// Starts `stripe-reconciler serve` with [`test_env`] and `RUST_LOG=info`, overridden by
    /// `env`, and returns once it logged that it listens.
    pub fn spawn(database_url: &str, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .envs(test_env(database_url))
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut head = Vec::new();
        let addr = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                panic!("daemon exited before listening:\n{}", head.join("\n"));
            };
            let line = line.unwrap();
            let addr = listening_addr(&line);
            head.push(line);
            if let Some(addr) = addr {
                break addr;
            }
        };
        // Keep draining stderr so the daemon never blocks on a full pipe.
        let tail = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        Self {
            child,
            addr,
            head,
            tail: Some(tail),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, as systemd stops a service.
    pub fn terminate(&self) {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
    }

    /// Waits (at most 60 s) for the process to exit; returns its status and all of stderr.
    pub async fn wait(mut self) -> Exited {
        let pid = self.pid().to_string();
        let tail = self.tail.take().unwrap();
        let mut head = std::mem::take(&mut self.head);
        let waited = tokio::task::spawn_blocking(move || {
            let status = self.child.wait().unwrap();
            head.extend(tail.join().unwrap());
            (status, head)
        });
        match tokio::time::timeout(Duration::from_secs(60), waited).await {
            Ok(done) => {
                let (status, stderr) = done.unwrap();
                Exited { status, stderr }
            }
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                panic!("the daemon did not exit within 60 s");
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the "listening" line, compact (`addr=...`) or JSON (`"addr":"..."`).
fn listening_addr(line: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
        return (json["message"] == "listening")
            .then(|| json["addr"].as_str().map(str::to_owned))
            .flatten();
    }
    if !line.contains("listening") {
        return None;
    }
    let addr = line.split("addr=").nth(1)?;
    addr.split_whitespace().next().map(str::to_owned)
}
