//! The new objects through async-stripe's own client and types, as the daemon would send and
//! decode them: coupons, promotion codes (`CreatePromotionCode` sends `promotion[coupon]`),
//! a trialing subscription with discounts (expanded into `Discount`s), invoices with
//! discounts, checkout sessions with a trial and promotion codes, and every event all that
//! sends, each parsed into its typed event.

use std::time::Duration;

use fake_stripe::FakeStripe;
use stripe::{Client, ClientBuilder};
use stripe_billing::invoice::RetrieveInvoice;
use stripe_billing::subscription::{
    CreateSubscription, CreateSubscriptionItems, CreateSubscriptionPaymentBehavior,
    CreateSubscriptionTrialSettings, CreateSubscriptionTrialSettingsEndBehavior,
    CreateSubscriptionTrialSettingsEndBehaviorMissingPaymentMethod, DiscountsDataParam,
    UpdateSubscription, UpdateSubscriptionTrialEnd,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionPaymentMethodCollection, CreateCheckoutSessionSubscriptionData,
    CreateCheckoutSessionSubscriptionDataTrialSettings,
    CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehavior,
    CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehaviorMissingPaymentMethod,
    RetrieveCheckoutSession,
};
use stripe_product::coupon::{CreateCoupon, DeleteCoupon, RetrieveCoupon};
use stripe_product::promotion_code::{
    CreatePromotionCode, CreatePromotionCodePromotion, CreatePromotionCodePromotionType,
    ListPromotionCode, RetrievePromotionCode,
};
use stripe_shared::{
    CheckoutSessionMode, CheckoutSessionPaymentStatus, CouponDuration, DiscountSourceType,
    InvoiceBillingReason, InvoiceStatus, PromotionCodesResourcePromotionType, SubscriptionStatus,
    SubscriptionsResourceTrialSettingsEndBehaviorMissingPaymentMethod,
};
use stripe_types::Expandable;

use crate::common::typed::assert_every_event_typed;
use crate::helpers::{DAY, Shop};

fn client(fake: &FakeStripe) -> Client {
    ClientBuilder::new("sk_test_fake")
        .url(fake.url())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn trials_coupons_codes_and_discounts_decode_in_async_stripe() {
    let shop = Shop::new().await;
    let client = client(&shop.fake);

    // Coupons.
    let coupon = CreateCoupon::new()
        .id("HALF")
        .percent_off(50.0)
        .duration(CouponDuration::Repeating)
        .duration_in_months(3)
        .name("Half")
        .send(&client)
        .await
        .expect("coupon decodes");
    assert_eq!(coupon.id.as_str(), "HALF");
    assert_eq!(coupon.percent_off, Some(50.0));
    assert_eq!(coupon.duration_in_months, Some(3));
    let off = CreateCoupon::new()
        .amount_off(300)
        .currency(stripe_types::Currency::USD)
        .duration(CouponDuration::Forever)
        .send(&client)
        .await
        .expect("amount-off coupon decodes");
    assert_eq!(off.amount_off, Some(300));
    assert_eq!(off.currency, Some(stripe_types::Currency::USD));
    let retrieved = RetrieveCoupon::new("HALF")
        .send(&client)
        .await
        .expect("retrieved coupon decodes");
    assert!(retrieved.valid);
    let gone = CreateCoupon::new()
        .id("GONE")
        .percent_off(1.0)
        .send(&client)
        .await
        .unwrap();
    let deleted = DeleteCoupon::new(gone.id.as_str())
        .send(&client)
        .await
        .expect("deleted coupon decodes");
    assert_eq!(deleted.id.as_str(), "GONE");

    // Promotion codes, as async-stripe sends them (promotion[type], promotion[coupon]).
    let mut promotion = CreatePromotionCodePromotion::new(CreatePromotionCodePromotionType::Coupon);
    promotion.coupon = Some("HALF".to_owned());
    let code = CreatePromotionCode::new(promotion)
        .code("HALF-OFF")
        .send(&client)
        .await
        .expect("promotion code decodes");
    assert_eq!(code.code, "HALF-OFF");
    assert!(code.active);
    assert_eq!(
        code.promotion.type_,
        PromotionCodesResourcePromotionType::Coupon
    );
    assert_eq!(
        code.promotion
            .coupon
            .as_ref()
            .map(|c| c.id().as_str().to_owned()),
        Some("HALF".to_owned())
    );
    assert!(!code.restrictions.first_time_transaction);
    let found = ListPromotionCode::new()
        .code("half-off")
        .active(true)
        .send(&client)
        .await
        .expect("promotion code list decodes");
    assert_eq!(found.data.len(), 1);
    assert_eq!(found.data[0].id, code.id);
    RetrievePromotionCode::new(code.id.as_str())
        .send(&client)
        .await
        .expect("retrieved promotion code decodes");

    // A trialing subscription without a payment method, a promotion code's discount on it.
    let customer = shop.customer(false).await;
    let mut item = CreateSubscriptionItems::new();
    item.price = Some(shop.price.clone());
    item.quantity = Some(2);
    let mut discount = DiscountsDataParam::new();
    discount.promotion_code = Some(code.id.as_str().to_owned());
    let mut end_behavior = CreateSubscriptionTrialSettingsEndBehavior::new();
    end_behavior.missing_payment_method =
        Some(CreateSubscriptionTrialSettingsEndBehaviorMissingPaymentMethod::CreateInvoice);
    let sub = CreateSubscription::new()
        .customer(customer.as_str())
        .items(vec![item])
        .trial_period_days(14u32)
        .trial_settings(CreateSubscriptionTrialSettings::new(end_behavior))
        .payment_behavior(CreateSubscriptionPaymentBehavior::AllowIncomplete)
        .discounts(vec![discount])
        .expand(vec!["discounts".to_owned(), "latest_invoice".to_owned()])
        .send(&client)
        .await
        .expect("trialing subscription decodes");
    assert_eq!(sub.status, SubscriptionStatus::Trialing);
    assert_eq!(sub.trial_end, Some(sub.created + 14 * DAY));
    assert_eq!(sub.trial_start, Some(sub.created));
    assert_eq!(
        sub.trial_settings
            .as_ref()
            .unwrap()
            .end_behavior
            .missing_payment_method,
        SubscriptionsResourceTrialSettingsEndBehaviorMissingPaymentMethod::CreateInvoice
    );
    let Some(Expandable::Object(discount)) = sub.discounts.first() else {
        panic!("an expanded discount: {:?}", sub.discounts);
    };
    assert_eq!(discount.source.type_, DiscountSourceType::Coupon);
    assert_eq!(
        discount.source.coupon.as_ref().unwrap().id().as_str(),
        "HALF"
    );
    assert_eq!(
        discount.promotion_code.as_ref().unwrap().id().as_str(),
        code.id.as_str()
    );
    assert!(discount.end.is_some(), "repeating");
    let trial_invoice = sub.latest_invoice.clone().unwrap().into_object().unwrap();
    assert_eq!(trial_invoice.total, 0);
    assert_eq!(trial_invoice.status, Some(InvoiceStatus::Paid));

    // The trial ends at once; the first paid invoice has the discount.
    let ended = UpdateSubscription::new(sub.id.as_str())
        .trial_end(UpdateSubscriptionTrialEnd::Now)
        .send(&client)
        .await
        .expect("subscription decodes");
    assert_eq!(
        ended.status,
        SubscriptionStatus::PastDue,
        "no payment method"
    );
    let invoice = RetrieveInvoice::new(
        ended
            .latest_invoice
            .unwrap()
            .id()
            .as_ref()
            .unwrap()
            .as_str(),
    )
    .send(&client)
    .await
    .expect("invoice with discounts decodes");
    assert_eq!(
        invoice.billing_reason,
        Some(InvoiceBillingReason::SubscriptionUpdate)
    );
    assert_eq!(invoice.subtotal, 2000);
    assert_eq!(invoice.total, 1000);
    let totals = invoice.total_discount_amounts.unwrap();
    assert_eq!(totals.len(), 1);
    assert_eq!(totals[0].amount, 1000);
    assert_eq!(totals[0].discount.id(), &discount.id);
    let line = &invoice.lines.data[0];
    assert_eq!(line.discount_amounts.as_ref().unwrap()[0].amount, 1000);
    shop.fake
        .pay_invoice(invoice.id.as_ref().unwrap().as_str())
        .await
        .unwrap();

    // Discounts replaced and cleared.
    let mut replace = stripe_billing::subscription::DiscountsDataParam::new();
    replace.coupon = Some(off.id.as_str().to_owned());
    UpdateSubscription::new(sub.id.as_str())
        .discounts(vec![replace])
        .send(&client)
        .await
        .expect("subscription decodes");

    // Pause and cancel at the end of trials without a payment method; a resume.
    for behavior in ["pause", "cancel"] {
        let other = shop.customer(false).await;
        let form = format!(
            "trial_period_days=3&trial_settings[end_behavior][missing_payment_method]={behavior}"
        );
        let created = crate::helpers::ok(shop.subscribe(&other, &form).await);
        let id = created["id"].as_str().unwrap();
        shop.fake.tick().await.unwrap();
        shop.fake.end_trial(id).await.unwrap();
        if behavior == "pause" {
            shop.fake.resume_subscription(id).await.unwrap();
        }
    }

    // Checkout: a trial collecting no payment method, promotion codes allowed.
    let mut line = CreateCheckoutSessionLineItems::new();
    line.price = Some(shop.price.clone());
    line.quantity = Some(1);
    let mut data = CreateCheckoutSessionSubscriptionData::new();
    data.trial_period_days = Some(7);
    data.trial_settings = Some(CreateCheckoutSessionSubscriptionDataTrialSettings::new(
        CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehavior::new(
            CreateCheckoutSessionSubscriptionDataTrialSettingsEndBehaviorMissingPaymentMethod::Pause,
        ),
    ));
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .line_items(vec![line])
        .subscription_data(data)
        .allow_promotion_codes(true)
        .payment_method_collection(CreateCheckoutSessionPaymentMethodCollection::IfRequired)
        .success_url("https://example.test/ok")
        .send(&client)
        .await
        .expect("checkout session decodes");
    assert_eq!(session.allow_promotion_codes, Some(true));
    assert_eq!(session.amount_total, Some(0));
    shop.fake
        .complete_checkout_with_code(session.id.as_str(), "HALF-OFF")
        .await
        .unwrap();
    let completed = RetrieveCheckoutSession::new(session.id.as_str())
        .send(&client)
        .await
        .expect("completed session decodes");
    assert_eq!(
        completed.payment_status,
        CheckoutSessionPaymentStatus::NoPaymentRequired
    );
    let discounts = completed.discounts.unwrap();
    assert_eq!(
        discounts[0].promotion_code.as_ref().unwrap().id().as_str(),
        code.id.as_str()
    );

    let checked = assert_every_event_typed(&shop.fake);
    let types: Vec<&str> = checked.iter().map(|(t, _)| t.as_str()).collect();
    for seen in [
        "coupon.created",
        "coupon.deleted",
        "promotion_code.created",
        "customer.subscription.created",
        "customer.subscription.trial_will_end",
        "customer.subscription.updated",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.deleted",
        "customer.discount.created",
        "customer.discount.deleted",
        "invoice.created",
        "invoice.paid",
        "invoice.payment_failed",
        "checkout.session.completed",
    ] {
        assert!(types.contains(&seen), "{seen} in {types:?}");
    }
}
