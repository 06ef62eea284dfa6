//! `catch-up` and `setup-webhook`: the Stripe account's side of receiving events.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outbox::Wakeup;
use tokio_util::task::TaskTracker;

use super::UsageError;
use crate::config::Settings;
use crate::ingest::Ingest;
use crate::stripe::account::API_VERSION;
use crate::stripe::client::StripeApi;
use crate::{appliers, catchup, db};

/// `setup-webhook --check` found the endpoint missing or different.
const ENDPOINT_DIFFERS: u8 = 1;

fn api(settings: &Settings, command: &str) -> anyhow::Result<StripeApi> {
    let stripe = &settings.stripe;
    let Some(key) = stripe.api_key.as_ref() else {
        return Err(UsageError(format!("{command} needs STRIPE_API_KEY")).into());
    };
    let timeout = Duration::from_millis(stripe.timeout_ms);
    Ok(StripeApi::new(key, &stripe.api_base, timeout)?)
}

/// Stores the events Stripe lists since `since` that the log lacks; they apply in order
/// (the daemon's workers, or the next one to start). With `dry_run`, only counts them.
pub async fn catch_up(
    settings: &Settings,
    since: DateTime<Utc>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let api = api(settings, "catch-up")?;
    let pool = db::pool(settings)?;
    let types = appliers::event_types();
    // Stored as the daemon would: events of another mode or account are kept, skipped.
    let scope = settings.scope()?;
    let tasks = TaskTracker::new();
    let ingest = (!dry_run).then(|| {
        Ingest::start(
            pool.clone(),
            &settings.ingest,
            scope,
            std::sync::Arc::new(Wakeup::default()),
            &tasks,
        )
    });
    let found = catchup::run(&api, &pool, ingest.as_ref(), since.timestamp(), &types).await?;
    drop(ingest);
    tasks.close();
    tasks.wait().await;
    if !dry_run && found.stored > 0 {
        // Running daemons hear of the new work at once (they would poll otherwise).
        let _ = outbox::queue::notify_peers(&pool, "cli").await;
    }
    let verb = if dry_run { "would store" } else { "stored" };
    println!(
        "listed {} events since {since}; {verb} {}, {} held already",
        found.listed, found.stored, found.known
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates (or checks, or fixes) the webhook endpoint for `url`: every event type the daemon
/// applies, at the API version it reads.
pub async fn setup_webhook(
    settings: &Settings,
    url: &str,
    check: bool,
) -> anyhow::Result<ExitCode> {
    let parsed = url.parse::<hyper::Uri>().ok();
    let valid = parsed.as_ref().is_some_and(|u| {
        matches!(u.scheme_str(), Some("https" | "http")) && u.host().is_some_and(|h| !h.is_empty())
    });
    if !valid || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UsageError(format!("--url must be an http(s) URL, not `{url}`")).into());
    }
    let api = api(settings, "setup-webhook")?;
    let wanted: Vec<&str> = appliers::event_types();
    let endpoints = api.list_webhook_endpoints().await?;
    let Some(endpoint) = endpoints.iter().find(|e| e["url"] == url) else {
        if check {
            println!("no webhook endpoint for {url}");
            return Ok(ExitCode::from(ENDPOINT_DIFFERS));
        }
        let created = api
            .create_webhook_endpoint(&key("rc-webhook", &[url]), url, &wanted)
            .await?;
        let secret = created["secret"].as_str().unwrap_or("(not shown)");
        println!(
            "created webhook endpoint {} for {url}: {} event types, API version {API_VERSION}",
            created["id"].as_str().unwrap_or("?"),
            wanted.len()
        );
        println!("signing secret (shown once): {secret}");
        println!(
            "To start using it without losing a delivery: set STRIPE_WEBHOOK_SECRET to the \
             current secret(s) followed by this one, comma-separated (old,new), restart the \
             daemon; when no delivery is signed with the old secret any more, remove it and \
             restart again (docs/RUNBOOK.md, \"Rotate the webhook secret\")."
        );
        return Ok(ExitCode::SUCCESS);
    };
    let id = endpoint["id"].as_str().unwrap_or_default();
    let enabled: BTreeSet<&str> = endpoint["enabled_events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .collect();
    let everything = enabled.contains("*");
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|t| !everything && !enabled.contains(t))
        .collect();
    let version = endpoint["api_version"].as_str();
    let version_differs = version.is_some_and(|v| v != API_VERSION);
    println!("webhook endpoint {id} for {url}");
    if missing.is_empty() {
        println!("  event types: all {} the daemon applies", wanted.len());
    } else {
        println!("  missing event types: {}", missing.join(", "));
    }
    if version_differs {
        println!(
            "  API version {} (the daemon reads {API_VERSION}; events still apply, but a \
             version cannot be changed on an endpoint: create a new one and rotate)",
            version.unwrap_or("?")
        );
    }
    if check || missing.is_empty() {
        let differs = !missing.is_empty() || version_differs;
        return Ok(ExitCode::from(if differs { ENDPOINT_DIFFERS } else { 0 }));
    }
    let mut types: Vec<&str> = enabled.iter().copied().collect();
    types.extend(&missing);
    let key = key(&format!("rc-webhook-{id}"), &types);
    api.update_webhook_endpoint_events(&key, id, &types).await?;
    println!("  added {} event types", missing.len());
    Ok(ExitCode::SUCCESS)
}

/// An idempotency key for `parts` under `prefix`, short whatever they are (Stripe takes at
/// most 255 characters).
fn key(prefix: &str, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(parts.join("\n"));
    format!("{prefix}-{}", hex::encode(&digest[..12]))
}
