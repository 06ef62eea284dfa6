//! A stateful fake of the Stripe API, for tests and local runs without network access.
//!
//! [`FakeStripe`] serves the slice of `/v1` the daemon uses (customers, products, prices,
//! subscriptions, checkout sessions, invoice items, invoices, PaymentIntents, coupons,
//! promotion codes, events, webhook endpoints) with objects shaped exactly as API version
//! `2026-09-30.endive` sends them, so async-stripe's strict decoding accepts them. It honours
//! `Idempotency-Key` like Stripe (replay with `Idempotent-Replayed: true`, 400
//! `idempotency_error` for other parameters), `expand[]` on subscriptions and invoices (see
//! `expand`), records every request, injects faults on demand, and sends signed webhooks
//! when things happen, in Stripe's order.
//!
//! Layout: `server` (HTTP, auth, faults, idempotency) → `api` (routing, errors, list pages) →
//! the endpoints in `customers`, `catalog`, `subscriptions`, `checkout`, `invoices`,
//! `coupons` (coupons and promotion codes), `events` (the Events API) and `endpoints`
//! (webhook endpoints, checked against `event_types`), with `lifecycle` for how a
//! subscription starts and ends, `trials` for a trial and how it ends, `discounts` for
//! coupons redeemed on a subscription and what they take off its invoices, `cancellation`
//! for `DELETE /v1/subscriptions/{id}`, `prorations` for what a change mid-period credits
//! and charges, `payments` for charging its invoices afterwards, `transitions` for the
//! status changes Stripe makes on its own (unpaid, expired, paused, resumed) and `intents`
//! for PaymentIntents → `objects`, `billing`, `lines` (Stripe-shaped JSON); `expand` inlines
//! objects in answers; `state` holds everything behind one lock (and the fake's clock);
//! `webhooks` wraps events and delivers them; `form` reads Stripe's form encoding; `hosted`
//! is the checkout page; `signature` signs deliveries.
//!
//! Customers send `customer.created` (first, before anything the customer does, also when a
//! checkout makes the customer), `customer.updated` (with `previous_attributes`, if anything
//! changed) and `customer.deleted` (after `customer.subscription.deleted` for each of its
//! subscriptions that had not ended); a deleted customer retrieves as `deleted: true` and is
//! `No such customer` to everything else. `GET /v1/events` lists every event generated in
//! the last 30 days of the fake's clock, newest first, with Stripe's paging and filters,
//! whether or not its webhook was sent ([`Delivery::Drop`] loses webhooks on purpose).
//!
//! A crate of its own so the daemon's binary contains no fake: the daemon's tests take it as a
//! dev-dependency, and `scripts/run.sh` runs its `fake-stripe` binary (`src/main.rs`).
//!
//! A subscription's items change through `POST /v1/subscriptions/{id}`, prorated as
//! `proration_behavior` says (`create_prorations`, Stripe's default: pending invoice items
//! that the subscription's next renewal picks up; `always_invoice`: invoiced and charged at
//! once; `none`), and it ends at once through `DELETE /v1/subscriptions/{id}` (with
//! `prorate` and `invoice_now`). [`FakeStripe::freeze_clock`] lets a test prorate at an
//! exact second; [`FakeStripe::pending_invoice_items`] shows what waits.
//!
//! Trials (`trial_period_days`, `trial_end`, `trial_settings`, on subscriptions and Checkout
//! Sessions' `subscription_data`) start `trialing` with a paid $0 invoice and need no
//! payment method; [`FakeStripe::end_trial`], [`FakeStripe::tick`] (after
//! [`FakeStripe::advance_clock`]) or `trial_end=now` end them as Stripe does, with or without
//! a payment method (see `trials`). Coupons (`/v1/coupons`) and promotion codes
//! (`/v1/promotion_codes`) become discounts through `discounts[...]` on subscriptions and
//! Checkout Sessions, or a code typed at checkout
//! ([`FakeStripe::complete_checkout_with_code`]); invoices show what they take off (see
//! `discounts`).
//!
//! Payments follow the customer's payment method ([`PaymentMethodKind`]): a card succeeds, a
//! 3-D Secure card waits for authentication, a declining card fails, a bank debit is
//! `processing` until a test settles it. Every finalized subscription invoice with something
//! due has a PaymentIntent (one with nothing due, as a trial's, is paid without one).
//! PaymentIntent events (`payment_intent.*`) are not sent; the customer, invoice,
//! subscription, discount, coupon, promotion code and checkout events are. Of an invoice's
//! own events the fake sends `invoice.created` (for drafts it makes), `invoice.paid`,
//! `invoice.payment_failed`, `invoice.payment_action_required` and `invoice.voided`, not
//! `invoice.finalized` or `invoice.payment_succeeded`.
//!
//! Tests drive what a customer or the passage of time would do:
//! [`FakeStripe::complete_checkout`] / [`FakeStripe::complete_checkout_with`] /
//! [`FakeStripe::complete_checkout_with_code`] (or the hosted page at `{url}/checkout/{id}`),
//! [`FakeStripe::renew`], [`FakeStripe::charge_invoice`], [`FakeStripe::pay_invoice`],
//! [`FakeStripe::fail_invoice_payment`], [`FakeStripe::settle_async_payment`],
//! [`FakeStripe::mark_unpaid`], [`FakeStripe::expire_incomplete`],
//! [`FakeStripe::pause_subscription`], [`FakeStripe::resume_subscription`],
//! [`FakeStripe::set_cancel_at`], [`FakeStripe::trial_will_end`], [`FakeStripe::end_trial`],
//! [`FakeStripe::tick`], [`FakeStripe::advance_clock`]; and what someone does in the
//! dashboard: [`FakeStripe::create_customer_in_dashboard`],
//! [`FakeStripe::update_customer_in_dashboard`], [`FakeStripe::delete_customer`],
//! [`FakeStripe::subscribe_in_dashboard`], [`FakeStripe::create_coupon_in_dashboard`],
//! [`FakeStripe::create_promotion_code_in_dashboard`] (their events carry a `request` id of
//! the dashboard's own). These wait until their webhooks were delivered; they fail if the
//! change is refused (unknown id, wrong state: nothing changes) or if a webhook could not be
//! delivered after retries (the change stands, the event is in [`FakeStripe::events`]).

mod api;
mod billing;
mod cancellation;
mod catalog;
mod checkout;
mod coupons;
mod customers;
mod discounts;
mod endpoints;
mod event_types;
mod events;
mod expand;
mod form;
mod hosted;
mod intents;
mod invoices;
mod lifecycle;
mod lines;
mod objects;
mod payments;
mod prorations;
mod server;
mod signature;
mod state;
mod subscriptions;
mod transitions;
mod trials;
mod webhooks;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use api::ApiError;
use state::{ArmedFault, State};
use webhooks::{Outbox, PendingEvent};

/// Where the fake sends webhooks; with no URL, events are only recorded ([`FakeStripe::events`]).
#[derive(Clone, Debug, Default)]
pub struct FakeConfig {
    pub webhook_url: Option<String>,
    /// Signs deliveries like Stripe; without it they carry no `Stripe-Signature`.
    pub webhook_secret: Option<WebhookSecret>,
}

/// A webhook signing secret (`whsec_...`): `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
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

/// How a customer's payment method behaves when Stripe charges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentMethodKind {
    /// Charges succeed at once (today's behaviour; `set_default_payment_method` gives this).
    Card,
    /// The first charge needs 3-D Secure: the PaymentIntent is `requires_action`. Once the
    /// customer authenticated ([`FakeStripe::pay_invoice`], or at checkout), it charges like
    /// a card.
    ThreeDSecure,
    /// Charges are declined (`card_declined`): the PaymentIntent is `requires_payment_method`.
    Declining,
    /// A bank debit (SEPA/ACH): the PaymentIntent is `processing` until
    /// [`FakeStripe::settle_async_payment`] decides it.
    AsyncDebit,
}

/// Whether events reach the webhook URL ([`FakeStripe::set_delivery`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delivery {
    /// Events are sent to the webhook URL, in order (the default).
    #[default]
    Deliver,
    /// Events are generated, recorded and listed by `GET /v1/events`, but never sent: lost
    /// webhooks. Switching back to `Deliver` does not resend them.
    Drop,
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

    async fn complete_checkout(&self, session_id: &str, code: Option<&str>) -> anyhow::Result<()> {
        self.run(|state| checkout::complete(state, session_id, None, code))
            .await
    }

    /// A change that only returns its events.
    async fn run(
        &self,
        change: impl FnOnce(&mut State) -> Result<Vec<PendingEvent>, ApiError>,
    ) -> anyhow::Result<()> {
        self.act(|state| Ok(((), change(state)?))).await
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

    /// Gives the customer a default payment method (`invoice_settings.default_payment_method`)
    /// that charges like a card: the one it has if that is a card, else a new one.
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

    /// Gives the customer a new default payment method of `kind` (replacing any). New
    /// subscriptions charge it (`POST /v1/subscriptions`), as do
    /// [`FakeStripe::charge_invoice`] and renewals charged that way.
    ///
    /// # Panics
    /// If there is no such customer.
    pub fn set_default_payment_method_kind(&self, customer_id: &str, kind: PaymentMethodKind) {
        let mut state = self.fake.lock();
        assert!(
            state.customers.contains_key(customer_id),
            "fake Stripe: no customer {customer_id}"
        );
        intents::new_default_payment_method(&mut state, customer_id, kind);
    }

    /// The customer pays the checkout session: the subscription is created (active, its
    /// first invoice paid; `trialing` with a $0 invoice for a trial), the session completes,
    /// and `customer.subscription.created`, `customer.discount.created` (each discount the
    /// session applies), `invoice.paid` and `checkout.session.completed` are delivered in that
    /// order (`customer.created` first when the session made the customer). The customer's
    /// default payment method is kept if it is a card, else a new card replaces it; with
    /// `payment_method_collection=if_required` and nothing due now (a trial), none is
    /// collected and the session's `payment_status` is `no_payment_required`.
    pub async fn complete_checkout(&self, session_id: &str) -> anyhow::Result<()> {
        self.fake.complete_checkout(session_id, None).await
    }

    /// The customer pays the checkout session with a new payment method of `kind`, which
    /// becomes their default.
    ///
    /// - `Card`, `ThreeDSecure` (authenticated on the checkout page; the card is saved as one
    ///   that needs nothing more): as [`FakeStripe::complete_checkout`], paid.
    /// - `AsyncDebit`: the subscription starts `incomplete` (first invoice `open`, its
    ///   PaymentIntent `processing`); the session completes with `payment_status: "unpaid"`.
    ///   Delivered: `customer.subscription.created`, `checkout.session.completed`. Then
    ///   [`FakeStripe::settle_async_payment`] decides it.
    /// - `Declining`: refused (the checkout page refuses a declined card); nothing changes.
    ///
    /// Refused too for a session that collects no payment method (`if_required`, nothing
    /// due): its page asks for none.
    pub async fn complete_checkout_with(
        &self,
        session_id: &str,
        kind: PaymentMethodKind,
    ) -> anyhow::Result<()> {
        self.fake
            .run(|state| checkout::complete(state, session_id, Some(kind), None))
            .await
    }

    /// As [`FakeStripe::complete_checkout`], with a promotion code the customer typed on the
    /// checkout page (matched regardless of case among active codes). The session must have
    /// `allow_promotion_codes=true`; the code must be redeemable by the session's customer.
    /// Its coupon becomes a discount on the subscription (`customer.discount.created` after
    /// `customer.subscription.created`) and on its first invoice; the session shows it in
    /// `discounts` and its amounts. Refused, with nothing changed, otherwise.
    pub async fn complete_checkout_with_code(
        &self,
        session_id: &str,
        code: &str,
    ) -> anyhow::Result<()> {
        self.fake.complete_checkout(session_id, Some(code)).await
    }

    /// The open session expires unpaid: `checkout.session.expired` is delivered.
    pub async fn expire_checkout(&self, session_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| checkout::expire(state, session_id))
            .await
    }

    /// The period ends: the subscription's items move on one interval and a draft
    /// `subscription_cycle` invoice for the new period is created, with the customer's
    /// pending invoice items that are not for another subscription (this one's prorations
    /// as `proration: true` lines), which are then invoiced, less the subscription's
    /// discounts that still apply. Delivered: `customer.discount.deleted` for each discount
    /// that ended (a used `once`, a `repeating` past its end), then `invoice.created`.
    /// Refused for a subscription in a trial (its trial ends first: [`FakeStripe::end_trial`]).
    /// Returns the invoice id.
    pub async fn renew(&self, subscription_id: &str) -> anyhow::Result<String> {
        self.fake
            .act(|state| invoices::renew(state, subscription_id))
            .await
    }

    /// The customer pays the draft or open invoice (on the hosted invoice page, or by
    /// authenticating 3-D Secure): it is finalized and paid, its PaymentIntent `succeeded`;
    /// an `incomplete`, `past_due` or `unpaid` subscription becomes `active`.
    /// `customer.subscription.updated` (what changed since the renewal, or the status becoming
    /// `active`) then `invoice.paid` are delivered. Refused while its payment is `processing`.
    pub async fn pay_invoice(&self, invoice_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| payments::pay(state, invoice_id))
            .await
    }

    /// Stripe charges the draft or open invoice (as at a renewal) with the subscription's
    /// default payment method, else the customer's, as its kind says:
    /// - `Card`: as [`FakeStripe::pay_invoice`].
    /// - `Declining`, or no payment method: as [`FakeStripe::fail_invoice_payment`].
    /// - `ThreeDSecure`: the invoice is finalized `open`, its PaymentIntent `requires_action`;
    ///   an `active`/`trialing` subscription becomes `past_due`. Delivered:
    ///   `invoice.payment_action_required`, then `customer.subscription.updated` (if anything
    ///   changed).
    /// - `AsyncDebit`: the invoice is finalized `open`, its PaymentIntent `processing`; the
    ///   subscription is unchanged; nothing is delivered until
    ///   [`FakeStripe::settle_async_payment`].
    pub async fn charge_invoice(&self, invoice_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| payments::charge(state, invoice_id))
            .await
    }

    /// A charge attempt of a draft or open invoice fails (a renewal whose card is declined):
    /// the invoice is finalized `open`, `attempt_count` + 1, `next_payment_attempt` in three
    /// days, `hosted_invoice_url` set; its PaymentIntent `requires_payment_method` with a
    /// `card_declined` `last_payment_error`; an `active`/`trialing` subscription becomes
    /// `past_due`. Delivered in order: `invoice.payment_failed`, then
    /// `customer.subscription.updated` (if anything changed, a renewal's new period too).
    pub async fn fail_invoice_payment(&self, invoice_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| payments::fail(state, invoice_id))
            .await
    }

    /// A processing (`AsyncDebit`) first or renewal payment of invoice `invoice_id` settles.
    ///
    /// `succeeded`: PaymentIntent `succeeded`, invoice `paid`, subscription `active`.
    /// Delivered in order: `customer.subscription.updated` (if anything changed),
    /// `invoice.paid`, and if the subscription came from a Checkout Session,
    /// `checkout.session.async_payment_succeeded` (session `payment_status: "paid"`).
    ///
    /// Not `succeeded`: PaymentIntent `requires_payment_method` with an `insufficient_funds`
    /// `last_payment_error`; the invoice stays `open` (`attempt_count` at least 1). A first
    /// payment leaves the subscription `incomplete`; a renewal makes an `active` one
    /// `past_due`. Delivered in order: `invoice.payment_failed`,
    /// `customer.subscription.updated` (renewals only, if anything changed), and for a
    /// checkout `checkout.session.async_payment_failed` (`payment_status` stays "unpaid").
    ///
    /// Refused if the invoice's PaymentIntent is not `processing`.
    pub async fn settle_async_payment(
        &self,
        invoice_id: &str,
        succeeded: bool,
    ) -> anyhow::Result<()> {
        self.fake
            .run(|state| payments::settle(state, invoice_id, succeeded))
            .await
    }

    /// Stripe's retries are exhausted: a `past_due` subscription becomes `unpaid`;
    /// `customer.subscription.updated` is delivered. Refused in any other status.
    pub async fn mark_unpaid(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| transitions::mark_unpaid(state, subscription_id))
            .await
    }

    /// 23 hours passed without the first payment: `incomplete` → `incomplete_expired`
    /// (`ended_at` set); its open first invoice is voided and its PaymentIntent `canceled`.
    /// Delivered in order: `customer.subscription.updated`, `invoice.voided`. Refused if the
    /// subscription is not `incomplete`.
    pub async fn expire_incomplete(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| transitions::expire_incomplete(state, subscription_id))
            .await
    }

    /// Stripe pauses the `active`, `trialing` or `past_due` subscription (status `paused`, as
    /// at a trial's end without a payment method). Delivered in order:
    /// `customer.subscription.paused`, `customer.subscription.updated`.
    pub async fn pause_subscription(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| transitions::pause(state, subscription_id))
            .await
    }

    /// The trial of a `trialing` subscription ends as scheduled, at its `trial_end` (whatever
    /// the fake's clock says; events are stamped now): see the `trials` module for what
    /// happens with and without a payment method, per
    /// `trial_settings.end_behavior.missing_payment_method`. In short, delivered in order:
    /// `customer.subscription.trial_will_end` (unless already sent), then
    /// - with a payment method: `customer.subscription.updated` (→ `active`, the first paid
    ///   period from `trial_end`), `invoice.created` (`subscription_cycle`), and the charge's
    ///   events (`invoice.paid` for a card);
    /// - without, `create_invoice`: `customer.subscription.updated` (→ `active`),
    ///   `invoice.created`, `invoice.payment_failed`, `customer.subscription.updated`
    ///   (→ `past_due`);
    /// - without, `pause`: `customer.subscription.paused`, `customer.subscription.updated`;
    /// - without, `cancel`: `customer.subscription.deleted`.
    ///
    /// Refused if the subscription is not in a trial.
    pub async fn end_trial(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .act(|state| {
                let request = webhooks::EventRequest::default();
                let ending = trials::Ending::Scheduled;
                Ok((
                    (),
                    trials::end(state, subscription_id, ending, &request, None)?.1,
                ))
            })
            .await
    }

    /// Stripe's warning three days before a trial ends: `customer.subscription.trial_will_end`
    /// is delivered (the subscription as it is). Sent once per subscription: refused if it
    /// was sent already (by this, [`FakeStripe::tick`] or the trial's end) or if the
    /// subscription is not in a trial.
    pub async fn trial_will_end(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| trials::will_end(state, subscription_id))
            .await
    }

    /// Runs what the fake's clock has made due of trials, oldest subscription first: for each
    /// `trialing` subscription, `customer.subscription.trial_will_end` once the clock is
    /// three days or less before `trial_end` (once), and the trial's end (as
    /// [`FakeStripe::end_trial`]) once it is at or past it. Renewals are not run: they stay
    /// [`FakeStripe::renew`]'s. Use with [`FakeStripe::advance_clock`].
    pub async fn tick(&self) -> anyhow::Result<()> {
        self.fake.run(trials::tick).await
    }

    /// Resumes a paused subscription, as `POST /v1/subscriptions/{id}/resume` does: status
    /// `active`, a new period starting now (`billing_cycle_anchor` now), a paid invoice
    /// (`billing_reason` `subscription_update`). Delivered in order:
    /// `customer.subscription.resumed`, `customer.subscription.updated`, `invoice.paid`.
    pub async fn resume_subscription(&self, subscription_id: &str) -> anyhow::Result<()> {
        let request = webhooks::EventRequest::default();
        self.fake
            .run(|state| Ok(transitions::resume(state, subscription_id, &request)?.1))
            .await
    }

    /// As in the dashboard (flexible billing mode): the subscription will cancel at `at`
    /// (unix seconds): `cancel_at = at`, `cancel_at_period_end` false, `canceled_at` now,
    /// `cancellation_details.reason` `cancellation_requested`. `customer.subscription.updated`
    /// is delivered. (The API takes `cancel_at` on `POST /v1/subscriptions/{id}` too:
    /// seconds, `min_period_end`, `max_period_end`, `max_billed_until`, or `""` to clear.)
    pub async fn set_cancel_at(&self, subscription_id: &str, at: i64) -> anyhow::Result<()> {
        self.fake
            .run(|state| subscriptions::set_cancel_at(state, subscription_id, at))
            .await
    }

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

    /// The subscription ends now (as at the end of a period it was set to cancel at):
    /// `customer.subscription.deleted` is delivered. No prorations and no invoice, and
    /// pending invoice items are left alone; `DELETE /v1/subscriptions/{id}` is the API's
    /// way, with its `prorate` and `invoice_now`.
    pub async fn cancel_subscription(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| lifecycle::end(state, subscription_id, &Default::default()))
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

    /// A customer created in the dashboard (no API request the daemon made):
    /// `customer.created` is delivered. Returns its id (`cus_...`).
    pub async fn create_customer_in_dashboard(
        &self,
        name: Option<&str>,
        email: Option<&str>,
        metadata: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        self.fake
            .act(|state| customers::create_in_dashboard(state, name, email, metadata))
            .await
    }

    /// Changes a customer's name and/or email in the dashboard (`None`: unchanged):
    /// `customer.updated` (with `previous_attributes`) is delivered if anything changed.
    /// Refused for an unknown or deleted customer.
    pub async fn update_customer_in_dashboard(
        &self,
        id: &str,
        name: Option<&str>,
        email: Option<&str>,
    ) -> anyhow::Result<()> {
        self.fake
            .run(|state| customers::update_in_dashboard(state, id, name, email))
            .await
    }

    /// Deletes the customer, as `DELETE /v1/customers/{id}` does: its subscriptions that have
    /// not ended are canceled first (`customer.subscription.deleted` each, oldest first), then
    /// `customer.deleted` is delivered. Refused for an unknown or deleted customer.
    pub async fn delete_customer(&self, id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| {
                let request = customers::dashboard_request(state);
                customers::delete(state, id, &request)
            })
            .await
    }

    /// A subscription to `price` made in the dashboard (not by the daemon), with `metadata`:
    /// the same as `POST /v1/subscriptions` for that customer. A customer without a default
    /// payment method is given a card first; the first invoice is charged as the payment
    /// method's kind says (a card: `active` and paid). Delivered as on the API path:
    /// `customer.subscription.created`, then `invoice.paid` (or the failure's event).
    /// Returns the subscription id.
    pub async fn subscribe_in_dashboard(
        &self,
        customer: &str,
        price: &str,
        metadata: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        self.fake
            .act(|state| customers::subscribe_in_dashboard(state, customer, price, metadata))
            .await
    }

    /// A coupon made in the dashboard: `params` are those of `POST /v1/coupons` (e.g.
    /// `[("id", "SPRING"), ("percent_off", "25"), ("duration", "forever")]`).
    /// `coupon.created` is delivered. Returns its id. Refused as the API refuses.
    pub async fn create_coupon_in_dashboard(
        &self,
        params: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        self.fake
            .act(|state| coupons::create_in_dashboard(state, params))
            .await
    }

    /// A promotion code `code` for `coupon` made in the dashboard (active, for any customer):
    /// `promotion_code.created` is delivered. Returns its id (`promo_...`).
    pub async fn create_promotion_code_in_dashboard(
        &self,
        coupon: &str,
        code: &str,
    ) -> anyhow::Result<String> {
        self.fake
            .act(|state| coupons::create_code_in_dashboard(state, coupon, code))
            .await
    }

    /// The coupons that exist (deleted ones are left out), by id.
    pub fn coupons(&self) -> Vec<Value> {
        self.fake.lock().coupons.values().cloned().collect()
    }

    /// Every promotion code, in creation order.
    pub fn promotion_codes(&self) -> Vec<Value> {
        self.fake.lock().promotion_codes.values().cloned().collect()
    }

    /// Every discount made, in creation order, including those removed or ended.
    pub fn discounts(&self) -> Vec<Value> {
        self.fake.lock().discounts.values().cloned().collect()
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

    /// The customers that exist (deleted ones are left out).
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

    /// The customer's invoice items not yet on an invoice, oldest first: prorations waiting
    /// for their subscription's next invoice, and items created without `invoice`.
    pub fn pending_invoice_items(&self, customer_id: &str) -> Vec<Value> {
        self.fake
            .lock()
            .invoice_items
            .values()
            .filter(|item| item["customer"] == customer_id && item["invoice"].is_null())
            .cloned()
            .collect()
    }

    /// Every PaymentIntent, in creation order.
    pub fn payment_intents(&self) -> Vec<Value> {
        self.fake.lock().payment_intents.values().cloned().collect()
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
