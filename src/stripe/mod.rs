//! Stripe's wire formats: the webhook signature and the event envelope.

pub mod client;
pub mod event;
pub mod fake;
pub mod signature;
