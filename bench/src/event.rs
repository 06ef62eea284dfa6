//! Unique `invoice.paid` events cut from the fixture, rendered without a JSON round trip.

use serde_json::Value;

const FIXTURE: &str = include_str!("../../fixtures/invoice.paid.json");

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

/// The fixture split at its per-event slots.
pub struct Template {
    pieces: Vec<(String, Option<Slot>)>,
}

impl Template {
    pub fn new() -> anyhow::Result<Self> {
        let mut event: Value = serde_json::from_str(FIXTURE)?;
        event["id"] = "@@event@@".into();
        event["created"] = "@@created@@".into();
        let invoice = &mut event["data"]["object"];
        invoice["id"] = "@@invoice@@".into();
        invoice["customer"] = "@@cus@@".into();
        let details = &mut invoice["parent"]["subscription_details"];
        details["subscription"] = "@@sub@@".into();
        details["metadata"]["customer_id"] = "@@ours@@".into();
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

    /// Event `n` of run `run` for Stripe customer `cus_bench_{customer}`.
    pub fn render(&self, run: &str, n: u64, customer: u64, created: i64) -> Vec<u8> {
        let mut out = String::with_capacity(6 * 1024);
        for (text, slot) in &self.pieces {
            out.push_str(text);
            match slot {
                None => {}
                Some(Slot::EventId) => out.push_str(&format!("evt_bench_{run}_{n}")),
                Some(Slot::InvoiceId) => out.push_str(&format!("in_bench_{run}_{n}")),
                Some(Slot::StripeCustomer) => out.push_str(&format!("cus_bench_{customer}")),
                Some(Slot::Subscription) => out.push_str(&format!("sub_bench_{customer}")),
                Some(Slot::OurCustomer) => out.push_str(&format!("bench_{customer}")),
                Some(Slot::Created) => out.push_str(&created.to_string()),
            }
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_unique_parsable_event() {
        let t = Template::new().unwrap();
        let a: Value = serde_json::from_slice(&t.render("r1", 7, 3, 1_800_000_000)).unwrap();
        assert_eq!(a["id"], "evt_bench_r1_7");
        assert_eq!(a["type"], "invoice.paid");
        assert_eq!(a["created"], 1_800_000_000);
        let invoice = &a["data"]["object"];
        assert_eq!(invoice["id"], "in_bench_r1_7");
        assert_eq!(invoice["customer"], "cus_bench_3");
        let details = &invoice["parent"]["subscription_details"];
        assert_eq!(details["subscription"], "sub_bench_3");
        assert_eq!(details["metadata"]["customer_id"], "bench_3");
        let b: Value = serde_json::from_slice(&t.render("r1", 8, 3, 1)).unwrap();
        assert_ne!(a["id"], b["id"]);
    }
}
