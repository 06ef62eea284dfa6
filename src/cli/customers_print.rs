//! How `customers ...` prints the views it gets: tables and lines of their fields, or the
//! API's JSON with `--json`.

use crate::views::{BalanceEdited, CustomerView, ListedCustomer, Page, PlanChangeView};
use crate::views::{PlanView, Time, TimelineEntry};

pub(super) fn print_json(view: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(view)?);
    Ok(())
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    super::ops::print_table(headers, rows);
}

/// An optional text as a cell: empty for none.
fn cell(text: Option<&str>) -> String {
    text.unwrap_or_default().to_owned()
}

/// The day of a time (`2027-01-01`); empty for none.
fn day(at: impl Into<Option<Time>>) -> String {
    at.into()
        .map(|t| t.to_string().chars().take(10).collect())
        .unwrap_or_default()
}

pub(super) fn show_list(page: &Page<ListedCustomer>) {
    let rows: Vec<Vec<String>> = page
        .data
        .iter()
        .map(|c| {
            let plans: Vec<String> = c
                .plans
                .iter()
                .map(|p| format!("{} ({})", p.plan_id, p.status))
                .collect();
            vec![
                cell(c.id.as_deref()),
                cell(c.name.as_deref()),
                cell(c.email.as_deref()),
                plans.join(", "),
                day(c.created_at),
            ]
        })
        .collect();
    print_table(&["id", "name", "email", "plans", "since"], &rows);
    if let Some(next) = &page.next_cursor {
        println!("more: --cursor {next}");
    }
}

pub(super) fn show(view: &CustomerView) {
    println!(
        "{}  {}  {}  stripe: {}",
        cell(view.id.as_deref()),
        cell(view.name.as_deref()),
        cell(view.email.as_deref()),
        cell(view.stripe_id.as_deref())
    );
    let plan_row = |p: &PlanView| {
        let cancel = if p.cancel_at_period_end {
            "cancels at period end".to_owned()
        } else {
            p.cancel_at.map(|t| t.to_string()).unwrap_or_default()
        };
        vec![
            p.plan_id.clone(),
            p.status.clone(),
            p.quantity.to_string(),
            day(p.started_at),
            day(p.next_renewal_at),
            day(p.ended_at),
            cancel,
        ]
    };
    let mut plans: Vec<Vec<String>> = view.products.iter().map(plan_row).collect();
    plans.extend(view.ended_products.iter().map(plan_row));
    println!();
    print_table(
        &[
            "plan", "status", "qty", "started", "renews", "ended", "cancel",
        ],
        &plans,
    );
    let balances: Vec<Vec<String>> = view
        .balances
        .iter()
        .map(|b| {
            let balance = if b.unlimited {
                "unlimited".to_owned()
            } else {
                b.balance.to_string()
            };
            vec![
                b.feature_id.clone(),
                balance,
                b.included.to_string(),
                b.used.to_string(),
                day(b.next_reset_at),
            ]
        })
        .collect();
    println!();
    print_table(
        &["feature", "balance", "included", "used", "resets"],
        &balances,
    );
    let invoices: Vec<Vec<String>> = view
        .invoices
        .iter()
        .map(|i| {
            vec![
                i.stripe_id.clone(),
                i.status.clone(),
                format!("{} {}", i.total, i.currency),
                day(i.created_at),
            ]
        })
        .collect();
    println!();
    print_table(&["invoice", "status", "total", "date"], &invoices);
}

pub(super) fn show_edit(answer: &BalanceEdited) {
    let again = if answer.duplicate {
        " (that key was used before: nothing changed)"
    } else {
        ""
    };
    println!(
        "{}: balance {} (included {}, adjustment {}, used {}){again}",
        answer.feature_id, answer.balance, answer.included, answer.adjustment, answer.used
    );
}

pub(super) fn show_timeline(page: &Page<TimelineEntry>) {
    let rows: Vec<Vec<String>> = page
        .data
        .iter()
        .map(|e| {
            vec![
                e.at.to_string(),
                e.kind.clone(),
                summary(e),
                e.source.clone(),
            ]
        })
        .collect();
    print_table(&["at", "kind", "what", "source"], &rows);
    if let Some(next) = &page.next_cursor {
        println!("more: --cursor {next}");
    }
}

/// One timeline entry in a few words.
fn summary(entry: &TimelineEntry) -> String {
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
        .filter_map(|f| entry.text(f).map(|value| format!("{f}={value}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A plan change's outcome in a line (an error when it failed).
pub(super) fn show_change(done: &PlanChangeView) -> anyhow::Result<()> {
    let (change, customer_id) = (done, &done.customer_id);
    let plan_id = &change.plan_id;
    match change.state.as_str() {
        "done" => println!(
            "{} {plan_id} of {customer_id}: {} ({})",
            change.kind,
            change.outcome.as_deref().unwrap_or("done"),
            change.id
        ),
        "failed" => {
            return Err(anyhow::anyhow!(
                "{} {plan_id} of {customer_id} failed: {} ({})",
                change.kind,
                change.error.as_deref().unwrap_or("unknown error"),
                change.id
            ));
        }
        _ => println!(
            "{} {plan_id} of {customer_id}: recorded as {}, waiting for the daemon's workers \
             (is `serve` running?); `GET /v1/plan_changes/{}` tells its outcome",
            change.kind, change.id, change.id
        ),
    }
    Ok(())
}
