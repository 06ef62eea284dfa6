//! Rewards a caller asks for: a catalog reward, or a promotion code the customer typed
//! (looked up in Stripe, active, redeemable by the customer), checked against the plan it
//! discounts; and a reward for a live subscription, recorded as a grant and queued as a
//! `reward.apply` job ([`crate::billing`] carries it out in Stripe). `POST /v1/attach` and
//! `POST /v1/customers/{id}/rewards` share this, so both refuse the same things the same way.

use chrono::Utc;
use sqlx::PgPool;

use crate::catalog::{Catalog, Plan};
use crate::requests::{self, RecordError, reward_grant};
use crate::store::reward_grants::{self, Grant, NewGrant, Offer};
use crate::store::{customers, plans};
use crate::stripe::client::{CallError, StripeApi};

/// What a request names: one of our rewards, or a code the customer typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked<'a> {
    Reward(&'a str),
    PromotionCode(&'a str),
}

impl<'a> Asked<'a> {
    /// From a request's `reward` and `promotion_code` (at most one of them).
    pub fn from_fields(
        reward: Option<&'a str>,
        promotion_code: Option<&'a str>,
    ) -> Result<Option<Self>, RewardError> {
        match (reward, promotion_code) {
            (Some(_), Some(_)) => Err(RewardError::Invalid {
                field: "promotion_code",
                message: "cannot be given with `reward`: one discount at a time".to_owned(),
            }),
            (Some(reward), None) => Ok(Some(Self::Reward(reward))),
            (None, Some(code)) => Ok(Some(Self::PromotionCode(code))),
            (None, None) => Ok(None),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    #[error("reward {0} not found")]
    RewardNotFound(String),
    #[error("promotion_code {0} not found (no active promotion code has it)")]
    PromotionCodeNotFound(String),
    #[error("promotion_code {code} cannot be redeemed: {why}")]
    PromotionCodeRefused { code: String, why: &'static str },
    #[error("`{field}` {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("customer {0} not found")]
    CustomerNotFound(String),
    #[error("plan {0} not found")]
    PlanNotFound(String),
    #[error("customer {customer} has no plan {plan}")]
    PlanNotHeld { customer: String, plan: String },
    /// The customer's plans do not allow it; `code` says why.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("Stripe is not configured (STRIPE_API_KEY)")]
    StripeNotConfigured,
    /// Looking the code up failed (Stripe unreachable, refusing, ...).
    #[error(transparent)]
    Stripe(#[from] CallError),
    /// The idempotency key was used for another grant; `differs` names what.
    #[error("idempotency_key {key} was used for another reward ({differs} differs): use a new key")]
    KeyReused { key: String, differs: &'static str },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The longest promotion code, in characters (Stripe's codes are far shorter).
const MAX_CODE_CHARS: usize = 255;

/// Checks what the request asks for against the catalog and the plan it would discount,
/// without calling anyone (so it can be done before anything else). `allow`: the Checkout
/// Session lets the customer type a code instead.
pub fn check(
    catalog: &Catalog,
    asked: Option<Asked<'_>>,
    allow_promotion_codes: bool,
    plan: &Plan,
) -> Result<(), RewardError> {
    if asked.is_some() && allow_promotion_codes {
        return Err(RewardError::Invalid {
            field: "allow_promotion_codes",
            message: "cannot be given with `reward` or `promotion_code`".to_owned(),
        });
    }
    let Some(asked) = asked else {
        return Ok(());
    };
    let Some(price) = plan.price.as_ref() else {
        return Err(RewardError::Invalid {
            field: reward_field(asked),
            message: format!("plan {} is free: there is nothing to discount", plan.id),
        });
    };
    match asked {
        Asked::Reward(id) => {
            let reward = catalog
                .reward(id)
                .ok_or_else(|| RewardError::RewardNotFound(id.to_owned()))?;
            match reward.currency.as_deref() {
                Some(currency) if currency != price.currency => Err(RewardError::Invalid {
                    field: "reward",
                    message: format!(
                        "{id} takes {currency} off, but plan {} is billed in {}",
                        plan.id, price.currency
                    ),
                }),
                _ => Ok(()),
            }
        }
        Asked::PromotionCode(code) => {
            if code.trim().is_empty()
                || code.chars().count() > MAX_CODE_CHARS
                || code.chars().any(char::is_control)
            {
                return Err(RewardError::Invalid {
                    field: "promotion_code",
                    message: format!("must be 1-{MAX_CODE_CHARS} printable characters"),
                });
            }
            Ok(())
        }
    }
}

/// What the request asks for, checked ([`check`]); a promotion code is looked up in Stripe
/// (`stripe_customer` must be allowed to redeem it).
pub async fn offer(
    catalog: &Catalog,
    api: Option<&StripeApi>,
    asked: Option<Asked<'_>>,
    allow_promotion_codes: bool,
    plan: &Plan,
    stripe_customer: Option<&str>,
) -> Result<Offer, RewardError> {
    check(catalog, asked, allow_promotion_codes, plan)?;
    match asked {
        None => Ok(Offer {
            allow_promotion_codes,
            ..Offer::default()
        }),
        Some(Asked::Reward(id)) => Ok(Offer {
            reward_id: Some(id.to_owned()),
            ..Offer::default()
        }),
        Some(Asked::PromotionCode(code)) => {
            let api = api.ok_or(RewardError::StripeNotConfigured)?;
            let found = api
                .find_promotion_code(code)
                .await?
                .ok_or_else(|| RewardError::PromotionCodeNotFound(code.to_owned()))?;
            if let Some(why) = found.refusal(stripe_customer, Utc::now().timestamp()) {
                return Err(RewardError::PromotionCodeRefused {
                    code: code.to_owned(),
                    why,
                });
            }
            Ok(Offer {
                promotion_code: Some(code.to_owned()),
                promotion_code_id: Some(found.id),
                ..Offer::default()
            })
        }
    }
}

fn reward_field(asked: Asked<'_>) -> &'static str {
    match asked {
        Asked::Reward(_) => "reward",
        Asked::PromotionCode(_) => "promotion_code",
    }
}

/// A reward for a customer's live subscription, and who asks.
#[derive(Debug, Clone)]
pub struct GrantRequest<'a> {
    pub customer_id: &'a str,
    /// The plan whose subscription gets it; needed only when the customer has several.
    pub plan_id: Option<&'a str>,
    pub asked: Asked<'a>,
    /// The timeline's source: the API token's label, or `cli`.
    pub actor: &'a str,
    /// The same key for the same customer returns the grant made the first time.
    pub idempotency_key: Option<&'a str>,
}

/// Checks the request, records the grant and queues its job (in one transaction:
/// [`requests::record`]); returns
/// it and whether it is the one an earlier request with the same idempotency key made.
pub async fn grant(
    pool: &PgPool,
    catalog: &Catalog,
    api: Option<&StripeApi>,
    request: &GrantRequest<'_>,
) -> Result<(Grant, bool), RewardError> {
    if let Some(plan) = request.plan_id
        && catalog.plan(plan).is_none()
    {
        return Err(RewardError::PlanNotFound(plan.to_owned()));
    }
    if let Asked::Reward(id) = request.asked
        && catalog.reward(id).is_none()
    {
        return Err(RewardError::RewardNotFound(id.to_owned()));
    }
    // Checked without a lock first: a promotion code is looked up in Stripe meanwhile.
    let mut conn = pool.acquire().await?;
    let customer = customers::by_id(&mut conn, request.customer_id)
        .await?
        .ok_or_else(|| RewardError::CustomerNotFound(request.customer_id.to_owned()))?;
    let reused = |e| key_reused(e, request.idempotency_key);
    if let Some(earlier) = requests::earlier(&mut conn, &asked(request, customer.pk))
        .await
        .map_err(reused)?
    {
        return Ok((earlier, true));
    }
    let (plan_id, _) = target(&mut conn, customer.pk, request).await?;
    drop(conn);
    let plan = catalog
        .plan(&plan_id)
        .ok_or_else(|| RewardError::PlanNotFound(plan_id.clone()))?;
    let stripe_customer = customer.stripe_id.as_deref();
    let offer = offer(
        catalog,
        api,
        Some(request.asked),
        false,
        plan,
        stripe_customer,
    )
    .await?;

    let mut tx = pool.begin().await?;
    // Serialises the customer's grants with its attaches, plan changes and deletion.
    let customer = customers::lock_by_id(&mut tx, request.customer_id)
        .await?
        .ok_or_else(|| RewardError::CustomerNotFound(request.customer_id.to_owned()))?;
    let asked = asked(request, customer.pk);
    if let Some(earlier) = requests::earlier(&mut tx, &asked).await.map_err(reused)? {
        tx.commit().await?;
        return Ok((earlier, true));
    }
    let (plan_id, subscription) = target(&mut tx, customer.pk, request).await?;
    let new = reward_grant::New {
        asked,
        grant: NewGrant {
            customer_pk: customer.pk,
            offer: &offer,
            plan_id: &plan_id,
            subscription_id: &subscription,
            actor: request.actor,
            idempotency_key: request.idempotency_key,
        },
    };
    let (grant, duplicate) = requests::record(&mut tx, &new).await.map_err(reused)?;
    tx.commit().await?;
    Ok((grant, duplicate))
}

/// What the request asks for, as a repeat of it (the same idempotency key) is compared on.
fn asked<'a>(request: &GrantRequest<'a>, customer_pk: i64) -> reward_grant::Asked<'a> {
    let (reward, promotion_code) = match request.asked {
        Asked::Reward(id) => (Some(id), None),
        Asked::PromotionCode(code) => (None, Some(code)),
    };
    reward_grant::Asked {
        customer_pk,
        reward,
        promotion_code,
        plan_id: request.plan_id,
        idempotency_key: request.idempotency_key,
    }
}

/// A key seen before answers the grant it made only for the same request: the same reward
/// or promotion code, and the same plan when the request names one.
fn key_reused(error: RecordError, key: Option<&str>) -> RewardError {
    match error {
        RecordError::Reused { differs } => RewardError::KeyReused {
            key: key.unwrap_or_default().to_owned(),
            differs,
        },
        RecordError::Database(e) => RewardError::Database(e),
    }
}

/// The plan and live subscription the reward goes to.
async fn target(
    conn: &mut sqlx::PgConnection,
    customer_pk: i64,
    request: &GrantRequest<'_>,
) -> Result<(String, String), RewardError> {
    let customer = request.customer_id;
    if let Some(plan) = request.plan_id {
        let held = plans::held(conn, customer_pk, plan).await?.ok_or_else(|| {
            RewardError::PlanNotHeld {
                customer: customer.to_owned(),
                plan: plan.to_owned(),
            }
        })?;
        if held.status == "scheduled" {
            return Err(RewardError::Conflict {
                code: "plan_scheduled",
                message: format!(
                    "plan {plan} has not started yet: give the reward to the plan it replaces"
                ),
            });
        }
        let subscription = held
            .stripe_subscription_id
            .ok_or_else(|| RewardError::Conflict {
                code: "no_subscription",
                message: format!("plan {plan} has no Stripe subscription to discount"),
            })?;
        return Ok((plan.to_owned(), subscription));
    }
    let mut live = reward_grants::live_subscriptions(conn, customer_pk).await?;
    match live.len() {
        0 => Err(RewardError::Conflict {
            code: "no_subscription",
            message: format!(
                "customer {customer} has no live subscription to discount: give the reward \
                 with an attach"
            ),
        }),
        1 => Ok(live.remove(0)),
        n => Err(RewardError::Conflict {
            code: "plan_id_required",
            message: format!(
                "customer {customer} has {n} live subscriptions: say which with `plan_id`"
            ),
        }),
    }
}
