//! Changing and canceling subscriptions in the fake: `DELETE /v1/subscriptions/{id}`
//! (`cancel`), `proration_behavior` on `POST /v1/subscriptions/{id}` (`prorations`), and
//! the new shapes decoded by async-stripe's own client and types (`shapes`).
//!
//! The fake's clock is frozen in each test, so prorations land on exact seconds.

#[path = "../common/mod.rs"]
mod common;

mod cancel;
mod helpers;
mod prorations;
mod shapes;
