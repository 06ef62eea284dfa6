//! Stripe: the webhook signature, the event envelope, the API client and the fields of
//! Stripe objects we read. (The fake API the tests and `scripts/run.sh` use in place of
//! Stripe is `crates/fake-stripe`.)

pub mod account;
pub mod client;
pub mod event;
pub mod ids;
pub mod objects;
pub mod signature;
