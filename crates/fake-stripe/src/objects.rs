//! Stripe-shaped JSON for the catalog and the customer side: customers, products, prices,
//! plans, checkout sessions, lists and errors, as API version `2026-09-30.endive` renders
//! them (compare `fixtures/*.json`). async-stripe decodes these strictly, so every field a
//! typed struct requires is present; `tests/api/fake_stripe.rs` keeps that true.

use serde_json::{Map, Value, json};

pub(super) const API_VERSION: &str = "2026-09-30.endive";

pub(super) fn customer(
    id: &str,
    created: i64,
    name: Option<&str>,
    email: Option<&str>,
    metadata: Value,
) -> Value {
    let prefix = id[id.len().saturating_sub(8)..].to_uppercase();
    json!({
        "id": id, "object": "customer", "address": null, "balance": 0, "business_name": null,
        "created": created, "currency": null, "customer_account": null, "default_source": null,
        "delinquent": false, "description": null, "discount": null, "email": email,
        "individual_name": null, "invoice_prefix": prefix,
        "invoice_settings": {
            "custom_fields": null, "default_payment_method": null, "footer": null,
            "rendering_options": null
        },
        "livemode": false, "metadata": metadata, "name": name, "next_invoice_sequence": 1,
        "phone": null, "preferred_locales": [], "shipping": null, "tax_exempt": "none",
        "test_clock": null
    })
}

pub(super) fn product(
    id: &str,
    created: i64,
    name: &str,
    description: Option<&str>,
    metadata: Value,
) -> Value {
    json!({
        "id": id, "object": "product", "active": true, "created": created, "default_price": null,
        "description": description, "images": [], "livemode": false, "marketing_features": [],
        "metadata": metadata, "name": name, "package_dimensions": null, "shippable": null,
        "statement_descriptor": null, "tax_code": null, "type": "service", "unit_label": null,
        "updated": created, "url": null
    })
}

/// A price; `interval` is `Some((interval, count))` for a recurring price.
pub(super) struct NewPrice<'a> {
    pub id: &'a str,
    pub created: i64,
    pub product: &'a str,
    pub currency: &'a str,
    pub unit_amount: i64,
    pub interval: Option<(&'a str, i64)>,
    pub nickname: Option<&'a str>,
    pub lookup_key: Option<&'a str>,
    pub metadata: Value,
}

pub(super) fn price(p: NewPrice<'_>) -> Value {
    let recurring = p.interval.map(|(interval, count)| {
        json!({
            "interval": interval, "interval_count": count, "meter": null,
            "trial_period_days": null, "usage_type": "licensed"
        })
    });
    json!({
        "id": p.id, "object": "price", "active": true, "billing_scheme": "per_unit",
        "created": p.created, "currency": p.currency, "custom_unit_amount": null,
        "livemode": false, "lookup_key": p.lookup_key, "metadata": p.metadata,
        "nickname": p.nickname, "product": p.product, "recurring": recurring,
        "tax_behavior": "unspecified", "tiers_mode": null, "transform_quantity": null,
        "type": if p.interval.is_some() { "recurring" } else { "one_time" },
        "unit_amount": p.unit_amount, "unit_amount_decimal": p.unit_amount.to_string()
    })
}

/// The legacy `plan` view of a recurring price, as subscription items still carry it.
pub(super) fn plan(price: &Value) -> Value {
    let recurring = &price["recurring"];
    json!({
        "id": price["id"], "object": "plan", "active": price["active"],
        "amount": price["unit_amount"], "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit", "created": price["created"], "currency": price["currency"],
        "interval": recurring["interval"], "interval_count": recurring["interval_count"],
        "livemode": false, "metadata": price["metadata"], "meter": null,
        "nickname": price["nickname"], "product": price["product"], "tiers_mode": null,
        "transform_usage": null, "trial_period_days": null, "usage_type": "licensed"
    })
}

/// A hosted checkout session in `open` state.
pub(super) struct NewSession<'a> {
    pub id: &'a str,
    pub created: i64,
    pub url: &'a str,
    pub mode: &'a str,
    pub customer: Option<&'a str>,
    pub customer_email: Option<&'a str>,
    pub currency: Option<&'a str>,
    pub amount: i64,
    pub success_url: Option<&'a str>,
    pub cancel_url: Option<&'a str>,
    pub client_reference_id: Option<&'a str>,
    pub metadata: Value,
}

pub(super) fn checkout_session(s: NewSession<'_>) -> Value {
    merged([
        json!({
            "id": s.id, "object": "checkout.session", "adaptive_pricing": {"enabled": false},
            "after_expiration": null, "allow_promotion_codes": null,
            "amount_subtotal": s.amount, "amount_total": s.amount,
            "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
            "billing_address_collection": null,
            "branding_settings": {
                "background_color": "#ffffff", "border_style": "rounded", "button_color": "#0074d4",
                "display_name": "Fake Stripe", "font_family": "default", "icon": null, "logo": null
            },
            "cancel_url": s.cancel_url, "client_reference_id": s.client_reference_id,
            "client_secret": null,
            "collected_information": {
                "business_name": null, "individual_name": null, "shipping_details": null
            },
        }),
        json!({
            "consent": null, "consent_collection": null, "created": s.created,
            "currency": s.currency, "currency_conversion": null, "custom_fields": [],
            "custom_text": {
                "after_submit": null, "shipping_address": null, "submit": null,
                "terms_of_service_acceptance": null
            },
            "customer": s.customer, "customer_account": null,
            "customer_creation": if s.customer.is_some() { Value::Null } else { json!("if_required") },
            "customer_details": null, "customer_email": s.customer_email, "discounts": [],
            "expires_at": s.created + 24 * 3600, "invoice": null, "invoice_creation": null,
        }),
        json!({
            "livemode": false, "locale": null, "metadata": s.metadata, "mode": s.mode,
            "origin_context": null, "payment_intent": null, "payment_link": null,
            "payment_method_collection": "always", "payment_method_configuration_details": null,
            "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
            "payment_method_types": ["card"], "payment_status": "unpaid", "permissions": null,
            "phone_number_collection": {"enabled": false}, "recovered_from": null,
            "saved_payment_method_options": {
                "allow_redisplay_filters": ["always"], "payment_method_remove": "disabled",
                "payment_method_save": null
            },
            "setup_intent": null, "shipping_address_collection": null, "shipping_cost": null,
            "shipping_options": [], "status": "open", "submit_type": null, "subscription": null,
            "success_url": s.success_url,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted_page", "url": s.url, "wallet_options": null
        }),
    ])
}

/// What a completed session shows of the customer who paid.
pub(super) fn customer_details(customer: &Value) -> Value {
    json!({
        "address": null, "business_name": null, "email": customer["email"],
        "individual_name": null, "name": customer["name"], "phone": null,
        "tax_exempt": "none", "tax_ids": []
    })
}

/// `json!` recurses per token, so large objects are written in parts and merged here.
pub(super) fn merged<const N: usize>(parts: [Value; N]) -> Value {
    let mut object = Map::new();
    for part in parts {
        if let Value::Object(map) = part {
            object.extend(map);
        }
    }
    Value::Object(object)
}

pub(super) fn list(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({"object": "list", "data": data, "has_more": has_more, "url": url})
}

/// Stripe's error body: `{"error": {"type", "code"?, "message", "param"?, ...}}`.
pub(super) fn error(
    type_: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
    request_id: &str,
) -> Value {
    let mut error = json!({
        "type": type_, "message": message,
        "request_log_url": format!("https://dashboard.stripe.com/test/logs/{request_id}")
    });
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            code.replace('_', "-")
        ));
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    json!({ "error": error })
}
