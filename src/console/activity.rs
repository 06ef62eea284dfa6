//! A customer's activity: the timeline (`GET /v1/customers/{id}/timeline`'s answer) and the
//! Stripe events about them with their state (the outbox's log).

use maud::{Markup, html};

use super::View;
use super::layout::{at, badge, count, customer_path, event_path, money, query_value, when};
use crate::domain::{CustomerId, Limit};
use crate::ops;
use crate::views::TimelineEntry;
use crate::web::ApiError;

/// Timeline entries on one page.
const TIMELINE_PAGE: i64 = 20;
/// Events listed.
const EVENTS: i64 = 15;
/// How many of the newest events of the log are looked through for the customer's.
const EVENTS_SCANNED: i64 = 5_000;

pub(super) async fn panels(
    view: &View<'_>,
    id: &str,
    stripe_id: Option<&str>,
    query: Option<&str>,
) -> Result<Markup, ApiError> {
    let cursor = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "timeline")
        .map(|(_, v)| v.into_owned());
    let customer_id: CustomerId = crate::domain::parse("id", id)?;
    let limit = Limit::try_from(TIMELINE_PAGE).expect("a page size within bounds");
    let page = ops::timeline::page(&view.state.ops, &customer_id, limit, cursor.as_deref()).await?;
    let entries = page.data;
    let next = page.next_cursor.as_deref();
    let events = match stripe_id {
        Some(stripe_id) => {
            outbox::log::of_subject(&view.state.ops.pool, stripe_id, EVENTS_SCANNED, EVENTS).await?
        }
        None => Vec::new(),
    };
    Ok(html! {
        section.panel #timeline {
            div.panel-head { h2 { "Timeline" } span.hint { "newest first" } }
            @if entries.is_empty() {
                p.empty { "Nothing has happened yet." }
            } @else {
                ol.timeline {
                    @for e in &entries { (entry(view, e)) }
                }
            }
            @if cursor.is_some() || next.is_some() {
                div.pager {
                    @if cursor.is_some() {
                        a href={ (customer_path(id)) "#timeline" } { "← Newest" }
                    }
                    @if let Some(next) = next {
                        a href={ (customer_path(id)) "?timeline=" (query_value(next)) "#timeline" } { "Older →" }
                    }
                }
            }
        }
        section.panel #events {
            div.panel-head { h2 { "Stripe events" } span.hint { "in the queue, or among the latest received" } }
            @if stripe_id.is_none() {
                p.empty { "Not linked to a Stripe customer: no events." }
            } @else if events.is_empty() {
                p.empty { "No recent events." }
            } @else {
                table {
                    thead { tr { th { "Event" } th { "State" } th { "Received" } } }
                    tbody {
                        @for e in &events {
                            tr {
                                td {
                                    a href=(event_path(&e.id)) { (e.event_type) }
                                    span.sub.mono { (e.id) }
                                }
                                td {
                                    (badge(&e.state))
                                    @if e.attempts > 1 { span.sub { (e.attempts) " attempts" } }
                                }
                                td { (at(e.received_at)) }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// One timeline entry in words.
fn entry(view: &View<'_>, e: &TimelineEntry) -> Markup {
    let text = |key: &str| e.str(key).unwrap_or_default().to_owned();
    let kind = e.kind.clone();
    let plan = || {
        let id = text("plan_id");
        view.state
            .ops
            .catalog
            .plan(&id)
            .map_or(id, |plan| plan.name.clone())
    };
    let amount = e.number("amount").unwrap_or_default();
    let (dot, what): (&str, String) = match kind.as_str() {
        "plan.attached" => ("plan", format!("{} attached", plan())),
        "plan.scheduled" => ("plan", format!("{} scheduled for the renewal", plan())),
        "plan.canceled" => ("plan", format!("{} set to cancel", plan())),
        "plan.uncanceled" => ("plan", format!("{} cancellation undone", plan())),
        "plan.expired" => ("plan", format!("{} ended", plan())),
        "plan.renewed" => ("plan", format!("{} renewed", plan())),
        "plan.quantity" => (
            "plan",
            format!(
                "{} quantity {} → {}",
                plan(),
                e.json("from"),
                e.number("quantity").unwrap_or_default()
            ),
        ),
        "plan.status" => (
            "plan",
            format!("{}: {} → {}", plan(), text("from"), text("status")),
        ),
        "balance.grant" => (
            "balance",
            format!("Granted {} {}", count(amount), text("feature_id")),
        ),
        "balance.set" => (
            "balance",
            format!("Set {} to {}", text("feature_id"), count(amount)),
        ),
        "balance.deduct" => (
            "balance",
            format!("Deducted {} {}", count(amount), text("feature_id")),
        ),
        "invoice.paid" | "invoice.payment_failed" => (
            "invoice",
            format!(
                "Invoice {} {}",
                if kind == "invoice.paid" {
                    "paid:"
                } else {
                    "payment failed:"
                },
                money(
                    e.number("total").unwrap_or_default(),
                    e.str("currency").unwrap_or("usd")
                )
            ),
        ),
        "entity.created" => (
            "plan",
            format!(
                "Entity {} created (uses a unit of {})",
                text("entity_id"),
                text("feature_id")
            ),
        ),
        "entity.deleted" => (
            "plan",
            format!(
                "Entity {} deleted (its unit of {} freed)",
                text("entity_id"),
                text("feature_id")
            ),
        ),
        other => ("plan", other.to_owned()),
    };
    // An entity's plan (its entries are its customer's, naming it).
    let what = match e.str("entity_id") {
        Some(entity) if kind.starts_with("plan.") => format!("{what} · entity {entity}"),
        _ => what,
    };
    let source = e.source.clone();
    html! {
        li data-kind=(kind) {
            span class={ "dot " (dot) } {}
            div {
                div.what { (what) }
                @if kind.starts_with("balance.") {
                    div.meta {
                        "balance now " (count(e.number("balance").unwrap_or_default()))
                        @if let Some(reason) = e.str("reason") { " · “" (reason) "”" }
                        @if let Some(who) = e.str("who") { " · by " (who) }
                    }
                }
                @if kind.starts_with("plan.") && e.detail.get("status").is_some_and(|s| !s.is_null()) {
                    div.meta { (badge(&text("status"))) }
                }
                div.meta {
                    (when(e.at)) " · "
                    @if source.starts_with("evt_") {
                        a href=(event_path(&source)) { (source) }
                    } @else {
                        (source)
                    }
                }
            }
        }
    }
}
