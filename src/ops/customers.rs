//! Customers: get-or-create, read, update (with a link to a Stripe customer), delete.

use serde_json::Value;
use sqlx::PgConnection;

use super::{Ctx, Error, Result, customer_not_found, entities, find};
use crate::catalog::Catalog;
use crate::domain::{self, CustomerId, MAX_TEXT_CHARS};
use crate::jobs;
use crate::store::customers::{self, Customer, CustomerFields};
use crate::store::{balances, discounts, invoices, plans, trials};
use crate::stripe::ids;
use crate::views::{
    BalanceView, CustomerDeleted, CustomerView, DiscountView, InvoiceSummary, PaymentDue, PlanView,
};

/// What `POST /v1/customers` (and the console's "Create customer") asks for.
#[derive(Debug, Default)]
pub(crate) struct NewCustomer {
    pub id: Option<CustomerId>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub fingerprint: Option<String>,
    pub metadata: Option<Value>,
    pub create_in_stripe: bool,
    pub stripe_id: Option<String>,
}

/// What `PATCH /v1/customers/{id}` changes.
#[derive(Debug, Default)]
pub(crate) struct CustomerChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub metadata: Option<Value>,
    /// Links an existing Stripe customer (an unlinked customer, or to replace a deleted one).
    pub stripe_id: Option<String>,
}

/// Get-or-create: whether it was created, and its view.
pub(crate) async fn get_or_create(ctx: &Ctx, new: NewCustomer) -> Result<(bool, CustomerView)> {
    if new.id.is_none() && new.email.is_none() {
        return Err(Error::invalid(
            "id",
            "`id` is required unless `email` is given",
        ));
    }
    validate_fields(
        new.name.as_deref(),
        new.email.as_deref(),
        new.metadata.as_ref(),
    )?;
    domain::text("fingerprint", new.fingerprint.as_deref(), MAX_TEXT_CHARS)?;
    valid_stripe_id(new.stripe_id.as_deref())?;
    if (new.create_in_stripe || new.stripe_id.is_some()) && !ctx.stripe_enabled {
        return Err(Error::StripeNotConfigured);
    }
    let fields = CustomerFields {
        name: new.name,
        email: new.email,
        fingerprint: new
            .fingerprint
            .as_deref()
            .and_then(trials::normalize)
            .map(str::to_owned),
        metadata: new.metadata,
    };
    let mut tx = ctx.pool.begin().await?;
    let id = new.id.as_ref().map(CustomerId::as_str);
    let (customer, created) = customers::get_or_create(&mut tx, id, &fields)
        .await?
        .ok_or_else(|| Error::Conflict {
            code: "concurrent_change",
            message: "the customer was deleted while this request ran; retry".to_owned(),
        })?;
    if created {
        plans::activate_defaults(&mut tx, &ctx.catalog, customer.pk, customer.created_at).await?;
    }
    if let Some(stripe_id) = new.stripe_id.as_deref() {
        link(&mut tx, customer.pk, stripe_id).await?;
    } else if new.create_in_stripe && customer.stripe_id.is_none() {
        let job = jobs::CreateCustomer {
            customer_pk: customer.pk,
        };
        outbox::enqueue(&mut tx, &job).await?;
    }
    let customer = customers::by_pk(&mut tx, customer.pk)
        .await?
        .unwrap_or(customer);
    let view = view(&mut tx, &ctx.catalog, &customer).await?;
    tx.commit().await?;
    Ok((created, view))
}

/// One customer's view (`GET /v1/customers/{id}`).
pub(crate) async fn get(ctx: &Ctx, id: &CustomerId) -> Result<CustomerView> {
    let mut conn = ctx.pool.acquire().await?;
    let customer = find(&mut conn, id.as_str()).await?;
    Ok(view(&mut conn, &ctx.catalog, &customer).await?)
}

/// Changes a customer's fields (pushed to its Stripe customer when name or email change)
/// or links it to a Stripe customer.
pub(crate) async fn update(
    ctx: &Ctx,
    id: &CustomerId,
    changes: CustomerChanges,
) -> Result<CustomerView> {
    let id = id.as_str();
    validate_fields(
        changes.name.as_deref(),
        changes.email.as_deref(),
        changes.metadata.as_ref(),
    )?;
    valid_stripe_id(changes.stripe_id.as_deref())?;
    if changes.stripe_id.is_some() && !ctx.stripe_enabled {
        return Err(Error::StripeNotConfigured);
    }
    let contact_changed = changes.name.is_some() || changes.email.is_some();
    let fields = CustomerFields {
        name: changes.name,
        email: changes.email,
        fingerprint: None,
        metadata: changes.metadata,
    };
    let mut tx = ctx.pool.begin().await?;
    let customer = customers::update(&mut tx, id, &fields)
        .await?
        .ok_or_else(|| customer_not_found(id))?;
    let already = customer.stripe_id.as_deref();
    if let Some(stripe_id) = changes
        .stripe_id
        .as_deref()
        .filter(|id| Some(*id) != already)
    {
        link(&mut tx, customer.pk, stripe_id).await?;
    }
    let customer = customers::by_pk(&mut tx, customer.pk)
        .await?
        .ok_or_else(|| customer_not_found(id))?;
    if contact_changed && customer.stripe_id.is_some() {
        customers::mark_contact_local(&mut tx, customer.pk).await?;
        // Invoices carry the Stripe customer's name and email: push ours there.
        let job = jobs::SyncCustomer {
            customer_pk: customer.pk,
            name: fields.name.clone(),
            email: fields.email.clone(),
            change: chrono::Utc::now().timestamp_micros(),
        };
        outbox::enqueue(&mut tx, &job).await?;
    }
    let view = view(&mut tx, &ctx.catalog, &customer).await?;
    tx.commit().await?;
    Ok(view)
}

/// Deletes ours only; the Stripe customer is left alone.
pub(crate) async fn delete(ctx: &Ctx, id: &CustomerId) -> Result<CustomerDeleted> {
    let mut conn = ctx.pool.acquire().await?;
    if !customers::delete(&mut conn, id.as_str()).await? {
        return Err(customer_not_found(id.as_str()));
    }
    Ok(CustomerDeleted {
        id: id.to_string(),
        deleted: true,
    })
}

/// The longest email address (RFC 5321's path limit, less the brackets).
const MAX_EMAIL_CHARS: usize = 320;

/// The largest `metadata` object, as compact JSON.
pub(crate) const MAX_METADATA_BYTES: usize = 16 * 1024;

/// A `stripe_id`, checked before anything else about Stripe: it goes into Stripe API paths.
fn valid_stripe_id(stripe_id: Option<&str>) -> Result<()> {
    if stripe_id.is_some_and(|s| !ids::is_valid("cus_", s)) {
        return Err(Error::invalid(
            "stripe_id",
            "must be a Stripe customer id (cus_ and letters, digits or _)",
        ));
    }
    Ok(())
}

/// Links now (so events map at once); the job writes our id into the Stripe customer's
/// metadata and imports its subscriptions and skipped events.
async fn link(conn: &mut PgConnection, customer_pk: i64, stripe_id: &str) -> Result<()> {
    if !customers::link_stripe(conn, customer_pk, stripe_id).await? {
        return Err(Error::Conflict {
            code: "stripe_id_conflict",
            message: "the customer or that Stripe customer is linked already".to_owned(),
        });
    }
    let job = jobs::LinkCustomer {
        customer_pk,
        stripe_id: stripe_id.to_owned(),
    };
    outbox::enqueue(conn, &job).await?;
    Ok(())
}

fn validate_fields(
    name: Option<&str>,
    email: Option<&str>,
    metadata: Option<&Value>,
) -> Result<()> {
    domain::text("name", name, MAX_TEXT_CHARS)?;
    if let Some(email) = email
        && (email.chars().count() > MAX_EMAIL_CHARS || !email.contains('@'))
    {
        return Err(Error::invalid("email", "is not an email address"));
    }
    valid_metadata(metadata)
}

/// `metadata`: a JSON object of at most [`MAX_METADATA_BYTES`].
fn valid_metadata(value: Option<&Value>) -> Result<()> {
    let Some(value) = value else { return Ok(()) };
    if !value.is_object() {
        return Err(Error::invalid("metadata", "must be a JSON object"));
    }
    if value.to_string().len() > MAX_METADATA_BYTES {
        return Err(Error::invalid(
            "metadata",
            &format!("must be at most {MAX_METADATA_BYTES} bytes as JSON"),
        ));
    }
    Ok(())
}

/// The customer's whole view.
async fn view(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer: &Customer,
) -> std::result::Result<CustomerView, sqlx::Error> {
    let products = plans::products(conn, customer.pk).await?;
    let ended = plans::ended_products(conn, customer.pk).await?;
    let balances = balances::all(conn, customer.pk).await?;
    let invoices = invoices::of_customer(conn, customer.pk).await?;
    let due = invoices::payment_due(conn, customer.pk).await?;
    let discounts = discounts::active(conn, customer.pk).await?;
    let entities = entities::in_view(conn, catalog, customer.pk).await?;
    Ok(CustomerView {
        id: customer.id.clone(),
        name: customer.name.clone(),
        email: customer.email.clone(),
        fingerprint: customer.fingerprint.clone(),
        stripe_id: customer.stripe_id.clone(),
        metadata: customer.metadata.clone(),
        products: PlanView::all(catalog, &products),
        ended_products: PlanView::all(catalog, &ended),
        balances: BalanceView::all(&balances),
        entities,
        invoices: invoices.iter().map(InvoiceSummary::from).collect(),
        discounts: discounts.iter().map(DiscountView::from).collect(),
        payment_due: due.iter().map(PaymentDue::from).collect(),
    })
}
