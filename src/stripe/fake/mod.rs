//! A stateful fake of the Stripe API, for tests and local runs without network access.
//!
//! [`FakeStripe`] serves the slice of `/v1` the daemon uses (customers, products, prices,
//! subscriptions, checkout sessions, invoice items, invoices) with objects shaped exactly as
//! API version `2026-09-30.endive` sends them, so async-stripe's strict decoding accepts
//! them. It honours `Idempotency-Key` like Stripe (replay with `Idempotent-Replayed: true`,
//! 400 `idempotency_error` for other parameters), records every request, injects faults on
//! demand, and sends signed webhooks when things happen, in Stripe's order.
//!
//! Layout: `server` (HTTP, auth, faults, idempotency) → `api` (routing, errors) → the
//! endpoints in `catalog`, `subscriptions`, `checkout`, `invoices`, with `lifecycle` for
//! what a subscription goes through → `objects`, `billing`, `lines` (Stripe-shaped JSON);
//! `state` holds everything behind one lock; `webhooks` wraps events and delivers them;
//! `form` reads Stripe's form encoding; `hosted` is the checkout page.
//!
//! Tests drive what a customer or the passage of time would do: [`FakeStripe::complete_checkout`]
//! (or the hosted page at `{url}/checkout/{id}`), [`FakeStripe::renew`],
//! [`FakeStripe::pay_invoice`]. These wait until their webhooks were delivered; they fail
//! if the change is refused (unknown id, wrong state: nothing changes) or if a webhook could
//! not be delivered after retries (the change stands, the event is in [`FakeStripe::events`]).

mod api;
mod billing;
mod catalog;
mod checkout;
mod form;
mod hosted;
mod invoices;
mod lifecycle;
mod lines;
mod objects;
mod server;
mod state;
mod subscriptions;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Secret;
use api::ApiError;
use state::{ArmedFault, State};
use webhooks::{Outbox, PendingEvent};

/// Where the fake sends webhooks; with no URL, events are only recorded ([`FakeStripe::events`]).
#[derive(Clone, Debug, Default)]
pub struct FakeConfig {
    pub webhook_url: Option<String>,
    /// Signs deliveries like Stripe; without it they carry no `Stripe-Signature`.
    pub webhook_secret: Option<Secret>,
}

/// A failure to inject with [`FakeStripe::fail_next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 500 `api_error` with `Stripe-Should-Retry: true`; the request has no effect.
    Status500,
    /// 429 `rate_limit`; the request has no effect.
    Status429,
    /// The request takes effect at once but its answer is held back this long.
    Delay(Duration),
    /// 400 `invalid_request_error` (a refusal no retry can change); no effect.
    Status400,
}

/// One `/v1` request as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Without the query string.
    pub path: String,
    pub idempotency_key: Option<String>,
    /// The decoded parameters: the form body, or the query string of a GET.
    pub form: Vec<(String, String)>,
    /// The status it was answered with.
    pub status: u16,
}

/// A running fake; it serves until [`FakeStripe::shutdown`] or until dropped.
pub struct FakeStripe {
    addr: SocketAddr,
    fake: Arc<Fake>,
    shutdown: CancellationToken,
}

/// What the server and the test-facing methods share.
struct Fake {
    state: Mutex<State>,
    base_url: String,
    outbox: Outbox,
}

impl Fake {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a state change, queues its events under the same lock, then waits until they
    /// were delivered.
    async fn act<T>(
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

    async fn complete_checkout(&self, session_id: &str) -> anyhow::Result<()> {
        self.act(|state| Ok(((), checkout::complete(state, session_id)?)))
            .await
    }
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

    /// Gives the customer a default payment method (`invoice_settings.default_payment_method`).
    ///
    /// # Panics
    /// If there is no such customer.
    pub fn set_default_payment_method(&self, customer_id: &str) {
        let mut state = self.fake.lock();
        assert!(
            state.customers.contains_key(customer_id),
            "fake Stripe: no customer {customer_id}"
        );
        checkout::set_default_payment_method(&mut state, customer_id);
    }

    /// The customer pays the checkout session: the subscription is created (active, its
    /// first invoice paid), the session completes, and `customer.subscription.created`,
    /// `invoice.paid` and `checkout.session.completed` are delivered in that order.
    pub async fn complete_checkout(&self, session_id: &str) -> anyhow::Result<()> {
        self.fake.complete_checkout(session_id).await
    }

    /// The open session expires unpaid: `checkout.session.expired` is delivered.
    pub async fn expire_checkout(&self, session_id: &str) -> anyhow::Result<()> {
        self.fake
            .act(|state| Ok(((), checkout::expire(state, session_id)?)))
            .await
    }

    /// The period ends: the subscription's items move on one interval and a draft
    /// `subscription_cycle` invoice for the new period is created (with any pending invoice
    /// items); `invoice.created` is delivered. Returns the invoice id.
    pub async fn renew(&self, subscription_id: &str) -> anyhow::Result<String> {
        self.fake
            .act(|state| invoices::renew(state, subscription_id))
            .await
    }

    /// The invoice is finalized and paid: `customer.subscription.updated` (what changed since
    /// the renewal, or the status becoming `active`) then `invoice.paid` are delivered.
    pub async fn pay_invoice(&self, invoice_id: &str) -> anyhow::Result<()> {
        self.fake
            .act(|state| Ok(((), invoices::pay(state, invoice_id)?)))
            .await
    }

    /// The subscription ends now (as at the end of a period it was set to cancel at):
    /// `customer.subscription.deleted` is delivered.
    pub async fn cancel_subscription(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .act(|state| Ok(((), lifecycle::end(state, subscription_id)?)))
            .await
    }

    /// Changes the status behind the daemon's back: no webhook.
    ///
    /// # Panics
    /// If there is no such subscription.
    pub fn set_subscription_status(&self, subscription_id: &str, status: &str) {
        let mut state = self.fake.lock();
        let subscription = state
            .subscriptions
            .get_mut(subscription_id)
            .unwrap_or_else(|| panic!("fake Stripe: no subscription {subscription_id}"));
        subscription["status"] = Value::String(status.to_owned());
    }

    /// The account loses a price (as when the key now points at another account, or test
    /// data was cleared): requests naming it get `No such price`.
    ///
    /// # Panics
    /// If there is no such price.
    pub fn delete_price(&self, price_id: &str) {
        let removed = self.fake.lock().prices.remove(price_id);
        assert!(removed.is_some(), "fake Stripe: no price {price_id}");
    }

    pub fn prices(&self) -> Vec<Value> {
        self.fake.lock().prices.values().cloned().collect()
    }

    pub fn customers(&self) -> Vec<Value> {
        self.fake.lock().customers.values().cloned().collect()
    }

    pub fn subscriptions(&self) -> Vec<Value> {
        self.fake.lock().subscriptions.values().cloned().collect()
    }

    pub fn invoices(&self) -> Vec<Value> {
        self.fake.lock().invoices.values().cloned().collect()
    }

    pub fn invoice_items(&self) -> Vec<Value> {
        self.fake.lock().invoice_items.values().cloned().collect()
    }

    pub fn checkout_sessions(&self) -> Vec<Value> {
        self.fake.lock().sessions.values().cloned().collect()
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
