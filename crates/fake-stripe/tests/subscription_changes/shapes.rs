//! The new shapes through async-stripe's own client and types, as the daemon decodes them:
//! the canceled subscription `DELETE` answers, proration invoice items, invoices with
//! proration lines, and every event the changes send (`invoiceitem.created` and `.deleted`
//! included), each parsed into its typed event.

use std::time::Duration;

use fake_stripe::FakeStripe;
use stripe::{Client, ClientBuilder};
use stripe_billing::invoice::RetrieveInvoice;
use stripe_billing::subscription::{
    CancelSubscription, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionProrationBehavior,
};
use stripe_billing::{InvoiceItem, InvoiceItemProrationCreditedItemsType};
use stripe_client_core::{RequestBuilder, StripeMethod};
use stripe_shared::{
    CancellationDetailsReason, Invoice, InvoiceBillingReason, InvoiceStatus, SubscriptionStatus,
};

use crate::common::typed::assert_every_event_typed;
use crate::helpers::World;

fn client(fake: &FakeStripe) -> Client {
    ClientBuilder::new("sk_test_fake")
        .url(fake.url())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn quantity(item: &str, quantity: u64) -> UpdateSubscriptionItems {
    let mut change = UpdateSubscriptionItems::new();
    change.id = Some(item.to_owned());
    change.quantity = Some(quantity);
    change
}

async fn invoice(client: &Client, id: &str) -> Invoice {
    RetrieveInvoice::new(id)
        .send(client)
        .await
        .unwrap_or_else(|e| panic!("invoice {id} decodes: {e:?}"))
}

/// The proration lines of `invoice`: `(amount, invoice item)`.
fn proration_lines(invoice: &Invoice) -> Vec<(i64, String)> {
    invoice
        .lines
        .data
        .iter()
        .filter_map(|line| {
            let details = line.parent.as_ref()?.subscription_item_details.as_ref()?;
            details
                .proration
                .then(|| (line.amount, details.invoice_item.clone().unwrap()))
        })
        .collect()
}

#[tokio::test]
async fn prorations_cancellations_and_their_events_decode_in_async_stripe() {
    let w = World::new(1).await;
    let client = client(&w.fake);
    w.move_into_period(1, 2);

    // create_prorations: pending invoice items.
    let updated = UpdateSubscription::new(w.subscription.as_str())
        .items(vec![quantity(&w.item, 3)])
        .proration_behavior(UpdateSubscriptionProrationBehavior::CreateProrations)
        .send(&client)
        .await
        .expect("updated subscription decodes");
    assert_eq!(updated.items.data[0].quantity, Some(3));
    let mut amounts = Vec::new();
    for pending in w.fake.pending_invoice_items(&w.customer) {
        let id = pending["id"].as_str().unwrap();
        let item = RequestBuilder::new(StripeMethod::Get, format!("/invoiceitems/{id}"))
            .customize::<InvoiceItem>()
            .send(&client)
            .await
            .expect("proration invoice item decodes");
        assert!(item.proration);
        assert!(item.invoice.is_none());
        let parent = item.parent.unwrap().subscription_details.unwrap();
        assert_eq!(parent.subscription, w.subscription);
        assert_eq!(parent.subscription_item.as_deref(), Some(w.item.as_str()));
        if item.amount < 0 {
            let credited = item.proration_details.unwrap().credited_items.unwrap();
            assert_eq!(
                credited.type_,
                InvoiceItemProrationCreditedItemsType::InvoiceLineItems
            );
            assert_eq!(
                credited
                    .invoice_line_item_details
                    .unwrap()
                    .invoice_line_items
                    .len(),
                1
            );
        }
        amounts.push(item.amount);
    }
    assert_eq!(amounts, [-500, 1500]);

    // The renewal picks them up as proration lines.
    let renewal = w.fake.renew(&w.subscription).await.unwrap();
    let renewal = invoice(&client, &renewal).await;
    assert_eq!(renewal.total, 3000 - 500 + 1500);
    let lines = proration_lines(&renewal);
    assert_eq!(
        lines.iter().map(|(amount, _)| *amount).collect::<Vec<_>>(),
        [-500, 1500]
    );
    w.fake
        .pay_invoice(renewal.id.as_ref().unwrap())
        .await
        .unwrap();

    // always_invoice, a quarter into the new period: an invoice of its own, paid.
    w.move_into_period(1, 4);
    let downgraded = UpdateSubscription::new(w.subscription.as_str())
        .items(vec![quantity(&w.item, 2)])
        .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
        .send(&client)
        .await
        .expect("updated subscription decodes");
    let latest = downgraded.latest_invoice.unwrap();
    let at_once = invoice(&client, latest.id().as_ref().unwrap().as_str()).await;
    assert_eq!(
        at_once.billing_reason,
        Some(InvoiceBillingReason::SubscriptionUpdate)
    );
    assert_eq!(at_once.status, Some(InvoiceStatus::Paid));
    // 3 × 1000 and 2 × 1000 for three quarters: -2250 + 1500.
    assert_eq!(at_once.total, -750);
    assert_eq!(at_once.amount_due, 0);
    assert_eq!(proration_lines(&at_once).len(), 2);

    // DELETE with prorate and invoice_now, the final invoice expanded.
    let canceled = CancelSubscription::new(w.subscription.as_str())
        .prorate(true)
        .invoice_now(true)
        .expand(vec!["latest_invoice".to_owned()])
        .send(&client)
        .await
        .expect("canceled subscription decodes");
    assert_eq!(canceled.status, SubscriptionStatus::Canceled);
    assert_eq!(canceled.ended_at, Some(w.fake.now()));
    assert_eq!(
        canceled.cancellation_details.unwrap().reason,
        Some(CancellationDetailsReason::CancellationRequested)
    );
    let last = canceled.latest_invoice.unwrap().into_object().unwrap();
    assert_eq!(
        last.total, -1500,
        "2 × 1000 for three quarters of the period"
    );
    assert_eq!(proration_lines(&last).len(), 1);

    // A pending proration dropped by a DELETE: a second subscription, upgraded then canceled.
    let form = format!("customer={}&items[0][price]={}", w.customer, w.price);
    let other =
        crate::helpers::ok(crate::helpers::raw(&w.fake, "POST", "/v1/subscriptions", &form).await);
    w.fake.advance_clock(Duration::from_secs(86_400));
    let other_item = other["items"]["data"][0]["id"].as_str().unwrap();
    UpdateSubscription::new(other["id"].as_str().unwrap())
        .items(vec![quantity(other_item, 2)])
        .send(&client)
        .await
        .expect("updated subscription decodes");
    CancelSubscription::new(other["id"].as_str().unwrap())
        .send(&client)
        .await
        .expect("canceled subscription decodes");

    assert_every_event_typed(&w.fake);
    let types: Vec<String> = w
        .fake
        .events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    for seen in [
        "invoiceitem.created",
        "invoiceitem.deleted",
        "customer.subscription.deleted",
        "invoice.created",
        "invoice.paid",
    ] {
        assert!(types.iter().any(|t| t == seen), "{seen} in {types:?}");
    }
}
