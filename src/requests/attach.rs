//! An attach: a plan a customer (or one of its entities) asked for, one row in `attaches`
//! ([`crate::store::attaches`]), carried out in Stripe by the `attach.execute` job
//! ([`crate::billing::attach`]). A repeat is a second attach of a plan the customer has in
//! flight (one at a time per plan: a unique index), answered with the first whatever it
//! asks. Unlike the other kinds, an attach goes on after its job: the job leaves it
//! `checkout_required`, `awaiting_payment` or `requires_action` when the customer still has
//! to pay, and webhooks finish it ([`crate::appliers`]). `POST /v1/attach` still records its
//! attach with steps of its own (`http/attach.rs`: the same insert, in-flight lookup and job);
//! [`super::record`] with [`New`] does those steps.

use outbox::{Done, Job, JobError, Lease};
use sqlx::{PgConnection, PgPool};

use super::{Outcome, Request};
use crate::billing::{self, StripeContext};
use crate::jobs::{ExecuteAttach, ordering};
use crate::store::attaches::{self, Attach, NewAttach};

/// What a repeat is found by: the customer (or entity holder) and the plan.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub customer_pk: i64,
    pub plan_id: &'a str,
}

/// A new attach, and the customer whose jobs it runs behind (the payer: an entity's attach
/// is kept under the entity's holder, and paid by its customer).
#[derive(Debug, Clone)]
pub struct New<'a> {
    pub attach: NewAttach<'a>,
    pub payer_pk: i64,
}

impl Request for Attach {
    type Asked<'a> = Asked<'a>;
    type New<'a> = New<'a>;
    type Job = ExecuteAttach;
    /// Nothing: the job moves the attach's state itself.
    type Done = ();

    fn id(&self) -> &str {
        &self.id
    }

    fn state(&self) -> &str {
        &self.state
    }

    fn asked<'a>(new: &Self::New<'a>) -> Self::Asked<'a> {
        Asked {
            customer_pk: new.attach.customer_pk,
            plan_id: new.attach.plan_id,
        }
    }

    async fn earlier(
        conn: &mut PgConnection,
        asked: &Self::Asked<'_>,
    ) -> Result<Option<Self>, sqlx::Error> {
        attaches::in_flight(conn, asked.customer_pk, asked.plan_id).await
    }

    fn differs(&self, _asked: &Self::Asked<'_>) -> Option<&'static str> {
        None
    }

    async fn insert(
        conn: &mut PgConnection,
        new: &Self::New<'_>,
    ) -> Result<Option<Self>, sqlx::Error> {
        let id = attaches::new_id(&mut *conn).await?;
        attaches::create(conn, &id, &new.attach).await
    }

    fn job(&self, new: &Self::New<'_>) -> ExecuteAttach {
        ExecuteAttach {
            attach_id: self.id.clone(),
            customer_pk: new.payer_pk,
        }
    }

    async fn carry_out(
        &self,
        stripe: &StripeContext,
        pool: &PgPool,
    ) -> Result<Outcome<()>, JobError> {
        billing::attach::carry_out(stripe, pool, self).await
    }

    async fn finish(&self, _conn: &mut PgConnection, (): ()) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl Job for ExecuteAttach {
    const KIND: &'static str = "attach.execute";
    type Context = StripeContext;

    fn key(&self) -> String {
        format!("{}:{}", Self::KIND, self.attach_id)
    }

    fn ordering_key(&self) -> Option<String> {
        Some(ordering(self.customer_pk))
    }

    async fn run(&self, stripe: &StripeContext, lease: Lease<'_>) -> Result<Done, JobError> {
        super::run::<Attach>(stripe, lease, &self.attach_id).await
    }

    async fn on_dead(
        &self,
        _stripe: &StripeContext,
        pool: &PgPool,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        super::on_dead::<Attach>(pool, &self.attach_id, error).await
    }
}
