//! `Type=notify` as systemd sees it: the real binary, a notify socket of our own, and
//! `WATCHDOG_USEC=2000000` (a keep-alive every second). `WATCHDOG_PID` stays unset: the
//! daemon's pid is not known before it starts, and unset means "this process".

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::daemon::Daemon;
use crate::helpers::*;

/// The socket systemd would listen on, in a temporary directory removed on drop.
struct NotifySocket {
    dir: PathBuf,
    socket: UnixDatagram,
}

impl NotifySocket {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("rc-notify-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = UnixDatagram::bind(dir.join("notify.sock")).unwrap();
        Self { dir, socket }
    }

    fn path(&self) -> String {
        self.dir.join("notify.sock").display().to_string()
    }

    /// Every message received within `window`, one entry per line (`READY=1`, ...).
    fn collect(&self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut lines = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if left.is_zero() {
                break;
            }
            self.socket.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 4096];
            match self.socket.recv(&mut buf) {
                Ok(n) => lines.extend(
                    String::from_utf8_lossy(&buf[..n])
                        .lines()
                        .map(str::to_owned),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(e) => panic!("notify socket: {e}"),
            }
        }
        lines
    }

    /// Receives until `message` arrives (panics after `within`); returns what came before it.
    fn expect(&self, message: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {message} within {within:?}; got {before:?}"
            );
            self.socket.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 4096];
            let n = match self.socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e) => panic!("no {message} within {within:?} ({e}); got {before:?}"),
            };
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                if line == message {
                    return before;
                }
                before.push(line.to_owned());
            }
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Upper bounds, not speed targets: a debug build starting beside the rest of the suite on
/// two cores can take seconds, and a keep-alive is withheld while a health check is slow.
const STARTUP: Duration = Duration::from_secs(30);
const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn spawn_notifying(database_url: &str, socket: &NotifySocket) -> Daemon {
    let path = socket.path();
    Daemon::spawn(
        database_url,
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "2000000")],
    )
}

#[tokio::test]
async fn serve_sends_ready_then_keep_alives_then_stopping() {
    let database_url = fresh_database().await;
    let socket = NotifySocket::new();
    let daemon = spawn_notifying(&database_url, &socket);

    let before = socket.expect("READY=1", STARTUP);
    assert!(before.is_empty(), "READY=1 comes first: {before:?}");
    socket.expect("WATCHDOG=1", KEEP_ALIVE);
    socket.expect("WATCHDOG=1", KEEP_ALIVE);

    daemon.terminate();
    let before = socket.expect("STOPPING=1", Duration::from_secs(10));
    assert!(
        before.iter().all(|m| m == "WATCHDOG=1"),
        "only keep-alives before STOPPING=1: {before:?}"
    );
    let exited = daemon.wait().await;
    assert!(exited.status.success(), "{:?}", exited.status);
    assert!(
        exited
            .stderr
            .iter()
            .any(|l| l.contains("systemd watchdog enabled")),
        "{:#?}",
        exited.stderr
    );
}

#[tokio::test]
async fn keep_alives_stop_while_the_database_is_gone() {
    let database_url = fresh_database().await;
    let socket = NotifySocket::new();
    let daemon = spawn_notifying(&database_url, &socket);
    socket.expect("READY=1", STARTUP);
    socket.expect("WATCHDOG=1", KEEP_ALIVE);

    drop_database(&database_url).await;
    // A check that passed just before the drop may still ping; then silence.
    socket.collect(Duration::from_millis(1500));
    let later = socket.collect(Duration::from_secs(3));
    assert!(
        !later.iter().any(|m| m == "WATCHDOG=1"),
        "no keep-alive while Postgres is gone: {later:?}"
    );

    daemon.terminate();
    socket.expect("STOPPING=1", Duration::from_secs(10));
    let exited = daemon.wait().await;
    assert!(
        exited
            .stderr
            .iter()
            .any(|l| l.contains("withholding watchdog keep-alives") && l.contains("database")),
        "{:#?}",
        exited.stderr
    );
}

#[tokio::test]
async fn without_a_notify_socket_serve_runs_as_before() {
    let database_url = fresh_database().await;
    // WATCHDOG_USEC alone (no NOTIFY_SOCKET) must not start a keep-alive task.
    let daemon = Daemon::spawn(&database_url, &[("WATCHDOG_USEC", "2000000")]);
    daemon.terminate();
    let exited = daemon.wait().await;
    assert!(exited.status.success(), "{:?}", exited.status);
    assert!(
        !exited.stderr.iter().any(|l| l.contains("watchdog")),
        "{:#?}",
        exited.stderr
    );
}
