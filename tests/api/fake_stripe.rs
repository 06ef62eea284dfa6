//! The fake Stripe (`fake_stripe`), driven through async-stripe's own client so its objects
//! cannot drift from what the crate decodes, and through raw HTTP where headers matter.
//! Webhooks are caught by a small local receiver and parsed with `stripe_webhook`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_stripe::{FakeConfig, FakeStripe, Fault, WebhookSecret};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client as RawClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use stripe::{
    ApiErrorsCode, ApiErrorsType, Client, ClientBuilder, IdempotencyKey, RequestStrategy,
    StripeError, StripeRequest,
};
use stripe_billing::invoice::RetrieveInvoice;
use stripe_billing::invoice_item::{CreateInvoiceItem, PricingParam};
use stripe_billing::subscription::{
    CreateSubscription, CreateSubscriptionItems, ListSubscription, ListSubscriptionStatus,
    RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionProrationBehavior,
};
use stripe_billing::{InvoiceStatus, SubscriptionStatus};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
    RetrieveCheckoutSession,
};
use stripe_checkout::{CheckoutSessionMode, CheckoutSessionStatus};
use stripe_client_core::{RequestBuilder, StripeMethod};
use stripe_core::customer::{
    CreateCustomer, RetrieveCustomer, RetrieveCustomerReturned, UpdateCustomer,
};
use stripe_product::price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval};
use stripe_product::product::CreateProduct;
use stripe_shared::PaymentIntentStatus;
use stripe_types::Currency;
use stripe_webhook::{EventObject, Webhook};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const WEBHOOK_SECRET: &str = "whsec_fake_stripe_test_4e1a";

pub(crate) async fn fake_with(webhook_url: Option<String>) -> FakeStripe {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    FakeStripe::start(
        listener,
        FakeConfig {
            webhook_url,
            webhook_secret: Some(WebhookSecret::new(WEBHOOK_SECRET)),
        },
    )
    .await
}

pub(crate) fn client(fake: &FakeStripe) -> Client {
    ClientBuilder::new("sk_test_fake")
        .url(fake.url())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

pub(crate) fn metadata(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(crate) fn idempotent(key: &str) -> RequestStrategy {
    RequestStrategy::Idempotent(IdempotencyKey::new(key).unwrap())
}

/// The Stripe error of a failed call, with its status.
pub(crate) fn stripe_error<T: std::fmt::Debug>(
    result: Result<T, StripeError>,
) -> (stripe::ApiErrors, u16) {
    match result {
        Err(StripeError::Stripe(error, status)) => (*error, status),
        other => panic!("expected a Stripe error, got {other:?}"),
    }
}

/// A product with a monthly price of 2000 usd; returns the price id.
pub(crate) async fn monthly_price(client: &Client, name: &str) -> String {
    let product = CreateProduct::new(name)
        .metadata(metadata(&[("plan_id", name)]))
        .send(client)
        .await
        .expect("product decodes");
    let price = CreatePrice::new(Currency::USD)
        .product(product.id.as_str())
        .unit_amount(2000)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .metadata(metadata(&[("plan_id", name)]))
        .send(client)
        .await
        .expect("price decodes");
    price.id.to_string()
}

/// A checkout session for `price`, as the daemon creates one.
pub(crate) async fn checkout(
    client: &Client,
    customer: &str,
    price: &str,
) -> stripe_checkout::CheckoutSession {
    let mut line = CreateCheckoutSessionLineItems::new();
    line.price = Some(price.to_owned());
    line.quantity = Some(1);
    let mut subscription_data = CreateCheckoutSessionSubscriptionData::new();
    subscription_data.metadata = Some(metadata(&[("customer_id", "user_1"), ("plan_id", "pro")]));
    CreateCheckoutSession::new()
        .customer(customer)
        .mode(CheckoutSessionMode::Subscription)
        .line_items(vec![line])
        .success_url("https://app.example.com/ok?session_id={CHECKOUT_SESSION_ID}")
        .cancel_url("https://app.example.com/cancel")
        .metadata(metadata(&[
            ("attach_id", "att_1"),
            ("customer_id", "user_1"),
        ]))
        .subscription_data(subscription_data)
        .send(client)
        .await
        .expect("checkout session decodes")
}

/// Deliveries received: `(Stripe-Signature, body)`.
type Received = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// Catches webhook deliveries; answers 500 to the first `fail_first`.
pub(crate) struct Receiver {
    pub(crate) url: String,
    received: Received,
    attempts: Arc<AtomicU32>,
    stop: CancellationToken,
}

impl Receiver {
    pub(crate) async fn start(fail_first: u32) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(AtomicU32::new(0));
        let stop = CancellationToken::new();
        let (r, a, s) = (received.clone(), attempts.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = s.cancelled() => return,
                    accepted = listener.accept() => accepted.unwrap().0,
                };
                let (received, attempts) = (r.clone(), a.clone());
                let service = service_fn(move |req: Request<Incoming>| {
                    let (received, attempts) = (received.clone(), attempts.clone());
                    async move {
                        let signature = header(req.headers(), "stripe-signature");
                        let body = req.into_body().collect().await?.to_bytes();
                        let status = if attempts.fetch_add(1, Ordering::SeqCst) < fail_first {
                            500
                        } else {
                            let body = String::from_utf8(body.to_vec()).unwrap();
                            received.lock().unwrap().push((signature, body));
                            200
                        };
                        let mut response = Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, hyper::Error>(response)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Self {
            url,
            received,
            attempts,
            stop,
        }
    }

    /// Every delivery so far, verified and parsed: `(type, event)`.
    pub(crate) fn events(&self) -> Vec<(String, stripe_webhook::Event)> {
        let received = self.received.lock().unwrap().clone();
        received
            .into_iter()
            .map(|(signature, body)| {
                let signature = signature.expect("deliveries are signed");
                let event = Webhook::construct_event(&body, &signature, WEBHOOK_SECRET)
                    .unwrap_or_else(|e| panic!("{e:?} for {body}"));
                let type_ = serde_json::from_str::<Value>(&body).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                (type_, event)
            })
            .collect()
    }

    pub(crate) fn types(&self) -> Vec<String> {
        self.events().into_iter().map(|(t, _)| t).collect()
    }

    /// Waits until `n` deliveries arrived (events set off by API calls are sent in the
    /// background, as Stripe sends them).
    pub(crate) async fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.received.lock().unwrap().len() < n {
            assert!(Instant::now() < deadline, "only {:?} arrived", self.types());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub(crate) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A raw request; returns the status, the headers and the body.
pub(crate) async fn raw(
    method: &str,
    url: &str,
    idempotency_key: Option<&str>,
    form: &str,
) -> (u16, HeaderMap, Bytes) {
    let client = RawClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", "Bearer sk_test_fake")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(key) = idempotency_key {
        request = request.header("idempotency-key", key);
    }
    let body = Full::new(Bytes::from(form.to_owned()));
    let response = client.request(request.body(body).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

#[tokio::test]
async fn every_endpoint_decodes_in_async_stripe() {
    let fake = fake_with(None).await;
    let client = client(&fake);

    let customer = CreateCustomer::new()
        .name("Test User")
        .email("user@example.com")
        .metadata(metadata(&[("customer_id", "user_1")]))
        .send(&client)
        .await
        .expect("customer decodes");
    let customer_id = customer.id.to_string();
    let RetrieveCustomerReturned::Customer(retrieved) = RetrieveCustomer::new(customer_id.as_str())
        .send(&client)
        .await
        .expect("retrieved customer decodes")
    else {
        panic!("a live customer is not a deleted one");
    };
    assert_eq!(retrieved.email.as_deref(), Some("user@example.com"));
    let updated = UpdateCustomer::new(customer_id.as_str())
        .metadata(metadata(&[("tier", "gold")]))
        .send(&client)
        .await
        .expect("updated customer decodes");
    assert_eq!(
        updated.metadata.unwrap(),
        metadata(&[("customer_id", "user_1"), ("tier", "gold")]),
        "metadata merges"
    );

    let pro = monthly_price(&client, "pro").await;
    let team = monthly_price(&client, "team").await;

    // No payment method: incomplete.
    let mut item = CreateSubscriptionItems::new();
    item.price = Some(pro.clone());
    let incomplete = CreateSubscription::new()
        .customer(customer_id.as_str())
        .items(vec![item.clone()])
        .metadata(metadata(&[("customer_id", "user_1")]))
        .send(&client)
        .await
        .expect("subscription decodes");
    assert_eq!(incomplete.status, SubscriptionStatus::Incomplete);
    // Its first invoice's payments and PaymentIntent, expanded and retrieved.
    let expanded = RetrieveSubscription::new(incomplete.id.clone())
        .expand(vec![
            "latest_invoice.payments.data.payment.payment_intent".to_owned(),
        ])
        .send(&client)
        .await
        .expect("expanded subscription decodes");
    let invoice = expanded.latest_invoice.unwrap().into_object().unwrap();
    let payment = &invoice.payments.expect("payments expanded").data[0];
    let intent = payment.payment.payment_intent.clone().unwrap();
    let intent = intent.into_object().expect("PaymentIntent expanded");
    let retrieved =
        RequestBuilder::new(StripeMethod::Get, format!("/payment_intents/{}", intent.id))
            .customize::<stripe_shared::PaymentIntent>()
            .send(&client)
            .await
            .expect("PaymentIntent decodes");
    assert_eq!(retrieved.id, intent.id);
    assert_eq!(retrieved.status, PaymentIntentStatus::RequiresPaymentMethod);

    fake.set_default_payment_method(&customer_id);
    let active = CreateSubscription::new()
        .customer(customer_id.as_str())
        .items(vec![item])
        .metadata(metadata(&[("customer_id", "user_1"), ("plan_id", "pro")]))
        .send(&client)
        .await
        .expect("active subscription decodes");
    assert_eq!(active.status, SubscriptionStatus::Active);
    let period = &active.items.data[0];
    assert!(period.current_period_end > period.current_period_start + 27 * 86_400);

    let listed = ListSubscription::new()
        .customer(customer_id.as_str())
        .status(ListSubscriptionStatus::All)
        .limit(100i64)
        .send(&client)
        .await
        .expect("list decodes");
    assert_eq!(listed.data.len(), 2);
    assert_eq!(listed.data[0].id, active.id, "newest first");

    let retrieved = RetrieveSubscription::new(active.id.clone())
        .send(&client)
        .await
        .expect("retrieved subscription decodes");
    let mut swap = UpdateSubscriptionItems::new();
    swap.id = Some(retrieved.items.data[0].id.to_string());
    swap.price = Some(team.clone());
    let swapped = UpdateSubscription::new(active.id.clone())
        .items(vec![swap])
        .proration_behavior(UpdateSubscriptionProrationBehavior::None)
        .metadata(metadata(&[("plan_id", "team")]))
        .cancel_at_period_end(true)
        .send(&client)
        .await
        .expect("updated subscription decodes");
    assert_eq!(swapped.items.data[0].price.id.as_str(), team);
    assert!(swapped.cancel_at_period_end);
    assert_eq!(swapped.metadata["plan_id"], "team");

    let session = checkout(&client, &customer_id, &pro).await;
    assert_eq!(session.status, Some(CheckoutSessionStatus::Open));
    let url = session.url.clone().unwrap();
    assert_eq!(url, format!("{}/checkout/{}", fake.url(), session.id));
    RetrieveCheckoutSession::new(session.id.clone())
        .send(&client)
        .await
        .expect("retrieved session decodes");

    // A renewal draft takes invoice items: one by amount, one by price.
    let invoice_id = fake.renew(active.id.as_str()).await.unwrap();
    let by_amount = CreateInvoiceItem::new()
        .customer(customer_id.as_str())
        .invoice(invoice_id.as_str())
        .amount(350i64)
        .currency(Currency::USD)
        .description("Overage")
        .metadata(metadata(&[("job", "j1")]))
        .send(&client)
        .await
        .expect("invoice item decodes");
    assert_eq!(by_amount.amount, 350);
    let by_price = CreateInvoiceItem::new()
        .customer(customer_id.as_str())
        .invoice(invoice_id.as_str())
        .pricing(PricingParam {
            price: Some(pro.clone()),
        })
        .send(&client)
        .await
        .expect("invoice item by price decodes");
    assert_eq!(by_price.amount, 2000);
    let invoice = RetrieveInvoice::new(invoice_id.as_str())
        .send(&client)
        .await
        .expect("invoice decodes");
    assert_eq!(invoice.status, Some(InvoiceStatus::Draft));
    assert_eq!(invoice.total, 2000 + 350 + 2000);
    assert_eq!(invoice.lines.data.len(), 3);
    let subscription = invoice
        .parent
        .unwrap()
        .subscription_details
        .unwrap()
        .subscription;
    assert_eq!(subscription.id(), &active.id);

    fake.pay_invoice(&invoice_id).await.unwrap();
    let paid = RetrieveInvoice::new(invoice_id.as_str())
        .send(&client)
        .await
        .expect("paid invoice decodes");
    assert_eq!(paid.status, Some(InvoiceStatus::Paid));
    assert_eq!(paid.amount_remaining, 0);

    // The base URL works with and without a trailing slash.
    let slash = ClientBuilder::new("sk_test_fake")
        .url(format!("{}/", fake.url()))
        .build()
        .unwrap();
    RetrieveSubscription::new(active.id.clone())
        .send(&slash)
        .await
        .expect("a trailing slash is fine too");
}

#[tokio::test]
async fn every_webhook_parses_into_its_typed_event() {
    let receiver = Receiver::start(0).await;
    let fake = fake_with(Some(receiver.url.clone())).await;
    let client = client(&fake);
    let customer = CreateCustomer::new().send(&client).await.unwrap();
    let pro = monthly_price(&client, "pro").await;

    // A checkout paid: Stripe's order.
    let session = checkout(&client, customer.id.as_str(), &pro).await;
    fake.complete_checkout(session.id.as_str()).await.unwrap();
    let expired = checkout(&client, customer.id.as_str(), &pro).await;
    fake.expire_checkout(expired.id.as_str()).await.unwrap();
    // The customer's creation comes first (the checkouts wait for their own events only).
    receiver.wait_for(5).await;
    assert_eq!(
        receiver.types(),
        [
            "customer.created",
            "customer.subscription.created",
            "invoice.paid",
            "checkout.session.completed",
            "checkout.session.expired"
        ]
    );
    let subscription = fake.subscriptions()[0].clone();
    let sub_id = subscription["id"].as_str().unwrap().to_owned();
    assert_eq!(subscription["status"], "active");
    assert_eq!(
        subscription["metadata"]["plan_id"], "pro",
        "from subscription_data"
    );

    // A renewal, then its payment.
    let invoice_id = fake.renew(&sub_id).await.unwrap();
    fake.pay_invoice(&invoice_id).await.unwrap();
    // Changes through the API are sent in the background.
    UpdateSubscription::new(sub_id.as_str())
        .cancel_at_period_end(true)
        .send(&client)
        .await
        .unwrap();
    receiver.wait_for(9).await;
    fake.cancel_subscription(&sub_id).await.unwrap();
    // A subscription created through the API with a payment method.
    let mut item = CreateSubscriptionItems::new();
    item.price = Some(pro.clone());
    CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item])
        .send(&client)
        .await
        .unwrap();
    receiver.wait_for(12).await;

    let events = receiver.events();
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types[5..],
        [
            "invoice.created",
            "customer.subscription.updated",
            "invoice.paid",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.created",
            "invoice.paid"
        ]
    );
    assert_typed(&events);
    let delivered: Vec<String> = events.iter().map(|(_, e)| e.id.to_string()).collect();
    let recorded: Vec<String> = fake
        .events()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered, recorded, "delivered once each, in order");

    // What the typed events say.
    let EventObject::InvoicePaid(first) = &events[2].1.data.object else {
        unreachable!()
    };
    assert_eq!(
        first.billing_reason,
        Some(stripe_billing::InvoiceBillingReason::SubscriptionCreate)
    );
    let parent = first
        .parent
        .as_ref()
        .unwrap()
        .subscription_details
        .as_ref()
        .unwrap();
    assert_eq!(parent.subscription.id().as_str(), sub_id);
    assert_eq!(parent.metadata.as_ref().unwrap()["customer_id"], "user_1");
    let EventObject::CheckoutSessionCompleted(completed) = &events[3].1.data.object else {
        unreachable!()
    };
    assert_eq!(completed.metadata.as_ref().unwrap()["attach_id"], "att_1");
    assert_eq!(
        completed.subscription.as_ref().unwrap().id().as_str(),
        sub_id
    );
    assert!(completed.customer.is_some());
    let EventObject::InvoiceCreated(renewal) = &events[5].1.data.object else {
        unreachable!()
    };
    assert_eq!(
        renewal.billing_reason,
        Some(stripe_billing::InvoiceBillingReason::SubscriptionCycle)
    );
    let line = &renewal.lines.data[0];
    let EventObject::CustomerSubscriptionUpdated(renewed) = &events[6].1.data.object else {
        unreachable!()
    };
    assert_eq!(
        renewed.items.data[0].current_period_start,
        line.period.start
    );
    assert_eq!(renewed.items.data[0].current_period_end, line.period.end);
    assert_eq!(
        renewal.period_end, line.period.start,
        "the invoice period looks back"
    );
    let previous = events_raw(&receiver)[6]["data"]["previous_attributes"].clone();
    assert_eq!(
        previous["items"]["data"][0]["current_period_end"], line.period.start,
        "previous_attributes hold the old period"
    );
}

/// Every delivered event parsed into the typed event its type names, with
/// `previous_attributes` only on `*.updated`.
pub(crate) fn assert_typed(events: &[(String, stripe_webhook::Event)]) {
    for (type_, event) in events {
        assert_eq!(
            typed_as(&event.data.object),
            Some(type_.as_str()),
            "{type_} parsed as {:?}",
            event.data.object
        );
        assert_eq!(
            event.data.previous_attributes.is_some(),
            type_.ends_with(".updated"),
            "previous_attributes only on *.updated ({type_})"
        );
    }
}

/// The event type a typed `EventObject` variant stands for; `None` for `Unknown`.
pub(crate) fn typed_as(object: &EventObject) -> Option<&'static str> {
    Some(match object {
        EventObject::CustomerCreated(_) => "customer.created",
        EventObject::CustomerUpdated(_) => "customer.updated",
        EventObject::CustomerDeleted(_) => "customer.deleted",
        EventObject::CustomerSubscriptionCreated(_) => "customer.subscription.created",
        EventObject::CustomerSubscriptionUpdated(_) => "customer.subscription.updated",
        EventObject::CustomerSubscriptionDeleted(_) => "customer.subscription.deleted",
        EventObject::InvoiceCreated(_) => "invoice.created",
        EventObject::InvoicePaid(_) => "invoice.paid",
        EventObject::CheckoutSessionCompleted(_) => "checkout.session.completed",
        EventObject::CheckoutSessionExpired(_) => "checkout.session.expired",
        EventObject::CheckoutSessionAsyncPaymentSucceeded(_) => {
            "checkout.session.async_payment_succeeded"
        }
        EventObject::CheckoutSessionAsyncPaymentFailed(_) => {
            "checkout.session.async_payment_failed"
        }
        EventObject::CustomerSubscriptionPaused(_) => "customer.subscription.paused",
        EventObject::CustomerSubscriptionResumed(_) => "customer.subscription.resumed",
        EventObject::InvoicePaymentActionRequired(_) => "invoice.payment_action_required",
        EventObject::InvoicePaymentFailed(_) => "invoice.payment_failed",
        EventObject::InvoiceVoided(_) => "invoice.voided",
        _ => return None,
    })
}

/// The raw JSON of every delivery.
pub(crate) fn events_raw(receiver: &Receiver) -> Vec<Value> {
    let received = receiver.received.lock().unwrap().clone();
    received
        .iter()
        .map(|(_, body)| serde_json::from_str(body).unwrap())
        .collect()
}

#[tokio::test]
async fn an_idempotency_key_replays_and_conflicts_like_stripe() {
    let fake = fake_with(None).await;
    let client = client(&fake);
    let create = || CreateCustomer::new().metadata(metadata(&[("customer_id", "user_1")]));
    let first = create()
        .customize()
        .request_strategy(idempotent("cust-user_1"))
        .send(&client)
        .await
        .unwrap();
    let again = create()
        .customize()
        .request_strategy(idempotent("cust-user_1"))
        .send(&client)
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(fake.customers().len(), 1);

    // Byte for byte, flagged as a replay; the order of parameters does not matter.
    let url = format!("{}/v1/customers", fake.url());
    let (status, headers, body) = raw("POST", &url, Some("raw-1"), "name=A&metadata[x]=1").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "idempotent-replayed"), None);
    let (status, replay_headers, replay) =
        raw("POST", &url, Some("raw-1"), "metadata[x]=1&name=A").await;
    assert_eq!((status, replay), (200, body));
    assert_eq!(
        header(&replay_headers, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(
        header(&replay_headers, "idempotency-key").as_deref(),
        Some("raw-1")
    );
    assert_eq!(fake.customers().len(), 2);

    // The same key with other parameters.
    let (error, status) = stripe_error(
        CreateCustomer::new()
            .name("Someone else")
            .customize()
            .request_strategy(idempotent("cust-user_1"))
            .send(&client)
            .await,
    );
    assert_eq!(status, 400);
    assert_eq!(error.type_, ApiErrorsType::IdempotencyError);
    assert_eq!(fake.customers().len(), 2);

    // Failed requests are not stored: a retry with the key runs.
    let (_, status) = stripe_error(
        UpdateCustomer::new("cus_missing")
            .customize()
            .request_strategy(idempotent("upd-1"))
            .send(&client)
            .await,
    );
    assert_eq!(status, 404);
    fake.fail_next("POST", "/v1/customers", Fault::Status500, 1);
    let (_, status) = stripe_error(
        create()
            .customize()
            .request_strategy(idempotent("cust-2"))
            .send(&client)
            .await,
    );
    assert_eq!(status, 500);
    create()
        .customize()
        .request_strategy(idempotent("cust-2"))
        .send(&client)
        .await
        .unwrap();
    assert_eq!(fake.customers().len(), 3);
}

#[tokio::test]
async fn faults_are_injected_as_asked() {
    let fake = fake_with(None).await;
    let client = client(&fake);
    let url = format!("{}/v1/customers", fake.url());

    fake.fail_next("POST", "/v1/customers", Fault::Status500, 2);
    let (status, headers, body) = raw("POST", &url, None, "name=A").await;
    assert_eq!(status, 500);
    assert_eq!(
        header(&headers, "stripe-should-retry").as_deref(),
        Some("true")
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"]["type"],
        "api_error"
    );
    let (error, status) = stripe_error(CreateCustomer::new().send(&client).await);
    assert_eq!((status, error.type_), (500, ApiErrorsType::ApiError));
    assert!(fake.customers().is_empty(), "a 500 has no effect");
    CreateCustomer::new()
        .send(&client)
        .await
        .expect("the fault is used up");

    fake.fail_next("POST", "/v1/customers", Fault::Status429, 1);
    let (error, status) = stripe_error(CreateCustomer::new().send(&client).await);
    assert_eq!((status, error.code), (429, Some(ApiErrorsCode::RateLimit)));

    // Only matching requests are hit.
    fake.fail_next("GET", "/v1/customers/", Fault::Status500, 1);
    let customer = CreateCustomer::new()
        .send(&client)
        .await
        .expect("POST is not GET");
    let (_, status) = stripe_error(RetrieveCustomer::new(customer.id).send(&client).await);
    assert_eq!(status, 500, "GET under the prefix is");

    // A delay holds the answer back, but the request has taken effect: a client that
    // times out and retries with the same key gets the replay, not a second customer.
    fake.fail_next(
        "POST",
        "/v1/customers",
        Fault::Delay(Duration::from_millis(600)),
        1,
    );
    let before = fake.customers().len();
    let timed_out = CreateCustomer::new()
        .customize()
        .request_strategy(idempotent("slow-1"))
        .timeout(Duration::from_millis(200))
        .send(&client)
        .await;
    assert!(
        matches!(timed_out, Err(StripeError::Timeout)),
        "{timed_out:?}"
    );
    CreateCustomer::new()
        .customize()
        .request_strategy(idempotent("slow-1"))
        .send(&client)
        .await
        .unwrap();
    assert_eq!(fake.customers().len(), before + 1);
    fake.fail_next(
        "GET",
        "/v1/customers",
        Fault::Delay(Duration::from_millis(300)),
        1,
    );
    let started = Instant::now();
    let id = fake.customers()[0]["id"].as_str().unwrap().to_owned();
    RetrieveCustomer::new(id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn unknown_ids_are_resource_missing() {
    let fake = fake_with(None).await;
    let client = client(&fake);
    let not_found = |result: Result<(), StripeError>| {
        let (error, status) = stripe_error(result);
        assert_eq!(status, 404);
        assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
        assert_eq!(error.param.as_deref(), Some("id"));
    };
    not_found(
        RetrieveCustomer::new("cus_nope")
            .send(&client)
            .await
            .map(drop),
    );
    not_found(
        UpdateCustomer::new("cus_nope")
            .name("x")
            .send(&client)
            .await
            .map(drop),
    );
    not_found(
        RetrieveSubscription::new("sub_nope")
            .send(&client)
            .await
            .map(drop),
    );
    not_found(
        UpdateSubscription::new("sub_nope")
            .send(&client)
            .await
            .map(drop),
    );
    not_found(
        RetrieveInvoice::new("in_nope")
            .send(&client)
            .await
            .map(drop),
    );
    not_found(
        RetrieveCheckoutSession::new("cs_nope")
            .send(&client)
            .await
            .map(drop),
    );
    // An unknown id in a parameter is a 400 naming the parameter.
    let mut item = CreateSubscriptionItems::new();
    item.price = Some("price_nope".to_owned());
    let (error, status) = stripe_error(
        CreateSubscription::new()
            .customer("cus_nope")
            .items(vec![item])
            .send(&client)
            .await,
    );
    assert_eq!((status, error.param.as_deref()), (400, Some("customer")));
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
    let (status, _, _) = raw("GET", &format!("{}/v1/nothing", fake.url()), None, "").await;
    assert_eq!(status, 404);
    assert!(fake.renew("sub_nope").await.is_err());
    assert!(fake.pay_invoice("in_nope").await.is_err());
}

#[tokio::test]
async fn a_person_can_pay_on_the_hosted_checkout_page() {
    let fake = fake_with(None).await;
    let client = client(&fake);
    let customer = CreateCustomer::new()
        .email("buyer@example.com")
        .send(&client)
        .await
        .unwrap();
    let pro = monthly_price(&client, "pro").await;
    let session = checkout(&client, customer.id.as_str(), &pro).await;
    let url = session.url.unwrap();

    let (status, headers, page) = raw("GET", &url, None, "").await;
    assert_eq!(status, 200);
    assert!(
        header(&headers, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let page = String::from_utf8(page.to_vec()).unwrap();
    assert!(
        page.contains(&format!("action=\"/checkout/{}/complete\"", session.id)),
        "{page}"
    );
    assert!(page.contains(">Pay<"));

    let (status, _, paid) = raw("POST", &format!("{url}/complete"), None, "").await;
    assert_eq!(status, 200);
    let paid = String::from_utf8(paid.to_vec()).unwrap();
    assert!(
        paid.contains(&format!(
            "https://app.example.com/ok?session_id={}",
            session.id
        )),
        "{paid}"
    );
    let completed = &fake.checkout_sessions()[0];
    assert_eq!(completed["status"], "complete");
    assert_eq!(completed["payment_status"], "paid");
    assert_eq!(completed["customer_details"]["email"], "buyer@example.com");
    let subscription = &fake.subscriptions()[0];
    assert_eq!(completed["subscription"], subscription["id"]);
    assert_eq!(subscription["status"], "active");
    assert_eq!(subscription["metadata"]["customer_id"], "user_1");
    let pm = &fake.customers()[0]["invoice_settings"]["default_payment_method"];
    assert!(pm.as_str().unwrap().starts_with("pm_"));
    assert_eq!(&subscription["default_payment_method"], pm);
    let types: Vec<Value> = fake.events().iter().map(|e| e["type"].clone()).collect();
    assert_eq!(
        types,
        [
            "customer.created",
            "customer.subscription.created",
            "invoice.paid",
            "checkout.session.completed"
        ]
    );

    // Paying twice is refused.
    let (status, _, _) = raw("POST", &format!("{url}/complete"), None, "").await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn requests_are_recorded_with_keys_and_fields() {
    let fake = fake_with(None).await;
    let client = client(&fake);
    let customer = CreateCustomer::new()
        .name("Ada")
        .metadata(metadata(&[("customer_id", "user_7")]))
        .customize()
        .request_strategy(idempotent("cust-user_7"))
        .send(&client)
        .await
        .unwrap();
    ListSubscription::new()
        .customer(customer.id.as_str())
        .status(ListSubscriptionStatus::All)
        .send(&client)
        .await
        .unwrap();
    let _ = RetrieveCustomer::new("cus_nope").send(&client).await;
    let (status, _, _) = raw("GET", &format!("{}/v1/customers/x", fake.url()), None, "").await;
    assert_eq!(status, 404, "unknown id");

    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    let create = &requests[0];
    assert_eq!(
        (create.method.as_str(), create.path.as_str()),
        ("POST", "/v1/customers")
    );
    assert_eq!(create.idempotency_key.as_deref(), Some("cust-user_7"));
    assert!(create.form.contains(&("name".to_owned(), "Ada".to_owned())));
    assert!(
        create
            .form
            .contains(&("metadata[customer_id]".to_owned(), "user_7".to_owned()))
    );
    assert_eq!(create.status, 200);
    let list = &requests[1];
    assert_eq!(
        (list.method.as_str(), list.path.as_str()),
        ("GET", "/v1/subscriptions")
    );
    assert!(list.form.contains(&("status".to_owned(), "all".to_owned())));
    assert_eq!(list.idempotency_key, None);
    assert_eq!(requests[2].status, 404);

    // Without a bearer token: 401, recorded too.
    let no_auth = RawClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = no_auth
        .request(
            Request::get(format!("{}/v1/customers/x", fake.url()))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(fake.requests().last().unwrap().status, 401);
}

#[tokio::test]
async fn deliveries_are_retried_until_acknowledged() {
    let receiver = Receiver::start(2).await;
    let fake = fake_with(Some(receiver.url.clone())).await;
    let client = client(&fake);
    let customer = CreateCustomer::new().send(&client).await.unwrap();
    let pro = monthly_price(&client, "pro").await;
    let session = checkout(&client, customer.id.as_str(), &pro).await;
    fake.complete_checkout(session.id.as_str()).await.unwrap();
    assert_eq!(
        receiver.attempts.load(Ordering::SeqCst),
        6,
        "two refused (customer.created's first tries), then four"
    );
    assert_eq!(
        receiver.types(),
        [
            "customer.created",
            "customer.subscription.created",
            "invoice.paid",
            "checkout.session.completed"
        ]
    );

    // Nobody listening: the delivery is given up and the caller told.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let fake = fake_with(None).await;
    let client = self::client(&fake);
    let customer = CreateCustomer::new().send(&client).await.unwrap();
    let pro = monthly_price(&client, "pro").await;
    let session = checkout(&client, customer.id.as_str(), &pro).await;
    // Pointed there only now, so only the expiry is tried (customer.created is recorded).
    fake.deliver_webhooks_to(url).unwrap();
    let error = fake.expire_checkout(session.id.as_str()).await.unwrap_err();
    assert!(
        error.to_string().contains("webhook delivery failed"),
        "{error:#}"
    );
    assert_eq!(
        fake.events().len(),
        2,
        "still recorded (after customer.created)"
    );
}

#[tokio::test]
async fn webhooks_can_be_pointed_at_a_receiver_that_starts_later() {
    let fake = fake_with(None).await;
    let client = client(&fake);
    let customer = CreateCustomer::new().send(&client).await.unwrap();
    let pro = monthly_price(&client, "pro").await;
    let early = checkout(&client, customer.id.as_str(), &pro).await;
    fake.expire_checkout(early.id.as_str()).await.unwrap();
    assert_eq!(
        fake.events()[1]["pending_webhooks"],
        0,
        "nowhere to send it"
    );

    let receiver = Receiver::start(0).await;
    fake.deliver_webhooks_to(receiver.url.clone()).unwrap();
    let late = checkout(&client, customer.id.as_str(), &pro).await;
    fake.expire_checkout(late.id.as_str()).await.unwrap();
    assert_eq!(
        receiver.types(),
        ["checkout.session.expired"],
        "only what happened after"
    );
    assert_eq!(fake.events()[2]["pending_webhooks"], 1);

    let again = fake.deliver_webhooks_to(receiver.url.clone()).unwrap_err();
    assert!(again.to_string().contains("already"), "{again:#}");
}
