//! The node's failures in the API's one error shape, `{"error":{"code","message","details"}}`
//! (the shape, the response and the extractor rejections live in `pvm-apierror`, shared with
//! the cloud). Here: how the rules, the engine and the log map onto statuses and codes.

use crate::engine::EngineError;
use axum::http::StatusCode;
use pvm_core::DomainError;

pub use pvm_apierror::{ApiError, ApiResult, ErrorBody, ErrorDetail};

/// A refusal by the rules. (A function, not `From`: both types live in other crates.)
pub fn domain(e: DomainError) -> ApiError {
    let status = match &e {
        DomainError::NotFound { .. } => StatusCode::NOT_FOUND,
        DomainError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::Refused(_) | DomainError::Conflict(_) => StatusCode::CONFLICT,
    };
    ApiError::new(status, e.code(), e.to_string())
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Domain(d) => domain(d),
            EngineError::Busy(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
            }
            EngineError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                e.to_string(),
            ),
            // Not an internal fault to retry: the log failed its integrity check and will
            // not be written until someone restores it. /healthz says the same.
            EngineError::Damaged(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_damaged",
                e.to_string(),
            ),
            EngineError::NotRecorded {
                disk_full: true, ..
            } => ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "disk_full", e.to_string()),
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    other.to_string(),
                )
            }
        }
    }
}
