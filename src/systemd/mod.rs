//! systemd integration (`Type=notify`): readiness, stopping, and the health-gated watchdog.
//!
//! Every message goes to `$NOTIFY_SOCKET`; without it (a terminal, the tests, another
//! supervisor) each function here does nothing.
//!
//! - [`ready`]: `READY=1`, sent by `serve` once migrations ran and the listener is bound.
//! - [`stopping`]: `STOPPING=1`, sent when shutdown starts.
//! - [`watchdog`]: `WATCHDOG=1` every half `WATCHDOG_USEC` while the daemon is healthy.

pub mod watchdog;

use sd_notify::NotifyState;

/// The daemon is ready: migrations ran and the listener is bound.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// Shutdown started: systemd shows "deactivating" and stops expecting keep-alives.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}

/// True when a service manager listens for our notifications.
fn notify_socket_set() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty())
}
