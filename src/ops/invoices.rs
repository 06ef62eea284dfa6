//! One of a customer's invoices, with its period, lines and discounts.

use super::{Ctx, Error, Result, find};
use crate::domain::CustomerId;
use crate::store::{discounts, invoices};
use crate::views::{InvoiceDetail, InvoiceDiscount, InvoiceLine, InvoiceSummary, Time};

pub(crate) async fn get(ctx: &Ctx, id: &CustomerId, invoice_id: &str) -> Result<InvoiceDetail> {
    let mut conn = ctx.pool.acquire().await?;
    let customer = find(&mut conn, id.as_str()).await?;
    let i = invoices::detail(&mut conn, customer.pk, invoice_id)
        .await?
        .ok_or_else(|| Error::NotFound {
            code: "invoice_not_found",
            what: format!("invoice {invoice_id} of customer {id}"),
        })?;
    let amounts = &i.discount_amounts.0;
    let ids: Vec<String> = amounts.iter().map(|a| a.discount.clone()).collect();
    let known = discounts::coupons_of(&mut conn, &ids).await?;
    let discounts = amounts
        .iter()
        .map(|a| {
            let (coupon, reward) = known
                .iter()
                .find(|(id, _, _)| *id == a.discount)
                .map(|(_, coupon, reward)| (Some(coupon.clone()), reward.clone()))
                .unwrap_or_default();
            InvoiceDiscount {
                discount_id: a.discount.clone(),
                amount: a.amount,
                coupon_id: coupon,
                reward_id: reward,
            }
        })
        .collect();
    Ok(InvoiceDetail {
        summary: InvoiceSummary::from(&i.invoice),
        customer_id: customer.id,
        billing_reason: i.invoice.billing_reason.clone(),
        period_start: Time::of(i.period_start),
        period_end: Time::of(i.period_end),
        lines: i
            .lines
            .as_ref()
            .map(|lines| lines.iter().map(InvoiceLine::from).collect()),
        discounts,
    })
}
