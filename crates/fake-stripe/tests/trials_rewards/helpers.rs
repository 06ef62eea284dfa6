//! A fake with a product "Pro" and a monthly usd price of 1000, customers with or without a
//! card, raw requests and what the tests read back.

use std::time::Duration;

use fake_stripe::{FakeConfig, FakeStripe};
use serde_json::Value;
use tokio::net::TcpListener;

pub use crate::common::http::{ok, raw, raw_with_id};

pub const DAY: i64 = 86_400;

pub struct Shop {
    pub fake: FakeStripe,
    pub product: String,
    /// 1000 usd a month.
    pub price: String,
}

impl Shop {
    /// A fake whose clock is frozen, with the product and its price.
    pub async fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeStripe::start(listener, FakeConfig::default()).await;
        fake.freeze_clock();
        let product = ok(raw(&fake, "POST", "/v1/products", "name=Pro").await)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut shop = Self {
            fake,
            product,
            price: String::new(),
        };
        shop.price = shop.price(1000).await;
        shop
    }

    /// A new monthly usd price of `amount` for "Pro".
    pub async fn price(&self, amount: i64) -> String {
        let form = format!(
            "currency=usd&product={}&unit_amount={amount}&recurring[interval]=month",
            self.product
        );
        id(ok(raw(&self.fake, "POST", "/v1/prices", &form).await))
    }

    /// A new customer, paying by card if `card`.
    pub async fn customer(&self, card: bool) -> String {
        let customer = id(ok(
            raw(&self.fake, "POST", "/v1/customers", "name=Ada").await
        ));
        if card {
            self.fake.set_default_payment_method(&customer);
        }
        customer
    }

    pub async fn post(&self, path: &str, form: &str) -> (u16, Value) {
        raw(&self.fake, "POST", path, form).await
    }

    /// `POST /v1/subscriptions` for `customer` to [`Shop::price`], with `more` parameters.
    pub async fn subscribe(&self, customer: &str, more: &str) -> (u16, Value) {
        let form = format!("customer={customer}&items[0][price]={}&{more}", self.price);
        self.post("/v1/subscriptions", &form).await
    }

    /// A new coupon from `form`; its id.
    pub async fn coupon(&self, form: &str) -> String {
        id(ok(self.post("/v1/coupons", form).await))
    }

    pub fn subscription(&self, id: &str) -> Value {
        find(self.fake.subscriptions(), id)
    }

    pub fn invoice(&self, id: &str) -> Value {
        find(self.fake.invoices(), id)
    }

    /// The subscription's latest invoice.
    pub fn latest_invoice(&self, subscription: &str) -> Value {
        let sub = self.subscription(subscription);
        self.invoice(sub["latest_invoice"].as_str().unwrap())
    }

    pub fn events_since(&self, skip: usize) -> Vec<Value> {
        self.fake.events()[skip..].to_vec()
    }

    /// The types of the events generated since the first `skip`.
    pub fn types_since(&self, skip: usize) -> Vec<String> {
        self.events_since(skip)
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn advance(&self, seconds: i64) {
        self.fake
            .advance_clock(Duration::from_secs(seconds.try_into().unwrap()));
    }

    /// The PaymentIntent of invoice `id` (through `expand[]=payments...`), if it has one.
    pub async fn payment_intent_of(&self, invoice: &str) -> Option<Value> {
        let path = format!("/v1/invoices/{invoice}");
        let form = "expand[]=payments.data.payment.payment_intent";
        let invoice = ok(raw(&self.fake, "GET", &path, form).await);
        let payment = &invoice["payments"]["data"][0]["payment"]["payment_intent"];
        (!payment.is_null()).then(|| payment.clone())
    }
}

pub fn id(object: Value) -> String {
    object["id"].as_str().unwrap().to_owned()
}

pub fn find(objects: Vec<Value>, id: &str) -> Value {
    objects
        .into_iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("no object {id}"))
}

/// The `error` of a refusal with `status`.
pub fn refused((status, body): (u16, Value), expected: u16) -> Value {
    assert_eq!(status, expected, "{body}");
    body["error"].clone()
}
