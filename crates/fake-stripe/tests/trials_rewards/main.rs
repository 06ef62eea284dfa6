//! Issue 17 in the fake: trials (`trials`), coupons and promotion codes (`coupons`),
//! discounts on subscriptions and their invoices (`discounts`), both through Checkout
//! (`checkout`), and the new objects and events decoded by async-stripe's own client and
//! types (`shapes`).
//!
//! The fake's clock is frozen in each test, so periods and amounts land on exact seconds.

#[path = "../common/mod.rs"]
mod common;

mod checkout;
mod coupons;
mod discounts;
mod helpers;
mod shapes;
mod trials;
