//! The watchdog keep-alive: `WATCHDOG=1` every half `WATCHDOG_USEC`, only while the daemon
//! is healthy, so that systemd restarts a daemon that hangs as well as one that dies.
//!
//! Healthy means: Postgres answers `SELECT 1` within half a ping period (so a check never
//! makes a ping late), and every worker loop has come round recently
//! ([`Engine::check_workers`]). A failed check withholds the ping; systemd acts once a whole
//! `WatchdogSec` passes without one.

use std::time::Duration;

use sqlx::PgPool;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use outbox::Engine;

/// Why a keep-alive was withheld.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    #[error("the database did not answer within {0:?}")]
    DatabaseTimeout(Duration),
    #[error("the database failed the check: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Worker(#[from] outbox::WorkerStalled),
}

/// Starts the keep-alive task on `tasks` when systemd asked for one (`WATCHDOG_USEC` set
/// for this process, `NOTIFY_SOCKET` set); it stops at `shutdown`.
pub fn start(tasks: &TaskTracker, shutdown: &CancellationToken, pool: PgPool, engine: Engine) {
    let Some(timeout) = sd_notify::watchdog_enabled().filter(|_| super::notify_socket_set()) else {
        return;
    };
    let every = timeout / 2;
    tracing::info!(?every, "systemd watchdog enabled");
    tasks.spawn(keep_alive(every, pool, engine, shutdown.clone()));
}

async fn keep_alive(every: Duration, pool: PgPool, engine: Engine, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match check(&pool, &engine, every / 2).await {
            Ok(()) => {
                if !healthy {
                    tracing::info!("healthy again; watchdog keep-alives resume");
                }
                healthy = true;
                super::send(&[sd_notify::NotifyState::Watchdog]);
            }
            Err(reason) => {
                if healthy {
                    tracing::warn!(%reason, "unhealthy; withholding watchdog keep-alives");
                }
                healthy = false;
            }
        }
    }
}

/// The health the keep-alive vouches for.
pub async fn check(pool: &PgPool, engine: &Engine, bound: Duration) -> Result<(), Unhealthy> {
    tokio::time::timeout(bound, sqlx::query("SELECT 1").execute(pool))
        .await
        .map_err(|_| Unhealthy::DatabaseTimeout(bound))??;
    engine.check_workers()?;
    Ok(())
}
