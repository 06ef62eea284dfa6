//! `/console/outbox`: events per state, the queue, received vs applied per minute over the
//! last hour, dead letters with Retry; `/console/events/{id}`: one event and its payload.
//! The numbers are the outbox's own reads (what `status` and `events` print).

use std::time::Duration;

use maud::{Markup, html};

use super::actions::ConsoleAction;
use super::form::Form;
use super::layout::{self, Section, at, badge, count, customer_path, event_path};
use super::{Back, Planned, Reply, View, chart, not_found, pretty};
use crate::store::{audits, customers};
use crate::web::ApiError;
use outbox::log::{self as events, ListFilter};

/// The chart's span, in minutes.
const CHART_MINUTES: i32 = 60;
/// How long counting the chart may take before the page shows none.
const CHART_TIMEOUT: Duration = Duration::from_secs(3);
/// Dead letters and latest events listed.
const LISTED: i64 = 50;
const LATEST: i64 = 20;

/// The event states, in the order of their life.
const STATES: &[&str] = &[
    "received",
    "processing",
    "applied",
    "skipped",
    "failed",
    "dead",
];

pub(super) async fn page(view: &View<'_>) -> Reply {
    match read(view).await {
        Ok(content) => view.page("Outbox", Section::Outbox, content),
        Err(error) => Reply::error(error),
    }
}

async fn read(view: &View<'_>) -> Result<Markup, ApiError> {
    let pool = &view.state.ops.pool;
    let status = events::status(pool).await?;
    let dead = events::dead_letters(pool, LISTED).await?;
    let latest = events::list(
        pool,
        &ListFilter {
            limit: LATEST,
            ..ListFilter::default()
        },
    )
    .await?;
    let minutes = match events::per_minute(pool, CHART_MINUTES, CHART_TIMEOUT).await {
        Ok(minutes) => Some(minutes),
        Err(error) => {
            tracing::warn!(%error, "the outbox chart could not be counted in time");
            None
        }
    };
    let audit = audits::last(&mut *pool.acquire().await?).await?;
    let queue = status.queue;
    let oldest = queue
        .oldest_pending_secs
        .map_or("—".to_owned(), |s| age(s as i64));
    Ok(html! {
        div.page-head { div {
            h1 { "Outbox" }
            p.subtitle { span { "Stripe events stored, applied, and what is stuck" } }
        }}
        div.stats {
            @for state in STATES {
                @let n = status.events.get(*state).copied().unwrap_or(0);
                div class={ "stat" @if *state == "dead" && n > 0 { " bad" } } data-state=(state) {
                    div.label { span { "events" } (badge(state)) }
                    div.value { (count(n)) }
                }
            }
        }
        div.stats {
            (stat("Queue pending", &count(queue.pending), false))
            (stat("In flight", &count(queue.in_flight), false))
            (stat("Dead letters", &count(queue.dead), queue.dead > 0))
            (stat("Oldest pending", &oldest, queue.oldest_pending_secs.is_some_and(|s| s > 300.0)))
        }
        section.panel #chart {
            div.panel-head {
                h2 { "Received vs applied, per minute, last hour" }
                div.legend {
                    span { span.swatch.received {} "received" }
                    span { span.swatch.applied {} "applied" }
                }
            }
            div.panel-body {
                @match &minutes {
                    Some(minutes) => (layout::raw(chart::render(minutes))),
                    None => p.empty { "Too many events to count in time; see /metrics." },
                }
            }
        }
        (last_audit(audit.as_ref()))
        section.panel #dead {
            div.panel-head { h2 { "Dead letters" } span.hint { "retrying puts one back in the queue now" } }
            @if dead.is_empty() {
                p.empty { "No dead letters." }
            } @else {
                table {
                    thead { tr { th { "What" } th.num { "Attempts" } th { "Last error" } th { "Queued" } th {} } }
                    tbody {
                        @for d in &dead {
                            tr data-key=(d.job_key) {
                                td {
                                    @match &d.event_type {
                                        Some(t) => { a href=(event_path(&d.job_key)) { (t) } span.sub.mono { (d.job_key) } }
                                        None => { strong { (d.kind) } span.sub.mono { (d.job_key) } }
                                    }
                                }
                                td.num { (d.attempts) }
                                td { span.error-text title=[d.last_error.as_deref()] { (d.last_error.as_deref().unwrap_or("—")) } }
                                td { (at(d.enqueued_at)) }
                                td.actions { (retry_button(view, &d.job_key, "outbox")) }
                            }
                        }
                    }
                }
            }
        }
        section.panel #latest {
            div.panel-head { h2 { "Latest events" } }
            (event_table(&latest))
        }
    })
}

/// The newest audit against Stripe (see [`crate::audit`]).
fn last_audit(audit: Option<&audits::Run>) -> Markup {
    html! {
        section.panel #audit {
            div.panel-head {
                h2 { "Last audit" }
                span.hint { "the store compared with Stripe; `stripe-reconciler audit` runs one now" }
            }
            @match audit {
                None => p.empty { "No audit yet (it runs every stripe.audit_interval_secs when a Stripe key is set)." },
                Some(run) => {
                    @let differences: i64 = run.drift.as_object()
                        .map_or(0, |m| m.values().filter_map(serde_json::Value::as_i64).sum());
                    div.stats {
                        div.stat { div.label { "When" } div.value { @if let Some(done) = run.finished_at { (at(done)) } } }
                        (stat("Customers checked", &count(i64::from(run.checked)), false))
                        (stat("Skipped (work queued)", &count(i64::from(run.busy)), false))
                        (stat("Drift found", &format!("{} customers, {differences} fields", run.drifted), run.drifted > 0))
                        (stat("Repaired", &count(i64::from(run.repaired)), run.repaired < run.drifted))
                    }
                    @if let Some(fields) = run.drift.as_object().filter(|m| !m.is_empty()) {
                        p.hint data-drift="fields" {
                            "By field: "
                            @for (i, (field, n)) in fields.iter().enumerate() {
                                @if i > 0 { ", " }
                                span.mono { (field) } " " (n.to_string())
                            }
                        }
                    }
                }
            }
        }
    }
}

fn stat(label: &str, value: &str, bad: bool) -> Markup {
    html! {
        div class={ "stat" @if bad { " bad" } } {
            div.label { (label) }
            div.value { (value) }
        }
    }
}

fn event_table(list: &[events::EventRecord]) -> Markup {
    html! {
        @if list.is_empty() {
            p.empty { "No events yet." }
        } @else {
            table {
                thead { tr { th { "Event" } th { "State" } th.num { "Attempts" } th { "Received" } } }
                tbody {
                    @for e in list {
                        tr {
                            td { a href=(event_path(&e.id)) { (e.event_type) } span.sub.mono { (e.id) } }
                            td { (badge(&e.state)) }
                            td.num { (e.attempts) }
                            td { (at(e.received_at)) }
                        }
                    }
                }
            }
        }
    }
}

fn retry_button(view: &View<'_>, key: &str, back: &str) -> Markup {
    html! {
        form.inline method="post" action={ (event_path(key)) "/retry" } {
            (layout::csrf_field(&view.csrf))
            input type="hidden" name="back" value=(back);
            button.primary type="submit" { "Retry" }
        }
    }
}

/// `/console/events/{id}`.
pub(super) async fn event(view: &View<'_>, id: &str) -> Reply {
    let pool = &view.state.ops.pool;
    let read = async {
        let Some(event) = events::get(pool, id).await? else {
            return Ok(None);
        };
        let payload = events::payload(pool, id).await?.unwrap_or_default();
        let customer = match &event.customer_id {
            Some(stripe_id) => {
                let mut conn = pool.acquire().await?;
                customers::by_stripe_id(&mut conn, stripe_id)
                    .await?
                    .and_then(|c| c.id)
            }
            None => None,
        };
        Ok::<_, ApiError>(Some((event, payload, customer)))
    };
    let (event, payload, customer) = match read.await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(error) => return Reply::error(error),
    };
    let pretty =
        pretty::json(&payload).unwrap_or_else(|| String::from_utf8_lossy(&payload).into_owned());
    let retryable = matches!(event.state.as_str(), "dead" | "failed");
    let content = html! {
        div.page-head {
            div {
                h1 { (event.event_type) }
                p.subtitle { span.mono { (event.id) } span { (badge(&event.state)) } }
            }
            div.actions {
                @if retryable { (retry_button(view, &event.id, "event")) }
                a.button href="/console/outbox" { "Outbox" }
            }
        }
        section.panel { div.panel-body {
            dl.facts {
                dt { "State" } dd #state { (badge(&event.state)) }
                dt { "Attempts" } dd { (event.attempts) }
                dt { "Created (Stripe)" } dd {
                    @match chrono::DateTime::from_timestamp(event.created, 0) {
                        Some(t) => (at(t)),
                        None => (event.created),
                    }
                }
                dt { "Received" } dd { (at(event.received_at)) }
                dt { "Finished" } dd { @match event.finished_at { Some(t) => (at(t)), None => span.none { "—" } } }
                dt { "Stripe customer" } dd.mono { (event.customer_id.as_deref().unwrap_or("—")) }
                dt { "Customer" } dd {
                    @match &customer {
                        Some(c) => a href=(customer_path(c)) { (c) },
                        None => span.none { "not mapped" },
                    }
                }
                dt { "Object" } dd.mono { (event.object_id.as_deref().unwrap_or("—")) }
                dt { "Mode" } dd { (if event.livemode { "live" } else { "test" }) @if let Some(v) = &event.api_version { " · " (v) } }
                @if let Some(error) = &event.last_error {
                    dt { "Last error" } dd.error-text { (error) }
                }
            }
        }}
        section.panel #payload {
            div.panel-head { h2 { "Payload" } span.hint { "as Stripe sent it, pretty-printed" } }
            (layout::pre(&pretty))
        }
    };
    view.page(&event.id, Section::Outbox, content)
}

/// `POST /console/events/{id}/retry`: back to pending now (`events retry ID`).
pub(super) fn retry_action(id: &str, form: &Form) -> Planned {
    let back = match form.get("back") {
        Some("event") => event_path(id),
        _ => "/console/outbox#dead".to_owned(),
    };
    (
        Ok(ConsoleAction::RetryEvent {
            job_key: id.to_owned(),
        }),
        Back::To(back),
    )
}

/// `75` as `1 min 15 s`.
fn age(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}
