//! `customers ...`: what the API's customer routes do, for operators with only the database
//! (`DATABASE_URL`, and the catalog). Every command calls the function its route calls, so
//! `--json` prints exactly the API's answer and refusals are worded the same; without it,
//! a table or a line.
//!
//! Plan changes (`cancel`, `uncancel`, `quantity`) are recorded here and carried out in Stripe
//! by the daemon's workers (which hold the Stripe key); the command waits `--wait` seconds for
//! the outcome and otherwise prints the change's id (`GET /v1/plan_changes/{id}`).

use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use serde_json::Value;
use sqlx::PgPool;

use crate::catalog::Catalog;
use crate::changes::{self, CancelAt, Change};
use crate::http::customers::{self as api, EditBalance};
use crate::http::error::ApiError;
use crate::http::{input, plan_changes, timeline};
use crate::pending;

use super::UsageError;

/// Who the CLI's edits are recorded as (the timeline's `who` and source).
const ACTOR: &str = "cli";

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Customers, newest first: search in id, name and email; filter by plan and status.
    List {
        #[arg(long)]
        search: Option<String>,
        /// Customers holding this plan.
        #[arg(long)]
        plan: Option<String>,
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
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a plan at the end of its paid period (or at once with --now).
    Cancel {
        id: String,
        plan: String,
        #[arg(long)]
        now: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Keep a plan set to cancel, or drop a downgrade scheduled for the period's end.
    Uncancel {
        id: String,
        plan: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Set a plan's quantity (seats), prorated unless --no-prorate.
    Quantity {
        id: String,
        plan: String,
        quantity: i64,
        #[arg(long)]
        no_prorate: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Grant, set or deduct a balance until the feature's next reset.
    Balance {
        id: String,
        feature: String,
        op: BalanceOp,
        amount: i64,
        #[arg(long)]
        reason: Option<String>,
        /// The same key applies once.
        #[arg(long)]
        idempotency_key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// What happened to a customer, newest first.
    Timeline {
        id: String,
        /// 1 to 100.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=100))]
        limit: i64,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BalanceOp {
    Grant,
    Set,
    Deduct,
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
    catalog: &Catalog,
    command: CustomersCommand,
) -> anyhow::Result<()> {
    match command {
        CustomersCommand::List {
            search,
            plan,
            status,
            limit,
            cursor,
            json,
        } => {
            let filters = [("search", search), ("plan_id", plan), ("status", status)];
            let query = page_query(limit, cursor, filters);
            let page = api::list_page(pool, Some(&query)).await.map_err(refused)?;
            if json {
                return print_json(&page);
            }
            let rows: Vec<Vec<String>> = list(&page["data"])
                .iter()
                .map(|c| {
                    let plans: Vec<String> = list(&c["plans"])
                        .iter()
                        .map(|p| format!("{} ({})", text(&p["plan_id"]), text(&p["status"])))
                        .collect();
                    vec![
                        text(&c["id"]),
                        text(&c["name"]),
                        text(&c["email"]),
                        plans.join(", "),
                        day(&c["created_at"]),
                    ]
                })
                .collect();
            print_table(&["id", "name", "email", "plans", "since"], &rows);
            if let Some(next) = page["next_cursor"].as_str() {
                println!("more: --cursor {next}");
            }
            Ok(())
        }
        CustomersCommand::Show { id, json } => {
            let view = api::view_of(pool, catalog, &id).await.map_err(refused)?;
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
            change(pool, catalog, &id, &plan, Change::Cancel { at }, wait).await
        }
        CustomersCommand::Uncancel { id, plan, wait } => {
            change(pool, catalog, &id, &plan, Change::Uncancel, wait).await
        }
        CustomersCommand::Quantity {
            id,
            plan,
            quantity,
            no_prorate,
            wait,
        } => {
            // The API's bounds, in its words.
            let quantity = input::quantity("quantity", quantity).map_err(refused)?;
            let prorate = !no_prorate;
            let change_ = Change::Quantity { quantity, prorate };
            change(pool, catalog, &id, &plan, change_, wait).await
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
            let body = EditBalance {
                customer_id: id,
                feature_id: feature,
                op: format!("{op:?}").to_lowercase(),
                amount,
                reason,
                idempotency_key,
            };
            let answer = api::apply_balance_edit(pool, catalog, body, ACTOR)
                .await
                .map_err(refused)?;
            if json {
                return print_json(&answer);
            }
            let again = if answer["duplicate"] == true {
                " (that key was used before: nothing changed)"
            } else {
                ""
            };
            println!(
                "{}: balance {} (included {}, adjustment {}, used {}){again}",
                text(&answer["feature_id"]),
                answer["balance"],
                answer["included"],
                answer["adjustment"],
                answer["used"]
            );
            Ok(())
        }
        CustomersCommand::Timeline {
            id,
            limit,
            cursor,
            json,
        } => {
            let query = page_query(limit, cursor, []);
            let page = timeline::page(pool, &id, Some(&query))
                .await
                .map_err(refused)?;
            if json {
                return print_json(&page);
            }
            let rows: Vec<Vec<String>> = list(&page["data"])
                .iter()
                .map(|e| {
                    vec![
                        text(&e["at"]),
                        text(&e["kind"]),
                        summary(e),
                        text(&e["source"]),
                    ]
                })
                .collect();
            print_table(&["at", "kind", "what", "source"], &rows);
            if let Some(next) = page["next_cursor"].as_str() {
                println!("more: --cursor {next}");
            }
            Ok(())
        }
    }
}

/// The query string of a page of a list route: `limit`, `cursor` and the given filters.
fn page_query<const N: usize>(
    limit: i64,
    cursor: Option<String>,
    filters: [(&str, Option<String>); N],
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &limit.to_string());
    let cursor = [("cursor", cursor)];
    for (key, value) in filters.iter().chain(&cursor) {
        if let Some(value) = value {
            query.append_pair(key, value);
        }
    }
    query.finish()
}

/// Records a plan change as the CLI's and waits for the daemon's workers to carry it out.
async fn change(
    pool: &PgPool,
    catalog: &Catalog,
    customer_id: &str,
    plan_id: &str,
    change: Change,
    wait: Wait,
) -> anyhow::Result<()> {
    let request = changes::Request {
        customer_id,
        plan_id,
        change,
        actor: ACTOR,
        idempotency_key: None,
    };
    let (recorded, _) = changes::request(pool, catalog, &request)
        .await
        .map_err(|e| refused(e.into()))?;
    // The daemon's workers wake on the queue's notification; wait for them.
    let done = pending::wait(pool, recorded, Duration::from_secs(wait.wait)).await?;
    let answer = plan_changes::view(&done, customer_id);
    if wait.json {
        return print_json(&answer);
    }
    match done.state.as_str() {
        "done" => println!(
            "{} {plan_id} of {customer_id}: {} ({})",
            done.kind,
            done.outcome.as_deref().unwrap_or("done"),
            done.id
        ),
        "failed" => {
            return Err(anyhow::anyhow!(
                "{} {plan_id} of {customer_id} failed: {} ({})",
                done.kind,
                done.error.as_deref().unwrap_or("unknown error"),
                done.id
            ));
        }
        _ => println!(
            "{} {plan_id} of {customer_id}: recorded as {}, waiting for the daemon's workers \
             (is `serve` running?); `GET /v1/plan_changes/{}` tells its outcome",
            done.kind, done.id, done.id
        ),
    }
    Ok(())
}

/// A refusal the user can correct (a 4xx of the API) exits 2 with the API's words.
fn refused(error: ApiError) -> anyhow::Error {
    if error.status().is_client_error() {
        anyhow::Error::new(UsageError(error.to_string()))
    } else {
        anyhow::Error::new(error)
    }
}

fn show(view: &Value) {
    println!(
        "{}  {}  {}  stripe: {}",
        text(&view["id"]),
        text(&view["name"]),
        text(&view["email"]),
        text(&view["stripe_id"])
    );
    let plan_row = |p: &Value| {
        let cancel = if p["cancel_at_period_end"] == true {
            "cancels at period end".to_owned()
        } else {
            text(&p["cancel_at"])
        };
        vec![
            text(&p["plan_id"]),
            text(&p["status"]),
            p["quantity"].to_string(),
            day(&p["started_at"]),
            day(&p["next_renewal_at"]),
            day(&p["ended_at"]),
            cancel,
        ]
    };
    let mut plans: Vec<Vec<String>> = list(&view["products"]).iter().map(plan_row).collect();
    plans.extend(list(&view["ended_products"]).iter().map(plan_row));
    println!();
    print_table(
        &[
            "plan", "status", "qty", "started", "renews", "ended", "cancel",
        ],
        &plans,
    );
    let balances: Vec<Vec<String>> = list(&view["balances"])
        .iter()
        .map(|b| {
            let balance = if b["unlimited"] == true {
                "unlimited".to_owned()
            } else {
                b["balance"].to_string()
            };
            vec![
                text(&b["feature_id"]),
                balance,
                b["included"].to_string(),
                b["used"].to_string(),
                day(&b["next_reset_at"]),
            ]
        })
        .collect();
    println!();
    print_table(
        &["feature", "balance", "included", "used", "resets"],
        &balances,
    );
    let invoices: Vec<Vec<String>> = list(&view["invoices"])
        .iter()
        .map(|i| {
            vec![
                text(&i["stripe_id"]),
                text(&i["status"]),
                format!("{} {}", i["total"], text(&i["currency"])),
                day(&i["created_at"]),
            ]
        })
        .collect();
    println!();
    print_table(&["invoice", "status", "total", "date"], &invoices);
}

/// One timeline entry in a few words.
fn summary(entry: &Value) -> String {
    let fields = [
        "plan_id",
        "feature_id",
        "amount",
        "quantity",
        "from",
        "reason",
        "invoice_id",
        "total",
        "who",
    ];
    fields
        .iter()
        .filter(|f| !entry[**f].is_null())
        .map(|f| format!("{f}={}", text(&entry[*f])))
        .collect::<Vec<_>>()
        .join(" ")
}

fn list(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

/// A JSON value as a cell: strings bare, null empty.
fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The day of an RFC 3339 time.
fn day(value: &Value) -> String {
    text(value).chars().take(10).collect()
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    super::ops::print_table(headers, rows);
}
