//! The cloud's failures in the API's one error shape, the node's:
//! `{"error":{"code","message","details"}}` (the shape, the response, the extractor
//! rejections and the PostgreSQL mapping live in `pvm-apierror`). Here: how the cloud's own
//! errors map onto statuses and codes.

use axum::http::StatusCode;

pub use pvm_apierror::{ApiError, ApiResult, ErrorBody, ErrorDetail};

impl From<crate::accounts::AccountError> for ApiError {
    fn from(e: crate::accounts::AccountError) -> Self {
        use crate::accounts::AccountError;
        match e {
            AccountError::Invalid(message) => ApiError::invalid(message),
            AccountError::EmailTaken => {
                ApiError::new(StatusCode::CONFLICT, "email_taken", e.to_string())
            }
            AccountError::Password(e) => ApiError::internal(e),
            AccountError::Db(e) => e.into(),
        }
    }
}

impl From<crate::sessions::SessionError> for ApiError {
    fn from(e: crate::sessions::SessionError) -> Self {
        use crate::sessions::SessionError;
        match e {
            SessionError::Unknown | SessionError::Revoked | SessionError::Expired => {
                ApiError::unauthorized(e.to_string())
            }
            SessionError::Reused => {
                ApiError::new(StatusCode::UNAUTHORIZED, "refresh_reused", e.to_string())
            }
            SessionError::Random(_) => ApiError::internal(e),
            SessionError::Db(e) => e.into(),
        }
    }
}

impl From<crate::enrolment::EnrolmentError> for ApiError {
    fn from(e: crate::enrolment::EnrolmentError) -> Self {
        use crate::enrolment::EnrolmentError;
        match e {
            EnrolmentError::Unknown => ApiError::new(
                StatusCode::NOT_FOUND,
                "enrolment_code_unknown",
                e.to_string(),
            ),
            EnrolmentError::AlreadyUsed => {
                ApiError::new(StatusCode::GONE, "enrolment_code_used", e.to_string())
            }
            EnrolmentError::Expired(_) => {
                ApiError::new(StatusCode::GONE, "enrolment_code_expired", e.to_string())
            }
            EnrolmentError::Random(_) => ApiError::internal(e),
            EnrolmentError::Db(e) => e.into(),
        }
    }
}
