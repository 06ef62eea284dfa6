//! Stripe: the webhook signature, the event envelope, the API client (with `coupons`:
//! coupons, promotion codes, discounts) and the fields of Stripe objects we read
//! (`objects`, `discount`). (The fake API the tests and `scripts/run.sh` use in place of
//! Stripe is `crates/fake-stripe`.)

pub mod account;
pub mod client;
pub mod coupons;
pub mod discount;
pub mod event;
pub mod ids;
pub mod objects;
pub mod signature;
