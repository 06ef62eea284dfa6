//! What the console's forms do. Each action calls the function the JSON API's handler
//! calls, with the same request body type, and comes back as an [`Outcome`] to show.
//!
//! The plan changes (cancel, uncancel, quantity) go through `POST /v1/cancel|uncancel|
//! quantity`'s own function, recorded as the console's (the timeline's source).

use hyper::StatusCode;
use serde_json::Value;

use super::flash::Outcome;
use super::layout::{count, money};
use crate::changes::Change;
use crate::http::AppState;
use crate::http::attach::{self, CreateAttach};
use crate::http::customers::{self, CreateCustomer, EditBalance};
use crate::http::error::ApiError;
use crate::http::plan_changes;

/// Who the console's edits are recorded as (`balance_edits.actor`, the timeline's `who`).
pub(super) const ACTOR: &str = "console";

pub(crate) use crate::changes::CancelAt;

/// How an attach's price change is billed: the API's rule (an upgrade prorates, a
/// downgrade waits for the renewal), or the operator's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proration {
    Default,
    Prorate,
    None,
}

/// The attach form's quantity and proration choice, set on [`CreateAttach`].
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
            Self::Cancel {
                customer_id,
                plan_id,
                at,
            } => plan_change(state, &customer_id, &plan_id, Change::Cancel { at }).await,
            Self::Uncancel {
                customer_id,
                plan_id,
            } => plan_change(state, &customer_id, &plan_id, Change::Uncancel).await,
            Self::Quantity {
                customer_id,
                plan_id,
                quantity,
                prorate,
            } => match i32::try_from(quantity) {
                Ok(quantity) => {
                    let change = Change::Quantity { quantity, prorate };
                    plan_change(state, &customer_id, &plan_id, change).await
                }
                Err(_) => Err(ApiError::invalid("quantity", "is too large")),
            },
            Self::RetryEvent { job_key } => retry(state, &job_key).await,
        };
        result.unwrap_or_else(|error| {
            error.log();
            Outcome::failed(error.to_string())
        })
    }
}

/// A cancel, uncancel or quantity change, as `POST /v1/cancel|uncancel|quantity` makes it
/// (recorded as the console's), waited for like the API waits.
async fn plan_change(
    state: &AppState,
    customer_id: &str,
    plan_id: &str,
    change: Change,
) -> Result<Outcome, ApiError> {
    let target = plan_changes::Target {
        customer_id,
        plan_id,
        idempotency_key: None,
    };
    let (status, answer) = plan_changes::request(state, target, change, ACTOR).await?;
    let text = |key: &str| answer[key].as_str().unwrap_or_default().to_owned();
    Ok(match (text("state").as_str(), text("outcome").as_str()) {
        ("done", "canceled") => Outcome::done(format!(
            "{plan_id} is set to cancel at the end of its period."
        )),
        ("done", "ended") => Outcome::done(format!("{plan_id} has ended.")),
        ("done", "uncanceled") => Outcome::done(format!("{plan_id} will renew again.")),
        ("done", "unscheduled") => Outcome::done(format!(
            "The downgrade to {plan_id} is dropped: the current plan stays."
        )),
        ("done", "quantity") => Outcome::done(format!(
            "{plan_id} now counts {}.",
            count(answer["quantity"].as_i64().unwrap_or_default())
        )),
        ("done", _) => Outcome::notice(format!("{plan_id} was that way already: nothing changed.")),
        ("failed", _) => Outcome::failed(format!("Changing {plan_id} failed: {}", text("error"))),
        _ if status == StatusCode::ACCEPTED => Outcome::notice(format!(
            "Changing {plan_id} is still running (change {}); reload in a moment.",
            text("id")
        )),
        (other, _) => Outcome::notice(format!("Change of {plan_id}: {other}.")),
    })
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
    let mut body = body;
    body.quantity = options.quantity;
    // The API's rule by default: an upgrade prorates (a downgrade never does).
    body.prorate = options.proration != Proration::None;
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
    let answer = customers::apply_balance_edit(&state.pool, &state.catalog, body, ACTOR).await?;
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
