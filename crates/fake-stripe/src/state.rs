//! Everything the fake remembers, behind one lock: the objects, the requests it answered,
//! stored idempotent responses, armed faults and the events it generated.
//!
//! Objects are kept as the JSON Stripe would send (see `objects.rs` and `billing.rs`), so
//! a response, a webhook and a snapshot are the same value. Ids carry a per-instance tag and
//! a global counter, so a map ordered by id is in creation order.
//!
//! The fake keeps its own clock ([`State::now`]): real time plus whatever
//! `FakeStripe::advance_clock` added, so a test can let days pass; `FakeStripe::freeze_clock`
//! stops real time from moving it, for amounts that depend on the exact second.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::Value;

use super::checkout::Purchase;
use super::config::{Delivery, Fault, PaymentMethodKind};
use super::objects::API_VERSION;

#[derive(Default)]
pub(super) struct State {
    tag: String,
    counter: u64,
    pub customers: BTreeMap<String, Value>,
    /// Deleted customers, as `DELETE /v1/customers/{id}` answered (`deleted: true`).
    pub deleted_customers: BTreeMap<String, Value>,
    pub products: BTreeMap<String, Value>,
    pub prices: BTreeMap<String, Value>,
    pub subscriptions: BTreeMap<String, Value>,
    pub invoices: BTreeMap<String, Value>,
    pub invoice_items: BTreeMap<String, Value>,
    pub sessions: BTreeMap<String, Value>,
    pub payment_intents: BTreeMap<String, Value>,
    /// The `invoice_payment` linking each finalized invoice to its PaymentIntent.
    pub invoice_payments: HashMap<String, InvoicePaymentLink>,
    /// How each payment method the fake made behaves; other ids behave like a card.
    pub payment_methods: HashMap<String, PaymentMethodKind>,
    /// The checkout session each subscription came from, by subscription id.
    pub checkout_of: HashMap<String, String>,
    /// Seconds added to real time by `advance_clock`.
    pub clock_offset: i64,
    /// The real time the clock stopped at (`freeze_clock`): from then on only
    /// `advance_clock` moves it, so a test can act at an exact second of a period.
    pub frozen_at: Option<i64>,
    /// What each checkout session will buy; not part of the session object.
    pub purchases: HashMap<String, Purchase>,
    /// Subscription as it was before `renew`, keyed by the renewal invoice: the
    /// `previous_attributes` of the `customer.subscription.updated` sent when it is paid.
    pub before_renewal: HashMap<String, Value>,
    pub requests: Vec<RecordedRequest>,
    pub idempotent: HashMap<String, StoredResponse>,
    pub faults: Vec<ArmedFault>,
    /// Every event generated, in order (`GET /v1/events` lists the last 30 days').
    pub events: Vec<Value>,
    /// Whether events are sent or only recorded.
    pub delivery: Delivery,
    /// The `api_version` stamped on new events.
    pub api_version: String,
    /// Webhook endpoints made through the API, without their secrets.
    pub webhook_endpoints: BTreeMap<String, Value>,
    /// Coupons by id (ids may be chosen by the caller, so this map is not in creation order).
    pub coupons: BTreeMap<String, Value>,
    /// Deleted coupons, as they were: discounts made from them still apply.
    pub deleted_coupons: BTreeMap<String, Value>,
    pub promotion_codes: BTreeMap<String, Value>,
    /// Every discount made (`di_...`), as it is now, including those that ended.
    pub discounts: BTreeMap<String, Value>,
    /// `once` discounts that have discounted an invoice: the next invoice removes them.
    pub discounts_used: HashSet<String>,
    /// Subscriptions whose `customer.subscription.trial_will_end` was sent.
    pub trial_will_end_sent: HashSet<String>,
}

/// An invoice's default `invoice_payment` (`inpay_...`) and its PaymentIntent.
#[derive(Debug, Clone)]
pub(super) struct InvoicePaymentLink {
    pub id: String,
    pub payment_intent: String,
}

/// A successful response kept for replays of its idempotency key.
pub(super) struct StoredResponse {
    pub method: String,
    pub path: String,
    pub params: Vec<(String, String)>,
    pub status: u16,
    pub request_id: String,
    pub body: Bytes,
}

pub(super) struct ArmedFault {
    pub method: String,
    pub path_prefix: String,
    pub fault: Fault,
    pub remaining: u32,
}

/// One `/v1` request as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Without the query string.
    pub path: String,
    pub idempotency_key: Option<String>,
    /// The decoded parameters: the form body, or the query string of a GET.
    pub form: Vec<(String, String)>,
    /// The status it was answered with.
    pub status: u16,
}

impl State {
    pub(super) fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Self {
            tag: base36(nanos as u64 ^ u64::from(std::process::id()), 6),
            api_version: API_VERSION.to_owned(),
            ..Self::default()
        }
    }

    /// A new id such as `cus_FK3q9a000001`: "F" for fake, the instance tag, a counter.
    pub(super) fn id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_F{}{:06}", self.tag, self.counter)
    }

    /// An 8-character upper-case code such as `FK3Q0012`, for what Stripe names with a short
    /// random code (coupon ids, promotion codes): the instance tag and the counter.
    pub(super) fn code(&mut self) -> String {
        self.counter += 1;
        format!("{}{:04}", self.tag[..4].to_uppercase(), self.counter)
    }

    /// A UUID-shaped key, for the idempotency keys Stripe generates for its own actions.
    pub(super) fn uuid(&mut self) -> String {
        self.counter += 1;
        let tag = u64::from_str_radix(&self.tag, 36).unwrap_or_default();
        format!(
            "fa4e{:04x}-0000-4000-8000-{:012x}",
            tag & 0xffff,
            self.counter
        )
    }

    /// Unix seconds on the fake's clock: real time (or the time it was frozen at) plus the
    /// offset `advance_clock` added.
    pub(super) fn now(&self) -> i64 {
        self.frozen_at.unwrap_or_else(real_now) + self.clock_offset
    }

    /// Takes one use of the first armed fault matching this request.
    pub(super) fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let armed = self.faults.iter_mut().find(|f| {
            f.remaining > 0
                && f.method.eq_ignore_ascii_case(method)
                && path.starts_with(&f.path_prefix)
        })?;
        armed.remaining -= 1;
        let fault = armed.fault;
        self.faults.retain(|f| f.remaining > 0);
        Some(fault)
    }
}

/// Lowercase base-36 digits of `n`, left-padded or truncated to `width`.
fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(width);
    for _ in 0..width {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    String::from_utf8(out).expect("ASCII digits")
}

/// Unix seconds now, real time (webhook signatures must be fresh for the receiver).
pub(super) fn real_now() -> i64 {
    chrono::Utc::now().timestamp()
}
