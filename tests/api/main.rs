//! Integration tests: the real app on port 0 against a fresh database per test.
//! Run through `scripts/test.sh`, which starts a scratch Postgres and exports DATABASE_URL.

mod attach_safety;
mod bad_input;
mod balances;
mod cli_input;
mod console;
mod console_browser;
mod daemon;
mod helpers;

mod convergence;
mod customer_search;
mod customer_view;
mod customers;
mod customers_cli;
mod engine;
mod entities;
mod events_api;
mod fake_accounts;
mod fake_payments;
mod fake_stripe;
mod handlers;
mod hardening;
mod health;
mod idempotency;
mod lifecycle;
mod logs;
mod metrics;
mod ops_cli;
mod payment_truth;
mod plan_change_convergence;
mod plan_changes;
mod plan_history;
mod real_accounts;
mod reward_convergence;
mod rewards;
mod same_second;
mod stripe_objects;
mod stripe_side;
mod systemd_notify;
mod timeline;
mod trials;
mod usage;
mod webdriver;
mod webhook;
