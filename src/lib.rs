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
//!                                                    engine (workers, retries, dead letters)
//! ops ──CLI──▶ cli::{serve, migrate, check-config, replay} ──▶ the same library functions
//! ```
//!
//! Layout, one concept a file:
//! - [`config`]: layered settings (defaults < file < environment), [`config::Secret`].
//! - [`app`]: builds and runs the daemon; `main` and the tests share it.
//! - [`http`]: server, routing, errors → responses in one place (`http/error.rs`), handlers.
//! - [`stripe`]: `signature` (pure HMAC verification), `event` (the envelope we index).
//! - [`ingest`]: the group-committing writer that makes a 2xx mean "stored".
//! - [`engine`]: worker loops that claim, apply, retry and dead-letter queued work.
//! - [`store`]: SQL only.
//! - [`db`]: the pool and the embedded migrations.
//! - [`cli`]: the command line; `main.rs` only parses and calls it.
//! - [`telemetry`]: tracing setup.
//! - [`metrics`]: Prometheus metric names, registration and one helper per fact.
//! - [`systemd`]: `READY=1`, `STOPPING=1` and the health-gated watchdog keep-alive.
//!
//! Dependencies point one way: `http` knows `ingest` and `store`; nothing below reaches up.

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
