//! The outbound jobs' arguments: what the API, the event appliers and `sync` enqueue
//! ([`outbox::enqueue`]) and the billing workflows run (`impl outbox::Job` in [`crate::billing`];
//! the durable requests' jobs, attach, plan change and reward grant, in [`crate::requests`]).
//!
//! Jobs of one of our customers share the ordering key `customer:{pk}`, so they run one at a
//! time in order: ten concurrent attaches for a new customer create one Stripe customer.

use serde::{Deserialize, Serialize};

/// Creates the Stripe customer of ours now (`create_in_stripe`).
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateCustomer {
    pub customer_pk: i64,
}

/// Writes our id into an existing Stripe customer's metadata (`stripe_id` linking).
#[derive(Debug, Serialize, Deserialize)]
pub struct LinkCustomer {
    pub customer_pk: i64,
    pub stripe_id: String,
}

/// Carries out a pending attach.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExecuteAttach {
    pub attach_id: String,
    /// Orders the job behind the customer's others; absent from jobs queued by versions
    /// before typed jobs (only enqueueing reads it).
    #[serde(default)]
    pub customer_pk: i64,
}

/// Carries out a plan change an operator asked for (cancel, uncancel, quantity).
#[derive(Debug, Serialize, Deserialize)]
pub struct ChangePlan {
    pub change_id: String,
    pub customer_pk: i64,
}

/// Gives a reward (or a promotion code) to a live subscription (`POST
/// /v1/customers/{id}/rewards`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ApplyReward {
    pub grant_id: String,
    pub customer_pk: i64,
}

/// Reads a coupon a discount names from Stripe, so the view can say what it takes off.
#[derive(Debug, Serialize, Deserialize)]
pub struct FetchCoupon {
    pub coupon_id: String,
}

/// Reads a subscription from Stripe and applies it: two of its events from one second (the
/// `tied_at`) said different things, and `created` cannot tell which is newer.
#[derive(Debug, Serialize, Deserialize)]
pub struct RefreshSubscription {
    pub subscription_id: String,
    pub customer_pk: i64,
    pub tied_at: i64,
    /// How many reads of this tie came before: a read that ties again with what it applies
    /// over (a change later in the same second may have come first) queues the next round.
    #[serde(default)]
    pub round: u32,
    /// The digest of the event state that tied (none for a read's own tie): each different
    /// state that ties gets a read of its own, also while an earlier tie's read is running.
    #[serde(default)]
    pub cause: Option<String>,
}

/// Bills the usage of a renewal invoice's ended period (`period_start..period_end`).
#[derive(Debug, Serialize, Deserialize)]
pub struct BillUsage {
    pub invoice_id: String,
    pub customer_pk: i64,
    pub subscription_id: String,
    pub period_start: i64,
    pub period_end: i64,
    pub currency: String,
}

/// Imports what a newly linked Stripe customer has: its subscriptions (the path `reconcile`
/// takes) and its stored events that were skipped for want of the link, re-applied in order.
#[derive(Debug, Serialize, Deserialize)]
pub struct ImportCustomer {
    pub customer_pk: i64,
    pub stripe_id: String,
}

/// Pushes a change of our customer's name or email to its Stripe customer (after `PATCH`).
#[derive(Debug, Serialize, Deserialize)]
pub struct SyncCustomer {
    pub customer_pk: i64,
    /// The new values; an absent one is left as it is in Stripe.
    pub name: Option<String>,
    pub email: Option<String>,
    /// When the change was made (µs): changing a name back to one pushed before is a
    /// change of its own, so its key (and Stripe idempotency key) differs. 0 in jobs queued
    /// before it was kept.
    #[serde(default)]
    pub change: i64,
}

/// Reads a linked customer's name and email from Stripe and copies them into ours: a Stripe
/// event from the second of our own change or of another event that said otherwise
/// (`tied_at`) could not be ordered against it. Runs
/// after our push (the customer's jobs run in order), so it copies whatever Stripe has last.
#[derive(Debug, Serialize, Deserialize)]
pub struct RefreshCustomer {
    pub customer_pk: i64,
    pub tied_at: i64,
    /// The tying event's name and email, hashed (`customers::contact_digest`): each tying
    /// state gets its own read, also after a read of that second ran. None in jobs queued
    /// before it was kept.
    #[serde(default)]
    pub cause: Option<String>,
}

/// The ordering key of a customer's jobs.
pub(crate) fn ordering(customer_pk: i64) -> String {
    format!("customer:{customer_pk}")
}
