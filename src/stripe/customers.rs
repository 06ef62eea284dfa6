//! Stripe customers: created for ours, read, their metadata and contact details updated.

use stripe_core::customer::{CreateCustomer, RetrieveCustomer, UpdateCustomer};

use super::client::{CallError, Metadata, StripeApi, path_id};

/// A Stripe customer, as far as we need it.
#[derive(Debug, Clone)]
pub struct StripeCustomer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub has_default_payment_method: bool,
    pub metadata: Metadata,
}

impl StripeApi {
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
