//! [`Fake`]: the state behind its lock, the base URL and the webhook outbox, which the server
//! and `FakeStripe`'s methods share.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::api::ApiError;
use super::checkout;
use super::state::State;
use super::webhooks::{Outbox, PendingEvent};

/// What the server and the test-facing methods share.
pub(super) struct Fake {
    pub(super) state: Mutex<State>,
    pub(super) base_url: String,
    pub(super) outbox: Outbox,
}

impl Fake {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a state change, queues its events under the same lock, then waits until they
    /// were delivered.
    pub(super) async fn act<T>(
        &self,
        change: impl FnOnce(&mut State) -> Result<(T, Vec<PendingEvent>), ApiError>,
    ) -> anyhow::Result<T> {
        let (value, delivered) = {
            let mut state = self.lock();
            let (value, events) = change(&mut state).map_err(|e| anyhow::anyhow!(e.message))?;
            (value, self.outbox.emit(&mut state, events))
        };
        delivered.wait().await?;
        Ok(value)
    }

    pub(super) async fn complete_checkout(
        &self,
        session_id: &str,
        code: Option<&str>,
    ) -> anyhow::Result<()> {
        self.run(|state| checkout::complete(state, session_id, None, code))
            .await
    }

    /// A change that only returns its events.
    pub(super) async fn run(
        &self,
        change: impl FnOnce(&mut State) -> Result<Vec<PendingEvent>, ApiError>,
    ) -> anyhow::Result<()> {
        self.act(|state| Ok(((), change(state)?))).await
    }
}
