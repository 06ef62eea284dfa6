//! `/console/customers/{id}`: a customer's plans (current, add-ons, ended) with their
//! actions, feature usage with its balance editor, invoices, and (from [`super::activity`])
//! the timeline and recent events. The view is `GET /v1/customers/{id}`'s answer.

use maud::{Markup, html};

use super::layout::{
    Section, badge, button_form, csrf_field, customer_path, day, money, segment, sheet, when,
};
use super::{Reply, View, activity, customer_forms, entities, usage};
use crate::domain::CustomerId;
use crate::ops;
use crate::views::{CustomerView, DiscountView, EntityView, InvoiceSummary, PlanView};

pub(super) async fn page(view: &View<'_>, id: &str, query: Option<&str>) -> Reply {
    let c = match customer_view(view, id).await {
        Ok(c) => c,
        Err(error) => return Reply::error(error),
    };
    let activity = match activity::panels(view, id, c.stripe_id.as_deref(), query).await {
        Ok(panels) => panels,
        Err(error) => return Reply::error(error),
    };
    let title = c.name.as_deref().or(c.id.as_deref()).unwrap_or(id);
    // `?entity=`: the plans and balances shown are that entity's.
    let asked = entities::asked(query);
    let entity = asked
        .as_deref()
        .and_then(|e| c.entities.iter().find(|x| x.id == e));
    let content = html! {
        div.page-head {
            div {
                h1 { (title) }
                p.subtitle {
                    span.mono { (id) }
                    @if let Some(email) = &c.email { span { (email) } }
                    @match &c.stripe_id {
                        Some(stripe) => span { "Stripe " span.mono { (stripe) } },
                        None => span { "not in Stripe yet" },
                    }
                }
            }
            div.actions { (customer_forms::attach_sheet(view, id, &c.entities, entity)) }
        }
        (entities::panel(id, &c.entities, entity))
        @if let Some(e) = entity {
            (entities::banner(id, e))
        } @else if let Some(asked) = &asked {
            (entities::unknown(id, asked))
        }
        @for due in &c.payment_due {
            div.banner.notice {
                strong { "Payment due: " }
                span.message {
                    (money(due.total, &due.currency)) " for " (due.plan_ids.join(", "))
                    " (invoice " span.mono { (due.stripe_id) } ")"
                }
                @if let Some(url) = &due.hosted_invoice_url {
                    a href=(url) target="_blank" rel="noopener noreferrer" { "Payment page ↗" }
                }
            }
        }
        div.grid2 {
            div {
                (plans(view, id, &c, entity))
                @match entity {
                    Some(e) => (usage::usage(view, id, &e.balances, false)),
                    None => (usage::usage(view, id, &c.balances, true)),
                }
                (invoices(&c.invoices))
            }
            div { (activity) }
        }
    };
    view.page(title, Section::Customers, content)
}

async fn customer_view(view: &View<'_>, id: &str) -> Result<CustomerView, crate::web::ApiError> {
    let id: CustomerId = crate::domain::parse("id", id)?;
    Ok(ops::customers::get(&view.state.ops, &id).await?)
}

/// The customer's plans, or a selected entity's (live only, and without plan actions: plan
/// changes are the customer's).
fn plans(view: &View<'_>, id: &str, c: &CustomerView, entity: Option<&EntityView>) -> Markup {
    let catalog = &view.state.ops.catalog;
    let (products, ended): (&[PlanView], &[PlanView]) = match entity {
        Some(e) => (&e.products, &[]),
        None => (&c.products, &c.ended_products),
    };
    let is_add_on = |p: &PlanView| catalog.plan(&p.plan_id).is_some_and(|plan| plan.add_on);
    let current: Vec<&PlanView> = products.iter().filter(|p| !is_add_on(p)).collect();
    let add_ons: Vec<&PlanView> = products.iter().filter(|p| is_add_on(p)).collect();
    html! {
        section.panel #plans {
            div.panel-head { h2 { "Plans" } span.hint { (products.len()) " live · " (ended.len()) " ended" } }
            @if products.is_empty() {
                p.empty { "No live plan." }
            } @else {
                table {
                    thead { tr { th { "Plan" } th { "Status" } th.num { "Price" } th { "Renews" } th {} } }
                    @for (label, group) in [("Current plan", &current), ("Add-ons", &add_ons)] {
                        @if !group.is_empty() {
                            tbody {
                                tr.group { td colspan="5" { (label) } }
                                @for p in group.iter() { (plan_row(view, id, p, entity.is_none())) }
                            }
                        }
                    }
                }
            }
            @if entity.is_none() && !c.discounts.is_empty() {
                div.panel-body.discounts {
                    strong { "Discounts" }
                    ul {
                        @for d in &c.discounts {
                            li data-discount=(d.coupon_id) {
                                (discount_label(d))
                            }
                        }
                    }
                }
            }
            @if !ended.is_empty() {
                details.ended {
                    summary.panel-body { "Ended plans (" (ended.len()) ")" }
                    table {
                        thead { tr { th { "Plan" } th { "Status" } th { "Started" } th { "Ended" } } }
                        tbody {
                            @for p in ended {
                                tr {
                                    td { (plan_name(view, &p.plan_id)) }
                                    td { (badge(&p.status)) }
                                    td { (when(p.started_at)) }
                                    td { (when(p.ended_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `Welcome (welcome): 20% off, once, on pro`.
fn discount_label(d: &DiscountView) -> String {
    let name = d
        .name
        .clone()
        .or(d.reward_id.clone())
        .or(Some(d.coupon_id.clone()));
    let off = match (d.percent_off, d.amount_off, &d.currency) {
        (Some(percent), _, _) => format!("{percent}% off"),
        (None, Some(amount), Some(currency)) => format!("{} off", money(amount, currency)),
        _ => "a discount".to_owned(),
    };
    let duration = match (d.duration.as_deref(), d.duration_in_months) {
        (Some("repeating"), Some(months)) => format!("for {months} months"),
        (Some(duration), _) => duration.to_owned(),
        (None, _) => String::new(),
    };
    let mut label = format!("{}: {off}", name.unwrap_or_default());
    if !duration.is_empty() {
        label.push_str(&format!(", {duration}"));
    }
    if let Some(plan) = &d.plan_id {
        label.push_str(&format!(", on {plan}"));
    }
    if let Some(end) = d.end {
        label.push_str(&format!(" (until {})", end.0.format("%Y-%m-%d")));
    }
    label
}

fn plan_name(view: &View<'_>, plan_id: &str) -> String {
    view.state
        .ops
        .catalog
        .plan(plan_id)
        .map_or_else(|| plan_id.to_owned(), |plan| plan.name.clone())
}

/// A plan's row; `actions`: its cancel, uncancel and quantity forms.
fn plan_row(view: &View<'_>, id: &str, p: &PlanView, actions: bool) -> Markup {
    let canceling = p.cancel_at_period_end || p.cancel_at.is_some();
    let base = format!("{}/plans/{}", customer_path(id), segment(&p.plan_id));
    let price = match (p.amount, &p.currency, &p.interval) {
        (Some(amount), Some(currency), Some(interval)) => {
            format!(
                "{} / {interval}",
                money(amount.saturating_mul(i64::from(p.quantity)), currency)
            )
        }
        _ => "free".to_owned(),
    };
    html! {
        tr data-plan=(p.plan_id) {
            td {
                strong { (plan_name(view, &p.plan_id)) }
                span.sub {
                    span.mono { (p.plan_id) }
                    @if p.quantity != 1 { " · × " (p.quantity) }
                    " · since " (day(p.started_at))
                }
            }
            td {
                (badge(&p.status))
                @if p.status == "trialing" && p.trial_end.is_some() {
                    span.sub { "free trial until " (when(p.trial_end)) }
                }
                @if p.cancel_at_period_end {
                    span.sub { "cancels at period end (" (when(p.current_period_end)) ")" }
                } @else if p.cancel_at.is_some() {
                    span.sub { "cancels " (when(p.cancel_at)) }
                }
            }
            td.num { (price) }
            td { (day(p.next_renewal_at)) }
            td.actions {
                @if actions && p.stripe_subscription_id.is_some() {
                    @if canceling {
                        (button_form(&format!("{base}/uncancel"), &view.csrf, "Uncancel", None))
                    } @else {
                        (sheet("Cancel", "small", html! {
                            h3 { "Cancel " (plan_name(view, &p.plan_id)) }
                            form method="post" action=(format!("{base}/cancel")) {
                                (csrf_field(&view.csrf))
                                label.check { input type="radio" name="at" value="period_end" checked; "At the end of the period (" (when(p.current_period_end)) ")" }
                                label.check { input type="radio" name="at" value="now"; "Now (access ends at once)" }
                                div.foot { span {} button.danger type="submit" { "Cancel plan" } }
                            }
                        }))
                    }
                    (sheet("Quantity", "small", html! {
                        h3 { "Change quantity" }
                        form method="post" action=(format!("{base}/quantity")) {
                            (csrf_field(&view.csrf))
                            label { "Quantity" input type="number" name="quantity" min="1" value=(p.quantity) required; }
                            label.check { input type="checkbox" name="prorate" checked; "Prorate the change" }
                            div.foot { span { kbd { "⌘/Ctrl ↵" } } button.primary type="submit" { "Save" } }
                        }
                    }))
                }
            }
        }
    }
}

fn invoices(invoices: &[InvoiceSummary]) -> Markup {
    html! {
        section.panel #invoices {
            div.panel-head { h2 { "Invoices" } span.hint { (invoices.len()) } }
            @if invoices.is_empty() {
                p.empty { "No invoices." }
            } @else {
                table {
                    thead { tr { th { "Invoice" } th { "Status" } th { "Plans" } th.num { "Total" } th { "Date" } th {} } }
                    tbody {
                        @for i in invoices {
                            tr {
                                td.mono { (i.stripe_id) }
                                td { (badge(&i.status)) }
                                td { (i.plan_ids.join(", ")) }
                                td.num { (money(i.total, &i.currency)) }
                                td { (day(i.created_at)) }
                                td.actions {
                                    @if let Some(url) = &i.hosted_invoice_url {
                                        a href=(url) target="_blank" rel="noopener noreferrer" { "Open ↗" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
