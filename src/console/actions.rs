//! What the console's forms do. Each action calls the use case the JSON API's handler calls
//! ([`crate::ops`]), with the same typed request, and comes back as an [`Outcome`] to show.
//!
//! The plan changes (cancel, uncancel, quantity) are recorded as the console's (the
//! timeline's source).

use super::ConsoleState;
use super::flash::Outcome;
use super::layout::{count, money};
use crate::ops::attach::NewAttach;
use crate::ops::balances::Edit;
use crate::ops::customers::NewCustomer;
use crate::ops::plan_changes::ChangeRequest;
use crate::ops::{self, Requested};
use crate::views::{AttachAnswer, PlanChangeView};
use crate::web::ApiError;

/// Who the console's edits are recorded as (`balance_edits.actor`, the timeline's `who`).
pub(super) const ACTOR: &str = "console";

#[derive(Debug)]
pub(crate) enum ConsoleAction {
    CreateCustomer(NewCustomer),
    Attach(NewAttach),
    EditBalance(Edit),
    PlanChange(ChangeRequest),
    RetryEvent { job_key: String },
}

impl ConsoleAction {
    pub(crate) async fn run(self, state: &ConsoleState) -> Outcome {
        let ctx = &state.ops;
        let result = match self {
            Self::CreateCustomer(new) => create_customer(ctx, new).await,
            Self::Attach(new) => attach(ctx, &new).await,
            Self::EditBalance(edit) => edit_balance(ctx, &edit).await,
            Self::PlanChange(request) => plan_change(ctx, &request).await,
            Self::RetryEvent { job_key } => retry(state, &job_key).await,
        };
        result.unwrap_or_else(|error| {
            error.log();
            Outcome::failed(error.to_string())
        })
    }
}

/// A cancel, uncancel or quantity change (recorded as the console's), waited for like the
/// API waits.
async fn plan_change(ctx: &ops::Ctx, request: &ChangeRequest) -> Result<Outcome, ApiError> {
    let answer = ops::plan_changes::request(ctx, request, ACTOR).await?;
    Ok(plan_change_outcome(request.plan_id.as_str(), &answer))
}

fn plan_change_outcome(plan_id: &str, answer: &Requested<PlanChangeView>) -> Outcome {
    let change = &answer.view;
    let error = change.error.as_deref().unwrap_or_default();
    match (
        change.state.as_str(),
        change.outcome.as_deref().unwrap_or_default(),
    ) {
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
            count(i64::from(change.quantity.unwrap_or_default()))
        )),
        ("done", _) => Outcome::notice(format!("{plan_id} was that way already: nothing changed.")),
        ("failed", _) => Outcome::failed(format!("Changing {plan_id} failed: {error}")),
        _ if answer.pending => Outcome::notice(format!(
            "Changing {plan_id} is still running (change {}); reload in a moment.",
            change.id
        )),
        (other, _) => Outcome::notice(format!("Change of {plan_id}: {other}.")),
    }
}

async fn create_customer(ctx: &ops::Ctx, new: NewCustomer) -> Result<Outcome, ApiError> {
    let (created, view) = ops::customers::get_or_create(ctx, new).await?;
    let who = view
        .id
        .as_deref()
        .or(view.email.as_deref())
        .unwrap_or_default();
    Ok(if created {
        Outcome::done(format!("Created customer {who}."))
    } else {
        Outcome::notice(format!(
            "Customer {who} existed already: its given fields were refreshed."
        ))
    })
}

/// The attach form's request: the same [`NewAttach`] `POST /v1/attach` makes.
async fn attach(ctx: &ops::Ctx, new: &NewAttach) -> Result<Outcome, ApiError> {
    let answer = ops::attach::start(ctx, new).await?;
    Ok(attach_outcome(new.plan_id.as_str(), &answer))
}

fn attach_outcome(plan: &str, answer: &Requested<AttachAnswer>) -> Outcome {
    let view = &answer.view;
    let duplicate = view.duplicate();
    let error = view.error().unwrap_or_default();
    match view.state() {
        "checkout_required" => Outcome::done(format!(
            "{plan} needs a checkout: hand this link to the customer{}.",
            if duplicate {
                " (the attach in flight)"
            } else {
                ""
            }
        ))
        .with_link("Checkout page", view.checkout_url().unwrap_or_default()),
        "requires_action" => Outcome::notice(format!(
            "{plan}: the first payment needs the customer ({error})."
        ))
        .with_link("Payment page", view.action_url().unwrap_or_default()),
        "active" if duplicate => Outcome::notice(format!("The customer has {plan} already.")),
        "active" => Outcome::done(format!("Attached {plan}: active now.")),
        "scheduled" => Outcome::done(format!("{plan} is scheduled for the next renewal.")),
        "awaiting_payment" => Outcome::notice(format!(
            "{plan} waits for a payment in progress (a bank debit)."
        )),
        "failed" => Outcome::failed(format!("Attaching {plan} failed: {error}")),
        _ if answer.pending => Outcome::notice(format!(
            "Attaching {plan} is still running (attach {}); reload in a moment.",
            view.id().unwrap_or_default()
        )),
        other => Outcome::notice(format!("Attach of {plan}: {other}.")),
    }
}

async fn edit_balance(ctx: &ops::Ctx, edit: &Edit) -> Result<Outcome, ApiError> {
    let answer = ops::balances::edit(ctx, edit, ACTOR).await?;
    let verb = match edit.op {
        crate::domain::BalanceOp::Grant => "Granted",
        crate::domain::BalanceOp::Set => "Set",
        crate::domain::BalanceOp::Deduct => "Deducted",
    };
    Ok(Outcome::done(format!(
        "{verb} {} {}: the balance is now {}.",
        count(edit.amount.get()),
        edit.feature_id,
        count(answer.balance)
    )))
}

async fn retry(state: &ConsoleState, job_key: &str) -> Result<Outcome, ApiError> {
    let n = outbox::queue::retry(&state.ops.pool, Some(job_key)).await?;
    if n == 0 {
        return Ok(Outcome::notice(format!(
            "{job_key} is not in the queue any more (applied, or retried already)."
        )));
    }
    if let Err(error) = outbox::queue::notify_peers(&state.ops.pool, "console").await {
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
