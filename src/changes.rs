//! Plan changes an operator asks for (cancel, uncancel, quantity): checked against the store,
//! recorded, and queued as a `plan.change` job ([`crate::billing`] carries it out in Stripe).
//! The API (`POST /v1/cancel|uncancel|quantity`) and the CLI (`customers cancel|...`) share
//! this, so both refuse the same things with the same words.

use sqlx::PgPool;

use crate::catalog::Catalog;
use crate::requests::{self, RecordError};
use crate::store::plan_changes::{NewChange, PlanChange};
use crate::store::{customers, plans};

/// What an operator asks to change about one plan of one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// End the plan: at the end of the paid period, or now.
    Cancel { at: CancelAt },
    /// Keep a plan set to end; or drop a downgrade scheduled for the period's end.
    Uncancel,
    /// Set the plan's units (seats), prorated or billed from the next period.
    Quantity { quantity: i32, prorate: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelAt {
    PeriodEnd,
    Now,
}

impl CancelAt {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "period_end" => Some(Self::PeriodEnd),
            "now" => Some(Self::Now),
            _ => None,
        }
    }

    /// As `POST /v1/cancel`'s `at` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PeriodEnd => "period_end",
            Self::Now => "now",
        }
    }
}

/// A change request, and who makes it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub customer_id: &'a str,
    pub plan_id: &'a str,
    pub change: Change,
    /// The timeline's source: the API token's label, or `cli`.
    pub actor: &'a str,
    /// The same key for the same customer returns the change made the first time.
    pub idempotency_key: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("customer {0} not found")]
    CustomerNotFound(String),
    #[error("plan {0} not found")]
    PlanNotFound(String),
    #[error("customer {customer} has no plan {plan}")]
    PlanNotHeld { customer: String, plan: String },
    /// The plan's state does not allow the change; `code` says why.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The idempotency key was used for another change; `differs` names what.
    #[error("idempotency_key {key} was used for another change ({differs} differs): use a new key")]
    KeyReused { key: String, differs: &'static str },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Records the change and queues its job, in one transaction ([`requests::record`]); returns
/// it and whether it is the one an earlier request with the same idempotency key made.
pub async fn request(
    pool: &PgPool,
    catalog: &Catalog,
    request: &Request<'_>,
) -> Result<(PlanChange, bool), ChangeError> {
    let plan = catalog
        .plan(request.plan_id)
        .ok_or_else(|| ChangeError::PlanNotFound(request.plan_id.to_owned()))?;
    let mut tx = pool.begin().await?;
    // Serialises one customer's requests with its attaches and deletion.
    let customer = customers::lock_by_id(&mut tx, request.customer_id)
        .await?
        .ok_or_else(|| ChangeError::CustomerNotFound(request.customer_id.to_owned()))?;
    let (kind, cancel_at, quantity, prorate) = match request.change {
        Change::Cancel { at } => ("cancel", Some(at.as_str()), None, false),
        Change::Uncancel => ("uncancel", None, None, false),
        Change::Quantity { quantity, prorate } => ("quantity", None, Some(quantity), prorate),
    };
    let new = NewChange {
        customer_pk: customer.pk,
        plan_id: &plan.id,
        kind,
        cancel_at,
        quantity,
        prorate,
        actor: request.actor,
        idempotency_key: request.idempotency_key,
    };
    let reused = |e| key_reused(e, request.idempotency_key);
    if let Some(earlier) = requests::earlier(&mut tx, &new).await.map_err(reused)? {
        tx.commit().await?;
        return Ok((earlier, true));
    }
    let held = plans::held(&mut tx, customer.pk, &plan.id)
        .await?
        .ok_or_else(|| ChangeError::PlanNotHeld {
            customer: request.customer_id.to_owned(),
            plan: plan.id.clone(),
        })?;
    allowed(&request.change, &held, &plan.id)?;
    let (change, duplicate) = requests::record(&mut tx, &new).await.map_err(reused)?;
    tx.commit().await?;
    Ok((change, duplicate))
}

/// A key seen before answers the change it made only for the same request (Stripe's rule:
/// a key reused with other parameters is an `idempotency_error`).
fn key_reused(error: RecordError, key: Option<&str>) -> ChangeError {
    match error {
        RecordError::Reused { differs } => ChangeError::KeyReused {
            key: key.unwrap_or_default().to_owned(),
            differs,
        },
        RecordError::Database(e) => ChangeError::Database(e),
    }
}

/// Whether `change` can be made to a plan that stands as `held`.
fn allowed(change: &Change, held: &plans::HeldPlan, plan: &str) -> Result<(), ChangeError> {
    let scheduled = held.status == "scheduled";
    let subscription = held.stripe_subscription_id.is_some();
    let refuse = |code, message: String| Err(ChangeError::Conflict { code, message });
    match change {
        Change::Cancel { .. } if scheduled => refuse(
            "plan_scheduled",
            format!(
                "plan {plan} is a downgrade scheduled for the period's end: \
                 drop it with uncancel"
            ),
        ),
        Change::Uncancel if !scheduled && !held.canceling() => refuse(
            "plan_not_canceling",
            format!("plan {plan} is not set to cancel, nor scheduled"),
        ),
        Change::Quantity { .. } if scheduled => refuse(
            "plan_scheduled",
            format!("plan {plan} has not started yet: change its quantity once it has"),
        ),
        Change::Quantity { .. } if !subscription => refuse(
            "no_subscription",
            format!("plan {plan} has no Stripe subscription to count units on"),
        ),
        _ => Ok(()),
    }
}
