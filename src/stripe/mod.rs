//! Stripe: the webhook signature, the event envelope, the API client, and the fake API the
//! tests and `scripts/run.sh` use in place of Stripe.

pub mod client;
pub mod event;
pub mod fake;
pub mod ids;
pub mod objects;
pub mod signature;
