//! The one place where errors become HTTP statuses, codes and bodies: the use cases'
//! [`ops::Error`] and what a request itself can get wrong (its signature, body, token,
//! route). The API answers `{"error":{"code":"...","message":"..."}}`; the console shows
//! the same status and message as a page. Internal causes are logged, never sent.

use hyper::{StatusCode, header};

use super::{HttpResponse, json};
use crate::ingest::IngestError;
use crate::ops;
use crate::stripe::event::InvalidPayload;
use crate::stripe::signature::SignatureError;

/// Every error's body: `{"error":{"code","message"}}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    /// Stable: `invalid_request`, `customer_not_found`, `idempotency_error`...
    code: &'static str,
    /// For people; never an internal cause.
    message: String,
}

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
    #[error("the body is not valid JSON for this endpoint: {0}")]
    InvalidJson(String),
    #[error("a valid `Authorization: Bearer` token is required")]
    Unauthorized,
    #[error("no such route")]
    NoRoute,
    /// With the methods the path has (the `Allow` header RFC 9110 asks of a 405).
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// What a use case refused or failed at.
    #[error(transparent)]
    Ops(#[from] ops::Error),
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Signature(_) | Self::InvalidPayload(_) | Self::BadBody | Self::InvalidJson(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Ops(e) => match e {
                ops::Error::Invalid { .. } | ops::Error::Refused { .. } => StatusCode::BAD_REQUEST,
                ops::Error::NotFound { .. } => StatusCode::NOT_FOUND,
                ops::Error::Conflict { .. } => StatusCode::CONFLICT,
                ops::Error::Unavailable(_)
                | ops::Error::StripeNotConfigured
                | ops::Error::StripeUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                ops::Error::StripeRefused(_) => StatusCode::BAD_GATEWAY,
                ops::Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Signature(e) => e.code(),
            Self::InvalidPayload(_) => "invalid_payload",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::BadBody => "bad_body",
            Self::InvalidJson(_) => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::NoRoute => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Ops(e) => e.code(),
        }
    }

    /// A request field that fails validation; the message names it.
    pub(crate) fn invalid(field: &str, message: &str) -> Self {
        Self::Ops(ops::Error::invalid(field, message))
    }

    /// Logs the error: the cause chain of an internal one (never sent), else a debug line.
    pub(crate) fn log(&self) {
        match self {
            Self::Ops(e) => e.log(),
            _ => tracing::debug!(code = self.code(), error = %self, "request refused"),
        }
    }

    /// A 405 for a path that answers only `methods`.
    pub(crate) fn method_not_allowed(methods: &[&str]) -> Self {
        Self::MethodNotAllowed {
            allow: methods.join(", "),
        }
    }

    pub(crate) fn into_response(self) -> HttpResponse {
        let status = self.status();
        self.log();
        let allow = match &self {
            Self::MethodNotAllowed { allow } => header::HeaderValue::from_str(allow).ok(),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        };
        let mut response = json(status, &body);
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
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
        Self::Ops(ops::Error::Unavailable(anyhow::Error::new(error)))
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Ops(error.into())
    }
}

impl From<crate::domain::Invalid> for ApiError {
    fn from(error: crate::domain::Invalid) -> Self {
        Self::Ops(error.into())
    }
}
