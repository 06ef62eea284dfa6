//! A fake with a paying customer on a monthly price, raw requests, and what the tests read
//! back (events, periods).

use std::time::Duration;

use fake_stripe::{FakeConfig, FakeStripe};
use serde_json::Value;
use tokio::net::TcpListener;

pub use crate::common::http::{ok, raw, raw_with_id};

/// A fake whose clock is frozen, with a customer who pays by card, a product "Pro" and
/// monthly usd prices of 1000 (`price`) and 2000 (`price_2000`), and that customer's
/// active subscription to `price` × `quantity` (its first invoice paid).
pub struct World {
    pub fake: FakeStripe,
    pub customer: String,
    pub price: String,
    pub price_2000: String,
    pub subscription: String,
    pub item: String,
}

impl World {
    pub async fn new(quantity: i64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeStripe::start(listener, FakeConfig::default()).await;
        fake.freeze_clock();
        let customer = ok(raw(&fake, "POST", "/v1/customers", "name=Ada").await)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        fake.set_default_payment_method(&customer);
        let product = ok(raw(&fake, "POST", "/v1/products", "name=Pro").await)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let price = |amount: i64| {
            format!("currency=usd&product={product}&unit_amount={amount}&recurring[interval]=month")
        };
        let price_1000 = ok(raw(&fake, "POST", "/v1/prices", &price(1000)).await);
        let price_2000 = ok(raw(&fake, "POST", "/v1/prices", &price(2000)).await);
        let price_id = price_1000["id"].as_str().unwrap().to_owned();
        let form =
            format!("customer={customer}&items[0][price]={price_id}&items[0][quantity]={quantity}");
        let sub = ok(raw(&fake, "POST", "/v1/subscriptions", &form).await);
        assert_eq!(sub["status"], "active", "{sub}");
        Self {
            customer,
            price: price_id,
            price_2000: price_2000["id"].as_str().unwrap().to_owned(),
            subscription: sub["id"].as_str().unwrap().to_owned(),
            item: sub["items"]["data"][0]["id"].as_str().unwrap().to_owned(),
            fake,
        }
    }

    pub fn subscription(&self) -> Value {
        self.fake
            .subscriptions()
            .into_iter()
            .find(|s| s["id"] == self.subscription.as_str())
            .unwrap()
    }

    /// The current period of the subscription's (first) item.
    pub fn period(&self) -> (i64, i64) {
        let item = &self.subscription()["items"]["data"][0];
        (
            item["current_period_start"].as_i64().unwrap(),
            item["current_period_end"].as_i64().unwrap(),
        )
    }

    /// Moves the frozen clock to `start + (end - start) × done / of` of the current period
    /// and returns that moment; `done / of` must fall on a whole second.
    pub fn move_into_period(&self, done: i64, of: i64) -> i64 {
        let (start, end) = self.period();
        assert_eq!((end - start) * done % of, 0, "not a whole second");
        let at = start + (end - start) * done / of;
        let now = self.fake.now();
        self.fake
            .advance_clock(Duration::from_secs((at - now).try_into().unwrap()));
        assert_eq!(self.fake.now(), at);
        at
    }

    /// `POST /v1/subscriptions/{id}` with `form`.
    pub async fn update(&self, form: &str) -> (u16, Value) {
        let path = format!("/v1/subscriptions/{}", self.subscription);
        raw(&self.fake, "POST", &path, form).await
    }

    /// `DELETE /v1/subscriptions/{id}` with `form`; also returns the `Request-Id`.
    pub async fn cancel(&self, form: &str) -> (u16, Value, String) {
        let path = format!("/v1/subscriptions/{}", self.subscription);
        raw_with_id(&self.fake, "DELETE", &path, form).await
    }

    /// The types of the events generated since the first `skip`.
    pub fn types_since(&self, skip: usize) -> Vec<String> {
        self.fake.events()[skip..]
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn invoice(&self, id: &str) -> Value {
        self.fake
            .invoices()
            .into_iter()
            .find(|i| i["id"] == id)
            .unwrap()
    }

    pub fn customer_balance(&self) -> i64 {
        let customer = self
            .fake
            .customers()
            .into_iter()
            .find(|c| c["id"] == self.customer.as_str())
            .unwrap();
        customer["balance"].as_i64().unwrap()
    }
}
