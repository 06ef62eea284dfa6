//! The fake's clock, as tests move it: forward, read, or frozen.

use std::time::Duration;

use super::FakeStripe;
use crate::state;

impl FakeStripe {
    /// Moves the fake's clock forward: every timestamp it makes from now on (object
    /// `created`, periods, event `created`) is that much later. Cumulative. Webhook
    /// signatures keep real time, so receivers still accept them.
    pub fn advance_clock(&self, by: Duration) {
        let seconds = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        let mut state = self.fake.lock();
        state.clock_offset = state.clock_offset.saturating_add(seconds);
    }

    /// The fake's clock, in unix seconds: what it stamps on objects and events made now.
    pub fn now(&self) -> i64 {
        self.fake.lock().now()
    }

    /// Stops the fake's clock where it is: from now on only [`FakeStripe::advance_clock`]
    /// moves it, so a test can act at an exact second of a period (prorations are computed
    /// on whole seconds). It stays frozen for the life of the fake.
    pub fn freeze_clock(&self) {
        let mut state = self.fake.lock();
        state.frozen_at.get_or_insert_with(state::real_now);
    }
}
