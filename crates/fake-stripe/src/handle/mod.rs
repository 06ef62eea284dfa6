//! [`FakeStripe`], the handle a test holds: it starts the fake and drives it, a file per
//! Stripe object family (`customers`, `checkout`, `invoices`, `subscriptions`, `trials`,
//! `coupons`, `catalog`) and the `clock`; here, what concerns the fake as a whole (its URL,
//! the requests it saw, faults, webhook delivery, the events made, shutdown).

mod catalog;
mod checkout;
mod clock;
mod coupons;
mod customers;
mod invoices;
mod subscriptions;
mod trials;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Delivery, FakeConfig, Fault};
use crate::server;
use crate::shared::Fake;
use crate::state::{ArmedFault, RecordedRequest, State};
use crate::webhooks::Outbox;

/// A running fake; it serves until [`FakeStripe::shutdown`] or until dropped.
pub struct FakeStripe {
    addr: SocketAddr,
    fake: Arc<Fake>,
    shutdown: CancellationToken,
}

impl FakeStripe {
    /// Serves on `listener`, which must be bound to a loopback address (`127.0.0.1:0`).
    ///
    /// # Panics
    /// If the listener is not on a loopback address.
    pub async fn start(listener: TcpListener, config: FakeConfig) -> FakeStripe {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        assert!(
            addr.ip().is_loopback(),
            "the fake Stripe serves on loopback only, not on {addr}"
        );
        let shutdown = CancellationToken::new();
        // The server and the webhook sender end on shutdown (or drop).
        let outbox = Outbox::new(config.webhook_secret, shutdown.clone());
        if let Some(url) = config.webhook_url {
            outbox.deliver_to(url).expect("a new outbox has no URL yet");
        }
        let fake = Arc::new(Fake {
            state: Mutex::new(State::new()),
            base_url: format!("http://{addr}"),
            outbox,
        });
        tokio::spawn(server::serve(listener, fake.clone(), shutdown.clone()));
        FakeStripe {
            addr,
            fake,
            shutdown,
        }
    }

    /// Sends webhooks to `url` from now on, for a receiver that starts after the fake (it
    /// needs the fake's [`FakeStripe::url`]); events emitted before were only recorded.
    ///
    /// # Errors
    /// If webhooks already go to a URL (from [`FakeConfig`] or an earlier call).
    pub fn deliver_webhooks_to(&self, url: impl Into<String>) -> anyhow::Result<()> {
        self.fake.outbox.deliver_to(url.into())
    }

    /// `http://127.0.0.1:PORT`, for `stripe::ClientBuilder::url` (which adds the `/`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.fake.lock().requests.clone()
    }

    /// The next `times` requests whose method is `method` and whose path starts with
    /// `path_prefix` (e.g. `"/v1/subscriptions"`) get `fault` instead of the normal answer.
    pub fn fail_next(&self, method: &str, path_prefix: &str, fault: Fault, times: u32) {
        self.fake.lock().faults.push(ArmedFault {
            method: method.to_owned(),
            path_prefix: path_prefix.to_owned(),
            fault,
            remaining: times,
        });
    }

    /// Whether events are sent from now on (see [`Delivery`]); either way they are
    /// recorded ([`FakeStripe::events`]) and listed by `GET /v1/events`.
    pub fn set_delivery(&self, delivery: Delivery) {
        self.fake.lock().delivery = delivery;
    }

    /// The `api_version` stamped on events generated from now on (default
    /// `2026-09-30.endive`). Only the stamp changes: objects keep that version's shape.
    pub fn set_api_version(&self, version: &str) {
        self.fake.lock().api_version = version.to_owned();
    }

    /// Every webhook endpoint made through `/v1/webhook_endpoints` and not deleted, oldest
    /// first, without their secrets. They do not change where the fake delivers (that stays
    /// [`FakeConfig::webhook_url`]).
    pub fn webhook_endpoints(&self) -> Vec<Value> {
        self.fake
            .lock()
            .webhook_endpoints
            .values()
            .cloned()
            .collect()
    }

    /// Every event generated, delivered or not, in order.
    pub fn events(&self) -> Vec<Value> {
        self.fake.lock().events.clone()
    }

    /// Stops accepting connections and delivering webhooks.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
