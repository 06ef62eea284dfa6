//! Checkout Sessions: where a customer without a payment method subscribes.

use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionDiscounts, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionSubscriptionData,
};
use stripe_shared::CheckoutSessionMode;

use super::client::{CallError, Metadata, StripeApi};
use super::coupons::{CheckoutDiscount, NewDiscount};

impl StripeApi {
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
}
