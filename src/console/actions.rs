//! What the console's forms do. Each action calls the function the JSON API's handler
//! calls, with the same request body type, and comes back as an [`Outcome`] to show.
//!
//! The plan changes (cancel, uncancel, quantity) have their forms and their variants here,
//! but no API function to call yet: until `/v1/cancel`, `/v1/uncancel` and `/v1/quantity`
//! exist, they answer "not available yet" and change nothing ([`ConsoleAction::run`]).

use hyper::StatusCode;
use serde_json::Value;

use super::flash::Outcome;
use super::layout::{count, money};
use crate::http::AppState;
use crate::http::attach::{self, CreateAttach};
use crate::http::customers::{self, CreateCustomer, EditBalance};
use crate::http::error::ApiError;

/// Who the console's edits are recorded as (`balance_edits.actor`, the timeline's `who`).
pub(super) const ACTOR: &str = "console";

/// When a cancellation takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelAt {
    PeriodEnd,
    Now,
}

impl CancelAt {
    /// As `POST /v1/cancel`'s `at` names it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::PeriodEnd => "period_end",
            Self::Now => "now",
        }
    }
}

/// How an attach's price change is billed: the API's rule (an upgrade prorates, a
/// downgrade waits for the renewal), or the operator's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proration {
    Default,
    Prorate,
    None,
}

/// What an attach form adds to [`CreateAttach`] that the API does not take yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttachOptions {
    pub quantity: i64,
    pub proration: Proration,
}

#[derive(Debug)]
pub(crate) enum ConsoleAction {
    CreateCustomer(CreateCustomer),
    Attach(CreateAttach, AttachOptions),
    EditBalance(EditBalance),
    Cancel {
        customer_id: String,
        plan_id: String,
        at: CancelAt,
    },
    Uncancel {
        customer_id: String,
        plan_id: String,
    },
    Quantity {
        customer_id: String,
        plan_id: String,
        quantity: i64,
        prorate: bool,
    },
    RetryEvent {
        job_key: String,
    },
}

impl ConsoleAction {
    pub(crate) async fn run(self, state: &AppState) -> Outcome {
        let result = match self {
            Self::CreateCustomer(body) => create_customer(state, body).await,
            Self::Attach(body, options) => attach(state, body, options).await,
            Self::EditBalance(body) => edit_balance(state, body).await,
            // WIRING (plan-change API): replace each of the three arms below with one call,
            // e.g. `plan_change::cancel(state, Cancel { customer_id, plan_id, at: at.as_str()
            // }).await.map(|answer| Outcome::done(...))`; the forms already post these fields.
            Self::Cancel {
                customer_id,
                plan_id,
                at,
            } => Ok(not_yet(format!(
                "Cancel {plan_id} of {customer_id} (at: {})",
                at.as_str()
            ))),
            Self::Uncancel {
                customer_id,
                plan_id,
            } => Ok(not_yet(format!("Uncancel {plan_id} of {customer_id}"))),
            Self::Quantity {
                customer_id,
                plan_id,
                quantity,
                prorate,
            } => Ok(not_yet(format!(
                "Set {plan_id} of {customer_id} to quantity {quantity} ({})",
                if prorate { "prorated" } else { "not prorated" }
            ))),
            Self::RetryEvent { job_key } => retry(state, &job_key).await,
        };
        result.unwrap_or_else(|error| {
            error.log();
            Outcome::failed(error.to_string())
        })
    }
}

fn not_yet(what: String) -> Outcome {
    Outcome::notice(format!(
        "{what}: not available yet (the plan-change API is not in this build). Nothing was changed."
    ))
}

async fn create_customer(state: &AppState, body: CreateCustomer) -> Result<Outcome, ApiError> {
    let (created, view) = customers::get_or_create(state, body).await?;
    let who = view["id"]
        .as_str()
        .or(view["email"].as_str())
        .unwrap_or_default()
        .to_owned();
    Ok(if created {
        Outcome::done(format!("Created customer {who}."))
    } else {
        Outcome::notice(format!(
            "Customer {who} existed already: its given fields were refreshed."
        ))
    })
}

/// The attach form's request: the same [`CreateAttach`] `POST /v1/attach` takes.
async fn attach(
    state: &AppState,
    body: CreateAttach,
    options: AttachOptions,
) -> Result<Outcome, ApiError> {
    // WIRING (attach quantity and proration): once `CreateAttach` takes them, set them on
    // `body` from `options` where the console builds it (`super::customer::attach_action`)
    // and drop this check.
    if options.quantity != 1 || options.proration != Proration::Default {
        return Ok(Outcome::notice(
            "A quantity other than 1 and a proration choice are not available yet (the attach \
             API does not take them). Nothing was attached.",
        ));
    }
    let plan = body.plan_id.clone();
    let (status, answer) = attach::start(state, body).await?;
    Ok(attach_outcome(&plan, status, &answer))
}

fn attach_outcome(plan: &str, status: StatusCode, answer: &Value) -> Outcome {
    let text = |key: &str| answer[key].as_str().unwrap_or_default().to_owned();
    let duplicate = answer["duplicate"].as_bool() == Some(true);
    match text("state").as_str() {
        "checkout_required" => Outcome::done(format!(
            "{plan} needs a checkout: hand this link to the customer{}.",
            if duplicate {
                " (the attach in flight)"
            } else {
                ""
            }
        ))
        .with_link("Checkout page", &text("checkout_url")),
        "requires_action" => Outcome::notice(format!(
            "{plan}: the first payment needs the customer ({}).",
            text("error")
        ))
        .with_link("Payment page", &text("action_url")),
        "active" if duplicate => Outcome::notice(format!("The customer has {plan} already.")),
        "active" => Outcome::done(format!("Attached {plan}: active now.")),
        "scheduled" => Outcome::done(format!("{plan} is scheduled for the next renewal.")),
        "awaiting_payment" => Outcome::notice(format!(
            "{plan} waits for a payment in progress (a bank debit)."
        )),
        "failed" => Outcome::failed(format!("Attaching {plan} failed: {}", text("error"))),
        _ if status == StatusCode::ACCEPTED => Outcome::notice(format!(
            "Attaching {plan} is still running (attach {}); reload in a moment.",
            text("id")
        )),
        other => Outcome::notice(format!("Attach of {plan}: {other}.")),
    }
}

async fn edit_balance(state: &AppState, body: EditBalance) -> Result<Outcome, ApiError> {
    let (op, feature, amount) = (body.op.clone(), body.feature_id.clone(), body.amount);
    let answer = customers::apply_balance_edit(state, body, ACTOR).await?;
    let verb = match op.as_str() {
        "grant" => "Granted",
        "set" => "Set",
        _ => "Deducted",
    };
    let balance = answer["balance"].as_i64().unwrap_or_default();
    Ok(Outcome::done(format!(
        "{verb} {} {feature}: the balance is now {}.",
        count(amount),
        count(balance)
    )))
}

async fn retry(state: &AppState, job_key: &str) -> Result<Outcome, ApiError> {
    let n = outbox::queue::retry(&state.pool, Some(job_key)).await?;
    if n == 0 {
        return Ok(Outcome::notice(format!(
            "{job_key} is not in the queue any more (applied, or retried already)."
        )));
    }
    if let Err(error) = outbox::queue::notify_peers(&state.pool, "console").await {
        tracing::warn!(%error, "could not notify other instances; they will poll");
    }
    Ok(Outcome::done(format!(
        "{job_key} is queued again: the workers take it now."
    )))
}

/// A price line for the attach form: `Pro — $20.00 / month`.
pub(super) fn price_label(plan: &crate::catalog::Plan) -> String {
    let kind = if plan.add_on { " (add-on)" } else { "" };
    match &plan.price {
        Some(price) => format!(
            "{}{kind} — {} / {}",
            plan.name,
            money(price.amount, &price.currency),
            interval(price.interval)
        ),
        None => format!("{}{kind} — free", plan.name),
    }
}

pub(super) fn interval(interval: crate::catalog::Interval) -> &'static str {
    match interval {
        crate::catalog::Interval::Day => "day",
        crate::catalog::Interval::Week => "week",
        crate::catalog::Interval::Month => "month",
        crate::catalog::Interval::Year => "year",
    }
}
