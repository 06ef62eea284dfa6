//! What the engine's worker loops share: the pool, the handlers, the settings, the wake-ups,
//! the heartbeats, how far applying lags. The runner owns it; a worker step reads it.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use sqlx::PgPool;

use crate::heartbeat::Heartbeats;
use crate::{EngineSettings, Registry, RetryPolicy, Wakeup};

pub(crate) struct Inner {
    pub(crate) pool: PgPool,
    pub(crate) registry: Registry,
    pub(crate) policy: RetryPolicy,
    pub(crate) settings: EngineSettings,
    pub(crate) wakeup: Arc<Wakeup>,
    pub(crate) heartbeats: Heartbeats,
    /// Age (ms) of the oldest job in the latest claim: how far applying lags behind.
    pub(crate) claimed_age_ms: AtomicU64,
}

impl Inner {
    pub(crate) fn lease(&self) -> Duration {
        Duration::from_secs(self.settings.lease_secs)
    }
}
