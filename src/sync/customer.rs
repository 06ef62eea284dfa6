//! Our customer for a Stripe object: by its Stripe customer id, else by the
//! `metadata.customer_id` it carries (which links the Stripe id to ours).

use sqlx::PgConnection;

use crate::store::customers;
use crate::stripe::objects::Metadata;

/// Our customer for a Stripe object: by its Stripe customer id, else by `metadata.customer_id`
/// (linking the Stripe id on the way).
pub(crate) async fn resolve_customer(
    conn: &mut PgConnection,
    stripe_customer: Option<&str>,
    metadata: Option<&Metadata>,
) -> Result<Option<i64>, sqlx::Error> {
    let our_id = metadata
        .and_then(|m| m.get("customer_id"))
        .map(String::as_str);
    let found = customers::pk_by_stripe_id_or_id(conn, stripe_customer, our_id).await?;
    link_found(conn, found, stripe_customer).await
}

/// The customer found for a Stripe object (`by_stripe`: by its Stripe id), its Stripe id
/// linked when it was found by our id.
pub(crate) async fn link_found(
    conn: &mut PgConnection,
    found: Option<(i64, bool)>,
    stripe_customer: Option<&str>,
) -> Result<Option<i64>, sqlx::Error> {
    let Some((pk, by_stripe)) = found else {
        return Ok(None);
    };
    if !by_stripe && let Some(stripe_id) = stripe_customer {
        customers::link_stripe(conn, pk, stripe_id).await?;
    }
    Ok(Some(pk))
}

pub(crate) fn unknown_customer(stripe_customer: Option<&str>) -> String {
    format!(
        "{} {} (no stored stripe_id or metadata.customer_id matches)",
        customers::UNKNOWN_CUSTOMER,
        stripe_customer.unwrap_or("(none)")
    )
}
