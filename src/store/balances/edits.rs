//! Balance edits: an operator's grant, set or deduct, once per idempotency key, until the
//! feature's next reset.

use sqlx::PgConnection;

use super::{Balance, current};

/// A balance edit's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditOp {
    /// Adds `amount` to what is left.
    Grant,
    /// Makes what is left exactly `amount`.
    Set,
    /// Takes `amount` from what is left.
    Deduct,
}

impl EditOp {
    fn name(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Set => "set",
            Self::Deduct => "deduct",
        }
    }
}

/// A balance edit as asked.
#[derive(Debug, Clone)]
pub struct Edit<'a> {
    pub feature_id: &'a str,
    pub op: EditOp,
    pub amount: i64,
    pub reason: Option<&'a str>,
    /// Who asked: the API token's label, or `cli`.
    pub actor: &'a str,
    pub idempotency_key: Option<&'a str>,
}

/// What [`edit`] did.
#[derive(Debug, Clone)]
pub enum Edited {
    /// The balance after the edit; `duplicate` when its idempotency key was applied before
    /// (nothing changed now).
    Done { balance: Balance, duplicate: bool },
    /// The customer has no balance of the feature (no plan of theirs grants it).
    NoBalance,
    /// The feature is unlimited for the customer: there is nothing to edit.
    Unlimited,
    /// The idempotency key was used for another edit; `differs` names what (nothing
    /// changed).
    KeyReused { differs: &'static str },
}

/// Applies a balance edit, once per idempotency key; it lasts until the feature's next reset.
/// The balance row is locked, so concurrent edits apply one after the other; a key is
/// locked (transaction advisory lock) before it is looked up, so two requests with one key
/// (for two features, say) also run one after the other and the second sees the first. A
/// key seen before answers `duplicate` for the same edit, [`Edited::KeyReused`] for another.
pub async fn edit(
    conn: &mut PgConnection,
    customer_pk: i64,
    e: &Edit<'_>,
) -> Result<Edited, sqlx::Error> {
    if let Some(key) = e.idempotency_key {
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('balance_edits:' || $1::text || ':' || $2, 0))",
        )
        .bind(customer_pk)
        .bind(key)
        .execute(&mut *conn)
        .await?;
        let seen: Option<(String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT feature_id, op, amount, reason FROM balance_edits
              WHERE customer_pk = $1 AND idempotency_key = $2",
        )
        .bind(customer_pk)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some((feature_id, op, amount, reason)) = seen {
            let differs = if feature_id != e.feature_id {
                "feature_id"
            } else if op != e.op.name() {
                "op"
            } else if amount != e.amount {
                "amount"
            } else if reason.is_some() && e.reason.is_some() && reason.as_deref() != e.reason {
                // A retry that leaves the reason out is the same edit; another reason is not.
                "reason"
            } else {
                let Some(balance) = current(conn, customer_pk, e.feature_id).await? else {
                    return Ok(Edited::NoBalance);
                };
                return Ok(Edited::Done {
                    balance,
                    duplicate: true,
                });
            };
            return Ok(Edited::KeyReused { differs });
        }
    }
    let Some(balance) = current(conn, customer_pk, e.feature_id).await? else {
        return Ok(Edited::NoBalance);
    };
    if balance.unlimited {
        return Ok(Edited::Unlimited);
    }
    let adjustment = match e.op {
        EditOp::Grant => balance.adjustment.saturating_add(e.amount),
        EditOp::Deduct => balance.adjustment.saturating_sub(e.amount),
        // What is left becomes `amount`: included + adjustment - used = amount.
        EditOp::Set => e
            .amount
            .saturating_add(balance.used)
            .saturating_sub(balance.included),
    };
    let balance = Balance {
        adjustment,
        ..balance
    };
    sqlx::query("UPDATE balances SET adjustment = $3 WHERE customer_pk = $1 AND feature_id = $2")
        .bind(customer_pk)
        .bind(e.feature_id)
        .bind(adjustment)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO balance_edits (customer_pk, feature_id, op, amount, reason, actor,
                                    idempotency_key, balance_after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(customer_pk)
    .bind(e.feature_id)
    .bind(e.op.name())
    .bind(e.amount)
    .bind(e.reason)
    .bind(e.actor)
    .bind(e.idempotency_key)
    .bind(balance.remaining())
    .execute(&mut *conn)
    .await?;
    Ok(Edited::Done {
        balance,
        duplicate: false,
    })
}
