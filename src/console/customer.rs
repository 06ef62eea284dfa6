//! `/console/customers/{id}`: a customer's plans (current, add-ons, ended) with their
//! actions, feature usage with its balance editor, invoices, and (from [`super::activity`])
//! the timeline and recent events. The view is `GET /v1/customers/{id}`'s answer.

use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::actions::{self, AttachOptions, CancelAt, ConsoleAction, Proration};
use super::entities::{self, EntityView};
use super::form::Form;
use super::layout::{
    Section, badge, button_form, count, csrf_field, customer_path, day, money, segment, sheet, when,
};
use super::session::random_hex;
use super::{Back, Planned, Reply, View, activity};
use crate::http::attach::CreateAttach;
use crate::http::customers::{self, EditBalance};
use crate::http::error::ApiError;

#[derive(Deserialize)]
pub(super) struct CustomerView {
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub stripe_id: Option<String>,
    pub products: Vec<PlanView>,
    pub ended_products: Vec<PlanView>,
    pub balances: Vec<BalanceView>,
    pub invoices: Vec<InvoiceView>,
    pub payment_due: Vec<InvoiceView>,
    #[serde(default)]
    pub entities: Vec<EntityView>,
    #[serde(default)]
    pub discounts: Vec<DiscountView>,
}

/// A discount on one of the customer's subscriptions (a reward or a promotion code).
#[derive(Deserialize)]
pub(super) struct DiscountView {
    pub name: Option<String>,
    pub reward_id: Option<String>,
    pub coupon_id: Option<String>,
    pub percent_off: Option<f64>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    pub duration: Option<String>,
    pub duration_in_months: Option<i64>,
    pub end: Value,
    pub plan_id: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct PlanView {
    pub plan_id: String,
    pub status: String,
    pub stripe_subscription_id: Option<String>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Value,
    pub current_period_end: Value,
    pub quantity: i64,
    pub started_at: Value,
    pub ended_at: Value,
    pub interval: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub next_renewal_at: Value,
    #[serde(default)]
    pub trial_end: Value,
}

#[derive(Deserialize)]
pub(super) struct BalanceView {
    pub feature_id: String,
    pub included: i64,
    pub adjustment: i64,
    pub used: i64,
    pub balance: i64,
    pub unlimited: bool,
    pub suspended: bool,
    pub next_reset_at: Value,
}

#[derive(Deserialize)]
pub(super) struct InvoiceView {
    pub stripe_id: String,
    pub status: Option<String>,
    pub total: i64,
    pub currency: String,
    pub plan_ids: Vec<String>,
    pub hosted_invoice_url: Option<String>,
    #[serde(default)]
    pub created_at: Value,
}

pub(super) async fn page(view: &View<'_>, id: &str, query: Option<&str>) -> Reply {
    let customer = match customers::view_of(&view.state.pool, &view.state.catalog, id).await {
        Ok(answer) => answer,
        Err(error) => return Reply::error(error),
    };
    let c: CustomerView = serde_json::from_value(customer).expect("the customer view's shape");
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
            div.actions { (attach_sheet(view, id, &c.entities, entity)) }
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
                    Some(e) => (usage(view, id, &e.balances, false)),
                    None => (usage(view, id, &c.balances, true)),
                }
                (invoices(&c.invoices))
            }
            div { (activity) }
        }
    };
    view.page(title, Section::Customers, content)
}

/// The customer's plans, or a selected entity's (live only, and without plan actions: plan
/// changes are the customer's).
fn plans(view: &View<'_>, id: &str, c: &CustomerView, entity: Option<&EntityView>) -> Markup {
    let catalog = &view.state.catalog;
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
                            li data-discount=(d.coupon_id.as_deref().unwrap_or_default()) {
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
                                    td { (when(&p.started_at)) }
                                    td { (when(&p.ended_at)) }
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
        .or(d.coupon_id.clone());
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
    if let Some(end) = d.end.as_str() {
        label.push_str(&format!(" (until {})", &end[..end.len().min(10)]));
    }
    label
}

fn plan_name(view: &View<'_>, plan_id: &str) -> String {
    view.state
        .catalog
        .plan(plan_id)
        .map_or_else(|| plan_id.to_owned(), |plan| plan.name.clone())
}

/// A plan's row; `actions`: its cancel, uncancel and quantity forms.
fn plan_row(view: &View<'_>, id: &str, p: &PlanView, actions: bool) -> Markup {
    let canceling = p.cancel_at_period_end || !p.cancel_at.is_null();
    let base = format!("{}/plans/{}", customer_path(id), segment(&p.plan_id));
    let price = match (p.amount, &p.currency, &p.interval) {
        (Some(amount), Some(currency), Some(interval)) => {
            format!(
                "{} / {interval}",
                money(amount.saturating_mul(p.quantity), currency)
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
                    " · since " (day(&p.started_at))
                }
            }
            td {
                (badge(&p.status))
                @if p.status == "trialing" && !p.trial_end.is_null() {
                    span.sub { "free trial until " (when(&p.trial_end)) }
                }
                @if p.cancel_at_period_end {
                    span.sub { "cancels at period end (" (when(&p.current_period_end)) ")" }
                } @else if !p.cancel_at.is_null() {
                    span.sub { "cancels " (when(&p.cancel_at)) }
                }
            }
            td.num { (price) }
            td { (day(&p.next_renewal_at)) }
            td.actions {
                @if actions && p.stripe_subscription_id.is_some() {
                    @if canceling {
                        (button_form(&format!("{base}/uncancel"), &view.csrf, "Uncancel", None))
                    } @else {
                        (sheet("Cancel", "small", html! {
                            h3 { "Cancel " (plan_name(view, &p.plan_id)) }
                            form method="post" action=(format!("{base}/cancel")) {
                                (csrf_field(&view.csrf))
                                label.check { input type="radio" name="at" value="period_end" checked; "At the end of the period (" (when(&p.current_period_end)) ")" }
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

/// Feature usage; `editable`: each balance opens its editor (the customer's only).
fn usage(view: &View<'_>, id: &str, balances: &[BalanceView], editable: bool) -> Markup {
    html! {
        section.panel #usage {
            div.panel-head {
                h2 { "Feature usage" }
                span.hint { @if editable { "click a balance to edit it" } @else { "the entity's own" } }
            }
            @if balances.is_empty() {
                p.empty { "No feature balances." }
            } @else {
                table {
                    thead { tr { th { "Feature" } th { "Usage" } th.num { "Balance" } th { "Resets" } } }
                    tbody {
                        @for b in balances {
                            tr data-feature=(b.feature_id) {
                                td {
                                    strong { (b.feature_id) }
                                    @if b.suspended { " " (badge("suspended")) }
                                }
                                td.usage { (usage_bar(b)) }
                                td.num {
                                    @if editable { (balance_sheet(view, id, b)) } @else { (count(b.balance)) }
                                }
                                td { (day(&b.next_reset_at)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Used against the limit (`included + adjustment`), as an SVG bar (no inline styles, so
/// the page's CSP holds) with the figures under it.
fn usage_bar(b: &BalanceView) -> Markup {
    if b.unlimited {
        return html! { span.none { "unlimited · " (count(b.used)) " used" } };
    }
    let limit = b.included.saturating_add(b.adjustment);
    let share = if limit > 0 {
        (b.used as f64 / limit as f64).clamp(0.0, 1.0)
    } else if b.used > 0 {
        1.0
    } else {
        0.0
    };
    let tone = if b.used > limit {
        "fill over"
    } else if share >= 0.8 {
        "fill high"
    } else {
        "fill"
    };
    let percent = format!("{:.1}%", share * 100.0);
    html! {
        svg viewBox="0 0 100 8" preserveAspectRatio="none" role="img"
            aria-label={ (count(b.used)) " of " (count(limit)) " used" } {
            rect.track x="0" y="0" width="100" height="8" rx="4" {}
            rect class=(tone) x="0" y="0" width=(format!("{:.2}", share * 100.0)) height="8" rx="4" {}
        }
        div.figures {
            span { (count(b.used)) " of " (count(limit)) " used" }
            span { (percent) }
        }
        @if b.adjustment != 0 {
            span.sub { "includes " (if b.adjustment > 0 { "+" } else { "" }) (count(b.adjustment)) " edited" }
        }
    }
}

fn balance_sheet(view: &View<'_>, id: &str, b: &BalanceView) -> Markup {
    let label = if b.unlimited {
        "∞".to_owned()
    } else {
        count(b.balance)
    };
    if b.unlimited {
        return html! { (label) };
    }
    html! {
        details.sheet.small.edit-balance {
            summary title="Edit balance" { (label) " ✎" }
            div.sheet-body {
                h3 { "Edit " (b.feature_id) " balance" }
                form method="post" action=(format!("{}/balance", customer_path(id))) {
                    (csrf_field(&view.csrf))
                    input type="hidden" name="feature_id" value=(b.feature_id);
                    // One key per rendered form: posting it twice edits once.
                    input type="hidden" name="idempotency_key" value=(format!("console-{}", random_hex()));
                    div.row {
                        label { "Operation"
                            select name="op" {
                                option value="grant" { "Grant (add)" }
                                option value="set" { "Set to" }
                                option value="deduct" { "Deduct" }
                            }
                        }
                        label { "Amount" input type="number" name="amount" min="0" required; }
                    }
                    label { "Reason" input name="reason" maxlength="500" placeholder="e.g. goodwill credit"; }
                    div.foot { span { "now " (label) " · " kbd { "⌘/Ctrl ↵" } } button.primary type="submit" { "Apply" } }
                }
            }
        }
    }
}

fn invoices(invoices: &[InvoiceView]) -> Markup {
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
                                td { (badge(i.status.as_deref().unwrap_or("unknown"))) }
                                td { (i.plan_ids.join(", ")) }
                                td.num { (money(i.total, &i.currency)) }
                                td { (day(&i.created_at)) }
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

fn attach_sheet(
    view: &View<'_>,
    id: &str,
    entities: &[EntityView],
    selected: Option<&EntityView>,
) -> Markup {
    html! {
        details.sheet.primary #attach {
            summary { "Attach plan" }
            div.sheet-body {
                h3 { "Attach a plan" }
                @if !view.state.stripe_enabled {
                    p.banner.notice { "Stripe is not configured (STRIPE_API_KEY): attaching will fail." }
                }
                form method="post" action=(format!("{}/attach", customer_path(id))) {
                    (csrf_field(&view.csrf))
                    (entities::attach_choice(entities, selected))
                    label { "Plan"
                        select name="plan_id" required {
                            @for plan in &view.state.catalog.plans {
                                option value=(plan.id) { (actions::price_label(plan)) }
                            }
                        }
                    }
                    div.row {
                        label { "Quantity" input type="number" name="quantity" min="1" value="1"; }
                        label { "Proration"
                            select name="proration" {
                                option value="default" { "Default" }
                                option value="prorate" { "Prorate" }
                                option value="none" { "No proration" }
                            }
                        }
                    }
                    label { "Success URL (after checkout)" input type="url" name="success_url" required placeholder="https://app.example/billing/done"; }
                    label { "Cancel URL" input type="url" name="cancel_url" required placeholder="https://app.example/billing"; }
                    div.foot { span { "Default: upgrades prorate, downgrades wait for the renewal" } }
                    div.foot { span { kbd { "⌘/Ctrl ↵" } } button.primary type="submit" { "Attach" } }
                }
            }
        }
    }
}

/// `POST .../attach`: the same [`CreateAttach`] as `POST /v1/attach`, with the form's
/// quantity and proration ([`AttachOptions`]).
pub(super) fn attach_action(id: &str, form: &Form) -> Planned {
    let entity_id = form.text("entity_id");
    let back = Back::To(entities::path(id, entity_id.as_deref()));
    let action = (|| {
        let quantity = form.number("quantity")?.unwrap_or(1);
        if quantity < 1 {
            return Err(ApiError::invalid("quantity", "must be at least 1"));
        }
        let proration = match form.get("proration").unwrap_or("default") {
            "default" => Proration::Default,
            "prorate" => Proration::Prorate,
            "none" => Proration::None,
            _ => {
                return Err(ApiError::invalid(
                    "proration",
                    "must be default, prorate or none",
                ));
            }
        };
        let body = CreateAttach {
            customer_id: id.to_owned(),
            plan_id: required(form, "plan_id")?,
            success_url: required(form, "success_url")?,
            cancel_url: required(form, "cancel_url")?,
            quantity: crate::http::attach::one(),
            prorate: crate::http::attach::yes(),
            reward: None,
            promotion_code: None,
            allow_promotion_codes: false,
            entity_id,
        };
        Ok(ConsoleAction::Attach(
            body,
            AttachOptions {
                quantity,
                proration,
            },
        ))
    })();
    (action, back)
}

/// `POST .../balance`: `POST /v1/balances`' [`EditBalance`].
pub(super) fn balance_action(id: &str, form: &Form) -> Planned {
    let back = Back::To(format!("{}#usage", customer_path(id)));
    let action = (|| {
        Ok(ConsoleAction::EditBalance(EditBalance {
            customer_id: id.to_owned(),
            feature_id: required(form, "feature_id")?,
            op: required(form, "op")?,
            amount: form
                .number("amount")?
                .ok_or_else(|| ApiError::invalid("amount", "is required"))?,
            reason: form.text("reason"),
            idempotency_key: form.text("idempotency_key"),
        }))
    })();
    (action, back)
}

/// `POST .../plans/{plan}/{cancel|uncancel|quantity}`.
pub(super) fn plan_action(id: &str, plan: &str, change: &str, form: &Form) -> Planned {
    let back = Back::To(format!("{}#plans", customer_path(id)));
    let (customer_id, plan_id) = (id.to_owned(), plan.to_owned());
    let action = match change {
        "cancel" => match form.get("at") {
            Some("period_end") | None => Ok(CancelAt::PeriodEnd),
            Some("now") => Ok(CancelAt::Now),
            Some(_) => Err(ApiError::invalid("at", "must be period_end or now")),
        }
        .map(|at| ConsoleAction::Cancel {
            customer_id,
            plan_id,
            at,
        }),
        "uncancel" => Ok(ConsoleAction::Uncancel {
            customer_id,
            plan_id,
        }),
        "quantity" => form.number("quantity").and_then(|quantity| match quantity {
            Some(quantity) if quantity >= 1 => Ok(ConsoleAction::Quantity {
                customer_id,
                plan_id,
                quantity,
                prorate: form.checked("prorate"),
            }),
            _ => Err(ApiError::invalid("quantity", "must be at least 1")),
        }),
        _ => Err(ApiError::NoRoute),
    };
    (action, back)
}

fn required(form: &Form, key: &str) -> Result<String, ApiError> {
    form.text(key)
        .ok_or_else(|| ApiError::invalid(key, "is required"))
}
