//! A Stripe object → the store, written in one place for everyone who learns of one: the
//! event appliers (the object an event carries), the billing workflows (what a Stripe call
//! returned), the audit and `reconcile` (what a read found). Each is applied the same way
//! whoever brings it, newest sighting wins, so the store converges in any order.
//!
//! What belongs here: turning a Stripe object we keep (a subscription into a plan's state, a
//! discount, a coupon) into store writes, and the mapping of Stripe objects to ours that it
//! needs. What does not: what an event means beyond its object (a timeline entry, an
//! attach's checkout, usage billing): that stays in `appliers`; calls to Stripe stay in
//! `billing`. Nothing here imports `appliers` or `billing`; both import this. Invoices and
//! checkout sessions are written from their events only, so their appliers still write them;
//! a Stripe customer's name and email go through `store::customers::sync_from_stripe` from
//! each of the places that read one.
//!
//! Mapping Stripe objects to ours:
//! - a Stripe customer → ours by the stored `stripe_id`, else by `metadata.customer_id` on
//!   the object (the first object that maps this way links the `stripe_id`);
//! - a subscription → a plan by the Stripe price ids stored for the plan, else by
//!   `metadata.plan_id` on the subscription, else on a price.
//!
//! Files: `customer` (our customer for a Stripe object), `prices` (the plans of Stripe
//! prices, remembered), `subscription` (a subscription's state, its same-second ties),
//! `discount` (a customer's discounts and the coupons they are redeemed from).

pub(crate) mod customer;
pub(crate) mod discount;
pub(crate) mod prices;
pub(crate) mod subscription;
