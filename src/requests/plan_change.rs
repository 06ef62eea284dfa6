//! A plan change an operator asked for (cancel, uncancel, quantity: [`crate::changes`]), one
//! row in `plan_changes` ([`crate::store::plan_changes`]), carried out in Stripe by the
//! `plan.change` job ([`crate::billing::plan_change`]). A repeat is one with the customer's
//! idempotency key again.

use outbox::{Done, Job, JobError, Lease};
use sqlx::{PgConnection, PgPool};

use super::{Outcome, Request};
use crate::billing::{self, StripeContext};
use crate::jobs::{ChangePlan, ordering};
use crate::store::plan_changes::{self, NewChange, PlanChange};
use crate::store::requests as table;

impl Request for PlanChange {
    type Asked<'a> = NewChange<'a>;
    type New<'a> = NewChange<'a>;
    type Job = ChangePlan;
    /// What it did (`canceled`, `ended`, ...), and the subscription it did it to.
    type Done = (&'static str, Option<String>);

    fn id(&self) -> &str {
        &self.id
    }

    fn state(&self) -> &str {
        &self.state
    }

    fn asked<'a>(new: &Self::New<'a>) -> Self::Asked<'a> {
        new.clone()
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

    fn differs(&self, asked: &Self::Asked<'_>) -> Option<&'static str> {
        if self.kind != asked.kind {
            Some("the kind of change")
        } else if self.plan_id != asked.plan_id {
            Some("plan_id")
        } else if self.cancel_at.as_deref() != asked.cancel_at {
            Some("at")
        } else if self.quantity != asked.quantity {
            Some("quantity")
        } else if asked.kind == "quantity" && self.prorate != asked.prorate {
            Some("prorate")
        } else {
            None
        }
    }

    async fn insert(
        conn: &mut PgConnection,
        new: &Self::New<'_>,
    ) -> Result<Option<Self>, sqlx::Error> {
        plan_changes::insert(conn, new).await
    }

    fn job(&self, _new: &Self::New<'_>) -> ChangePlan {
        ChangePlan {
            change_id: self.id.clone(),
            customer_pk: self.customer_pk,
        }
    }

    async fn carry_out(
        &self,
        stripe: &StripeContext,
        pool: &PgPool,
    ) -> Result<Outcome<Self::Done>, JobError> {
        billing::plan_change::carry_out(stripe, pool, self).await
    }

    async fn finish(
        &self,
        conn: &mut PgConnection,
        (outcome, subscription): Self::Done,
    ) -> Result<(), sqlx::Error> {
        plan_changes::finish(conn, &self.id, outcome, subscription.as_deref()).await?;
        Ok(())
    }
}

impl Job for ChangePlan {
    const KIND: &'static str = "plan.change";
    type Context = StripeContext;

    fn key(&self) -> String {
        format!("{}:{}", Self::KIND, self.change_id)
    }

    fn ordering_key(&self) -> Option<String> {
        Some(ordering(self.customer_pk))
    }

    async fn run(&self, stripe: &StripeContext, lease: Lease<'_>) -> Result<Done, JobError> {
        super::run::<PlanChange>(stripe, lease, &self.change_id).await
    }

    async fn on_dead(
        &self,
        _stripe: &StripeContext,
        pool: &PgPool,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        super::on_dead::<PlanChange>(pool, &self.change_id, error).await
    }
}
