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
//! `coupons`, `promotion_codes`, `events` (the Events API) and `endpoints` (webhook
//! endpoints, checked against `event_types`), with `lifecycle` for how a subscription starts
//! and ends, `trials` for a trial and how it ends, `discounts` for coupons redeemed on a
//! subscription and `discount_amounts` for what they take off its invoices, `cancellation`
//! for `DELETE /v1/subscriptions/{id}`, `prorations` for what a change mid-period credits
//! and charges, `payments` for charging its invoices afterwards, `transitions` for the
//! status changes Stripe makes on its own (unpaid, expired, paused, resumed) and `intents`
//! for PaymentIntents → `objects`, `billing`, `lines` (Stripe-shaped JSON); `expand` inlines
//! objects in answers; `state` holds everything behind one lock (and the fake's clock, and
//! each [`RecordedRequest`]); `webhooks` wraps events and delivers them; `form` reads
//! Stripe's form encoding; `hosted` is the checkout page; `signature` signs deliveries.
//! `handle` is [`FakeStripe`], what a test holds: the fake as a whole in `handle/mod.rs`, then
//! a file per object family it drives and reads (`customers`, `checkout`, `invoices`,
//! `subscriptions`, `trials`, `coupons`, `catalog`) and the `clock`; `shared` is what it and
//! the server share (the state's lock, the base URL, the webhook outbox); `config` holds what
//! a test chooses ([`FakeConfig`], [`WebhookSecret`], [`Delivery`], [`Fault`],
//! [`PaymentMethodKind`]).
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
mod config;
mod coupons;
mod customers;
mod discount_amounts;
mod discounts;
mod endpoints;
mod event_types;
mod events;
mod expand;
mod form;
mod handle;
mod hosted;
mod intents;
mod invoices;
mod lifecycle;
mod lines;
mod objects;
mod payments;
mod promotion_codes;
mod prorations;
mod server;
mod shared;
mod signature;
mod state;
mod subscriptions;
mod transitions;
mod trials;
mod webhooks;

pub use config::{Delivery, FakeConfig, Fault, PaymentMethodKind, WebhookSecret};
pub use handle::FakeStripe;
pub use state::RecordedRequest;
