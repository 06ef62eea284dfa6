//! # stripe-reconciler
//!
//! Keeps a billing system's customer/plan store in sync with Stripe.
//!
//! ```text
//! Stripe ──POST──▶ http::webhook ──verify (stripe::signature)──▶ ingest (group commit)
//!                                                                  │
//!                          events (log) + jobs (queue) in Postgres ◀┘
//!                                                                  │ claim (SKIP LOCKED)
//!                                                                  ▼
//! app ──/v1──▶ http::{customers, attach} ──▶ store ◀── handlers ◀── engine (workers,
//!                    │ enqueue job                     │            retries, dead letters)
//!                    └──────────────▶ jobs             └──▶ stripe::client ──▶ Stripe
//! ops ──CLI──▶ cli::{serve, status, events, reconcile, replay, ...} ──▶ the same functions
//! ```
//!
//! Layout, one concept a file:
//! - [`config`]: layered settings (defaults < file < environment), [`config::Secret`].
//! - [`app`]: builds and runs the daemon; `main` and the tests share it.
//! - [`http`]: server, routing, errors → responses in one place (`http/error.rs`), handlers
//!   for webhooks, health, metrics, customers/check/track and attaches.
//! - [`ingest`]: the group-committing writer that makes a 2xx mean "stored".
//! - [`engine`]: worker loops that claim, apply, retry and dead-letter queued work; handlers
//!   are registered by event type and job kind.
//! - [`handlers`]: what each Stripe event does to the store, and the outbound jobs (Stripe
//!   customers, attaches, usage billing) that call Stripe.
//! - [`catalog`]: features and plans from TOML, validated and versioned.
//! - [`access`]: which subscription statuses grant access (`billing.past_due_access`).
//! - [`store`]: SQL only: events, customers, plans, balances, invoices, attaches.
//! - [`stripe`]: `signature` (pure HMAC verification), `event` (the envelope we index),
//!   `client` (async-stripe with idempotency keys).
//! - `crates/fake-stripe` (not in this crate): the Stripe stand-in for tests and `run.sh`.
//! - [`db`]: the pool and the embedded migrations.
//! - [`cli`]: the command line; `main.rs` only parses and calls it.
//! - [`telemetry`], [`metrics`], [`systemd`]: logs, Prometheus metrics, sd_notify.
//!
//! Dependencies point one way: `http` knows `ingest`, `engine`'s enqueue and `store`; the
//! engine knows handlers only through its registry; handlers know `store` and
//! `stripe::client`; `store` knows only SQL. Nothing below reaches back up into `http`.

pub mod access;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod db;
pub mod engine;
pub mod handlers;
pub(crate) mod http;
pub mod ingest;
pub mod metrics;
pub mod store;
pub mod stripe;
pub mod systemd;
pub mod telemetry;
