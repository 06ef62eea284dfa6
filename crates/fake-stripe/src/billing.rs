//! Stripe-shaped JSON for billing: subscriptions and their items, and invoices, as API
//! version `2026-09-30.endive` renders them (invoice lines and items are in `lines.rs`).
//!
//! Shapes to keep (see `fixtures/README.md`): periods live on subscription items; invoices
//! name their subscription at `parent.subscription_details`; the invoice-level `period_*`
//! looks back one period. A subscription's `discounts` and an invoice's are arrays of
//! discount ids; its trial fields are set by `trials.rs`.

use serde_json::{Value, json};

use super::objects::{merged, plan};

pub(super) struct NewSubscription<'a> {
    pub id: &'a str,
    pub created: i64,
    pub customer: &'a str,
    pub currency: &'a Value,
    pub status: &'a str,
    pub items: Vec<Value>,
    pub metadata: Value,
    pub default_payment_method: Option<&'a str>,
    pub latest_invoice: Option<&'a str>,
}

pub(super) fn subscription(s: NewSubscription<'_>) -> Value {
    let items = items_list(s.id, s.items);
    merged([
        json!({
            "id": s.id, "object": "subscription", "application": null,
            "application_fee_percent": null,
            "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
            "billing_cycle_anchor": s.created, "billing_cycle_anchor_config": null,
            "billing_mode": {
                "flexible": {"proration_discounts": "included"}, "type": "flexible",
                "updated_at": s.created
            },
            "billing_schedules": [], "billing_thresholds": null, "cancel_at": null,
            "cancel_at_period_end": false, "canceled_at": null,
            "cancellation_details": {"comment": null, "feedback": null, "reason": null},
            "collection_method": "charge_automatically", "created": s.created,
            "currency": s.currency, "customer": s.customer, "customer_account": null,
        }),
        json!({
            "days_until_due": null, "default_payment_method": s.default_payment_method,
            "default_source": null, "default_tax_rates": [], "description": null, "discounts": [],
            "ended_at": null,
            "invoice_settings": {"account_tax_ids": null, "issuer": {"type": "self"}},
            "items": items, "latest_invoice": s.latest_invoice, "livemode": false,
            "metadata": s.metadata, "next_pending_invoice_item_invoice": null, "on_behalf_of": null,
            "pause_collection": null,
            "payment_settings": {
                "payment_method_options": {
                    "acss_debit": null, "bancontact": null,
                    "card": {"network": null, "request_three_d_secure": "automatic"},
                    "customer_balance": null, "konbini": null, "sepa_debit": null,
                    "us_bank_account": null
                },
                "payment_method_types": ["card"], "save_default_payment_method": "off"
            },
        }),
        json!({
            "pending_invoice_item_interval": null, "pending_setup_intent": null,
            "pending_update": null, "schedule": null, "start_date": s.created, "status": s.status,
            "test_clock": null, "transfer_data": null, "trial_end": null,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": null
        }),
    ])
}

/// The `items` list of subscription `id`.
pub(super) fn items_list(id: &str, items: Vec<Value>) -> Value {
    json!({
        "object": "list", "total_count": items.len(), "data": items, "has_more": false,
        "url": format!("/v1/subscription_items?subscription={id}")
    })
}

pub(super) fn subscription_item(
    id: &str,
    created: i64,
    subscription: &str,
    price: &Value,
    quantity: i64,
    (start, end): (i64, i64),
) -> Value {
    json!({
        "id": id, "object": "subscription_item", "billed_until": end,
        "billing_thresholds": null, "created": created, "current_period_end": end,
        "current_period_start": start, "discounts": [], "metadata": {}, "plan": plan(price),
        "price": price, "quantity": quantity, "subscription": subscription, "tax_rates": []
    })
}

pub(super) struct NewInvoice<'a> {
    pub id: &'a str,
    pub created: i64,
    pub customer: &'a Value,
    pub currency: &'a Value,
    pub billing_reason: &'a str,
    /// The subscription and its metadata, for `parent.subscription_details`.
    pub subscription: Option<(&'a str, &'a Value)>,
    pub period: (i64, i64),
    pub lines: Vec<Value>,
}

/// A draft invoice; [`finalize`] moves it on.
pub(super) fn invoice(i: NewInvoice<'_>) -> Value {
    let parent = match i.subscription {
        Some((id, metadata)) => json!({
            "quote_details": null,
            "subscription_details": {"metadata": metadata, "subscription": id},
            "type": "subscription_details"
        }),
        None => Value::Null,
    };
    let mut invoice = merged([
        json!({
            "id": i.id, "object": "invoice", "account_country": "US", "account_name": "Fake Stripe",
            "account_tax_ids": null, "amount_due": 0, "amount_overpaid": 0, "amount_paid": 0,
            "amount_remaining": 0, "amount_shipping": 0, "application": null, "attempt_count": 0,
            "attempted": false, "auto_advance": true,
            "automatic_tax": {
                "disabled_reason": null, "enabled": false, "liability": null, "provider": null,
                "status": null
            },
            "automatically_finalizes_at": i.created + 3600, "billing_reason": i.billing_reason,
            "collection_method": "charge_automatically", "created": i.created,
        }),
        json!({
            "currency": i.currency, "custom_fields": null, "customer": i.customer["id"],
            "customer_address": null, "customer_email": i.customer["email"],
            "customer_name": i.customer["name"], "customer_phone": null, "customer_shipping": null,
            "customer_tax_exempt": "none", "customer_tax_ids": [], "default_payment_method": null,
            "default_source": null, "default_tax_rates": [], "description": null, "discounts": [],
            "due_date": null, "effective_at": null, "ending_balance": null, "footer": null,
            "from_invoice": null, "hosted_invoice_url": null, "invoice_pdf": null,
            "issuer": {"type": "self"}, "last_finalization_error": null, "latest_revision": null,
        }),
        json!({
            "lines": {
                "object": "list", "data": i.lines, "has_more": false, "total_count": 0,
                "url": format!("/v1/invoices/{}/lines", i.id)
            },
            "livemode": false, "metadata": {}, "next_payment_attempt": i.created + 3600,
            "number": null, "on_behalf_of": null, "parent": parent,
            "payment_settings": {
                "default_mandate": null,
                "payment_method_options": {
                    "acss_debit": null, "bancontact": null,
                    "card": {"request_three_d_secure": "automatic"}, "customer_balance": null,
                    "konbini": null, "sepa_debit": null, "us_bank_account": null
                },
                "payment_method_types": null
            },
        }),
        json!({
            "period_end": i.period.1, "period_start": i.period.0,
            "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
            "receipt_number": null, "rendering": null, "shipping_cost": null,
            "shipping_details": null, "starting_balance": 0, "statement_descriptor": null,
            "status": "draft",
            "status_transitions": {
                "finalized_at": null, "marked_uncollectible_at": null, "paid_at": null,
                "voided_at": null
            },
            "subtotal": 0, "subtotal_excluding_tax": 0, "test_clock": null, "total": 0,
            "total_discount_amounts": [], "total_excluding_tax": 0,
            "total_pretax_credit_amounts": [], "total_taxes": [], "webhooks_delivered_at": null
        }),
    ]);
    recompute_totals(&mut invoice);
    invoice
}

/// Totals from the lines: `subtotal` is what the lines come to, `total` (and `amount_due`)
/// that less the lines' `discount_amounts` (see `discount_amounts::price`); no tax.
pub(super) fn recompute_totals(invoice: &mut Value) {
    let lines = invoice["lines"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let subtotal: i64 = lines.iter().filter_map(|l| l["amount"].as_i64()).sum();
    let discount: i64 = lines
        .iter()
        .flat_map(|l| {
            l["discount_amounts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|d| d["amount"].as_i64())
        .sum();
    let total = subtotal - discount;
    let paid = invoice["amount_paid"].as_i64().unwrap_or(0);
    invoice["lines"]["total_count"] = json!(lines.len());
    invoice["subtotal"] = json!(subtotal);
    invoice["subtotal_excluding_tax"] = json!(subtotal);
    invoice["total"] = json!(total);
    invoice["total_excluding_tax"] = json!(total);
    invoice["amount_due"] = json!(total);
    invoice["amount_remaining"] = json!(total - paid);
}

/// Finalizes a draft as invoice number `number`; `paid` charges it in full, otherwise the
/// first attempt failed and it stays `open`.
pub(super) fn finalize(invoice: &mut Value, now: i64, number: &str, paid: bool) {
    let id = invoice["id"].as_str().unwrap_or_default().to_owned();
    invoice["number"] = json!(number);
    invoice["effective_at"] = json!(now);
    invoice["ending_balance"] = json!(0);
    invoice["automatically_finalizes_at"] = Value::Null;
    invoice["status_transitions"]["finalized_at"] = json!(now);
    invoice["hosted_invoice_url"] = json!(format!("https://invoice.stripe.com/i/fake/{id}"));
    invoice["invoice_pdf"] = json!(format!("https://pay.stripe.com/invoice/fake/{id}/pdf"));
    invoice["attempted"] = json!(true);
    if paid {
        mark_paid(invoice, now);
    } else {
        invoice["status"] = json!("open");
        invoice["attempt_count"] = json!(1);
        invoice["next_payment_attempt"] = json!(now + RETRY_AFTER);
    }
}

/// When Stripe retries a failed charge: three days later.
pub(super) const RETRY_AFTER: i64 = 3 * 24 * 3600;

/// A finalized invoice is paid in full.
pub(super) fn mark_paid(invoice: &mut Value, now: i64) {
    invoice["status"] = json!("paid");
    invoice["amount_paid"] = invoice["amount_due"].clone();
    invoice["amount_remaining"] = json!(0);
    invoice["auto_advance"] = json!(false);
    invoice["next_payment_attempt"] = Value::Null;
    invoice["status_transitions"]["paid_at"] = json!(now);
}

/// An open invoice is voided: it can no longer be paid.
pub(super) fn mark_void(invoice: &mut Value, now: i64) {
    invoice["status"] = json!("void");
    invoice["auto_advance"] = json!(false);
    invoice["next_payment_attempt"] = Value::Null;
    invoice["status_transitions"]["voided_at"] = json!(now);
}
