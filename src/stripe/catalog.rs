//! What the catalog is billed with in Stripe: products and prices, made per plan, and
//! invoice items (usage billed in arrear).

use stripe_billing::invoice_item::CreateInvoiceItem;
use stripe_product::price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval};
use stripe_product::product::CreateProduct;

use super::client::{CallError, Metadata, StripeApi};
use crate::catalog::Interval;

impl StripeApi {
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
