//! The customer page's forms: the attach sheet, and what attach, balance and plan-change
//! forms post, parsed into the typed requests [`crate::ops`] takes (the same as the API's).

use maud::{Markup, html};

use super::actions::{self, ConsoleAction};
use super::entities;
use super::form::Form;
use super::layout::{csrf_field, customer_path};
use super::{Back, Planned, View};
use crate::changes::{CancelAt, Change};
use crate::domain::{self, Quantity};
use crate::ops::attach::NewAttach;
use crate::ops::balances::Edit;
use crate::ops::plan_changes::ChangeRequest;
use crate::views::EntityView;
use crate::web::ApiError;

pub(super) fn attach_sheet(
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
                @if !view.state.ops.stripe_enabled {
                    p.banner.notice { "Stripe is not configured (STRIPE_API_KEY): attaching will fail." }
                }
                form method="post" action=(format!("{}/attach", customer_path(id))) {
                    (csrf_field(&view.csrf))
                    (entities::attach_choice(entities, selected))
                    label { "Plan"
                        select name="plan_id" required {
                            @for plan in &view.state.ops.catalog.plans {
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

/// `POST .../attach`: the same [`NewAttach`] as `POST /v1/attach`, with the form's quantity
/// and proration (by default the API's rule: an upgrade prorates, a downgrade waits for the
/// renewal).
pub(super) fn attach_action(id: &str, form: &Form) -> Planned {
    let entity_id = form.text("entity_id");
    let back = Back::To(entities::path(id, entity_id.as_deref()));
    let action = (|| {
        let quantity = match form.text("quantity") {
            Some(quantity) => domain::parse::<Quantity>("quantity", &quantity)?,
            None => Quantity::ONE,
        };
        let prorate = match form.get("proration").unwrap_or("default") {
            "default" | "prorate" => true,
            "none" => false,
            _ => {
                return Err(ApiError::invalid(
                    "proration",
                    "must be default, prorate or none",
                ));
            }
        };
        Ok(ConsoleAction::Attach(NewAttach {
            customer_id: domain::parse("id", id)?,
            plan_id: domain::parse("plan_id", &required(form, "plan_id")?)?,
            success_url: required(form, "success_url")?,
            cancel_url: required(form, "cancel_url")?,
            quantity,
            prorate,
            reward: None,
            promotion_code: None,
            allow_promotion_codes: false,
            entity_id: domain::parse_opt("entity_id", entity_id.as_deref())?,
        }))
    })();
    (action, back)
}

/// `POST .../balance`: `POST /v1/balances`' [`Edit`].
pub(super) fn balance_action(id: &str, form: &Form) -> Planned {
    let back = Back::To(format!("{}#usage", customer_path(id)));
    let action = (|| {
        Ok(ConsoleAction::EditBalance(Edit {
            customer_id: domain::parse("customer_id", id)?,
            feature_id: domain::parse("feature_id", &required(form, "feature_id")?)?,
            op: domain::parse("op", &required(form, "op")?)?,
            amount: domain::parse("amount", &required(form, "amount")?)?,
            reason: form.text("reason"),
            idempotency_key: domain::parse_opt(
                "idempotency_key",
                form.text("idempotency_key").as_deref(),
            )?,
        }))
    })();
    (action, back)
}

/// `POST .../plans/{plan}/{cancel|uncancel|quantity}`.
pub(super) fn plan_action(id: &str, plan: &str, change: &str, form: &Form) -> Planned {
    let back = Back::To(format!("{}#plans", customer_path(id)));
    let action = (|| {
        let change = match change {
            "cancel" => match form.get("at") {
                Some("period_end") | None => Change::Cancel {
                    at: CancelAt::PeriodEnd,
                },
                Some("now") => Change::Cancel { at: CancelAt::Now },
                Some(_) => return Err(ApiError::invalid("at", "must be period_end or now")),
            },
            "uncancel" => Change::Uncancel,
            "quantity" => {
                let quantity = required(form, "quantity")?;
                Change::Quantity {
                    quantity: domain::parse::<Quantity>("quantity", &quantity)?.get(),
                    prorate: form.checked("prorate"),
                }
            }
            _ => return Err(ApiError::NoRoute),
        };
        Ok(ConsoleAction::PlanChange(ChangeRequest {
            customer_id: domain::parse("customer_id", id)?,
            plan_id: domain::parse("plan_id", plan)?,
            change,
            idempotency_key: None,
        }))
    })();
    (action, back)
}

fn required(form: &Form, key: &str) -> Result<String, ApiError> {
    form.text(key)
        .ok_or_else(|| ApiError::invalid(key, "is required"))
}
