//! # stripe-reconciler
//!
//! Keeps a billing system's customer/plan store in sync with Stripe.
//!
//! ```text
//! Stripe ──POST──▶ http::webhook ──verify (stripe::signature)──▶ ingest ──▶ outbox (append)
//!                                                                              │
//!                                     events (log) + jobs (queue) in Postgres ◀┘
//!                                                                              │ claim
//!                                                                              ▼
//!                                        store ◀── sync ◀── appliers ◀───── outbox::Engine
//!                                          ▲        ▲     (in the claim tx)    │ (workers,
//!                                          │        │                          ▼  retries)
//!                                          │        └────────────────────── billing ──▶ Stripe
//!                                          │              jobs ────────────────┘
//!                                          │               ▲
//! app ──/v1 JSON──▶ http ────┐             │               │ outbox::enqueue
//! ops ──/console──▶ console ─┼──▶ ops (use cases, ops::Error) ──▶ views (typed answers)
//! ops ──argv─────▶ cli ──────┘     (domain types in)
//! ```
//!
//! The three front doors only translate: bytes, forms or argv into [`domain`] types and an
//! [`ops`] call; its [`views`] into JSON, HTML or text. Neither the console nor the CLI
//! imports `http`; the API and the console share [`web`] (bodies, errors → status).
//!
//! Layout, one concept a file. Beside this crate: `crates/outbox` (the outbox itself) and
//! `crates/fake-stripe` (the Stripe stand-in for tests and `scripts/run.sh`, a dev-dependency:
//! the product binary has no fake).
//! - [`config`]: layered settings (defaults < file < environment): their shape (`mod.rs`),
//!   the layers and `ENV_CONTRACT` (`load.rs`), validation and the Stripe scope
//!   (`validate.rs`), `ConfigError`; [`secret::Secret`], a value `Debug` never shows.
//! - [`app`]: builds and runs the daemon; `main` and the tests share it.
//! - [`domain`]: values parsed once (ids, amounts, quantities, balance ops), `FromStr` and
//!   serde, refused in the API's words.
//! - [`ops`]: the use cases (customers, search, balances, usage, invoices, entities, attach,
//!   plan changes, rewards, timeline, events) on a small context (pool, catalog, Stripe),
//!   with one error type, `ops::Error`.
//! - [`views`]: the typed answers of `ops` (customer, plan, balance, invoice, entity,
//!   request, timeline entry, page), `Serialize`d by the API, rendered by the console,
//!   printed by the CLI.
//! - [`web`]: what the API and the console share: the response type, bounded bodies, the
//!   peer address, and errors → status, code and body in one place (`web/error.rs`).
//! - [`http`]: server, the `/v1` route table (`http/routes.rs`: 404s and 405s), the `/v1`
//!   handlers (HTTP ⇄ ops), the OpenAPI document made from them (`http/openapi.rs`,
//!   `docs/openapi.json`); webhooks, health, metrics. Mounts the console.
//! - [`console`]: the operator console under `/console` (server-rendered HTML, signed session
//!   cookies, CSRF tokens), forms ⇄ ops, with a state of its own.
//! - [`cli`]: the command line (argv ⇄ ops); `main.rs` only parses and calls it.
//! - [`ingest`]: Stripe deliveries into the outbox's log, scoped to the daemon's mode/account.
//! - [`audit`]: the store compared with what Stripe has (changed customers and a sample, or
//!   all), differences counted, recorded and repaired (`audit`, and periodically in the daemon).
//! - [`catchup`]: events Stripe's Events API lists that no webhook brought, stored as if
//!   delivered (`catch-up`, and periodically in the daemon).
//! - [`appliers`]: what each Stripe event does to the store, inside the claim transaction
//!   (subscriptions, checkouts, invoices, customers, discounts and coupons): each parses its
//!   event and has [`sync`] write the Stripe object it carries; the subscription and invoice
//!   appliers take a wave of independent events at once (`handle_many`).
//! - [`sync`]: a Stripe object → the store, in one place for the appliers, `billing`, the
//!   audit and `reconcile`: subscriptions (a plan's state, same-second ties), discounts and
//!   coupons, and the mapping they need (our customer for a Stripe object, the plans of
//!   Stripe prices).
//! - [`requests`]: the durable request (recorded with its idempotency key or the earlier one
//!   returned, carried out by a job under a lease, finished or failed, waited for), written
//!   once; attach, plan change and reward grant are one file each. [`pending`] re-exports
//!   its wait for the front doors.
//! - [`jobs`]: the outbound jobs' arguments, enqueued by `ops`, `appliers` and `sync`.
//! - [`billing`]: the outbound Stripe workflows that run those jobs (Stripe customers,
//!   attaches, the catalog's Stripe objects and coupons, rewards, usage billing).
//! - [`changes`]: an operator's plan changes (cancel, uncancel, quantity), checked and queued
//!   for `billing`; `ops::plan_changes` calls it.
//! - [`rewards`]: a reward or a promotion code someone asks for, checked (a code looked up in
//!   Stripe) for an attach, or recorded and queued for `billing` for a live subscription.
//! - [`catalog`]: features, plans and rewards from TOML, validated.
//! - [`access`]: which subscription statuses grant access (`billing.past_due_access`): domain
//!   policy the store and the audit apply, not a use case.
//! - [`store`]: SQL only: customers, plans, balances, invoices, attaches, catalog versions,
//!   discounts and coupons, reward grants, the timeline's activity (written by triggers; the
//!   writer names its source), entities (a customer's teams: their plans and balances kept
//!   under a holder row of their own, so the plans and balances code serves them unchanged).
//!   A subscription's state is applied one at a time (`subscription_sync`: an event's common
//!   case in one call, balances only when they change) or, for a batch's common case, many
//!   together in set-based statements (`subscription_states`); invoices,
//!   timeline entries and links have `_many` forms too, whose input rows `rows` writes once
//!   for many and for one.
//!   Balances are a folder, `store/balances/`: the balance and its reads (`mod.rs`),
//!   provisioning from the held plans, resets (renewal and clock), edits, usage (`track` and
//!   its reads).
//! - [`stripe`]: `signature` (pure HMAC verification), `event` (the envelope we index),
//!   `client` (the transport: async-stripe with idempotency keys, errors and their classes),
//!   the calls by object (`customers`, `catalog`, `subscriptions`, `checkout`, `coupons`),
//!   `objects`, `invoice`, `fields` and `discount` (the fields we read), `ids`.
//! - [`db`]: the pool and the embedded migrations.
//! - [`telemetry`], [`metrics`], [`systemd`]: logs, Prometheus metrics, sd_notify.
//!
//! Dependencies point one way: `http`, `console` and `cli` know `ops`, `domain` and `views`
//! (`http` and `console` also `web`); `ops` knows `store`, `jobs` (through
//! `outbox::enqueue`), `changes`, `rewards` (whose promotion-code lookup is the one Stripe
//! call a request waits on) and `pending`; the outbox knows appliers and jobs only through
//! its registry; `appliers` know `sync`, `store` and `jobs`; `sync` knows `store` and `jobs`;
//! `billing` knows `sync` (to record what Stripe returned the way webhooks do), `store` and
//! `stripe::client`, and never `appliers` (nor the audit and `reconcile`, which use `sync`
//! too); `store` knows only SQL. SQL lives in `store` and the outbox crate. Nothing below reaches back up into a
//! front door (`tests/module_cycles.rs` fails on an import cycle between the daemon's
//! top-level modules).

// The server's connection future holds the console's page futures, whose types are deep.
#![recursion_limit = "256"]

pub mod access;
pub mod app;
pub mod appliers;
pub mod audit;
pub mod billing;
pub mod catalog;
pub mod catchup;
pub mod changes;
pub mod cli;
pub mod config;
pub(crate) mod console;
pub mod db;
pub mod domain;
pub(crate) mod http;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub(crate) mod ops;
pub mod pending;
pub mod requests;
pub mod rewards;
pub mod secret;
pub mod store;
pub mod stripe;
pub mod sync;
pub mod systemd;
pub mod telemetry;
pub(crate) mod views;
pub(crate) mod web;
