//! The Stripe API, through async-stripe, with the calls the daemon makes.
//!
//! Every call has a timeout and an explicit `Idempotency-Key` chosen by the caller from the
//! job it serves, so a retried job never creates anything twice. Errors are classified for
//! the engine: 429, 5xx, timeouts and transport errors are retryable; other 4xx and responses
//! that do not decode are permanent.

use std::collections::HashMap;
use std::time::Duration;

use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError};
use stripe_billing::invoice_item::CreateInvoiceItem;
use stripe_billing::subscription::{
    CancelSubscription, CreateSubscription, CreateSubscriptionItems,
    CreateSubscriptionPaymentBehavior, CreateSubscriptionTrialSettings,
    CreateSubscriptionTrialSettingsEndBehavior,
    CreateSubscriptionTrialSettingsEndBehaviorMissingPaymentMethod, ListSubscription,
    ListSubscriptionStatus, RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionProrationBehavior,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionDiscounts, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionSubscriptionData,
};
use stripe_client_core::StripeRequest;
use stripe_core::customer::{CreateCustomer, RetrieveCustomer, UpdateCustomer};
use stripe_product::price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval};
use stripe_product::product::CreateProduct;
use stripe_shared::{CheckoutSessionMode, Subscription};

use crate::catalog::Interval;
use crate::config::Secret;
use crate::stripe::coupons::{
    CheckoutDiscount, DISCOUNTS_EXPAND, DiscountChange, NewDiscount, new_param,
};
use crate::stripe::ids;
use outbox::JobError;

pub type Metadata = HashMap<String, String>;

/// The Stripe API as the daemon uses it; cheap to clone.
#[derive(Clone)]
pub struct StripeApi {
    client: Client,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StripeApi { key: [redacted] }")
    }
}

/// A Stripe customer, as far as we need it.
#[derive(Debug, Clone)]
pub struct StripeCustomer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub has_default_payment_method: bool,
    pub metadata: Metadata,
}

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

/// A call that failed, with what the engine should do about it.
#[derive(Debug, thiserror::Error)]
#[error("Stripe {endpoint}: {message}")]
pub struct CallError {
    pub endpoint: &'static str,
    pub status: Option<u16>,
    pub message: String,
    pub retryable: bool,
    /// Stripe's error `code` (`resource_missing`, ...), when it sent one.
    pub code: Option<String>,
    /// The request parameter the error is about (`items[0][price]`, ...).
    pub param: Option<String>,
}

impl CallError {
    pub(super) fn refused(endpoint: &'static str, message: String) -> Self {
        Self {
            endpoint,
            status: None,
            message,
            retryable: false,
            code: None,
            param: None,
        }
    }

    /// Stripe does not know a price or product we sent (the account lost it, or it was
    /// made in another account): recreating the catalog's objects can help.
    pub fn lost_catalog_object(&self) -> bool {
        self.code.as_deref() == Some("resource_missing")
            && self
                .param
                .as_deref()
                .is_some_and(|p| p.contains("price") || p.contains("product"))
    }
}

/// `id` as a path segment: a Stripe id of `prefix` ([`ids::is_valid`]). Anything else is
/// refused before a request is made, so no id (also one read back from our store or from
/// Stripe) can steer a call to another path or add a query string; what passes is
/// percent-encoded all the same.
pub(super) fn path_id(endpoint: &'static str, prefix: &str, id: &str) -> Result<String, CallError> {
    if !ids::is_valid(prefix, id) {
        return Err(CallError::refused(
            endpoint,
            format!("refusing a malformed id (expected {prefix}...)"),
        ));
    }
    Ok(percent_encoding::utf8_percent_encode(id, PATH_SEGMENT).to_string())
}

/// Bytes left as they are in a path segment: letters, digits, `_` and `-`.
pub(super) const PATH_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'_').remove(b'-');

impl From<CallError> for JobError {
    fn from(error: CallError) -> Self {
        if error.retryable {
            JobError::retryable(error)
        } else {
            JobError::permanent(error)
        }
    }
}

impl StripeApi {
    pub fn new(key: &Secret, base: &str, timeout: Duration) -> Result<Self, StripeError> {
        let client = ClientBuilder::new(key.expose())
            .url(base)
            .timeout(timeout)
            .request_strategy(RequestStrategy::Once)
            .build()?;
        Ok(Self { client })
    }

    async fn send<R: StripeRequest>(
        &self,
        endpoint: &'static str,
        idempotency_key: Option<&str>,
        request: R,
    ) -> Result<R::Output, CallError>
    where
        R::Output: miniserde::Deserialize,
    {
        self.call(endpoint, idempotency_key, request.customize())
            .await
    }

    /// Sends a request (typed, or a raw [`stripe_client_core::RequestBuilder`] customized to
    /// its output), with the key, metrics and error classes every call has.
    pub(super) async fn call<T: miniserde::Deserialize>(
        &self,
        endpoint: &'static str,
        idempotency_key: Option<&str>,
        mut call: stripe_client_core::CustomizableStripeRequest<T>,
    ) -> Result<T, CallError> {
        if let Some(key) = idempotency_key {
            let key = IdempotencyKey::new(key)
                .map_err(|e| CallError::refused(endpoint, format!("bad idempotency key: {e}")))?;
            call = call.request_strategy(RequestStrategy::Idempotent(key));
        }
        let result = call.send(&self.client).await;
        let status = match &result {
            Ok(_) => Some(200),
            Err(StripeError::Stripe(_, status)) => Some(*status),
            Err(_) => None,
        };
        crate::metrics::stripe_api_call(endpoint, status);
        result.map_err(|error| classify(endpoint, error))
    }

    pub async fn create_customer(
        &self,
        idempotency_key: &str,
        name: Option<&str>,
        email: Option<&str>,
        metadata: Metadata,
    ) -> Result<StripeCustomer, CallError> {
        let mut request = CreateCustomer::new().metadata(metadata);
        if let Some(name) = name {
            request = request.name(name);
        }
        if let Some(email) = email {
            request = request.email(email);
        }
        let customer = self
            .send("customers.create", Some(idempotency_key), request)
            .await?;
        Ok(customer_view(customer))
    }

    pub async fn retrieve_customer(&self, id: &str) -> Result<StripeCustomer, CallError> {
        let path = path_id("customers.retrieve", "cus_", id)?;
        let customer = self
            .send("customers.retrieve", None, RetrieveCustomer::new(path))
            .await?;
        match customer {
            stripe_core::customer::RetrieveCustomerReturned::Customer(c) => Ok(customer_view(c)),
            stripe_core::customer::RetrieveCustomerReturned::DeletedCustomer(_) => Err(CallError {
                status: Some(404),
                ..CallError::refused("customers.retrieve", format!("customer {id} is deleted"))
            }),
        }
    }

    /// Merges `metadata` into the Stripe customer's metadata.
    pub async fn update_customer_metadata(
        &self,
        idempotency_key: &str,
        id: &str,
        metadata: Metadata,
    ) -> Result<StripeCustomer, CallError> {
        let request =
            UpdateCustomer::new(path_id("customers.update", "cus_", id)?).metadata(metadata);
        let customer = self
            .send("customers.update", Some(idempotency_key), request)
            .await?;
        Ok(customer_view(customer))
    }

    /// Sets the Stripe customer's name and email (an absent one is left as it is).
    pub async fn update_customer_contact(
        &self,
        idempotency_key: &str,
        id: &str,
        name: Option<&str>,
        email: Option<&str>,
    ) -> Result<StripeCustomer, CallError> {
        let mut request = UpdateCustomer::new(path_id("customers.update", "cus_", id)?);
        if let Some(name) = name {
            request = request.name(name);
        }
        if let Some(email) = email {
            request = request.email(email);
        }
        let customer = self
            .send("customers.update", Some(idempotency_key), request)
            .await?;
        Ok(customer_view(customer))
    }

    pub async fn create_product(
        &self,
        idempotency_key: &str,
        name: &str,
        metadata: Metadata,
    ) -> Result<String, CallError> {
        let request = CreateProduct::new(name).metadata(metadata);
        let product = self
            .send("products.create", Some(idempotency_key), request)
            .await?;
        Ok(product.id.to_string())
    }

    /// A price on `product`: recurring with `interval`, or one-time without.
    pub async fn create_price(
        &self,
        idempotency_key: &str,
        product: &str,
        unit_amount: i64,
        currency: &str,
        interval: Option<Interval>,
        metadata: Metadata,
    ) -> Result<String, CallError> {
        let currency: stripe_types::Currency = currency.parse().map_err(|_| {
            CallError::refused("prices.create", format!("unknown currency {currency}"))
        })?;
        let mut request = CreatePrice::new(currency)
            .product(product)
            .unit_amount(unit_amount)
            .metadata(metadata);
        if let Some(interval) = interval {
            request = request.recurring(CreatePriceRecurring::new(match interval {
                Interval::Day => CreatePriceRecurringInterval::Day,
                Interval::Week => CreatePriceRecurringInterval::Week,
                Interval::Month => CreatePriceRecurringInterval::Month,
                Interval::Year => CreatePriceRecurringInterval::Year,
            }));
        }
        let price = self
            .send("prices.create", Some(idempotency_key), request)
            .await?;
        Ok(price.id.to_string())
    }

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

    /// A subscription-mode Checkout Session; returns its id and URL. `discount`: what it
    /// redeems, or whether the customer may type a promotion code.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_checkout_session(
        &self,
        idempotency_key: &str,
        customer: &str,
        price: &str,
        quantity: u64,
        trial_days: Option<u32>,
        discount: &CheckoutDiscount,
        success_url: &str,
        cancel_url: &str,
        metadata: Metadata,
        subscription_metadata: Metadata,
    ) -> Result<(String, Option<String>), CallError> {
        let mut line = CreateCheckoutSessionLineItems::new();
        line.price = Some(price.to_owned());
        line.quantity = Some(quantity);
        let mut subscription_data = CreateCheckoutSessionSubscriptionData::new();
        subscription_data.metadata = Some(subscription_metadata);
        subscription_data.trial_period_days = trial_days;
        let mut request = CreateCheckoutSession::new()
            .customer(customer)
            .mode(CheckoutSessionMode::Subscription)
            .line_items(vec![line])
            .success_url(success_url)
            .cancel_url(cancel_url)
            .metadata(metadata)
            .subscription_data(subscription_data);
        match discount {
            CheckoutDiscount::None => {}
            CheckoutDiscount::AllowPromotionCodes => {
                request = request.allow_promotion_codes(true);
            }
            CheckoutDiscount::Redeem(discount) => {
                let mut entry = CreateCheckoutSessionDiscounts::new();
                match discount {
                    NewDiscount::Coupon(id) => entry.coupon = Some(id.clone()),
                    NewDiscount::PromotionCode(id) => entry.promotion_code = Some(id.clone()),
                }
                request = request.discounts(vec![entry]);
            }
        }
        let session = self
            .send("checkout.sessions.create", Some(idempotency_key), request)
            .await?;
        Ok((session.id.to_string(), session.url))
    }

    /// An invoice item on a draft invoice.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_invoice_item(
        &self,
        idempotency_key: &str,
        customer: &str,
        invoice: &str,
        amount: i64,
        currency: &str,
        description: &str,
        metadata: Metadata,
    ) -> Result<String, CallError> {
        let currency: stripe_types::Currency = currency.parse().map_err(|_| {
            CallError::refused(
                "invoiceitems.create",
                format!("unknown currency {currency}"),
            )
        })?;
        let request = CreateInvoiceItem::new()
            .customer(customer)
            .invoice(invoice)
            .amount(amount)
            .currency(currency)
            .description(description)
            .metadata(metadata);
        let item = self
            .send("invoiceitems.create", Some(idempotency_key), request)
            .await?;
        Ok(item.id.to_string())
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

fn customer_view(customer: stripe_shared::Customer) -> StripeCustomer {
    StripeCustomer {
        id: customer.id.to_string(),
        name: customer.name.clone(),
        email: customer.email.clone(),
        has_default_payment_method: customer
            .invoice_settings
            .as_ref()
            .is_some_and(|s| s.default_payment_method.is_some()),
        metadata: customer.metadata.unwrap_or_default(),
    }
}

fn classify(endpoint: &'static str, error: StripeError) -> CallError {
    let (status, retryable, message) = match &error {
        StripeError::Stripe(details, status) => {
            let retryable = *status == 429 || *status >= 500 || *status == 409;
            let message = details
                .message
                .clone()
                .unwrap_or_else(|| format!("HTTP {status}"));
            (Some(*status), retryable, message)
        }
        StripeError::Timeout => (None, true, "timed out".to_owned()),
        StripeError::ClientError(e) => (None, true, e.clone()),
        StripeError::JSONDeserialize(e) => (None, false, format!("response does not decode: {e}")),
        StripeError::ConfigError(e) => (None, false, e.clone()),
    };
    let (code, param) = match &error {
        StripeError::Stripe(details, _) => (
            details.code.as_ref().map(|c| c.as_str().to_owned()),
            details.param.clone(),
        ),
        _ => (None, None),
    };
    CallError {
        endpoint,
        status,
        message,
        retryable,
        code,
        param,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_ids_are_stripe_ids_or_refused() {
        assert_eq!(path_id("x", "cus_", "cus_Ab09_z").unwrap(), "cus_Ab09_z");
        for bad in [
            "cus_a/../../v1/subscriptions/sub_X",
            "cus_a?expand[]=x&metadata[evil]=1",
            "cus_",
            "sub_1",
            "cus_a b",
            "cus_a%2F",
            "cus_\u{0}",
            &format!("cus_{}", "a".repeat(251)),
        ] {
            let error = path_id("customers.retrieve", "cus_", bad).unwrap_err();
            assert!(!error.retryable, "{bad}");
            assert!(
                bad == "cus_" || !error.message.contains(bad),
                "the refusal does not echo input: {}",
                error.message
            );
        }
    }
}
