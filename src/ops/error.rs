//! The one error of the use cases: what a caller can correct (a field, a missing thing, a
//! conflict, a refusal), each with a stable `code`, and what went wrong below (Stripe, the
//! database), whose cause is logged and never shown. The front doors translate it: the API
//! and the console to a status ([`crate::web::error`]), the CLI to an exit code.

use crate::changes::ChangeError;
use crate::rewards::RewardError;

/// The code of a request whose idempotency key was used before for another request.
pub(crate) const IDEMPOTENCY_ERROR: &str = "idempotency_error";

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("`{field}` {message}")]
    Invalid { field: String, message: String },
    #[error("{what} not found")]
    NotFound { code: &'static str, what: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A valid request that cannot be done as asked (a code of its own).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("Stripe is not configured (STRIPE_API_KEY)")]
    StripeNotConfigured,
    /// A call the request needed answered (a promotion code's lookup) failed: Stripe
    /// unreachable or overloaded (retryable), or it refused us.
    #[error("Stripe did not answer; retry later")]
    StripeUnavailable(#[source] anyhow::Error),
    #[error("Stripe refused the request")]
    StripeRefused(#[source] anyhow::Error),
    #[error("the database is unavailable; retry later")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A request field that fails validation; the message names it.
    pub(crate) fn invalid(field: &str, message: &str) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }

    pub(crate) fn not_found(code: &'static str, what: String) -> Self {
        Self::NotFound { code, what }
    }

    /// The stable code callers match on.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid_request",
            Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Refused { code, .. } => code,
            Self::StripeNotConfigured => "stripe_not_configured",
            Self::StripeUnavailable(_) => "stripe_unavailable",
            Self::StripeRefused(_) => "stripe_error",
            Self::Unavailable(_) => "database_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// Whether the caller can correct it (the API's 4xx; the CLI's exit 2).
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Invalid { .. }
                | Self::NotFound { .. }
                | Self::Conflict { .. }
                | Self::Refused { .. }
        )
    }

    /// The cause, for errors whose cause is logged (never shown).
    pub(crate) fn cause(&self) -> Option<&anyhow::Error> {
        match self {
            Self::Unavailable(cause)
            | Self::Internal(cause)
            | Self::StripeUnavailable(cause)
            | Self::StripeRefused(cause) => Some(cause),
            _ => None,
        }
    }

    /// Logs the error: the cause chain of an internal one (never sent), else a debug line.
    pub(crate) fn log(&self) {
        match self.cause() {
            Some(cause) => tracing::error!(
                code = self.code(),
                error = format!("{cause:#}"),
                "request failed"
            ),
            None => tracing::debug!(code = self.code(), error = %self, "request refused"),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        if outbox::is_unavailable(&error) {
            Self::Unavailable(error.into())
        } else {
            Self::Internal(error.into())
        }
    }
}

impl From<crate::domain::Invalid> for Error {
    fn from(error: crate::domain::Invalid) -> Self {
        Self::Invalid {
            field: error.field.to_owned(),
            message: error.message,
        }
    }
}

impl From<ChangeError> for Error {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::CustomerNotFound(id) => customer_not_found(&id),
            ChangeError::PlanNotFound(id) => plan_not_found(&id),
            e @ ChangeError::PlanNotHeld { .. } => Self::NotFound {
                code: "plan_not_held",
                what: e.to_string().replacen(" has no ", "'s ", 1),
            },
            ChangeError::Conflict { code, message } => Self::Conflict { code, message },
            e @ ChangeError::KeyReused { .. } => Self::Refused {
                code: IDEMPOTENCY_ERROR,
                message: e.to_string(),
            },
            ChangeError::Database(e) => e.into(),
        }
    }
}

impl From<RewardError> for Error {
    fn from(error: RewardError) -> Self {
        match error {
            e @ RewardError::RewardNotFound(_) => Self::NotFound {
                code: "reward_not_found",
                what: e.to_string().trim_end_matches(" not found").to_owned(),
            },
            RewardError::PromotionCodeNotFound(code) => Self::NotFound {
                code: "promotion_code_not_found",
                what: format!("promotion_code {code}"),
            },
            e @ RewardError::PromotionCodeRefused { .. } => Self::Refused {
                code: "promotion_code_not_redeemable",
                message: e.to_string(),
            },
            RewardError::Invalid { field, message } => Self::Invalid {
                field: field.to_owned(),
                message,
            },
            RewardError::CustomerNotFound(id) => customer_not_found(&id),
            RewardError::PlanNotFound(id) => plan_not_found(&id),
            e @ RewardError::PlanNotHeld { .. } => Self::NotFound {
                code: "plan_not_held",
                what: e.to_string().replacen(" has no ", "'s ", 1),
            },
            RewardError::Conflict { code, message } => Self::Conflict { code, message },
            e @ RewardError::KeyReused { .. } => Self::Refused {
                code: IDEMPOTENCY_ERROR,
                message: e.to_string(),
            },
            RewardError::StripeNotConfigured => Self::StripeNotConfigured,
            RewardError::Stripe(e) if e.retryable || e.status.is_none() => {
                Self::StripeUnavailable(e.into())
            }
            RewardError::Stripe(e) => Self::StripeRefused(e.into()),
            RewardError::Database(e) => e.into(),
        }
    }
}

pub(crate) fn customer_not_found(id: &str) -> Error {
    Error::not_found("customer_not_found", format!("customer {id}"))
}

pub(crate) fn plan_not_found(id: &str) -> Error {
    Error::not_found("plan_not_found", format!("plan {id}"))
}

pub(crate) fn feature_not_found(id: &str) -> Error {
    Error::not_found("feature_not_found", format!("feature {id}"))
}
