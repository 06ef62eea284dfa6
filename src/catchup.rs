//! Catching up from Stripe's Events API: every event of the types the daemon applies,
//! created since a time, stored through the path a webhook takes (deduplicated by id, marked
//! `received_via = catch_up`), then applied in order by the workers. Safe while the daemon
//! runs: an event both delivered and listed is stored once.
//!
//! `stripe-reconciler catch-up --since` runs it once (after an outage longer than Stripe's
//! retries, or a restore from backup); the daemon runs it every
//! `stripe.catch_up_interval_secs`, from where its previous run started (less an overlap),
//! so a webhook lost on the way is repaired within minutes.

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::future::join_all;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::ingest::{Ingest, Stored};
use crate::stripe::client::StripeApi;
use crate::stripe::event::Envelope;

/// Stripe keeps events for 30 days.
const RETENTION_SECS: i64 = 30 * 86_400;

/// Each periodic run looks this far behind where the previous one started: events become
/// listable a moment after they are created.
const OVERLAP_SECS: i64 = 120;

/// What one run found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Events Stripe listed.
    pub listed: u64,
    /// Stored now (with `dry_run`: would be).
    pub stored: u64,
    /// Held already (delivered as webhooks, or caught up before).
    pub known: u64,
}

/// Lists the events of `types` created since `since` (Unix seconds, at most 30 days back)
/// and stores those the log lacks; with `ingest` `None`, only counts them (a dry run).
pub async fn run(
    api: &StripeApi,
    pool: &PgPool,
    ingest: Option<&Ingest>,
    since: i64,
    types: &[&str],
) -> anyhow::Result<CatchUp> {
    let since = since.max(Utc::now().timestamp() - RETENTION_SECS);
    let mut found = CatchUp::default();
    for chunk in types.chunks(20) {
        let mut after: Option<String> = None;
        loop {
            let page = api.list_events(since, chunk, after.as_deref()).await?;
            after = page
                .events
                .last()
                .and_then(|e| e["id"].as_str().map(str::to_owned));
            let page_found = store(pool, ingest, &page.events).await?;
            found.listed += page_found.listed;
            found.stored += page_found.stored;
            found.known += page_found.known;
            if !page.has_more || after.is_none() {
                break;
            }
        }
    }
    if ingest.is_some() {
        crate::metrics::caught_up(found.stored, found.known);
    }
    Ok(found)
}

/// Stores one page's events the log lacks, concurrently (the appender commits them
/// together).
async fn store(
    pool: &PgPool,
    ingest: Option<&Ingest>,
    events: &[Value],
) -> anyhow::Result<CatchUp> {
    let ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    let known = outbox::log::existing(pool, &ids).await?;
    let mut found = CatchUp {
        listed: events.len() as u64,
        known: known.len() as u64,
        ..CatchUp::default()
    };
    let missing: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["id"]
                .as_str()
                .is_some_and(|id| !known.iter().any(|k| k == id))
        })
        .collect();
    let Some(ingest) = ingest else {
        found.stored = missing.len() as u64;
        return Ok(found);
    };
    let stores = missing.into_iter().filter_map(|event| {
        let body = serde_json::to_vec(event).ok()?;
        match Envelope::parse(&body) {
            Ok(envelope) => Some(ingest.store_via(envelope, Bytes::from(body), "catch_up")),
            Err(error) => {
                tracing::warn!(%error, "catch-up: an event Stripe listed does not parse");
                None
            }
        }
    });
    for stored in join_all(stores).await {
        match stored? {
            Stored::New => found.stored += 1,
            Stored::Duplicate => found.known += 1, // a webhook brought it meanwhile
        }
    }
    Ok(found)
}

/// Runs catch-up every `interval` until `shutdown`: the first run from `window` before the
/// newest event held (or now), each later one from where the previous one started.
pub async fn periodically(
    api: StripeApi,
    pool: PgPool,
    ingest: Ingest,
    interval: Duration,
    window: Duration,
    shutdown: CancellationToken,
) {
    let types = crate::appliers::event_types();
    let mut from: Option<i64> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let started = Utc::now().timestamp();
        let since = match from {
            Some(previous) => previous - OVERLAP_SECS,
            None => {
                let newest = outbox::log::newest_created(&pool).await.ok().flatten();
                newest.unwrap_or(started).min(started) - window.as_secs() as i64
            }
        };
        match run(&api, &pool, Some(&ingest), since, &types).await {
            Ok(found) => {
                if found.stored > 0 {
                    tracing::warn!(
                        stored = found.stored,
                        listed = found.listed,
                        "catch-up stored events no webhook had brought"
                    );
                }
                from = Some(started);
            }
            Err(error) => tracing::warn!(%error, "catch-up failed; trying again next time"),
        }
    }
}
