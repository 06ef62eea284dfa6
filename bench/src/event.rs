//! Unique events cut from the fixtures, rendered without a JSON round trip: `invoice.paid`
//! alone, or a subscription's whole life.

use serde_json::Value;

const INVOICE_PAID: &str = include_str!("../../fixtures/invoice.paid.json");
const INVOICE_CREATED: &str = include_str!("../../fixtures/invoice.created.json");
const SUB_CREATED: &str = include_str!("../../fixtures/customer.subscription.created.json");
const SUB_UPDATED: &str = include_str!("../../fixtures/customer.subscription.updated.json");
const SUB_DELETED: &str = include_str!("../../fixtures/customer.subscription.deleted.json");
const PRODUCT_CREATED: &str = include_str!("../../fixtures/product.created.json");

/// The parts of one event that differ per delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    EventId,
    InvoiceId,
    StripeCustomer,
    Subscription,
    OurCustomer,
    Created,
}

const SLOTS: [(Slot, &str); 6] = [
    (Slot::EventId, "@@event@@"),
    (Slot::InvoiceId, "@@invoice@@"),
    (Slot::StripeCustomer, "@@cus@@"),
    (Slot::Subscription, "@@sub@@"),
    (Slot::OurCustomer, "@@ours@@"),
    (Slot::Created, "\"@@created@@\""),
];

/// Which events a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// `invoice.paid` only, each for a new invoice of one of the customers.
    InvoicePaid,
    /// Each subscription's whole life, in seven events: created `incomplete`, invoice
    /// created, invoice paid, updated `active`, `past_due`, `active` set to cancel, deleted.
    Lifecycle,
    /// `product.created` (each of its own product), a type the daemon stores and skips
    /// (no handler).
    Unhandled,
    /// `invoice.paid` whose invoice does not parse (its `customer` is a number): a dead
    /// letter at its first attempt.
    Poison,
}

/// Event `n` of a run: what it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub n: u64,
    pub customer: u64,
    /// The subscription (and, in the lifecycle, its invoice).
    pub subscription: u64,
    pub invoice: u64,
    pub created: i64,
    /// Which template of the mix.
    pub step: usize,
}

/// The events of a mix, ready to render.
pub struct Events {
    mix: Mix,
    templates: Vec<Template>,
}

impl Events {
    pub fn new(mix: Mix) -> anyhow::Result<Self> {
        let templates = match mix {
            Mix::InvoicePaid => vec![Template::invoice(INVOICE_PAID)?],
            Mix::Unhandled => {
                // Each for a product of its own, as events of many objects are.
                let mut event: Value = serde_json::from_str(PRODUCT_CREATED)?;
                event["data"]["object"]["id"] = "@@invoice@@".into();
                vec![Template::split(event)?]
            }
            Mix::Poison => {
                let mut event: Value = serde_json::from_str(INVOICE_PAID)?;
                event["data"]["object"]["id"] = "@@invoice@@".into();
                event["data"]["object"]["customer"] = 42.into();
                vec![Template::split(event)?]
            }
            Mix::Lifecycle => vec![
                Template::subscription(SUB_CREATED, "incomplete", false)?,
                Template::invoice(INVOICE_CREATED)?,
                Template::invoice(INVOICE_PAID)?,
                Template::subscription(SUB_UPDATED, "active", false)?,
                Template::subscription(SUB_UPDATED, "past_due", false)?,
                Template::subscription(SUB_UPDATED, "active", true)?,
                Template::subscription(SUB_DELETED, "canceled", true)?,
            ],
        };
        Ok(Self { mix, templates })
    }

    /// What event `n` is about. `now` is the current second: a subscription's events get
    /// increasing `created` seconds in the order of its life, so they apply in that order
    /// whatever order they arrive in.
    pub fn ids(&self, n: u64, customers: u64, now: i64) -> Ids {
        match self.mix {
            Mix::InvoicePaid | Mix::Unhandled | Mix::Poison => Ids {
                n,
                customer: n % customers,
                subscription: n % customers,
                invoice: n,
                created: now,
                step: 0,
            },
            Mix::Lifecycle => {
                let steps = self.templates.len() as u64;
                let life = n / steps;
                let step = n % steps;
                Ids {
                    n,
                    customer: life % customers,
                    subscription: life,
                    invoice: life,
                    // A customer's next life starts after its previous one ended.
                    created: now + (life / customers) as i64 * 10 + step as i64,
                    step: step as usize,
                }
            }
        }
    }

    pub fn render(&self, run: &str, ids: &Ids) -> Vec<u8> {
        self.templates[ids.step].render(run, ids)
    }
}

/// A fixture split at its per-event slots.
pub struct Template {
    pieces: Vec<(String, Option<Slot>)>,
}

impl Template {
    /// An invoice event: ours through the subscription's metadata.
    fn invoice(fixture: &str) -> anyhow::Result<Self> {
        let mut event: Value = serde_json::from_str(fixture)?;
        let invoice = &mut event["data"]["object"];
        invoice["id"] = "@@invoice@@".into();
        invoice["customer"] = "@@cus@@".into();
        let details = &mut invoice["parent"]["subscription_details"];
        details["subscription"] = "@@sub@@".into();
        details["metadata"]["customer_id"] = "@@ours@@".into();
        Self::split(event)
    }

    /// A subscription event in `status`, set to cancel at the period's end or not.
    fn subscription(fixture: &str, status: &str, cancel: bool) -> anyhow::Result<Self> {
        let mut event: Value = serde_json::from_str(fixture)?;
        let sub = &mut event["data"]["object"];
        sub["id"] = "@@sub@@".into();
        sub["customer"] = "@@cus@@".into();
        sub["metadata"]["customer_id"] = "@@ours@@".into();
        sub["status"] = status.into();
        sub["cancel_at_period_end"] = cancel.into();
        if !cancel {
            sub["cancel_at"] = Value::Null;
            sub["canceled_at"] = Value::Null;
        }
        Self::split(event)
    }

    fn split(mut event: Value) -> anyhow::Result<Self> {
        event["id"] = "@@event@@".into();
        event["created"] = "@@created@@".into();
        let mut rest = serde_json::to_string_pretty(&event)?;
        let mut pieces = Vec::new();
        loop {
            let next = SLOTS
                .iter()
                .filter_map(|(slot, marker)| rest.find(marker).map(|at| (at, *slot, marker.len())))
                .min_by_key(|(at, _, _)| *at);
            let Some((at, slot, len)) = next else {
                pieces.push((rest, None));
                break;
            };
            pieces.push((rest[..at].to_owned(), Some(slot)));
            rest = rest[at + len..].to_owned();
        }
        Ok(Self { pieces })
    }

    fn render(&self, run: &str, ids: &Ids) -> Vec<u8> {
        let mut out = String::with_capacity(8 * 1024);
        for (text, slot) in &self.pieces {
            out.push_str(text);
            match slot {
                None => {}
                Some(Slot::EventId) => out.push_str(&format!("evt_bench_{run}_{}", ids.n)),
                Some(Slot::InvoiceId) => out.push_str(&format!("in_bench_{run}_{}", ids.invoice)),
                Some(Slot::StripeCustomer) => out.push_str(&format!("cus_bench_{}", ids.customer)),
                Some(Slot::Subscription) => {
                    out.push_str(&format!("sub_bench_{run}_{}", ids.subscription))
                }
                Some(Slot::OurCustomer) => out.push_str(&format!("bench_{}", ids.customer)),
                Some(Slot::Created) => out.push_str(&ids.created.to_string()),
            }
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(events: &Events, n: u64) -> Value {
        let ids = events.ids(n, 3, 1_800_000_000);
        serde_json::from_slice(&events.render("r1", &ids)).unwrap()
    }

    #[test]
    fn renders_a_unique_parsable_invoice_paid() {
        let events = Events::new(Mix::InvoicePaid).unwrap();
        let a = parse(&events, 7);
        assert_eq!(a["id"], "evt_bench_r1_7");
        assert_eq!(a["type"], "invoice.paid");
        assert_eq!(a["created"], 1_800_000_000);
        let invoice = &a["data"]["object"];
        assert_eq!(invoice["id"], "in_bench_r1_7");
        assert_eq!(invoice["customer"], "cus_bench_1");
        let details = &invoice["parent"]["subscription_details"];
        assert_eq!(details["subscription"], "sub_bench_r1_1");
        assert_eq!(details["metadata"]["customer_id"], "bench_1");
        assert_ne!(a["id"], parse(&events, 8)["id"]);
    }

    #[test]
    fn a_lifecycle_is_seven_events_of_one_subscription_in_created_order() {
        let events = Events::new(Mix::Lifecycle).unwrap();
        let life: Vec<Value> = (7..14).map(|n| parse(&events, n)).collect();
        let types: Vec<&str> = life.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "customer.subscription.created",
                "invoice.created",
                "invoice.paid",
                "customer.subscription.updated",
                "customer.subscription.updated",
                "customer.subscription.updated",
                "customer.subscription.deleted",
            ]
        );
        let created: Vec<i64> = life
            .iter()
            .map(|e| e["created"].as_i64().unwrap())
            .collect();
        assert!(created.windows(2).all(|w| w[0] < w[1]), "{created:?}");
        let statuses: Vec<&str> = [0, 3, 4, 5, 6]
            .iter()
            .map(|&i| life[i]["data"]["object"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            ["incomplete", "active", "past_due", "active", "canceled"]
        );
        for e in &life {
            let o = &e["data"]["object"];
            assert_eq!(o["customer"], "cus_bench_1");
        }
        assert_eq!(life[0]["data"]["object"]["id"], "sub_bench_r1_1");
        assert_eq!(
            life[0]["data"]["object"]["metadata"]["customer_id"],
            "bench_1"
        );
        assert_eq!(
            life[1]["data"]["object"]["id"],
            life[2]["data"]["object"]["id"]
        );
        // Customer 1's next life (life 4 of 3 customers) comes after this one ended.
        let next = parse(&events, 4 * 7);
        assert_eq!(next["data"]["object"]["customer"], "cus_bench_1");
        assert!(next["created"].as_i64().unwrap() > created[6]);
    }
}
