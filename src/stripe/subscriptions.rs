//! Subscriptions: created (charging at once, or with a trial), read, their price, quantity
//! and cancellation changed, ended, listed.

use stripe_billing::subscription::{
    CancelSubscription, CreateSubscription, CreateSubscriptionItems,
    CreateSubscriptionPaymentBehavior, CreateSubscriptionTrialSettings,
    CreateSubscriptionTrialSettingsEndBehavior,
    CreateSubscriptionTrialSettingsEndBehaviorMissingPaymentMethod, ListSubscription,
    ListSubscriptionStatus, RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionProrationBehavior,
};
use stripe_shared::Subscription;

use super::client::{CallError, Metadata, StripeApi, path_id};
use super::coupons::{DISCOUNTS_EXPAND, DiscountChange, NewDiscount, new_param};

/// A free trial on a new subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trial {
    pub days: u32,
    /// Without it the subscription starts without a payment method and cancels at the
    /// trial's end unless one was added.
    pub card_required: bool,
}

/// The latest invoice's PaymentIntent, inline: what the first payment of a subscription needs.
const FIRST_PAYMENT_EXPAND: &str = "latest_invoice.payments.data.payment.payment_intent";

/// Where the latest invoice's payment of a subscription stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstPayment {
    /// The PaymentIntent's status (`requires_action`, `requires_payment_method`,
    /// `processing`, `succeeded`, ...), when Stripe made one.
    pub status: Option<String>,
    /// The invoice's hosted page, where the customer authenticates or pays another way.
    pub hosted_invoice_url: Option<String>,
    /// Why the last attempt failed, in Stripe's words ("Your card was declined.").
    pub error: Option<String>,
}

impl FirstPayment {
    fn of(subscription: &Subscription) -> Self {
        let Some(stripe_types::Expandable::Object(invoice)) = &subscription.latest_invoice else {
            return Self::default();
        };
        let intent = invoice
            .payments
            .as_ref()
            .and_then(|p| p.data.iter().find(|p| p.is_default).or(p.data.first()))
            .and_then(|p| p.payment.payment_intent.as_ref())
            .and_then(|pi| match pi {
                stripe_types::Expandable::Object(pi) => Some(pi),
                stripe_types::Expandable::Id(_) => None,
            });
        Self {
            status: intent.map(|pi| pi.status.as_str().to_owned()),
            hosted_invoice_url: invoice
                .hosted_invoice_url
                .clone()
                .filter(|url| super::objects::safe_link(url)),
            error: intent
                .and_then(|pi| pi.last_payment_error.as_ref())
                .and_then(|e| e.message.clone()),
        }
    }
}

impl StripeApi {
    /// Subscribes `customer` to `price`, charging its default payment method at once.
    ///
    /// `payment_behavior=allow_incomplete` (Stripe's default, said explicitly): a first
    /// payment that needs 3-D Secure, is declined or is still processing leaves the
    /// subscription `incomplete` instead of failing the call, and [`FirstPayment`] (read from
    /// the expanded latest invoice) says which. Not `default_incomplete`: that never tries
    /// the charge, so every subscription would wait for a client-side confirmation.
    /// `discount` is redeemed on it; its discounts come back inline.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_subscription(
        &self,
        idempotency_key: &str,
        customer: &str,
        price: &str,
        quantity: u64,
        trial: Option<Trial>,
        discount: Option<&NewDiscount>,
        metadata: Metadata,
    ) -> Result<(Subscription, FirstPayment), CallError> {
        let mut item = CreateSubscriptionItems::new();
        item.price = Some(price.to_owned());
        item.quantity = Some(quantity);
        let mut request = CreateSubscription::new()
            .customer(customer)
            .items(vec![item])
            .metadata(metadata)
            .payment_behavior(CreateSubscriptionPaymentBehavior::AllowIncomplete)
            .expand(vec![
                FIRST_PAYMENT_EXPAND.to_owned(),
                DISCOUNTS_EXPAND.to_owned(),
            ]);
        if let Some(discount) = discount {
            request = request.discounts(vec![new_param(discount)]);
        }
        if let Some(trial) = trial {
            request = request.trial_period_days(trial.days);
            if !trial.card_required {
                // No card now: the trial ends the subscription unless one was added.
                let mut end = CreateSubscriptionTrialSettingsEndBehavior::new();
                end.missing_payment_method =
                    Some(CreateSubscriptionTrialSettingsEndBehaviorMissingPaymentMethod::Cancel);
                request = request.trial_settings(CreateSubscriptionTrialSettings::new(end));
            }
        }
        let subscription = self
            .send("subscriptions.create", Some(idempotency_key), request)
            .await?;
        let payment = FirstPayment::of(&subscription);
        Ok((subscription, payment))
    }

    /// The subscription with what its latest invoice's payment needs.
    pub async fn retrieve_with_payment(
        &self,
        id: &str,
    ) -> Result<(Subscription, FirstPayment), CallError> {
        let path = path_id("subscriptions.retrieve", "sub_", id)?;
        let request = RetrieveSubscription::new(path).expand(vec![FIRST_PAYMENT_EXPAND.to_owned()]);
        let subscription = self.send("subscriptions.retrieve", None, request).await?;
        let payment = FirstPayment::of(&subscription);
        Ok((subscription, payment))
    }

    pub async fn retrieve_subscription(&self, id: &str) -> Result<Subscription, CallError> {
        let path = path_id("subscriptions.retrieve", "sub_", id)?;
        self.send(
            "subscriptions.retrieve",
            None,
            RetrieveSubscription::new(path),
        )
        .await
    }

    /// Swaps the subscription's first item to `price`, and its quantity when given (an
    /// upgrade prorates at once unless the caller says not to); with `discounts`, adds one
    /// (the answer then has them inline).
    #[allow(clippy::too_many_arguments)]
    pub async fn swap_price(
        &self,
        idempotency_key: &str,
        subscription: &Subscription,
        price: &str,
        quantity: Option<u64>,
        prorate: bool,
        discounts: Option<DiscountChange<'_>>,
        metadata: Metadata,
    ) -> Result<Subscription, CallError> {
        let mut item = first_item(subscription);
        item.price = Some(price.to_owned());
        item.quantity = quantity;
        let path = path_id("subscriptions.update", "sub_", subscription.id.as_str())?;
        let mut request = UpdateSubscription::new(path)
            .items(vec![item])
            .proration_behavior(proration(prorate))
            .metadata(metadata);
        if let Some(change) = discounts {
            request = request
                .discounts(change.params())
                .expand(vec![DISCOUNTS_EXPAND.to_owned()]);
        }
        self.send("subscriptions.update", Some(idempotency_key), request)
            .await
    }

    /// Sets the quantity (seats) of the subscription's first item; Stripe prorates the
    /// change when `prorate` (credit and charge on the next invoice), else bills it from the
    /// next period.
    pub async fn set_quantity(
        &self,
        idempotency_key: &str,
        subscription: &Subscription,
        quantity: u64,
        prorate: bool,
    ) -> Result<Subscription, CallError> {
        let mut item = first_item(subscription);
        item.quantity = Some(quantity);
        let path = path_id("subscriptions.update", "sub_", subscription.id.as_str())?;
        let request = UpdateSubscription::new(path)
            .items(vec![item])
            .proration_behavior(proration(prorate));
        self.send("subscriptions.update", Some(idempotency_key), request)
            .await
    }

    /// Sets (or clears) `cancel_at_period_end`; clearing it also drops a `cancel_at` date.
    pub async fn set_cancel_at_period_end(
        &self,
        idempotency_key: &str,
        id: &str,
        cancel: bool,
    ) -> Result<Subscription, CallError> {
        let path = path_id("subscriptions.update", "sub_", id)?;
        let request = UpdateSubscription::new(path).cancel_at_period_end(cancel);
        self.send("subscriptions.update", Some(idempotency_key), request)
            .await
    }

    /// Ends the subscription now (`DELETE /v1/subscriptions/{id}`), without a proration
    /// credit: the period was paid for.
    pub async fn cancel_subscription(
        &self,
        idempotency_key: &str,
        id: &str,
    ) -> Result<Subscription, CallError> {
        let path = path_id("subscriptions.cancel", "sub_", id)?;
        self.send(
            "subscriptions.cancel",
            Some(idempotency_key),
            CancelSubscription::new(path),
        )
        .await
    }

    /// Every subscription of `customer`, any status.
    pub async fn list_subscriptions(&self, customer: &str) -> Result<Vec<Subscription>, CallError> {
        let request = ListSubscription::new()
            .customer(customer)
            .status(ListSubscriptionStatus::All)
            .limit(100i64);
        let list = self.send("subscriptions.list", None, request).await?;
        Ok(list.data)
    }
}

/// An update of the subscription's first item (the plan's price: one item per subscription).
fn first_item(subscription: &Subscription) -> UpdateSubscriptionItems {
    let mut item = UpdateSubscriptionItems::new();
    item.id = subscription.items.data.first().map(|i| i.id.to_string());
    item
}

fn proration(prorate: bool) -> UpdateSubscriptionProrationBehavior {
    if prorate {
        UpdateSubscriptionProrationBehavior::CreateProrations
    } else {
        UpdateSubscriptionProrationBehavior::None
    }
}
