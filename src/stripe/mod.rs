//! Stripe: the webhook signature, the event envelope, the API client (`client`: the calls'
//! transport, keys and error classes; the calls themselves by concept: `customers`,
//! `catalog`, `subscriptions`, `checkout`, `coupons` for coupons, promotion codes and
//! discounts, `account`) and the fields of Stripe objects we read (`objects`, `discount`). (The fake API the tests and `scripts/run.sh` use in place of
//! Stripe is `crates/fake-stripe`.)

pub mod account;
pub mod catalog;
pub mod checkout;
pub mod client;
pub mod coupons;
pub mod customers;
pub mod discount;
pub mod event;
pub mod fields;
pub mod ids;
pub mod invoice;
pub mod objects;
pub mod signature;
pub mod subscriptions;
