//! `invoice.*`: keep the invoice and its lines (with what discounts took off); on `invoice.paid`, finish an attach that
//! waited on the first payment, and on a renewal (`subscription_cycle`) reset the period's
//! allowance once; on `invoice.created` for a renewal draft, enqueue the ended period's usage
//! billing. When the first payment needs the customer (`invoice.payment_action_required`, or
//! `invoice.payment_failed` of a `subscription_create` invoice), the waiting attach becomes
//! `requires_action` with the invoice's hosted page.

use std::sync::Arc;

use sqlx::PgConnection;

use crate::catalog::Catalog;
use crate::jobs::BillUsage;
use crate::metrics;
use crate::store::entities::{self, SubscriptionOwner};
use crate::store::invoices::{self, InvoiceState, Owner};
use crate::store::{activity, attaches, balances};
use crate::stripe::event::object;
use crate::stripe::objects::{Expandable, Invoice, timestamp};
use crate::sync::customer::{resolve_customer, unknown_customer};
use crate::sync::prices::PricePlans;
use outbox::{EventHandler, JobError, Outcome, StoredEvent};

pub(super) const EVENT_TYPES: &[&str] = &[
    "invoice.created",
    "invoice.finalized",
    "invoice.updated",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.voided",
    "invoice.marked_uncollectible",
];

#[derive(Clone)]
pub(super) struct InvoiceHandler {
    pub catalog: Arc<Catalog>,
    /// Enqueue usage billing for renewal drafts (only when Stripe is configured).
    pub bill_usage: bool,
    pub prices: Arc<PricePlans>,
}

impl EventHandler for InvoiceHandler {
    /// Every wave, even of one event: a plain invoice is then one statement (the one-row
    /// form of [`invoices::record_many`], which also writes its payment entry under its own
    /// source and finishes the attaches it pays), where `handle` takes two to four round
    /// trips (the source named, the row, the entry, the attaches). At a steady stream each
    /// round trip waits for a core.
    const TOGETHER_FROM: usize = 1;

    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<Outcome, JobError> {
        activity::set_source(conn, &event.id, Some(event.created)).await?;
        let invoice: Invoice = object(event)?;
        let lines = lines(conn, &self.catalog, &self.prices, &invoice).await?;
        let state = state_of(&self.catalog, event, &invoice, lines);
        // Usually the customer is linked already: then one statement records it.
        let recorded = match invoice.customer.as_ref().map(Expandable::id) {
            Some(id) => invoices::record(conn, Owner::StripeCustomer(id), &state).await?,
            None => None,
        };
        self.apply_recorded(conn, event, &invoice, &state, recorded)
            .await
    }

    /// The plain invoices of a wave together (see [`Self::plain`]): their rows, their payment
    /// entries and the attaches they pay in one statement; those whose
    /// Stripe customer is not linked go on one at a time (by metadata, else skipped). The
    /// rest one at a time, in their order, after those: the same rules.
    async fn handle_many(
        &self,
        conn: &mut PgConnection,
        events: &[&StoredEvent],
    ) -> Result<Vec<Result<Outcome, JobError>>, JobError> {
        let parsed: Vec<Option<Invoice>> = events
            .iter()
            .map(|e| object(e).ok().filter(|i| self.plain(&e.event_type, i)))
            .collect();
        let mut plain = Vec::new();
        for (n, (event, invoice)) in events.iter().zip(&parsed).enumerate() {
            if let Some(invoice) = invoice
                && let Some(customer) = invoice.customer.as_ref().map(Expandable::id)
            {
                let lines = lines(conn, &self.catalog, &self.prices, invoice).await?;
                let state = state_of(&self.catalog, event, invoice, lines);
                plain.push((n, *event, invoice, customer, state));
            }
        }
        // Each with its payment entry and the attaches it pays, written once its customer is
        // found (in the same statement).
        let owners: Vec<(Owner<'_>, &InvoiceState<'_>, invoices::Also<'_>)> = plain
            .iter()
            .map(|(_, event, invoice, customer, state)| {
                let also = invoices::Also {
                    entry: payment_entry(&event.event_type, invoice, state).map(|detail| {
                        invoices::Entry {
                            kind: &event.event_type,
                            source: (&event.id, event.created),
                            detail,
                        }
                    }),
                    paid: event.event_type == "invoice.paid",
                };
                (Owner::StripeCustomer(customer), state, also)
            })
            .collect();
        let recorded = invoices::record_many(conn, &owners).await?;
        let mut settled: Vec<Option<Outcome>> = vec![None; events.len()];
        let mut unlinked = Vec::new();
        for (plain, recorded) in plain.iter().zip(recorded) {
            let (n, _, invoice, _, _) = plain;
            // No customer linked by that Stripe id: looked for by metadata, after these.
            let Some(invoices::Recorded { fresh, .. }) = recorded else {
                unlinked.push(plain);
                continue;
            };
            settled[*n] = Some(outcome(fresh, invoice));
        }
        // Counted when the call returns; a batch that rolls back counts again when retried.
        metrics::applied_together("invoice", settled.iter().flatten().count());
        for (n, event, invoice, _, state) in unlinked {
            activity::set_source(conn, &event.id, Some(event.created)).await?;
            let outcome = self.apply_recorded(conn, event, invoice, state, None);
            settled[*n] = Some(outcome.await?);
        }
        outbox::registry::handle_rest(self, conn, events, settled).await
    }
}

impl InvoiceHandler {
    /// The rest of an invoice event once its invoice was recorded for the customer linked to
    /// its Stripe customer (`recorded`; None: none is, so it is looked for by the
    /// subscription's metadata), under the event's source.
    async fn apply_recorded(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
        invoice: &Invoice,
        state: &InvoiceState<'_>,
        mut recorded: Option<invoices::Recorded>,
    ) -> Result<Outcome, JobError> {
        if recorded.is_none() {
            let stripe_customer = invoice.customer.as_ref().map(Expandable::id);
            let metadata = invoice.subscription_metadata();
            let Some(pk) = resolve_customer(conn, stripe_customer, metadata).await? else {
                return Ok(Outcome::Skipped(unknown_customer(stripe_customer)));
            };
            recorded = invoices::record(conn, Owner::Customer(pk), state).await?;
        }
        let paid = event.event_type == "invoice.paid";
        let Some(invoices::Recorded { customer_pk, fresh }) = recorded else {
            return Err(JobError::retryable(anyhow::anyhow!(
                "customer of invoice {} vanished while applying it",
                invoice.id
            )));
        };
        if let Some(detail) = payment_entry(&event.event_type, invoice, state) {
            activity::record(conn, customer_pk, &event.event_type, detail).await?;
        }
        if paid && let Some(subscription) = state.subscription_id {
            // Whether or not the invoice row was stale: the payment was made.
            attaches::first_payment_made(conn, subscription).await?;
        }
        if let Some(reason) = first_payment_needs_customer(&event.event_type, invoice)
            && let Some(subscription) = state.subscription_id
        {
            for attach in attaches::waiting_on(conn, subscription).await? {
                let url = state.hosted_invoice_url;
                attaches::require_action(conn, &attach, subscription, url, reason).await?;
            }
        }
        if self.bill_usage
            && event.event_type == "invoice.created"
            && invoice.billing_reason.as_deref() == Some("subscription_cycle")
            && state.status == "draft"
        {
            enqueue_usage_billing(conn, customer_pk, invoice).await?;
        }
        if paid
            && let Some(subscription) = state.subscription_id
            && invoice.billing_reason.as_deref() == Some("subscription_cycle")
            && let Some(end) = invoice.service_period_end()
        {
            // An entity's subscription renews the entity's balances (not if it was deleted).
            let entity = invoice
                .subscription_metadata()
                .and_then(|m| m.get("entity_id"));
            let owner = entities::subscription_owner(
                conn,
                customer_pk,
                subscription,
                entity.map(String::as_str),
            );
            if let SubscriptionOwner::Pk(owner_pk) = owner.await? {
                balances::reset_for_renewal(conn, owner_pk, subscription, end).await?;
            }
        }
        Ok(outcome(fresh, invoice))
    }

    /// Whether an invoice event is applied with others ([`InvoiceHandler::handle_many`]): it
    /// names a Stripe customer, is no paid renewal (allowances reset), no renewal draft whose
    /// usage is billed, and no first payment that needs the customer (the waiting attach's
    /// action).
    fn plain(&self, event_type: &str, invoice: &Invoice) -> bool {
        let renewal = invoice.billing_reason.as_deref() == Some("subscription_cycle");
        let renews = match event_type {
            "invoice.paid" => renewal,
            "invoice.created" => renewal && self.bill_usage,
            _ => false,
        };
        invoice.customer.is_some()
            && !renews
            && first_payment_needs_customer(event_type, invoice).is_none()
    }
}

/// The invoice as the event shows it.
fn state_of<'a>(
    catalog: &Catalog,
    event: &StoredEvent,
    invoice: &'a Invoice,
    lines: Vec<invoices::Line>,
) -> InvoiceState<'a> {
    let plan_ids = plan_ids(catalog, invoice, &lines);
    let status = invoice
        .status
        .as_deref()
        .unwrap_or(match event.event_type.as_str() {
            "invoice.paid" => "paid",
            "invoice.voided" => "void",
            _ => "open",
        });
    InvoiceState {
        stripe_id: &invoice.id,
        status,
        billing_reason: invoice.billing_reason.as_deref(),
        total: invoice.total,
        currency: &invoice.currency,
        plan_ids,
        hosted_invoice_url: invoice.hosted_invoice_url.as_deref(),
        subscription_id: invoice.subscription_id(),
        period_start: invoice.period_start.and_then(timestamp),
        period_end: invoice.period_end.and_then(timestamp),
        created_at: timestamp(invoice.created).unwrap_or_else(chrono::Utc::now),
        event_created: event.created,
        lines,
        subtotal: invoice.subtotal,
        discount_amounts: invoice
            .discount_amounts()
            .into_iter()
            .map(|(discount, amount)| invoices::DiscountAmount { discount, amount })
            .collect(),
    }
}

/// The timeline entry of a payment's outcome (`invoice.paid`, `invoice.payment_failed`).
fn payment_entry(
    event_type: &str,
    invoice: &Invoice,
    state: &InvoiceState<'_>,
) -> Option<serde_json::Value> {
    matches!(event_type, "invoice.paid" | "invoice.payment_failed").then(|| {
        serde_json::json!({
            "invoice_id": invoice.id, "total": invoice.total, "currency": invoice.currency,
            "plan_ids": state.plan_ids, "hosted_invoice_url": invoice.hosted_invoice_url,
        })
    })
}

/// Applied, or stale when a newer event for the invoice was applied already.
fn outcome(fresh: bool, invoice: &Invoice) -> Outcome {
    if fresh {
        Outcome::Applied
    } else {
        Outcome::Skipped(format!(
            "stale: a newer event for {} was applied already",
            invoice.id
        ))
    }
}

/// Why the customer must act on the first invoice of a subscription, if they must: it needs
/// authentication (3-D Secure), or its payment failed (they can pay another way on the
/// invoice's hosted page until Stripe gives up, `incomplete_expired`).
fn first_payment_needs_customer(event_type: &str, invoice: &Invoice) -> Option<&'static str> {
    match event_type {
        "invoice.payment_action_required" => {
            Some("authentication_required: the customer must confirm the payment (3-D Secure)")
        }
        "invoice.payment_failed"
            if invoice.billing_reason.as_deref() == Some("subscription_create") =>
        {
            Some("payment_failed: the first payment failed; the customer can pay another way")
        }
        _ => None,
    }
}

/// An invoice's lines as we keep them, each with the catalog plan its price (else its
/// metadata) maps to.
async fn lines(
    conn: &mut PgConnection,
    catalog: &Catalog,
    prices: &PricePlans,
    invoice: &Invoice,
) -> Result<Vec<invoices::Line>, sqlx::Error> {
    let mut lines = Vec::with_capacity(invoice.lines.data.len());
    for line in &invoice.lines.data {
        let price = line.price_id();
        let plan = prices.resolve(conn, catalog, price, &line.metadata).await?;
        lines.push(invoices::Line {
            id: line.id.clone(),
            description: line.description.clone(),
            amount: line.amount,
            currency: line.currency.clone(),
            quantity: line.quantity,
            period_start: line.period.as_ref().and_then(|p| timestamp(p.start)),
            period_end: line.period.as_ref().and_then(|p| timestamp(p.end)),
            price_id: price.map(str::to_owned),
            plan_id: plan.map(|p| p.id.clone()),
            discount: line.discount(),
        });
    }
    Ok(lines)
}

/// The plans an invoice bills, from its lines, else the subscription's metadata.
fn plan_ids(catalog: &Catalog, invoice: &Invoice, lines: &[invoices::Line]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for plan in lines.iter().filter_map(|l| l.plan_id.as_ref()) {
        if !ids.contains(plan) {
            ids.push(plan.clone());
        }
    }
    if ids.is_empty()
        && let Some(plan) = invoice
            .subscription_metadata()
            .and_then(|m| m.get("plan_id"))
            .and_then(|id| catalog.plan(id))
    {
        ids.push(plan.id.clone());
    }
    ids
}

/// Bills the ended period's usage of a renewal draft: a job, in the applier's transaction.
async fn enqueue_usage_billing(
    conn: &mut PgConnection,
    customer_pk: i64,
    invoice: &Invoice,
) -> Result<(), sqlx::Error> {
    let (Some(subscription), Some(start), Some(end)) = (
        invoice.subscription_id(),
        invoice.period_start,
        invoice.period_end,
    ) else {
        return Ok(());
    };
    let job = BillUsage {
        invoice_id: invoice.id.clone(),
        customer_pk,
        subscription_id: subscription.to_owned(),
        period_start: start,
        period_end: end,
        currency: invoice.currency.clone(),
    };
    outbox::enqueue(conn, &job).await?;
    Ok(())
}
