//! Customers as a test drives them: their default payment method, what someone does to them
//! in the dashboard, and the customers that exist.

use serde_json::Value;

use super::FakeStripe;
use crate::{PaymentMethodKind, checkout, customers, intents};

impl FakeStripe {
    /// Gives the customer a default payment method (`invoice_settings.default_payment_method`)
    /// that charges like a card: the one it has if that is a card, else a new one.
    ///
    /// # Panics
    /// If there is no such customer.
    pub fn set_default_payment_method(&self, customer_id: &str) {
        let mut state = self.fake.lock();
        assert!(
            state.customers.contains_key(customer_id),
            "fake Stripe: no customer {customer_id}"
        );
        checkout::set_default_payment_method(&mut state, customer_id);
    }

    /// Gives the customer a new default payment method of `kind` (replacing any). New
    /// subscriptions charge it (`POST /v1/subscriptions`), as do
    /// [`FakeStripe::charge_invoice`] and renewals charged that way.
    ///
    /// # Panics
    /// If there is no such customer.
    pub fn set_default_payment_method_kind(&self, customer_id: &str, kind: PaymentMethodKind) {
        let mut state = self.fake.lock();
        assert!(
            state.customers.contains_key(customer_id),
            "fake Stripe: no customer {customer_id}"
        );
        intents::new_default_payment_method(&mut state, customer_id, kind);
    }

    /// A customer created in the dashboard (no API request the daemon made):
    /// `customer.created` is delivered. Returns its id (`cus_...`).
    pub async fn create_customer_in_dashboard(
        &self,
        name: Option<&str>,
        email: Option<&str>,
        metadata: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        self.fake
            .act(|state| customers::create_in_dashboard(state, name, email, metadata))
            .await
    }

    /// Changes a customer's name and/or email in the dashboard (`None`: unchanged):
    /// `customer.updated` (with `previous_attributes`) is delivered if anything changed.
    /// Refused for an unknown or deleted customer.
    pub async fn update_customer_in_dashboard(
        &self,
        id: &str,
        name: Option<&str>,
        email: Option<&str>,
    ) -> anyhow::Result<()> {
        self.fake
            .run(|state| customers::update_in_dashboard(state, id, name, email))
            .await
    }

    /// Deletes the customer, as `DELETE /v1/customers/{id}` does: its subscriptions that have
    /// not ended are canceled first (`customer.subscription.deleted` each, oldest first), then
    /// `customer.deleted` is delivered. Refused for an unknown or deleted customer.
    pub async fn delete_customer(&self, id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| {
                let request = customers::dashboard_request(state);
                customers::delete(state, id, &request)
            })
            .await
    }

    /// The customers that exist (deleted ones are left out).
    pub fn customers(&self) -> Vec<Value> {
        self.fake.lock().customers.values().cloned().collect()
    }
}
