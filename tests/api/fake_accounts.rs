//! The account side of the fake Stripe (`fake_stripe`): the Events API (`/v1/events`, its
//! pages, filters and 30-day retention), customer events (`customer.created`, `.updated`,
//! `.deleted`) through the API and the dashboard, deleting customers, subscriptions made in
//! the dashboard, lost webhooks (`Delivery::Drop`), the events' `api_version`, and webhook
//! endpoints. Objects are read through async-stripe's own types; webhooks through a receiver
//! and `stripe_webhook`.

use std::time::Duration;

use fake_stripe::{Delivery, FakeStripe, PaymentMethodKind};
use futures::TryStreamExt;
use serde_json::Value;
use stripe::{ApiErrorsCode, ApiErrorsType, Client, StripeRequest};
use stripe_billing::SubscriptionStatus;
use stripe_billing::subscription::{CreateSubscription, CreateSubscriptionItems};
use stripe_checkout::CheckoutSessionMode;
use stripe_checkout::checkout_session::{CreateCheckoutSession, CreateCheckoutSessionLineItems};
use stripe_core::customer::{
    CreateCustomer, DeleteCustomer, RetrieveCustomer, RetrieveCustomerReturned, UpdateCustomer,
};
use stripe_core::event::{ListEvent, RetrieveEvent};
use stripe_misc::webhook_endpoint::{
    CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents, DeleteWebhookEndpoint,
    ListWebhookEndpoint, RetrieveWebhookEndpoint, UpdateWebhookEndpoint,
    UpdateWebhookEndpointEnabledEvents,
};
use stripe_shared::{ApiVersion, Event};
use stripe_types::{List, RangeQueryTs};
use stripe_webhook::EventObject;

use super::fake_stripe::{
    Receiver, assert_typed, client, events_raw, fake_with, header, idempotent, metadata,
    monthly_price, raw, stripe_error,
};

const DAY: u64 = 86_400;

/// A fake with a webhook receiver and a client.
struct World {
    receiver: Receiver,
    fake: FakeStripe,
    client: Client,
}

async fn world() -> World {
    let receiver = Receiver::start(0).await;
    let fake = fake_with(Some(receiver.url.clone())).await;
    let client = client(&fake);
    World {
        receiver,
        fake,
        client,
    }
}

impl World {
    /// Waits until every event recorded so far was delivered; returns their types.
    async fn delivered(&self) -> Vec<String> {
        let recorded = self.fake.events().len();
        self.receiver.wait_for(recorded).await;
        let types = self.receiver.types();
        assert_eq!(types.len(), recorded, "each event delivered once");
        types
    }

    /// Every delivered event parses into the typed event its type names, with
    /// `previous_attributes` only on `*.updated`.
    fn assert_all_typed(&self) {
        let events = self.receiver.events();
        assert!(!events.is_empty());
        assert_typed(&events);
    }

    async fn list(&self, request: ListEvent) -> List<Event> {
        request
            .send(&self.client)
            .await
            .expect("the event list decodes")
    }

    /// The types of the events the request lists.
    async fn listed(&self, request: ListEvent) -> Vec<String> {
        types(&self.list(request).await)
    }

    /// A raw `GET /v1/events?{query}`: status and body.
    async fn list_raw(&self, query: &str) -> (u16, Value) {
        let url = format!("{}/v1/events?{query}", self.fake.url());
        let (status, _, body) = raw("GET", &url, None, "").await;
        (status, serde_json::from_slice(&body).unwrap())
    }
}

fn ids(list: &List<Event>) -> Vec<String> {
    list.data.iter().map(|e| e.id.to_string()).collect()
}

fn types(list: &List<Event>) -> Vec<String> {
    list.data
        .iter()
        .map(|e| e.type_.as_str().to_owned())
        .collect()
}

/// The ids of the recorded events, newest first (the Events API's order).
fn newest_first(fake: &FakeStripe) -> Vec<String> {
    let mut ids: Vec<String> = fake
        .events()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    ids.reverse();
    ids
}

async fn new_customer(client: &Client, name: &str) -> String {
    CreateCustomer::new()
        .name(name)
        .send(client)
        .await
        .expect("customer decodes")
        .id
        .to_string()
}

async fn subscribe(
    client: &Client,
    customer: &str,
    price: &str,
) -> Result<(), stripe::StripeError> {
    let mut item = CreateSubscriptionItems::new();
    item.price = Some(price.to_owned());
    CreateSubscription::new()
        .customer(customer)
        .items(vec![item])
        .send(client)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn events_are_listed_newest_first_in_pages_like_stripe() {
    let w = world().await;
    for i in 0..12 {
        new_customer(&w.client, &format!("c{i}")).await;
    }
    w.delivered().await;
    let all = newest_first(&w.fake);
    assert_eq!(all.len(), 12);

    // The first page: 10 by default, newest first, the same JSON as the webhooks.
    let first = w.list(ListEvent::new()).await;
    assert_eq!(ids(&first), all[..10]);
    assert!(first.has_more);
    assert_eq!(first.url, "/v1/events");
    let (status, body) = w.list_raw("").await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "list");
    let mut delivered = events_raw(&w.receiver);
    delivered.reverse();
    assert_eq!(body["data"].as_array().unwrap()[..], delivered[..10]);
    let event = &body["data"][0];
    assert_eq!(event["object"], "event");
    assert_eq!(event["api_version"], "2026-09-30.endive");
    assert_eq!(event["livemode"], false);
    assert_eq!(event["pending_webhooks"], 1);
    assert!(event["created"].is_i64());
    assert!(event["request"]["id"].as_str().unwrap().starts_with("req_"));
    assert!(event["data"]["object"]["id"].is_string());

    // Pages after and before a cursor.
    let next = w
        .list(ListEvent::new().starting_after(all[9].clone()))
        .await;
    assert_eq!(ids(&next), all[10..]);
    assert!(!next.has_more);
    let small = w
        .list(ListEvent::new().limit(3).starting_after(all[2].clone()))
        .await;
    assert_eq!(ids(&small), all[3..6]);
    assert!(small.has_more);
    // `ending_before`: the newer ones closest to the cursor, still newest first.
    let back = w
        .list(ListEvent::new().limit(3).ending_before(all[6].clone()))
        .await;
    assert_eq!(ids(&back), all[3..6]);
    assert!(back.has_more, "three more are newer");
    let top = w
        .list(ListEvent::new().limit(3).ending_before(all[3].clone()))
        .await;
    assert_eq!(ids(&top), all[..3]);
    assert!(!top.has_more);
    let whole = w.list(ListEvent::new().limit(100)).await;
    assert_eq!(ids(&whole), all);
    assert!(!whole.has_more);

    // async-stripe's paginator walks them all.
    let paged = ListEvent::new()
        .limit(5)
        .paginate()
        .stream(&w.client)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(
        paged.iter().map(|e| e.id.to_string()).collect::<Vec<_>>(),
        all
    );

    // One event.
    let one = RetrieveEvent::new(all[4].as_str())
        .send(&w.client)
        .await
        .expect("an event decodes");
    assert_eq!(one.id.as_str(), all[4]);
    assert_eq!(one.type_.as_str(), "customer.created");
    assert_eq!(one.api_version.as_deref(), Some("2026-09-30.endive"));

    // Refusals, as Stripe words them.
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("starting_after=evt_missing", "starting_after"),
        ("ending_before=evt_missing", "ending_before"),
    ] {
        let (status, body) = w.list_raw(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], param, "{query}");
    }
    let (_, body) = w.list_raw("starting_after=evt_missing").await;
    assert_eq!(body["error"]["code"], "resource_missing");
    assert_eq!(body["error"]["message"], "No such event: 'evt_missing'");
    let (status, _) = w
        .list_raw(&format!(
            "starting_after={}&ending_before={}",
            all[1], all[5]
        ))
        .await;
    assert_eq!(status, 400);
    let (error, status) = stripe_error(RetrieveEvent::new("evt_missing").send(&w.client).await);
    assert_eq!(status, 404);
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
}

#[tokio::test]
async fn events_are_filtered_by_type_types_and_created() {
    let w = world().await;
    let price = monthly_price(&w.client, "pro").await;
    let customer = new_customer(&w.client, "Ada").await;
    let t0 = w.fake.events()[0]["created"].as_i64().unwrap();
    w.fake.advance_clock(Duration::from_secs(100));
    w.fake.set_default_payment_method(&customer);
    subscribe(&w.client, &customer, &price).await.unwrap();
    w.fake.advance_clock(Duration::from_secs(100));
    UpdateCustomer::new(customer.as_str())
        .name("Ada L.")
        .send(&w.client)
        .await
        .unwrap();
    let types_in_order = w.delivered().await;
    assert_eq!(
        types_in_order,
        [
            "customer.created",
            "customer.subscription.created",
            "invoice.paid",
            "customer.updated"
        ]
    );

    assert_eq!(
        w.listed(ListEvent::new().type_("customer.created")).await,
        ["customer.created"]
    );
    assert_eq!(
        w.listed(ListEvent::new().type_("customer.*")).await,
        [
            "customer.updated",
            "customer.subscription.created",
            "customer.created"
        ],
        "a wildcard spans dots"
    );
    assert_eq!(
        w.listed(ListEvent::new().type_("*.paid")).await,
        ["invoice.paid"]
    );
    assert!(
        w.listed(ListEvent::new().type_("invoice.created"))
            .await
            .is_empty()
    );
    assert_eq!(
        w.listed(ListEvent::new().types(vec![
            "invoice.paid".to_owned(),
            "customer.created".to_owned()
        ]))
        .await,
        ["invoice.paid", "customer.created"]
    );
    // How async-stripe sends `types`: indexed.
    let request = w.fake.requests().pop().unwrap();
    assert_eq!(request.path, "/v1/events");
    assert_eq!(
        request.form,
        [
            ("types[0]".to_owned(), "invoice.paid".to_owned()),
            ("types[1]".to_owned(), "customer.created".to_owned())
        ]
    );
    let (_, body) = w
        .list_raw("types[]=customer.updated&types[]=customer.created")
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2, "types[] too");

    // Created: the first at t0, the subscription's at t0 + 100, the update at t0 + 200.
    assert_eq!(
        w.listed(ListEvent::new().created(RangeQueryTs::gte(t0 + 100)))
            .await,
        [
            "customer.updated",
            "invoice.paid",
            "customer.subscription.created"
        ]
    );
    assert_eq!(
        w.listed(ListEvent::new().created(RangeQueryTs::gt(t0 + 100)))
            .await,
        ["customer.updated"]
    );
    assert_eq!(
        w.listed(ListEvent::new().created(RangeQueryTs::lt(t0 + 100)))
            .await,
        ["customer.created"]
    );
    assert_eq!(
        w.listed(ListEvent::new().created(RangeQueryTs::lte(t0 + 100)))
            .await,
        [
            "invoice.paid",
            "customer.subscription.created",
            "customer.created"
        ]
    );
    assert_eq!(
        w.listed(ListEvent::new().created(RangeQueryTs::eq(t0)))
            .await,
        ["customer.created"]
    );
    assert_eq!(
        w.listed(
            ListEvent::new()
                .created(RangeQueryTs::gte(t0 + 100))
                .type_("customer.*")
                .limit(1)
        )
        .await,
        ["customer.updated"],
        "filters combine"
    );
    let (_, body) = w
        .list_raw(&format!("created[gte]={}&created[lt]={}", t0 + 1, t0 + 200))
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2);

    // Refusals.
    let (status, body) = w.list_raw("type=invoice.paid&types[0]=invoice.paid").await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("types"))
    );
    let many: Vec<String> = (0..21)
        .map(|i| format!("types[{i}]=invoice.paid"))
        .collect();
    let (status, body) = w.list_raw(&many.join("&")).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("types"))
    );
    let twenty: Vec<String> = (0..20)
        .map(|i| format!("types[{i}]=invoice.paid"))
        .collect();
    let (status, _) = w.list_raw(&twenty.join("&")).await;
    assert_eq!(status, 200, "up to 20 types");
    let (status, body) = w.list_raw("created[gte]=soon").await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("created[gte]"))
    );
}

#[tokio::test]
async fn only_the_last_30_days_of_events_are_listed() {
    let w = world().await;
    let old = new_customer(&w.client, "Old").await;
    w.delivered().await;
    let old_event = w.fake.events()[0]["id"].as_str().unwrap().to_owned();
    w.fake.advance_clock(Duration::from_secs(29 * DAY));
    assert_eq!(ids(&w.list(ListEvent::new()).await), [old_event.as_str()]);
    w.fake.advance_clock(Duration::from_secs(2 * DAY));
    UpdateCustomer::new(old.as_str())
        .email("old@example.com")
        .send(&w.client)
        .await
        .unwrap();
    w.delivered().await;

    let listed = w.list(ListEvent::new()).await;
    assert_eq!(types(&listed), ["customer.updated"], "31 days on");
    let (error, status) =
        stripe_error(RetrieveEvent::new(old_event.as_str()).send(&w.client).await);
    assert_eq!(
        (status, error.code),
        (404, Some(ApiErrorsCode::ResourceMissing))
    );
    // A cursor that fell out still pages.
    let after = w
        .list(ListEvent::new().ending_before(old_event.clone()))
        .await;
    assert_eq!(types(&after), ["customer.updated"]);
    assert_eq!(w.fake.events().len(), 2, "the fake still remembers both");
}

#[tokio::test]
async fn customers_changed_through_the_api_send_their_events() {
    let w = world().await;
    let price = monthly_price(&w.client, "pro").await;
    let customer = CreateCustomer::new()
        .name("Ada")
        .email("ada@example.com")
        .metadata(metadata(&[("customer_id", "u_1")]))
        .send(&w.client)
        .await
        .unwrap();
    let id = customer.id.to_string();
    UpdateCustomer::new(id.as_str())
        .name("Ada Lovelace")
        .metadata(metadata(&[("tier", "gold")]))
        .send(&w.client)
        .await
        .unwrap();
    // Nothing changed: no event.
    UpdateCustomer::new(id.as_str())
        .name("Ada Lovelace")
        .send(&w.client)
        .await
        .unwrap();
    let deleted = DeleteCustomer::new(id.as_str())
        .send(&w.client)
        .await
        .expect("the deleted customer decodes");
    assert_eq!(deleted.id.as_str(), id);
    assert_eq!(
        w.delivered().await,
        ["customer.created", "customer.updated", "customer.deleted"]
    );
    w.assert_all_typed();

    let events = w.receiver.events();
    let EventObject::CustomerCreated(created) = &events[0].1.data.object else {
        unreachable!()
    };
    assert_eq!(created.email.as_deref(), Some("ada@example.com"));
    assert_eq!(created.metadata.as_ref().unwrap()["customer_id"], "u_1");
    let EventObject::CustomerUpdated(updated) = &events[1].1.data.object else {
        unreachable!()
    };
    assert_eq!(updated.name.as_deref(), Some("Ada Lovelace"));
    let raw_events = events_raw(&w.receiver);
    assert_eq!(
        raw_events[1]["data"]["previous_attributes"],
        serde_json::json!({"name": "Ada", "metadata": {"tier": null}})
    );
    let EventObject::CustomerDeleted(gone) = &events[2].1.data.object else {
        unreachable!()
    };
    assert_eq!(gone.id.as_str(), id);
    for event in &raw_events {
        assert!(event["request"]["id"].as_str().unwrap().starts_with("req_"));
    }

    // The deleted customer: retrievable as deleted, missing for everything else.
    let url = format!("{}/v1/customers/{id}", w.fake.url());
    let (status, _, body) = raw("DELETE", &url, None, "").await;
    assert_eq!(status, 404, "deleted once");
    let (status, _, body_get) = raw("GET", &url, None, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&body_get).unwrap(),
        serde_json::json!({"id": id, "object": "customer", "deleted": true})
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"]["code"],
        "resource_missing"
    );
    match RetrieveCustomer::new(id.as_str())
        .send(&w.client)
        .await
        .unwrap()
    {
        RetrieveCustomerReturned::DeletedCustomer(d) => assert_eq!(d.id.as_str(), id),
        other => panic!("expected a deleted customer, got {other:?}"),
    }
    let (error, status) = stripe_error(
        UpdateCustomer::new(id.as_str())
            .name("Back")
            .send(&w.client)
            .await,
    );
    assert_eq!(
        (status, error.code),
        (404, Some(ApiErrorsCode::ResourceMissing))
    );
    let no_such = format!("No such customer: '{id}'");
    let (error, status) = stripe_error(subscribe(&w.client, &id, &price).await);
    assert_eq!(status, 400);
    assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(error.message.as_deref(), Some(no_such.as_str()));
    assert_eq!(error.param.as_deref(), Some("customer"));
    let mut line = CreateCheckoutSessionLineItems::new();
    line.price = Some(price.clone());
    line.quantity = Some(1);
    let (error, status) = stripe_error(
        CreateCheckoutSession::new()
            .customer(id.as_str())
            .mode(CheckoutSessionMode::Subscription)
            .line_items(vec![line])
            .success_url("https://app.example.com/ok")
            .send(&w.client)
            .await,
    );
    assert_eq!(status, 400);
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(error.message.as_deref(), Some(no_such.as_str()));
    assert_eq!(error.param.as_deref(), Some("customer"));
    assert!(
        w.fake.customers().is_empty(),
        "deleted customers are not listed"
    );
    assert_eq!(w.fake.events().len(), 3, "refusals send nothing");
}

#[tokio::test]
async fn deleting_a_customer_cancels_its_subscriptions_first() {
    let w = world().await;
    let price = monthly_price(&w.client, "pro").await;
    let other = monthly_price(&w.client, "add-on").await;
    let customer = w
        .fake
        .create_customer_in_dashboard(Some("Ada"), None, &[])
        .await
        .unwrap();
    let first = w
        .fake
        .subscribe_in_dashboard(&customer, &price, &[])
        .await
        .unwrap();
    let second = w
        .fake
        .subscribe_in_dashboard(&customer, &other, &[])
        .await
        .unwrap();
    let ended = w
        .fake
        .subscribe_in_dashboard(&customer, &other, &[])
        .await
        .unwrap();
    w.fake.cancel_subscription(&ended).await.unwrap();
    let bystander = w
        .fake
        .create_customer_in_dashboard(Some("Bob"), None, &[])
        .await
        .unwrap();
    let kept = w
        .fake
        .subscribe_in_dashboard(&bystander, &price, &[])
        .await
        .unwrap();
    let mark = w.delivered().await.len();

    w.fake.delete_customer(&customer).await.unwrap();
    let types = w.delivered().await;
    assert_eq!(
        types[mark..],
        [
            "customer.subscription.deleted",
            "customer.subscription.deleted",
            "customer.deleted"
        ]
    );
    w.assert_all_typed();
    let events = w.receiver.events();
    let canceled: Vec<String> = events[mark..mark + 2]
        .iter()
        .map(|(_, e)| match &e.data.object {
            EventObject::CustomerSubscriptionDeleted(s) => {
                assert_eq!(s.status, SubscriptionStatus::Canceled);
                s.id.to_string()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(canceled, [first, second], "oldest first");
    let raw_events = events_raw(&w.receiver);
    let request = &raw_events[mark]["request"];
    assert!(request["id"].as_str().unwrap().starts_with("req_"));
    assert_eq!(raw_events[mark + 2]["request"], *request, "one request");
    let kept = w
        .fake
        .subscriptions()
        .into_iter()
        .find(|s| s["id"] == kept.as_str())
        .unwrap();
    assert_eq!(kept["status"], "active", "other customers' stay");

    // Refused the second time; nothing changes.
    let error = w.fake.delete_customer(&customer).await.unwrap_err();
    assert!(error.to_string().contains("No such customer"), "{error}");
    let error = w
        .fake
        .subscribe_in_dashboard(&customer, &price, &[])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("No such customer"), "{error}");
    assert_eq!(w.fake.events().len(), types.len());
}

#[tokio::test]
async fn customers_and_subscriptions_made_in_the_dashboard() {
    let w = world().await;
    let price = monthly_price(&w.client, "pro").await;
    let customer = w
        .fake
        .create_customer_in_dashboard(
            Some("Ada"),
            Some("ada@example.com"),
            &[("customer_id", "u_1")],
        )
        .await
        .unwrap();
    assert!(customer.starts_with("cus_"));
    w.fake
        .update_customer_in_dashboard(&customer, None, Some("ada@new.example.com"))
        .await
        .unwrap();
    w.fake
        .update_customer_in_dashboard(&customer, Some("Ada"), None)
        .await
        .expect("no change, no event");
    let sub = w
        .fake
        .subscribe_in_dashboard(&customer, &price, &[("plan_id", "pro")])
        .await
        .unwrap();
    assert_eq!(
        w.delivered().await,
        [
            "customer.created",
            "customer.updated",
            "customer.subscription.created",
            "invoice.paid"
        ]
    );
    w.assert_all_typed();
    let raw_events = events_raw(&w.receiver);
    assert_eq!(
        raw_events[1]["data"]["previous_attributes"],
        serde_json::json!({"email": "ada@example.com"})
    );
    for event in &raw_events {
        // A dashboard action is an API request of the dashboard's, with its own key.
        assert!(event["request"]["id"].as_str().unwrap().starts_with("req_"));
        assert!(event["request"]["idempotency_key"].is_string());
    }
    let events = w.receiver.events();
    let EventObject::CustomerCreated(created) = &events[0].1.data.object else {
        unreachable!()
    };
    assert_eq!(created.id.as_str(), customer);
    assert_eq!(created.name.as_deref(), Some("Ada"));
    assert_eq!(created.metadata.as_ref().unwrap()["customer_id"], "u_1");
    let EventObject::CustomerSubscriptionCreated(created) = &events[2].1.data.object else {
        unreachable!()
    };
    assert_eq!(created.id.as_str(), sub);
    assert_eq!(created.status, SubscriptionStatus::Active);
    assert_eq!(created.metadata["plan_id"], "pro");
    let stored = w.fake.customers()[0].clone();
    assert_eq!(stored["email"], "ada@new.example.com");
    assert!(
        stored["invoice_settings"]["default_payment_method"].is_string(),
        "a card was given"
    );
    assert!(
        w.fake.requests().iter().all(|r| r.path != "/v1/customers"),
        "the dashboard is not the daemon's API requests"
    );

    // Charged as the payment method's kind says.
    let declining = w
        .fake
        .create_customer_in_dashboard(None, None, &[])
        .await
        .unwrap();
    w.fake
        .set_default_payment_method_kind(&declining, PaymentMethodKind::Declining);
    let mark = w.delivered().await.len();
    let failed = w
        .fake
        .subscribe_in_dashboard(&declining, &price, &[])
        .await
        .unwrap();
    assert_eq!(
        w.delivered().await[mark..],
        ["customer.subscription.created", "invoice.payment_failed"]
    );
    let failed = w
        .fake
        .subscriptions()
        .into_iter()
        .find(|s| s["id"] == failed.as_str())
        .unwrap();
    assert_eq!(failed["status"], "incomplete");

    // Refusals change nothing.
    let before = (w.fake.events().len(), w.fake.subscriptions().len());
    assert!(
        w.fake
            .subscribe_in_dashboard("cus_missing", &price, &[])
            .await
            .is_err()
    );
    assert!(
        w.fake
            .subscribe_in_dashboard(&customer, "price_missing", &[])
            .await
            .is_err()
    );
    assert!(
        w.fake
            .update_customer_in_dashboard("cus_missing", Some("X"), None)
            .await
            .is_err()
    );
    assert_eq!(
        (w.fake.events().len(), w.fake.subscriptions().len()),
        before
    );
}

#[tokio::test]
async fn a_checkout_that_makes_the_customer_sends_customer_created_first() {
    let w = world().await;
    let price = monthly_price(&w.client, "pro").await;
    let url = format!("{}/v1/checkout/sessions", w.fake.url());
    let form = format!(
        "mode=subscription&line_items[0][price]={price}&line_items[0][quantity]=1\
         &customer_email=new%40example.com&success_url=https%3A%2F%2Fapp.example.com%2Fok"
    );
    let (status, _, body) = raw("POST", &url, None, &form).await;
    assert_eq!(status, 200);
    let session: Value = serde_json::from_slice(&body).unwrap();
    w.fake
        .complete_checkout(session["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        w.delivered().await,
        [
            "customer.created",
            "customer.subscription.created",
            "invoice.paid",
            "checkout.session.completed"
        ]
    );
    w.assert_all_typed();
    let events = events_raw(&w.receiver);
    assert_eq!(events[0]["data"]["object"]["email"], "new@example.com");
    assert_eq!(
        events[0]["data"]["object"]["id"],
        events[1]["data"]["object"]["customer"]
    );
}

#[tokio::test]
async fn dropped_webhooks_are_recorded_and_listed_but_never_sent() {
    let w = world().await;
    let first = new_customer(&w.client, "Sent").await;
    w.delivered().await;

    w.fake.set_delivery(Delivery::Drop);
    let lost = w
        .fake
        .create_customer_in_dashboard(Some("Lost"), None, &[])
        .await
        .expect("nothing to wait for");
    UpdateCustomer::new(first.as_str())
        .name("Sent, then renamed")
        .send(&w.client)
        .await
        .unwrap();
    let recorded = w.fake.events();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[1]["pending_webhooks"], 0, "not going anywhere");
    let listed = w.list(ListEvent::new()).await;
    assert_eq!(
        types(&listed),
        ["customer.updated", "customer.created", "customer.created"]
    );
    let (_, body) = w.list_raw("").await;
    assert_eq!(
        body["data"][1]["data"]["object"]["id"], lost,
        "the lost one is in the list"
    );

    // Back to delivering: only what happens from now on is sent.
    w.fake.set_delivery(Delivery::Deliver);
    w.fake.delete_customer(&lost).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let delivered: Vec<Value> = events_raw(&w.receiver);
    let delivered_types: Vec<&str> = delivered
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(delivered_types, ["customer.created", "customer.deleted"]);
    assert_eq!(delivered[1]["id"], w.fake.events()[3]["id"]);
    w.assert_all_typed();
}

#[tokio::test]
async fn events_carry_the_api_version_set() {
    let w = world().await;
    new_customer(&w.client, "Before").await;
    w.fake.set_api_version("2025-03-31.basil");
    new_customer(&w.client, "After").await;
    w.delivered().await;
    let versions: Vec<Value> = events_raw(&w.receiver)
        .iter()
        .map(|e| e["api_version"].clone())
        .collect();
    assert_eq!(versions, ["2026-09-30.endive", "2025-03-31.basil"]);
    let listed = w.list(ListEvent::new()).await;
    assert_eq!(
        listed.data[0].api_version.as_deref(),
        Some("2025-03-31.basil")
    );
    assert_eq!(
        listed.data[1].api_version.as_deref(),
        Some("2026-09-30.endive")
    );
}

#[tokio::test]
async fn webhook_endpoints_are_managed_like_stripe() {
    let w = world().await;
    let created = CreateWebhookEndpoint::new(
        vec![
            CreateWebhookEndpointEnabledEvents::CustomerCreated,
            CreateWebhookEndpointEnabledEvents::InvoicePaid,
        ],
        "https://billing.example.com/webhooks/stripe",
    )
    .api_version(ApiVersion::V2026_09_30_endive)
    .description("the reconciler")
    .metadata(metadata(&[("env", "test")]))
    .send(&w.client)
    .await
    .expect("the endpoint decodes");
    let id = created.id.to_string();
    assert!(id.starts_with("we_"));
    let secret = created.secret.clone().expect("the secret, on create only");
    assert!(
        secret.starts_with("whsec_") && secret.len() > 20,
        "{secret}"
    );
    assert_eq!(created.status, "enabled");
    assert_eq!(created.api_version.as_deref(), Some("2026-09-30.endive"));
    assert_eq!(created.enabled_events, ["customer.created", "invoice.paid"]);
    assert_eq!(created.url, "https://billing.example.com/webhooks/stripe");
    assert_eq!(created.description.as_deref(), Some("the reconciler"));
    assert_eq!(created.metadata["env"], "test");
    assert!(!created.livemode);

    let fetched = RetrieveWebhookEndpoint::new(id.as_str())
        .send(&w.client)
        .await
        .unwrap();
    assert_eq!(fetched.secret, None, "never shown again");
    assert_eq!(fetched.enabled_events, created.enabled_events);
    let url = format!("{}/v1/webhook_endpoints/{id}", w.fake.url());
    let (_, _, body) = raw("GET", &url, None, "").await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["object"], "webhook_endpoint");
    assert!(body.get("secret").is_none());
    assert_eq!(w.fake.webhook_endpoints(), std::slice::from_ref(&body));

    // Updates.
    let updated = UpdateWebhookEndpoint::new(id.as_str())
        .enabled_events(vec![UpdateWebhookEndpointEnabledEvents::All])
        .url("https://billing.example.com/v2/webhooks")
        .disabled(true)
        .description("paused")
        .metadata(metadata(&[("env", ""), ("owner", "billing")]))
        .send(&w.client)
        .await
        .unwrap();
    assert_eq!(updated.enabled_events, ["*"]);
    assert_eq!(updated.url, "https://billing.example.com/v2/webhooks");
    assert_eq!(updated.status, "disabled");
    assert_eq!(updated.description.as_deref(), Some("paused"));
    assert_eq!(updated.metadata, metadata(&[("owner", "billing")]));
    assert_eq!(updated.api_version.as_deref(), Some("2026-09-30.endive"));
    assert_eq!(updated.secret, None);
    let enabled = UpdateWebhookEndpoint::new(id.as_str())
        .disabled(false)
        .send(&w.client)
        .await
        .unwrap();
    assert_eq!(enabled.status, "enabled");

    // Refusals.
    let (status, _, body) = raw("POST", &url, None, "api_version=2025-03-31.basil").await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "parameter_unknown");
    assert_eq!(
        body["error"]["message"],
        "Received unknown parameter: api_version"
    );
    assert_eq!(body["error"]["param"], "api_version");
    let (error, status) = stripe_error(
        CreateWebhookEndpoint::new(
            vec![
                CreateWebhookEndpointEnabledEvents::InvoicePaid,
                CreateWebhookEndpointEnabledEvents::Unknown("invoice.teleported".to_owned()),
            ],
            "https://billing.example.com/hook",
        )
        .send(&w.client)
        .await,
    );
    assert_eq!(status, 400);
    assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
    assert_eq!(error.param.as_deref(), Some("enabled_events[1]"));
    assert!(
        error
            .message
            .as_deref()
            .unwrap()
            .contains("invoice.teleported"),
        "{error:?}"
    );
    let (error, status) = stripe_error(
        UpdateWebhookEndpoint::new(id.as_str())
            .enabled_events(vec![UpdateWebhookEndpointEnabledEvents::Unknown(
                "nope".to_owned(),
            )])
            .send(&w.client)
            .await,
    );
    assert_eq!(
        (status, error.param.as_deref()),
        (400, Some("enabled_events[0]"))
    );
    let create_url = format!("{}/v1/webhook_endpoints", w.fake.url());
    for (form, param) in [
        ("enabled_events[0]=*", "url"),
        ("url=https%3A%2F%2Fa.example.com%2Fh", "enabled_events"),
        ("url=ftp%3A%2F%2Fa.example.com&enabled_events[0]=*", "url"),
        (
            "url=https%3A%2F%2Fa.example.com&enabled_events[0]=*&api_version=yesterday",
            "api_version",
        ),
    ] {
        let (status, _, body) = raw("POST", &create_url, None, form).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 400, "{form}: {body}");
        assert_eq!(body["error"]["param"], param, "{form}");
    }
    let (error, status) = stripe_error(
        RetrieveWebhookEndpoint::new("we_missing")
            .send(&w.client)
            .await,
    );
    assert_eq!(
        (status, error.code),
        (404, Some(ApiErrorsCode::ResourceMissing))
    );
    assert_eq!(
        error.message.as_deref(),
        Some("No such webhook endpoint: 'we_missing'")
    );

    // A list, newest first, in pages; without api_version the account's default (null).
    let mut all = vec![id.clone()];
    for i in 0..3 {
        let form = format!("url=https%3A%2F%2Fh{i}.example.com%2Fhook&enabled_events[]=*");
        let (status, _, body) = raw("POST", &create_url, None, &form).await;
        assert_eq!(status, 200);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(body["api_version"].is_null());
        all.push(body["id"].as_str().unwrap().to_owned());
    }
    all.reverse();
    let page = ListWebhookEndpoint::new()
        .limit(2)
        .send(&w.client)
        .await
        .expect("the endpoint list decodes");
    let page_ids: Vec<String> = page.data.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(page_ids, all[..2]);
    assert!(page.has_more);
    assert!(page.data.iter().all(|e| e.secret.is_none()));
    let rest = ListWebhookEndpoint::new()
        .starting_after(all[1].clone())
        .send(&w.client)
        .await
        .unwrap();
    let rest_ids: Vec<String> = rest.data.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(rest_ids, all[2..]);
    assert!(!rest.has_more);

    // Deleted.
    let deleted = DeleteWebhookEndpoint::new(id.as_str())
        .send(&w.client)
        .await
        .expect("the deleted endpoint decodes");
    assert_eq!(deleted.id.as_str(), id);
    let (status, _, body) = raw("DELETE", &url, None, "").await;
    assert_eq!(status, 404, "{body:?}");
    let (status, _, _) = raw("GET", &url, None, "").await;
    assert_eq!(status, 404);
    assert_eq!(w.fake.webhook_endpoints().len(), 3);
    assert!(w.fake.events().is_empty(), "endpoints send no events");
}

#[tokio::test]
async fn the_new_requests_are_recorded_and_idempotent() {
    let w = world().await;
    let url = format!("{}/v1/webhook_endpoints", w.fake.url());
    let form = "url=https%3A%2F%2Fa.example.com%2Fh&enabled_events[0]=customer.created";
    let (status, _, first) = raw("POST", &url, Some("we-1"), form).await;
    assert_eq!(status, 200);
    let (status, headers, again) = raw("POST", &url, Some("we-1"), form).await;
    assert_eq!((status, &again), (200, &first), "replayed byte for byte");
    assert_eq!(
        header(&headers, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(w.fake.webhook_endpoints().len(), 1);
    let (status, _, _) = raw(
        "POST",
        &url,
        Some("we-1"),
        "url=https%3A%2F%2Fb.example.com",
    )
    .await;
    assert_eq!(status, 400, "the same key with other parameters");

    // A customer created twice with one key: one customer, one `customer.created`.
    for _ in 0..2 {
        CreateCustomer::new()
            .name("Once")
            .customize()
            .request_strategy(idempotent("cus-once"))
            .send(&w.client)
            .await
            .unwrap();
    }
    assert_eq!(w.fake.customers().len(), 1);
    assert_eq!(w.delivered().await, ["customer.created"]);
    let event = &w.fake.events()[0];
    assert_eq!(event["request"]["idempotency_key"], "cus-once");
    let customer = w.fake.customers()[0]["id"].as_str().unwrap().to_owned();
    DeleteCustomer::new(customer.as_str())
        .send(&w.client)
        .await
        .unwrap();
    ListEvent::new()
        .type_("customer.*")
        .send(&w.client)
        .await
        .unwrap();

    let seen: Vec<(String, String, u16)> = w
        .fake
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path, r.status))
        .collect();
    let delete_path = format!("/v1/customers/{customer}");
    let expected: Vec<(String, String, u16)> = [
        ("POST", "/v1/webhook_endpoints", 200),
        ("POST", "/v1/webhook_endpoints", 200),
        ("POST", "/v1/webhook_endpoints", 400),
        ("POST", "/v1/customers", 200),
        ("POST", "/v1/customers", 200),
        ("DELETE", delete_path.as_str(), 200),
        ("GET", "/v1/events", 200),
    ]
    .iter()
    .map(|(m, p, s)| ((*m).to_owned(), (*p).to_owned(), *s))
    .collect();
    assert_eq!(seen, expected);
    assert_eq!(
        w.fake.requests().last().unwrap().form,
        [("type".to_owned(), "customer.*".to_owned())]
    );
}
