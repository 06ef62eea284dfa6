//! Stripe: the webhook signature, the event envelope and the API client. (The fake API the
//! tests and `scripts/run.sh` use in place of Stripe is `crates/fake-stripe`.)

pub mod client;
pub mod event;
pub mod ids;
pub mod signature;
