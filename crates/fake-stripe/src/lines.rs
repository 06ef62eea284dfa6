//! Stripe-shaped JSON for invoice lines and invoice items (API `2026-09-30.endive`).
//!
//! A line names where it comes from in `parent`: `subscription_item_details` for a
//! subscription item's period or a proration of it (`proration: true`, with the invoice item
//! it came from), `invoice_item_details` for any other invoice item; what it costs is in
//! `pricing.price_details`.

use serde_json::{Value, json};

/// The line a subscription item contributes for `period`.
pub(super) fn subscription_line(
    id: &str,
    invoice: &str,
    item: &Value,
    metadata: &Value,
    description: String,
    (start, end): (i64, i64),
) -> Value {
    let price = &item["price"];
    let quantity = item["quantity"].as_i64().unwrap_or(1);
    let amount = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
    json!({
        "id": id, "object": "line_item", "amount": amount, "currency": price["currency"],
        "description": description, "discount_amounts": [], "discountable": true,
        "discounts": [], "invoice": invoice, "livemode": false, "metadata": metadata,
        "parent": {
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": null, "proration": false,
                "proration_details": {"credited_items": null},
                "subscription": item["subscription"], "subscription_item": item["id"]
            },
            "type": "subscription_item_details"
        },
        "period": {"end": end, "start": start}, "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details", "unit_amount_decimal": price["unit_amount_decimal"]
        },
        "quantity": quantity, "subtotal": amount, "taxes": []
    })
}

pub(super) struct NewInvoiceItem<'a> {
    pub id: &'a str,
    pub created: i64,
    pub customer: &'a str,
    pub invoice: Option<&'a str>,
    pub subscription: Option<&'a str>,
    pub currency: &'a str,
    pub quantity: i64,
    pub unit_amount_decimal: String,
    pub amount: i64,
    /// `(price, product)`: a catalog price, or the inline one Stripe makes for `amount`.
    pub price: (String, String),
    pub description: Option<&'a str>,
    pub metadata: Value,
}

/// A pending invoice item (`invoice` null) or one on a draft. One made for a subscription
/// names it at `parent.subscription_details` (there is no top-level `subscription` in this
/// API version); a proration names the subscription item there too (see `prorations.rs`).
pub(super) fn invoice_item(i: NewInvoiceItem<'_>) -> Value {
    let parent = match i.subscription {
        Some(subscription) => json!({
            "subscription_details": {"subscription": subscription, "subscription_item": null},
            "type": "subscription_details"
        }),
        None => Value::Null,
    };
    json!({
        "id": i.id, "object": "invoiceitem", "amount": i.amount, "currency": i.currency,
        "customer": i.customer, "customer_account": null, "date": i.created,
        "description": i.description, "discountable": i.amount >= 0, "discounts": [],
        "invoice": i.invoice, "livemode": false, "metadata": i.metadata,
        "net_amount": i.amount, "parent": parent,
        "period": {"end": i.created, "start": i.created},
        "pricing": {
            "price_details": {"price": i.price.0, "product": i.price.1},
            "type": "price_details", "unit_amount_decimal": i.unit_amount_decimal
        },
        "proration": false, "proration_details": {"credited_items": null, "discount_amounts": []},
        "quantity": i.quantity, "quantity_decimal": i.quantity.to_string(),
        "tax_rates": [], "test_clock": null
    })
}

/// The line an invoice item becomes on its invoice. A proration of a subscription item is
/// a `subscription_item_details` line (naming the invoice item it came from), as Stripe
/// renders it; any other invoice item an `invoice_item_details` line.
pub(super) fn invoice_item_line(id: &str, item: &Value) -> Value {
    let from = &item["parent"]["subscription_details"];
    let proration_details = json!({"credited_items": credited_lines(item)});
    let parent = match from["subscription_item"].as_str() {
        Some(subscription_item) => json!({
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": item["id"], "proration": item["proration"],
                "proration_details": proration_details, "subscription": from["subscription"],
                "subscription_item": subscription_item
            },
            "type": "subscription_item_details"
        }),
        None => json!({
            "invoice_item_details": {
                "invoice_item": item["id"], "proration": item["proration"],
                "proration_details": proration_details, "subscription": from["subscription"]
            },
            "subscription_item_details": null, "type": "invoice_item_details"
        }),
    };
    json!({
        "id": id, "object": "line_item", "amount": item["amount"],
        "currency": item["currency"], "description": item["description"],
        "discount_amounts": [], "discountable": item["discountable"], "discounts": [],
        "invoice": item["invoice"], "livemode": false, "metadata": item["metadata"],
        "parent": parent, "period": item["period"], "pretax_credit_amounts": [],
        "pricing": item["pricing"], "quantity": item["quantity"], "subtotal": item["amount"],
        "taxes": []
    })
}

/// A credit proration's `credited_items` as a line shows them: the invoice lines it credits
/// (a line cannot point at a pending invoice item, so that kind is left out).
fn credited_lines(item: &Value) -> Value {
    let credited = &item["proration_details"]["credited_items"];
    match credited["type"].as_str() {
        Some("invoice_line_items") => credited["invoice_line_item_details"].clone(),
        _ => Value::Null,
    }
}

/// "1 × Pro (at $20.00 / month)", as Stripe describes a subscription line.
pub(super) fn line_description(quantity: i64, product_name: &str, price: &Value) -> String {
    let amount = price["unit_amount"].as_i64().unwrap_or(0);
    let currency = price["currency"].as_str().unwrap_or("usd");
    let money = match currency {
        "usd" => format!("${}.{:02}", amount / 100, amount % 100),
        other => format!(
            "{}.{:02} {}",
            amount / 100,
            amount % 100,
            other.to_uppercase()
        ),
    };
    match price["recurring"]["interval"].as_str() {
        Some(interval) => format!("{quantity} × {product_name} (at {money} / {interval})"),
        None => format!("{quantity} × {product_name} (at {money})"),
    }
}

/// `2000` for 2000.0, `12.5` for 12.5, `-166.666666666667` for a third of -500: Stripe's
/// decimal strings (at most 12 decimal places).
pub(super) fn decimal(value: f64) -> String {
    let text = format!("{value:.12}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
