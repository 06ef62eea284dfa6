//! A reward (or a promotion code) for a customer's live subscription ([`crate::rewards`]),
//! one row in `reward_grants` ([`crate::store::reward_grants`]), carried out in Stripe by
//! the `reward.apply` job ([`crate::billing::reward`]). A repeat is one with the customer's
//! idempotency key again.

use outbox::{Done, Job, JobError, Lease};
use sqlx::{PgConnection, PgPool};

use super::{Outcome, Request};
use crate::billing::{self, StripeContext};
use crate::jobs::{ApplyReward, ordering};
use crate::store::requests as table;
use crate::store::reward_grants::{self, Grant, NewGrant};

/// What a caller asks for, in its words: a reward or a code, for the subscription of
/// `plan_id` when it names one.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub customer_pk: i64,
    pub reward: Option<&'a str>,
    pub promotion_code: Option<&'a str>,
    pub plan_id: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
}

/// A new grant: what was asked, and the grant it makes once checked (the code found in
/// Stripe, the plan and subscription it goes to).
#[derive(Debug, Clone)]
pub struct New<'a> {
    pub asked: Asked<'a>,
    pub grant: NewGrant<'a>,
}

impl Request for Grant {
    type Asked<'a> = Asked<'a>;
    type New<'a> = New<'a>;
    type Job = ApplyReward;
    /// What it did (`applied`, `unchanged`), and the discount it is on the subscription as.
    type Done = (&'static str, Option<String>);

    fn id(&self) -> &str {
        &self.id
    }

    fn state(&self) -> &str {
        &self.state
    }

    fn asked<'a>(new: &Self::New<'a>) -> Self::Asked<'a> {
        new.asked
    }

    async fn earlier(
        conn: &mut PgConnection,
        asked: &Self::Asked<'_>,
    ) -> Result<Option<Self>, sqlx::Error> {
        match asked.idempotency_key {
            Some(key) => table::by_key(conn, asked.customer_pk, key).await,
            None => Ok(None),
        }
    }

    /// The same reward or promotion code, and the same plan when the request names one.
    fn differs(&self, asked: &Self::Asked<'_>) -> Option<&'static str> {
        let same_offer = match (asked.reward, asked.promotion_code) {
            (Some(reward), _) => self.reward_id.as_deref() == Some(reward),
            (None, code) => self.promotion_code.as_deref() == code,
        };
        if !same_offer {
            Some("reward or promotion_code")
        } else if asked.plan_id.is_some_and(|p| p != self.plan_id) {
            Some("plan_id")
        } else {
            None
        }
    }

    async fn insert(
        conn: &mut PgConnection,
        new: &Self::New<'_>,
    ) -> Result<Option<Self>, sqlx::Error> {
        reward_grants::insert(conn, &new.grant).await
    }

    fn job(&self, _new: &Self::New<'_>) -> ApplyReward {
        ApplyReward {
            grant_id: self.id.clone(),
            customer_pk: self.customer_pk,
        }
    }

    async fn carry_out(
        &self,
        stripe: &StripeContext,
        pool: &PgPool,
    ) -> Result<Outcome<Self::Done>, JobError> {
        billing::reward::carry_out(stripe, pool, self).await
    }

    async fn finish(
        &self,
        conn: &mut PgConnection,
        (outcome, discount): Self::Done,
    ) -> Result<(), sqlx::Error> {
        reward_grants::finish(conn, &self.id, outcome, discount.as_deref()).await?;
        Ok(())
    }
}

impl Job for ApplyReward {
    const KIND: &'static str = "reward.apply";
    type Context = StripeContext;

    fn key(&self) -> String {
        format!("{}:{}", Self::KIND, self.grant_id)
    }

    fn ordering_key(&self) -> Option<String> {
        Some(ordering(self.customer_pk))
    }

    async fn run(&self, stripe: &StripeContext, lease: Lease<'_>) -> Result<Done, JobError> {
        super::run::<Grant>(stripe, lease, &self.grant_id).await
    }

    async fn on_dead(
        &self,
        _stripe: &StripeContext,
        pool: &PgPool,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        super::on_dead::<Grant>(pool, &self.grant_id, error).await
    }
}
