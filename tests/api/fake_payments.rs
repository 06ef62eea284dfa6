//! The payment paths of the fake Stripe (`fake_stripe`): payment method kinds on
//! subscription creation and at checkout, 3-D Secure, declines, bank debits that settle
//! later, dunning, expiry, pause and resume, `cancel_at`, the clock and `expand[]`. Objects
//! are read through async-stripe's own types; webhooks through a receiver and
//! `stripe_webhook`, in the order they were delivered.

use std::time::Duration;

use fake_stripe::{FakeStripe, PaymentMethodKind};
use serde_json::Value;
use stripe::{ApiErrorsCode, ApiErrorsType, Client};
use stripe_billing::invoice::RetrieveInvoice;
use stripe_billing::subscription::{
    CreateSubscription, CreateSubscriptionItems, CreateSubscriptionPaymentBehavior,
    ResumeSubscription, RetrieveSubscription, UpdateSubscription, UpdateSubscriptionCancelAt,
};
use stripe_billing::{InvoiceBillingReason, InvoiceStatus, SubscriptionStatus};
use stripe_client_core::{RequestBuilder, StripeMethod};
use stripe_core::customer::CreateCustomer;
use stripe_shared::{Invoice, PaymentIntent, PaymentIntentStatus, Subscription};
use stripe_webhook::EventObject;

use super::fake_stripe::{
    Receiver, assert_typed, checkout, client, events_raw, fake_with, monthly_price, raw,
    stripe_error,
};

/// What the daemon expands on create: the first invoice's PaymentIntent, inline.
const EXPAND_INTENT: &str = "latest_invoice.payments.data.payment.payment_intent";
const DAY: i64 = 86_400;

/// A fake with a webhook receiver, a customer and a monthly price.
struct World {
    receiver: Receiver,
    fake: FakeStripe,
    client: Client,
    customer: String,
    price: String,
}

async fn world() -> World {
    let receiver = Receiver::start(0).await;
    let fake = fake_with(Some(receiver.url.clone())).await;
    let client = client(&fake);
    let customer = new_customer(&client).await;
    let price = monthly_price(&client, "pro").await;
    World {
        receiver,
        fake,
        client,
        customer,
        price,
    }
}

async fn new_customer(client: &Client) -> String {
    let customer = CreateCustomer::new()
        .email("payer@example.com")
        .send(client)
        .await
        .expect("customer decodes");
    customer.id.to_string()
}

impl World {
    fn create(&self) -> CreateSubscription {
        let mut item = CreateSubscriptionItems::new();
        item.price = Some(self.price.clone());
        CreateSubscription::new()
            .customer(self.customer.as_str())
            .items(vec![item])
    }

    /// Subscribes the customer as the daemon will: `allow_incomplete`, the first
    /// PaymentIntent expanded.
    async fn subscribe(&self) -> Subscription {
        self.create()
            .payment_behavior(CreateSubscriptionPaymentBehavior::AllowIncomplete)
            .expand(vec![EXPAND_INTENT.to_owned()])
            .send(&self.client)
            .await
            .expect("expanded subscription decodes")
    }

    /// Waits until every event recorded so far was delivered; returns how many there are.
    async fn mark(&self) -> usize {
        let recorded = self.fake.events().len();
        self.receiver.wait_for(recorded).await;
        recorded
    }

    /// The types of the events delivered since `mark`, once all recorded ones arrived.
    async fn since(&self, mark: usize) -> Vec<String> {
        let recorded = self.mark().await;
        let types = self.receiver.types();
        assert_eq!(types.len(), recorded, "each event delivered once");
        types[mark..].to_vec()
    }

    fn subscription(&self, id: &str) -> Value {
        find(self.fake.subscriptions(), id)
    }

    fn invoice(&self, id: &str) -> Value {
        find(self.fake.invoices(), id)
    }

    /// The PaymentIntent of `invoice_id` (as its expanded `payments` name it), retrieved
    /// through `GET /v1/payment_intents/{id}`.
    async fn intent_of(&self, invoice_id: &str) -> PaymentIntent {
        let invoice = RetrieveInvoice::new(invoice_id)
            .expand(vec!["payments".to_owned()])
            .send(&self.client)
            .await
            .expect("invoice with payments decodes");
        let payments = invoice.payments.expect("payments are expanded");
        let intent = payments.data[0].payment.payment_intent.as_ref().unwrap();
        retrieve_intent(&self.client, intent.id().as_str()).await
    }

    /// Every delivered event parses into the typed event its type names, with
    /// `previous_attributes` only on `*.updated`.
    fn assert_all_typed(&self) {
        assert_typed(&self.receiver.events());
    }
}

fn find(objects: Vec<Value>, id: &str) -> Value {
    objects
        .into_iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("fake Stripe has no {id}"))
}

async fn retrieve_intent(client: &Client, id: &str) -> PaymentIntent {
    RequestBuilder::new(StripeMethod::Get, format!("/payment_intents/{id}"))
        .customize::<PaymentIntent>()
        .send(client)
        .await
        .expect("PaymentIntent decodes")
}

/// The latest invoice of a subscription created with `expand[]=EXPAND_INTENT`.
fn expanded_invoice(sub: &Subscription) -> &Invoice {
    sub.latest_invoice
        .as_ref()
        .and_then(|i| i.as_object())
        .expect("latest_invoice is expanded")
}

/// Its PaymentIntent, inline.
fn expanded_intent(sub: &Subscription) -> &PaymentIntent {
    let payments = expanded_invoice(sub)
        .payments
        .as_ref()
        .expect("payments are expanded");
    assert_eq!(payments.data.len(), 1);
    let payment = &payments.data[0];
    assert!(payment.is_default);
    payment
        .payment
        .payment_intent
        .as_ref()
        .and_then(|pi| pi.as_object())
        .expect("the PaymentIntent is expanded")
}

fn invoice_id(sub: &Subscription) -> String {
    let id = sub.latest_invoice.as_ref().unwrap().id();
    id.as_ref().expect("an invoice id").to_string()
}

#[tokio::test]
async fn the_first_charge_follows_the_payment_method_kind() {
    let w = world().await;

    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::Card);
    let mark = w.mark().await;
    let card = w.subscribe().await;
    assert_eq!(card.status, SubscriptionStatus::Active);
    let intent = expanded_intent(&card);
    assert_eq!(intent.status, PaymentIntentStatus::Succeeded);
    assert_eq!(intent.amount_received, 2000);
    assert!(intent.last_payment_error.is_none());
    assert_eq!(expanded_invoice(&card).status, Some(InvoiceStatus::Paid));
    assert_eq!(
        w.since(mark).await,
        ["customer.subscription.created", "invoice.paid"]
    );

    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::ThreeDSecure);
    let mark = w.mark().await;
    let secure = w.subscribe().await;
    assert_eq!(secure.status, SubscriptionStatus::Incomplete);
    let invoice = expanded_invoice(&secure);
    assert_eq!(invoice.status, Some(InvoiceStatus::Open));
    assert!(invoice.hosted_invoice_url.is_some());
    let intent = expanded_intent(&secure);
    assert_eq!(intent.status, PaymentIntentStatus::RequiresAction);
    assert_eq!(intent.next_action.as_ref().unwrap().type_, "use_stripe_sdk");
    assert!(intent.last_payment_error.is_none());
    assert_eq!(
        w.since(mark).await,
        [
            "customer.subscription.created",
            "invoice.payment_action_required"
        ]
    );

    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::Declining);
    let mark = w.mark().await;
    let declined = w.subscribe().await;
    assert_eq!(declined.status, SubscriptionStatus::Incomplete);
    let invoice = expanded_invoice(&declined);
    assert_eq!(invoice.status, Some(InvoiceStatus::Open));
    assert_eq!(invoice.attempt_count, 1);
    assert!(invoice.hosted_invoice_url.is_some());
    let intent = expanded_intent(&declined);
    assert_eq!(intent.status, PaymentIntentStatus::RequiresPaymentMethod);
    let error = intent.last_payment_error.as_ref().expect("the decline");
    assert_eq!(error.type_, ApiErrorsType::CardError);
    assert_eq!(error.code, Some(ApiErrorsCode::CardDeclined));
    assert_eq!(error.decline_code.as_deref(), Some("generic_decline"));
    assert_eq!(error.message.as_deref(), Some("Your card was declined."));
    assert_eq!(
        w.since(mark).await,
        ["customer.subscription.created", "invoice.payment_failed"]
    );

    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::AsyncDebit);
    let mark = w.mark().await;
    let debit = w.subscribe().await;
    assert_eq!(debit.status, SubscriptionStatus::Incomplete);
    assert_eq!(expanded_invoice(&debit).status, Some(InvoiceStatus::Open));
    let intent = expanded_intent(&debit);
    assert_eq!(intent.status, PaymentIntentStatus::Processing);
    assert_eq!(intent.payment_method_types, ["sepa_debit"]);
    assert_eq!(w.since(mark).await, ["customer.subscription.created"]);

    // Every first invoice has its PaymentIntent, and the API serves it.
    assert_eq!(w.fake.payment_intents().len(), 4);
    for sub in [&card, &secure, &declined, &debit] {
        let inline = expanded_intent(sub);
        let retrieved = w.intent_of(&invoice_id(sub)).await;
        assert_eq!(retrieved.id, inline.id);
        assert_eq!(retrieved.status, inline.status);
        assert_eq!(retrieved.amount, 2000);
    }
    // How async-stripe sent what the daemon will send.
    let create = w
        .fake
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/v1/subscriptions")
        .unwrap();
    assert!(
        create
            .form
            .contains(&("expand[0]".to_owned(), EXPAND_INTENT.to_owned())),
        "{:?}",
        create.form
    );
    assert!(
        create
            .form
            .contains(&("payment_behavior".to_owned(), "allow_incomplete".to_owned()))
    );
    // Stored objects and webhooks keep ids.
    assert!(w.subscription(debit.id.as_str())["latest_invoice"].is_string());
    w.assert_all_typed();
}

#[tokio::test]
async fn payment_behavior_decides_whether_a_charge_is_tried() {
    let w = world().await;

    // No payment method: nothing to charge.
    let mark = w.mark().await;
    let bare = w.subscribe().await;
    assert_eq!(bare.status, SubscriptionStatus::Incomplete);
    let intent = expanded_intent(&bare);
    assert_eq!(intent.status, PaymentIntentStatus::RequiresPaymentMethod);
    assert!(intent.last_payment_error.is_none());
    assert_eq!(w.since(mark).await, ["customer.subscription.created"]);

    // default_incomplete: no charge even with a card.
    w.fake.set_default_payment_method(&w.customer);
    let waiting = w
        .create()
        .payment_behavior(CreateSubscriptionPaymentBehavior::DefaultIncomplete)
        .expand(vec![EXPAND_INTENT.to_owned()])
        .send(&w.client)
        .await
        .unwrap();
    assert_eq!(waiting.status, SubscriptionStatus::Incomplete);
    let intent = expanded_intent(&waiting);
    assert_eq!(intent.status, PaymentIntentStatus::RequiresPaymentMethod);
    assert!(intent.last_payment_error.is_none());

    // error_if_incomplete: a 402 for what does not succeed at once, and nothing created.
    let strict = || {
        w.create()
            .payment_behavior(CreateSubscriptionPaymentBehavior::ErrorIfIncomplete)
    };
    let mark = w.mark().await;
    let before = w.fake.subscriptions().len();
    for (kind, code) in [
        (PaymentMethodKind::Declining, ApiErrorsCode::CardDeclined),
        (
            PaymentMethodKind::ThreeDSecure,
            ApiErrorsCode::AuthenticationRequired,
        ),
    ] {
        w.fake.set_default_payment_method_kind(&w.customer, kind);
        let (error, status) = stripe_error(strict().send(&w.client).await);
        assert_eq!(status, 402, "{kind:?}");
        assert_eq!(error.type_, ApiErrorsType::CardError);
        assert_eq!(error.code, Some(code));
    }
    assert_eq!(w.fake.subscriptions().len(), before, "nothing created");
    assert_eq!(w.since(mark).await, Vec::<String>::new(), "nothing sent");
    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::Card);
    let paid = strict().send(&w.client).await.unwrap();
    assert_eq!(paid.status, SubscriptionStatus::Active);

    // `default_payment_method` names the method to charge; it remembers its kind, and ids
    // the fake did not make charge like a card.
    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::Declining);
    let declining = w
        .fake
        .customers()
        .into_iter()
        .find(|c| c["id"] == w.customer.as_str())
        .unwrap()["invoice_settings"]["default_payment_method"]
        .as_str()
        .unwrap()
        .to_owned();
    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::Card);
    let named = w
        .create()
        .default_payment_method(declining.as_str())
        .send(&w.client)
        .await
        .unwrap();
    assert_eq!(named.status, SubscriptionStatus::Incomplete);
    assert_eq!(
        named.default_payment_method.unwrap().id().as_str(),
        declining
    );
    let foreign = w
        .create()
        .default_payment_method("pm_card_visa")
        .send(&w.client)
        .await
        .unwrap();
    assert_eq!(foreign.status, SubscriptionStatus::Active);
}

#[tokio::test]
async fn three_d_secure_is_authenticated_on_the_hosted_invoice_page() {
    let w = world().await;
    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::ThreeDSecure);
    let sub = w.subscribe().await;
    assert_eq!(sub.status, SubscriptionStatus::Incomplete);
    let invoice = invoice_id(&sub);

    let mark = w.mark().await;
    w.fake.pay_invoice(&invoice).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        ["customer.subscription.updated", "invoice.paid"]
    );
    let updated = &events_raw(&w.receiver)[mark];
    assert_eq!(
        updated["data"]["previous_attributes"]["status"],
        "incomplete"
    );
    assert_eq!(w.subscription(sub.id.as_str())["status"], "active");
    assert_eq!(w.invoice(&invoice)["status"], "paid");
    let intent = w.intent_of(&invoice).await;
    assert_eq!(intent.status, PaymentIntentStatus::Succeeded);
    assert!(intent.next_action.is_none());

    // Authenticated once, the card charges without asking again.
    let again = w.subscribe().await;
    assert_eq!(again.status, SubscriptionStatus::Active);
    assert!(w.fake.pay_invoice(&invoice).await.is_err(), "already paid");
    w.assert_all_typed();
}

#[tokio::test]
async fn checkout_takes_each_kind_of_payment_method() {
    let w = world().await;

    // A declined card is refused on the page: nothing changes, nothing is sent.
    let session = checkout(&w.client, &w.customer, &w.price).await;
    let mark = w.mark().await;
    let refused = w
        .fake
        .complete_checkout_with(session.id.as_str(), PaymentMethodKind::Declining)
        .await;
    assert!(refused.is_err());
    assert_eq!(w.fake.checkout_sessions()[0]["status"], "open");
    assert!(w.fake.subscriptions().is_empty());
    assert!(w.fake.payment_intents().is_empty());
    assert_eq!(w.since(mark).await, Vec::<String>::new());

    // 3-D Secure is done on the page: paid, and the card is saved as one that needs nothing.
    w.fake
        .complete_checkout_with(session.id.as_str(), PaymentMethodKind::ThreeDSecure)
        .await
        .unwrap();
    assert_eq!(
        w.since(mark).await,
        [
            "customer.subscription.created",
            "invoice.paid",
            "checkout.session.completed"
        ]
    );
    let completed = &w.fake.checkout_sessions()[0];
    assert_eq!(completed["payment_status"], "paid");
    let sub = w.subscription(completed["subscription"].as_str().unwrap());
    assert_eq!(sub["status"], "active");
    let later = w.subscribe().await;
    assert_eq!(later.status, SubscriptionStatus::Active);

    let card = checkout(&w.client, &w.customer, &w.price).await;
    w.fake
        .complete_checkout_with(card.id.as_str(), PaymentMethodKind::Card)
        .await
        .unwrap();
    let completed = find(w.fake.checkout_sessions(), card.id.as_str());
    assert_eq!(completed["payment_status"], "paid");
    w.assert_all_typed();
}

#[tokio::test]
async fn a_bank_debit_at_checkout_settles_later() {
    let w = world().await;
    let session = checkout(&w.client, &w.customer, &w.price).await;
    let mark = w.mark().await;
    w.fake
        .complete_checkout_with(session.id.as_str(), PaymentMethodKind::AsyncDebit)
        .await
        .unwrap();
    assert_eq!(
        w.since(mark).await,
        [
            "customer.subscription.created",
            "checkout.session.completed"
        ]
    );
    let completed = find(w.fake.checkout_sessions(), session.id.as_str());
    assert_eq!(completed["status"], "complete");
    assert_eq!(completed["payment_status"], "unpaid");
    let sub_id = completed["subscription"].as_str().unwrap().to_owned();
    let invoice = completed["invoice"].as_str().unwrap().to_owned();
    assert_eq!(w.subscription(&sub_id)["status"], "incomplete");
    assert_eq!(w.invoice(&invoice)["status"], "open");
    assert_eq!(
        w.intent_of(&invoice).await.status,
        PaymentIntentStatus::Processing
    );
    assert!(
        w.fake.pay_invoice(&invoice).await.is_err(),
        "a processing payment is not paid twice"
    );

    let mark = w.mark().await;
    w.fake.settle_async_payment(&invoice, true).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        [
            "customer.subscription.updated",
            "invoice.paid",
            "checkout.session.async_payment_succeeded"
        ]
    );
    assert_eq!(w.subscription(&sub_id)["status"], "active");
    assert_eq!(w.invoice(&invoice)["status"], "paid");
    assert_eq!(
        find(w.fake.checkout_sessions(), session.id.as_str())["payment_status"],
        "paid"
    );
    assert_eq!(
        w.intent_of(&invoice).await.status,
        PaymentIntentStatus::Succeeded
    );
    assert!(
        w.fake.settle_async_payment(&invoice, true).await.is_err(),
        "settled once"
    );

    // The other way: the debit bounces.
    let bounced = checkout(&w.client, &w.customer, &w.price).await;
    w.fake
        .complete_checkout_with(bounced.id.as_str(), PaymentMethodKind::AsyncDebit)
        .await
        .unwrap();
    let completed = find(w.fake.checkout_sessions(), bounced.id.as_str());
    let sub_id = completed["subscription"].as_str().unwrap().to_owned();
    let invoice = completed["invoice"].as_str().unwrap().to_owned();
    let mark = w.mark().await;
    w.fake.settle_async_payment(&invoice, false).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        [
            "invoice.payment_failed",
            "checkout.session.async_payment_failed"
        ]
    );
    assert_eq!(w.subscription(&sub_id)["status"], "incomplete");
    let open = w.invoice(&invoice);
    assert_eq!(
        (&open["status"], &open["attempt_count"]),
        (&"open".into(), &1.into())
    );
    assert_eq!(
        find(w.fake.checkout_sessions(), bounced.id.as_str())["payment_status"],
        "unpaid"
    );
    let intent = w.intent_of(&invoice).await;
    assert_eq!(intent.status, PaymentIntentStatus::RequiresPaymentMethod);
    assert!(intent.last_payment_error.is_some());
    assert!(w.fake.settle_async_payment(&invoice, true).await.is_err());
    w.assert_all_typed();
}

#[tokio::test]
async fn a_declined_renewal_goes_past_due_then_unpaid_then_is_paid() {
    let w = world().await;
    w.fake.set_default_payment_method(&w.customer);
    let sub = w.subscribe().await;
    let id = sub.id.as_str();
    let renewal = w.fake.renew(id).await.unwrap();

    let mark = w.mark().await;
    w.fake.fail_invoice_payment(&renewal).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        ["invoice.payment_failed", "customer.subscription.updated"]
    );
    let previous = &events_raw(&w.receiver)[mark + 1]["data"]["previous_attributes"];
    assert_eq!(previous["status"], "active");
    assert_eq!(w.subscription(id)["status"], "past_due");
    let invoice = RetrieveInvoice::new(renewal.as_str())
        .send(&w.client)
        .await
        .unwrap();
    assert_eq!(invoice.status, Some(InvoiceStatus::Open));
    assert_eq!(invoice.attempt_count, 1);
    assert!(invoice.next_payment_attempt.is_some());
    assert!(invoice.hosted_invoice_url.is_some());
    let intent = w.intent_of(&renewal).await;
    assert_eq!(intent.status, PaymentIntentStatus::RequiresPaymentMethod);
    assert_eq!(
        intent.last_payment_error.unwrap().code,
        Some(ApiErrorsCode::CardDeclined)
    );

    // A retry fails too: one more attempt, the status already past_due.
    let mark = w.mark().await;
    w.fake.fail_invoice_payment(&renewal).await.unwrap();
    assert_eq!(w.since(mark).await, ["invoice.payment_failed"]);
    assert_eq!(w.invoice(&renewal)["attempt_count"], 2);

    let mark = w.mark().await;
    w.fake.mark_unpaid(id).await.unwrap();
    assert_eq!(w.since(mark).await, ["customer.subscription.updated"]);
    assert_eq!(w.subscription(id)["status"], "unpaid");
    assert!(w.fake.mark_unpaid(id).await.is_err(), "only past_due");

    let mark = w.mark().await;
    w.fake.pay_invoice(&renewal).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        ["customer.subscription.updated", "invoice.paid"]
    );
    assert_eq!(w.subscription(id)["status"], "active");
    assert_eq!(
        w.intent_of(&renewal).await.status,
        PaymentIntentStatus::Succeeded
    );
    assert!(w.fake.fail_invoice_payment(&renewal).await.is_err());
    w.assert_all_typed();
}

#[tokio::test]
async fn renewals_are_charged_as_the_payment_method_kind_says() {
    let w = world().await;
    w.fake.set_default_payment_method(&w.customer);
    let sub = w.subscribe().await;
    let id = sub.id.as_str();

    // A bank debit: processing, nothing sent until it settles.
    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::AsyncDebit);
    let renewal = w.fake.renew(id).await.unwrap();
    let mark = w.mark().await;
    w.fake.charge_invoice(&renewal).await.unwrap();
    assert_eq!(w.since(mark).await, Vec::<String>::new());
    assert_eq!(w.invoice(&renewal)["status"], "open");
    assert_eq!(w.subscription(id)["status"], "active");
    assert_eq!(
        w.intent_of(&renewal).await.status,
        PaymentIntentStatus::Processing
    );
    w.fake.settle_async_payment(&renewal, true).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        ["customer.subscription.updated", "invoice.paid"],
        "the new period, then the payment; no checkout event"
    );

    // A debit that bounces on renewal: past_due.
    let renewal = w.fake.renew(id).await.unwrap();
    w.fake.charge_invoice(&renewal).await.unwrap();
    let mark = w.mark().await;
    w.fake.settle_async_payment(&renewal, false).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        ["invoice.payment_failed", "customer.subscription.updated"]
    );
    assert_eq!(w.subscription(id)["status"], "past_due");
    w.fake.pay_invoice(&renewal).await.unwrap();

    // 3-D Secure on renewal: action required, past_due until the customer authenticates.
    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::ThreeDSecure);
    let renewal = w.fake.renew(id).await.unwrap();
    let mark = w.mark().await;
    w.fake.charge_invoice(&renewal).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        [
            "invoice.payment_action_required",
            "customer.subscription.updated"
        ]
    );
    assert_eq!(w.subscription(id)["status"], "past_due");
    assert_eq!(
        w.intent_of(&renewal).await.status,
        PaymentIntentStatus::RequiresAction
    );
    w.fake.pay_invoice(&renewal).await.unwrap();
    assert_eq!(w.subscription(id)["status"], "active");

    // A card: paid.
    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::Card);
    let renewal = w.fake.renew(id).await.unwrap();
    let mark = w.mark().await;
    w.fake.charge_invoice(&renewal).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        ["customer.subscription.updated", "invoice.paid"]
    );

    // A declining card: as fail_invoice_payment.
    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::Declining);
    let renewal = w.fake.renew(id).await.unwrap();
    let mark = w.mark().await;
    w.fake.charge_invoice(&renewal).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        ["invoice.payment_failed", "customer.subscription.updated"]
    );
    assert_eq!(w.subscription(id)["status"], "past_due");
    w.assert_all_typed();
}

#[tokio::test]
async fn an_unpaid_first_invoice_expires_after_23_hours() {
    let w = world().await;
    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::Declining);
    let sub = w.subscribe().await;
    let invoice = invoice_id(&sub);

    let mark = w.mark().await;
    w.fake.expire_incomplete(sub.id.as_str()).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        ["customer.subscription.updated", "invoice.voided"]
    );
    let expired = RetrieveSubscription::new(sub.id.clone())
        .send(&w.client)
        .await
        .unwrap();
    assert_eq!(expired.status, SubscriptionStatus::IncompleteExpired);
    assert!(expired.ended_at.is_some());
    let voided = RetrieveInvoice::new(invoice.as_str())
        .send(&w.client)
        .await
        .unwrap();
    assert_eq!(voided.status, Some(InvoiceStatus::Void));
    assert!(voided.status_transitions.voided_at.is_some());
    assert_eq!(
        w.intent_of(&invoice).await.status,
        PaymentIntentStatus::Canceled
    );
    assert!(w.fake.expire_incomplete(sub.id.as_str()).await.is_err());
    assert!(w.fake.pay_invoice(&invoice).await.is_err(), "void");

    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::Card);
    let active = w.subscribe().await;
    assert!(
        w.fake.expire_incomplete(active.id.as_str()).await.is_err(),
        "only incomplete ones expire"
    );
    w.assert_all_typed();
}

#[tokio::test]
async fn a_paused_subscription_resumes_with_a_new_period() {
    let w = world().await;
    w.fake.set_default_payment_method(&w.customer);
    let sub = w.subscribe().await;
    let id = sub.id.as_str();
    assert!(w.fake.resume_subscription(id).await.is_err(), "not paused");

    let mark = w.mark().await;
    w.fake.pause_subscription(id).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        [
            "customer.subscription.paused",
            "customer.subscription.updated"
        ]
    );
    assert_eq!(w.subscription(id)["status"], "paused");
    assert!(w.fake.pause_subscription(id).await.is_err());

    // Resumed through the API ten days later.
    w.fake.advance_clock(Duration::from_secs(10 * DAY as u64));
    let mark = w.mark().await;
    let resumed = ResumeSubscription::new(id)
        .expand(vec!["latest_invoice".to_owned()])
        .send(&w.client)
        .await
        .expect("resumed subscription decodes");
    assert_eq!(resumed.status, SubscriptionStatus::Active);
    let period = &resumed.items.data[0];
    assert!(period.current_period_start >= sub.created + 10 * DAY);
    assert_eq!(resumed.billing_cycle_anchor, period.current_period_start);
    assert!(period.current_period_end > period.current_period_start + 27 * DAY);
    let invoice = resumed
        .latest_invoice
        .as_ref()
        .unwrap()
        .as_object()
        .unwrap();
    assert_ne!(invoice.id, expanded_invoice(&sub).id);
    assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
    assert_eq!(
        invoice.billing_reason,
        Some(InvoiceBillingReason::SubscriptionUpdate)
    );
    assert_eq!(
        w.since(mark).await,
        [
            "customer.subscription.resumed",
            "customer.subscription.updated",
            "invoice.paid"
        ]
    );
    let invoice_id = invoice.id.as_ref().unwrap().to_string();
    assert_eq!(
        w.intent_of(&invoice_id).await.status,
        PaymentIntentStatus::Succeeded
    );

    // And by the test-facing method.
    w.fake.pause_subscription(id).await.unwrap();
    let mark = w.mark().await;
    w.fake.resume_subscription(id).await.unwrap();
    assert_eq!(
        w.since(mark).await,
        [
            "customer.subscription.resumed",
            "customer.subscription.updated",
            "invoice.paid"
        ]
    );
    assert_eq!(w.subscription(id)["status"], "active");
    w.assert_all_typed();
}

#[tokio::test]
async fn cancel_at_is_set_in_the_dashboard_or_through_the_api() {
    let w = world().await;
    w.fake.set_default_payment_method(&w.customer);
    let sub = w.subscribe().await;
    let id = sub.id.as_str();
    let at = sub.created + 5 * DAY;

    let mark = w.mark().await;
    w.fake.set_cancel_at(id, at).await.unwrap();
    assert_eq!(w.since(mark).await, ["customer.subscription.updated"]);
    let stored = w.subscription(id);
    assert_eq!(stored["cancel_at"], at);
    assert_eq!(stored["cancel_at_period_end"], false);
    assert!(stored["canceled_at"].is_i64());
    assert_eq!(
        stored["cancellation_details"]["reason"],
        "cancellation_requested"
    );
    let previous = &events_raw(&w.receiver)[mark]["data"]["previous_attributes"];
    assert!(previous["cancel_at"].is_null(), "{previous}");

    let later = UpdateSubscription::new(id)
        .cancel_at(UpdateSubscriptionCancelAt::Timestamp(at + DAY))
        .send(&w.client)
        .await
        .unwrap();
    assert_eq!(later.cancel_at, Some(at + DAY));
    assert!(!later.cancel_at_period_end);
    let at_period_end = UpdateSubscription::new(id)
        .cancel_at(UpdateSubscriptionCancelAt::MinPeriodEnd)
        .send(&w.client)
        .await
        .unwrap();
    assert_eq!(
        at_period_end.cancel_at,
        Some(at_period_end.items.data[0].current_period_end)
    );

    // `cancel_at=` (empty) clears it.
    let url = format!("{}/v1/subscriptions/{id}", w.fake.url());
    let (status, _, _) = raw("POST", &url, None, "cancel_at=").await;
    assert_eq!(status, 200);
    let cleared = w.subscription(id);
    assert!(cleared["cancel_at"].is_null());
    assert!(cleared["canceled_at"].is_null());
    assert!(w.fake.set_cancel_at("sub_nope", at).await.is_err());
    w.assert_all_typed();
}

#[tokio::test]
async fn the_clock_moves_forward_on_request() {
    let w = world().await;
    w.fake.set_default_payment_method(&w.customer);
    let first = w.subscribe().await;
    w.fake.advance_clock(Duration::from_secs(40 * DAY as u64));
    let second = w.subscribe().await;
    assert!(second.created >= first.created + 40 * DAY);
    assert!(second.items.data[0].current_period_start >= first.created + 40 * DAY);
    w.fake.advance_clock(Duration::from_secs(DAY as u64));
    let third = w.subscribe().await;
    assert!(third.created >= first.created + 41 * DAY, "cumulative");
    w.mark().await;
    let events = w.fake.events();
    let created = |e: &Value| e["created"].as_i64().unwrap();
    assert!(created(events.last().unwrap()) >= created(&events[0]) + 41 * DAY);
    // Signatures keep real time: the receiver still verifies every delivery.
    assert_eq!(w.receiver.events().len(), events.len());
}

#[tokio::test]
async fn expand_inlines_what_is_asked_and_refuses_the_rest() {
    let w = world().await;
    w.fake.set_default_payment_method(&w.customer);

    let plain = w.create().send(&w.client).await.unwrap();
    assert!(!plain.latest_invoice.as_ref().unwrap().is_object());

    let invoice_only = w
        .create()
        .expand(vec!["latest_invoice".to_owned()])
        .send(&w.client)
        .await
        .unwrap();
    let invoice = expanded_invoice(&invoice_only);
    assert!(invoice.payments.is_none(), "payments only when asked");

    let payments = w
        .create()
        .expand(vec!["latest_invoice.payments".to_owned()])
        .send(&w.client)
        .await
        .unwrap();
    let list = expanded_invoice(&payments).payments.as_ref().unwrap();
    let payment = list.data[0].payment.payment_intent.as_ref().unwrap();
    assert!(!payment.is_object(), "the PaymentIntent stays an id");
    assert_eq!(list.data[0].status, "paid");
    assert_eq!(list.data[0].amount_paid, Some(2000));

    // Retrieve and update expand too; so does an invoice.
    let retrieved = RetrieveSubscription::new(plain.id.clone())
        .expand(vec![EXPAND_INTENT.to_owned()])
        .send(&w.client)
        .await
        .unwrap();
    assert_eq!(
        expanded_intent(&retrieved).status,
        PaymentIntentStatus::Succeeded
    );
    let updated = UpdateSubscription::new(plain.id.clone())
        .expand(vec![EXPAND_INTENT.to_owned()])
        .send(&w.client)
        .await
        .unwrap();
    assert!(expanded_intent(&updated).amount > 0);
    let invoice = RetrieveInvoice::new(invoice_id(&plain).as_str())
        .expand(vec!["payments.data.payment.payment_intent".to_owned()])
        .send(&w.client)
        .await
        .unwrap();
    let intent = invoice.payments.unwrap().data[0]
        .payment
        .payment_intent
        .clone()
        .unwrap();
    assert_eq!(
        intent.as_object().unwrap().status,
        PaymentIntentStatus::Succeeded
    );
    // `expand[]=` works as well as `expand[0]=`.
    let url = format!(
        "{}/v1/subscriptions/{}?expand[]=latest_invoice",
        w.fake.url(),
        plain.id
    );
    let (status, _, body) = raw("GET", &url, None, "").await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["latest_invoice"]["object"], "invoice");

    // What the fake cannot expand is refused like Stripe refuses it; nothing is created.
    let before = w.fake.subscriptions().len();
    let (error, status) = stripe_error(
        w.create()
            .expand(vec!["latest_invoice.payment_intent".to_owned()])
            .send(&w.client)
            .await,
    );
    assert_eq!(
        (status, error.type_),
        (400, ApiErrorsType::InvalidRequestError)
    );
    assert_eq!(
        error.message.as_deref(),
        Some("This property cannot be expanded (latest_invoice.payment_intent).")
    );
    assert_eq!(w.fake.subscriptions().len(), before);
    let (_, status) = stripe_error(
        UpdateSubscription::new(plain.id.clone())
            .metadata(super::fake_stripe::metadata(&[("changed", "yes")]))
            .expand(vec!["customer".to_owned()])
            .send(&w.client)
            .await,
    );
    assert_eq!(status, 400);
    assert!(
        w.subscription(plain.id.as_str())["metadata"]["changed"].is_null(),
        "a refused update changes nothing"
    );
    // Stored objects keep ids.
    assert!(w.subscription(plain.id.as_str())["latest_invoice"].is_string());
    assert!(w.invoice(&invoice_id(&plain)).get("payments").is_none());
}

#[tokio::test]
async fn every_payment_webhook_parses_into_its_typed_event() {
    let w = world().await;
    // invoice.payment_action_required
    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::ThreeDSecure);
    w.subscribe().await;
    // invoice.payment_failed, invoice.voided
    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::Declining);
    let declined = w.subscribe().await;
    w.fake
        .expire_incomplete(declined.id.as_str())
        .await
        .unwrap();
    // checkout.session.async_payment_succeeded / _failed
    for succeeded in [true, false] {
        let session = checkout(&w.client, &w.customer, &w.price).await;
        w.fake
            .complete_checkout_with(session.id.as_str(), PaymentMethodKind::AsyncDebit)
            .await
            .unwrap();
        let invoice = find(w.fake.checkout_sessions(), session.id.as_str())["invoice"]
            .as_str()
            .unwrap()
            .to_owned();
        w.fake
            .settle_async_payment(&invoice, succeeded)
            .await
            .unwrap();
    }
    // customer.subscription.paused / resumed
    w.fake
        .set_default_payment_method_kind(&w.customer, PaymentMethodKind::Card);
    let active = w.subscribe().await;
    w.fake.pause_subscription(active.id.as_str()).await.unwrap();
    w.fake
        .resume_subscription(active.id.as_str())
        .await
        .unwrap();
    w.mark().await;

    let types = w.receiver.types();
    for expected in [
        "invoice.payment_action_required",
        "invoice.payment_failed",
        "invoice.voided",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "customer.subscription.paused",
        "customer.subscription.resumed",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "{expected} in {types:?}"
        );
    }
    w.assert_all_typed();
    // What the typed events say.
    for (type_, event) in w.receiver.events() {
        match &event.data.object {
            EventObject::CheckoutSessionAsyncPaymentSucceeded(session) => {
                assert_eq!(
                    session.payment_status,
                    stripe_checkout::CheckoutSessionPaymentStatus::Paid
                );
            }
            EventObject::CheckoutSessionAsyncPaymentFailed(session) => {
                assert_eq!(
                    session.payment_status,
                    stripe_checkout::CheckoutSessionPaymentStatus::Unpaid
                );
            }
            EventObject::CustomerSubscriptionPaused(sub) => {
                assert_eq!(sub.status, SubscriptionStatus::Paused, "{type_}");
            }
            EventObject::InvoiceVoided(invoice) => {
                assert_eq!(invoice.status, Some(InvoiceStatus::Void));
            }
            _ => {}
        }
    }
}
