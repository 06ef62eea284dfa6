//! The one place where errors become HTTP responses.
//!
//! Every failure a client can see has a status and a stable `code`; the body is always
//! `{"error":{"code":"...","message":"..."}}`. Internal causes are logged, never sent.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode, header};

use crate::changes::ChangeError;
use crate::ingest::IngestError;
use crate::rewards::RewardError;
use crate::stripe::event::InvalidPayload;
use crate::stripe::signature::SignatureError;

pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// The code of a request whose idempotency key was used before for another request.
pub(crate) const IDEMPOTENCY_ERROR: &str = "idempotency_error";

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    InvalidPayload(#[from] InvalidPayload),
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the body was not received in time")]
    BodyTimeout,
    #[error("the body could not be read")]
    BadBody,
    #[error("`{field}` {message}")]
    Invalid { field: String, message: String },
    #[error("the body is not valid JSON for this endpoint: {0}")]
    InvalidJson(String),
    #[error("a valid `Authorization: Bearer` token is required")]
    Unauthorized,
    #[error("{what} not found")]
    NotFound { code: &'static str, what: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A valid request that cannot be done as asked (400 with a code of its own).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
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

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Signature(_)
            | Self::InvalidPayload(_)
            | Self::BadBody
            | Self::Invalid { .. }
            | Self::Refused { .. }
            | Self::InvalidJson(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound { .. } | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unavailable(_) | Self::StripeNotConfigured | Self::StripeUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::StripeRefused(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Signature(e) => e.code(),
            Self::InvalidPayload(_) => "invalid_payload",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::BadBody => "bad_body",
            Self::Invalid { .. } | Self::InvalidJson(_) => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::NotFound { code, .. } => code,
            Self::NoRoute => "not_found",
            Self::Conflict { code, .. } | Self::Refused { code, .. } => code,
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable(_) => "database_unavailable",
            Self::StripeNotConfigured => "stripe_not_configured",
            Self::StripeUnavailable(_) => "stripe_unavailable",
            Self::StripeRefused(_) => "stripe_error",
            Self::Internal(_) => "internal_error",
        }
    }

    /// A request field that fails validation; the message names it.
    pub(crate) fn invalid(field: &str, message: &str) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }

    /// Logs the error: the cause chain of an internal one (never sent), else a debug line.
    pub(crate) fn log(&self) {
        match self {
            Self::Unavailable(cause)
            | Self::Internal(cause)
            | Self::StripeUnavailable(cause)
            | Self::StripeRefused(cause) => {
                tracing::error!(
                    code = self.code(),
                    error = format!("{cause:#}"),
                    "request failed"
                );
            }
            _ => tracing::debug!(code = self.code(), error = %self, "request refused"),
        }
    }

    pub(crate) fn into_response(self) -> HttpResponse {
        let status = self.status();
        self.log();
        let body = serde_json::json!({
            "error": { "code": self.code(), "message": self.to_string() }
        });
        let mut response = json(status, &body);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body is not read: do not reuse the connection.
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        Self::Unavailable(anyhow::Error::new(error))
    }
}

impl From<ChangeError> for ApiError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::CustomerNotFound(id) => Self::NotFound {
                code: "customer_not_found",
                what: format!("customer {id}"),
            },
            ChangeError::PlanNotFound(id) => Self::NotFound {
                code: "plan_not_found",
                what: format!("plan {id}"),
            },
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

impl From<RewardError> for ApiError {
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
            RewardError::CustomerNotFound(id) => Self::NotFound {
                code: "customer_not_found",
                what: format!("customer {id}"),
            },
            RewardError::PlanNotFound(id) => Self::NotFound {
                code: "plan_not_found",
                what: format!("plan {id}"),
            },
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

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if outbox::is_unavailable(&error) {
            Self::Unavailable(error.into())
        } else {
            Self::Internal(error.into())
        }
    }
}

pub(crate) fn json(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    let bytes = serde_json::to_vec(body).expect("JSON values serialize");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .expect("static response parts are valid")
}
