//! `customers ...`: what the API's customer routes do, for operators with only the database
//! (`DATABASE_URL`, and the catalog). Every command parses its arguments into the same
//! domain types and calls the same use case ([`crate::ops`]) as its route, so `--json`
//! prints exactly the API's answer and refusals are worded the same; without it, a table or
//! a line ([`super::customers_print`]).
//!
//! Plan changes (`cancel`, `uncancel`, `quantity`) are recorded here and carried out in Stripe
//! by the daemon's workers (which hold the Stripe key); the command waits `--wait` seconds for
//! the outcome and otherwise prints the change's id (`GET /v1/plan_changes/{id}`).

use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use sqlx::PgPool;

use super::UsageError;
use super::customers_print::{print_json, show, show_change, show_edit, show_list, show_timeline};
use crate::catalog::Catalog;
use crate::changes::{CancelAt, Change};
use crate::domain::{self, Amount, BalanceOp, CustomerId, FeatureId, IdempotencyKey, Limit};
use crate::domain::{PlanId, Quantity};
use crate::ops::{self, Ctx};

/// Who the CLI's edits are recorded as (the timeline's `who` and source).
const ACTOR: &str = "cli";

/// A clap value parser for `field` that refuses in the API's words.
macro_rules! parsed {
    ($t:ty, $field:literal) => {
        |value: &str| domain::parse::<$t>($field, value)
    };
}

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Customers, newest first: search in id, name and email; filter by plan and status.
    List {
        #[arg(long)]
        search: Option<String>,
        /// Customers holding this plan.
        #[arg(long, value_parser = parsed!(PlanId, "plan_id"))]
        plan: Option<PlanId>,
        /// With --plan or alone: the plan's status (active, trialing, past_due, ...).
        #[arg(long)]
        status: Option<String>,
        /// 1 to 100.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=100))]
        limit: i64,
        /// The `next_cursor` a page before printed.
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One customer: plans (live and ended), balances, invoices.
    Show {
        #[arg(value_parser = parsed!(CustomerId, "id"))]
        id: CustomerId,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a plan at the end of its paid period (or at once with --now).
    Cancel {
        #[arg(value_parser = parsed!(CustomerId, "customer_id"))]
        id: CustomerId,
        #[arg(value_parser = parsed!(PlanId, "plan_id"))]
        plan: PlanId,
        #[arg(long)]
        now: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Keep a plan set to cancel, or drop a downgrade scheduled for the period's end.
    Uncancel {
        #[arg(value_parser = parsed!(CustomerId, "customer_id"))]
        id: CustomerId,
        #[arg(value_parser = parsed!(PlanId, "plan_id"))]
        plan: PlanId,
        #[command(flatten)]
        wait: Wait,
    },
    /// Set a plan's quantity (seats), prorated unless --no-prorate.
    Quantity {
        #[arg(value_parser = parsed!(CustomerId, "customer_id"))]
        id: CustomerId,
        #[arg(value_parser = parsed!(PlanId, "plan_id"))]
        plan: PlanId,
        /// 1 to 1000000.
        #[arg(value_parser = parsed!(Quantity, "quantity"), allow_hyphen_values = true)]
        quantity: Quantity,
        #[arg(long)]
        no_prorate: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Grant, set or deduct a balance until the feature's next reset.
    Balance {
        #[arg(value_parser = parsed!(CustomerId, "customer_id"))]
        id: CustomerId,
        #[arg(value_parser = parsed!(FeatureId, "feature_id"))]
        feature: FeatureId,
        /// grant, set or deduct.
        #[arg(value_parser = parsed!(BalanceOp, "op"))]
        op: BalanceOp,
        #[arg(value_parser = parsed!(Amount, "amount"), allow_hyphen_values = true)]
        amount: Amount,
        #[arg(long)]
        reason: Option<String>,
        /// The same key applies once.
        #[arg(long, value_parser = parsed!(IdempotencyKey, "idempotency_key"))]
        idempotency_key: Option<IdempotencyKey>,
        #[arg(long)]
        json: bool,
    },
    /// What happened to a customer, newest first.
    Timeline {
        #[arg(value_parser = parsed!(CustomerId, "id"))]
        id: CustomerId,
        /// 1 to 100.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=100))]
        limit: i64,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// How a plan change is waited for and printed.
#[derive(Debug, clap::Args)]
pub struct Wait {
    /// Seconds to wait for the daemon's workers to carry the change out (0 to 3600).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    wait: u64,
    #[arg(long)]
    json: bool,
}

pub async fn run(
    pool: &PgPool,
    catalog: &Arc<Catalog>,
    command: CustomersCommand,
) -> anyhow::Result<()> {
    let ctx = Ctx {
        pool: pool.clone(),
        catalog: catalog.clone(),
        // Recorded here, carried out by the daemon's workers (which hold the Stripe key).
        stripe_enabled: true,
        stripe_api: None,
        wait: Duration::ZERO,
    };
    match command {
        CustomersCommand::List {
            search,
            plan,
            status,
            limit,
            cursor,
            json,
        } => {
            let query = ops::search::ListQuery {
                search,
                plan_id: plan,
                status,
                limit: page_limit(limit),
                cursor,
            };
            let page = ops::search::list(&ctx, &query).await.map_err(refused)?;
            if json {
                return print_json(&page);
            }
            show_list(&page);
            Ok(())
        }
        CustomersCommand::Show { id, json } => {
            let view = ops::customers::get(&ctx, &id).await.map_err(refused)?;
            if json {
                return print_json(&view);
            }
            show(&view);
            Ok(())
        }
        CustomersCommand::Cancel {
            id,
            plan,
            now,
            wait,
        } => {
            let at = if now {
                CancelAt::Now
            } else {
                CancelAt::PeriodEnd
            };
            change(ctx, id, plan, Change::Cancel { at }, wait).await
        }
        CustomersCommand::Uncancel { id, plan, wait } => {
            change(ctx, id, plan, Change::Uncancel, wait).await
        }
        CustomersCommand::Quantity {
            id,
            plan,
            quantity,
            no_prorate,
            wait,
        } => {
            let quantity = quantity.get();
            let prorate = !no_prorate;
            change(ctx, id, plan, Change::Quantity { quantity, prorate }, wait).await
        }
        CustomersCommand::Balance {
            id,
            feature,
            op,
            amount,
            reason,
            idempotency_key,
            json,
        } => {
            let edit = ops::balances::Edit {
                customer_id: id,
                feature_id: feature,
                op,
                amount,
                reason,
                idempotency_key,
            };
            let answer = ops::balances::edit(&ctx, &edit, ACTOR)
                .await
                .map_err(refused)?;
            if json {
                return print_json(&answer);
            }
            show_edit(&answer);
            Ok(())
        }
        CustomersCommand::Timeline {
            id,
            limit,
            cursor,
            json,
        } => {
            let page = ops::timeline::page(&ctx, &id, page_limit(limit), cursor.as_deref())
                .await
                .map_err(refused)?;
            if json {
                return print_json(&page);
            }
            show_timeline(&page);
            Ok(())
        }
    }
}

/// A `--limit` clap has held to 1..=100.
fn page_limit(limit: i64) -> Limit {
    Limit::try_from(limit).expect("clap holds --limit to 1..=100")
}

/// Records a plan change as the CLI's and waits for the daemon's workers to carry it out.
async fn change(
    ctx: Ctx,
    customer_id: CustomerId,
    plan_id: PlanId,
    change: Change,
    wait: Wait,
) -> anyhow::Result<()> {
    let ctx = Ctx {
        // The daemon's workers wake on the queue's notification; wait for them.
        wait: Duration::from_secs(wait.wait),
        ..ctx
    };
    let request = ops::plan_changes::ChangeRequest {
        customer_id,
        plan_id,
        change,
        idempotency_key: None,
    };
    let mut done = ops::plan_changes::request(&ctx, &request, ACTOR)
        .await
        .map_err(refused)?
        .view;
    // The change as `GET /v1/plan_changes/{id}` shows it.
    done.duplicate = None;
    if wait.json {
        return print_json(&done);
    }
    show_change(&done)
}

/// A refusal the user can correct (a 4xx of the API) exits 2 with the API's words.
fn refused(error: ops::Error) -> anyhow::Error {
    if error.is_refusal() {
        anyhow::Error::new(UsageError(error.to_string()))
    } else {
        anyhow::Error::new(error)
    }
}
