//! The fake's check against async-stripe's own types: every event it generated parses, as
//! the daemon parses webhooks, into the typed event its `type` names, so its objects have
//! every field those types require, with values they accept.

use fake_stripe::FakeStripe;
use stripe_webhook::{EventObject, Webhook};

/// Every event the fake generated parses into the typed event its type names; returns how
/// many of each type were checked, in order of first appearance.
pub fn assert_every_event_typed(fake: &FakeStripe) -> Vec<(String, usize)> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for raw in fake.events() {
        let type_ = raw["type"].as_str().unwrap().to_owned();
        let event = Webhook::insecure(&raw.to_string())
            .unwrap_or_else(|e| panic!("{type_} does not parse: {e:?}\n{raw}"));
        assert_eq!(
            typed_as(&event.data.object),
            Some(type_.as_str()),
            "{type_} parsed as another type (or one this check does not know yet)"
        );
        match seen.iter_mut().find(|(t, _)| *t == type_) {
            Some((_, n)) => *n += 1,
            None => seen.push((type_, 1)),
        }
    }
    seen
}

/// The event type a typed `EventObject` variant stands for; `None` for the rest.
fn typed_as(object: &EventObject) -> Option<&'static str> {
    Some(match object {
        EventObject::CheckoutSessionCompleted(_) => "checkout.session.completed",
        EventObject::CouponCreated(_) => "coupon.created",
        EventObject::CouponDeleted(_) => "coupon.deleted",
        EventObject::CouponUpdated(_) => "coupon.updated",
        EventObject::CustomerCreated(_) => "customer.created",
        EventObject::CustomerDiscountCreated(_) => "customer.discount.created",
        EventObject::CustomerDiscountDeleted(_) => "customer.discount.deleted",
        EventObject::CustomerDiscountUpdated(_) => "customer.discount.updated",
        EventObject::CustomerSubscriptionCreated(_) => "customer.subscription.created",
        EventObject::CustomerSubscriptionDeleted(_) => "customer.subscription.deleted",
        EventObject::CustomerSubscriptionPaused(_) => "customer.subscription.paused",
        EventObject::CustomerSubscriptionResumed(_) => "customer.subscription.resumed",
        EventObject::CustomerSubscriptionTrialWillEnd(_) => "customer.subscription.trial_will_end",
        EventObject::CustomerSubscriptionUpdated(_) => "customer.subscription.updated",
        EventObject::InvoiceCreated(_) => "invoice.created",
        EventObject::InvoicePaid(_) => "invoice.paid",
        EventObject::InvoicePaymentActionRequired(_) => "invoice.payment_action_required",
        EventObject::InvoicePaymentFailed(_) => "invoice.payment_failed",
        EventObject::InvoiceVoided(_) => "invoice.voided",
        EventObject::InvoiceitemCreated(_) => "invoiceitem.created",
        EventObject::InvoiceitemDeleted(_) => "invoiceitem.deleted",
        EventObject::PromotionCodeCreated(_) => "promotion_code.created",
        EventObject::PromotionCodeUpdated(_) => "promotion_code.updated",
        _ => return None,
    })
}
