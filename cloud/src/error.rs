//! The API's one error type, in the node's shape: every failure leaves as
//! `{"error":{"code","message","details"}}` with the status that fits.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `not_found`, `invalid`, `unauthorized`, `forbidden`,
    /// `conflict`, `locked`, `rate_limited`, `bad_json`, …
    pub code: String,
    /// For people: says what was refused and why.
    pub message: String,
    #[schema(value_type = Object)]
    pub details: Option<Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A well-formed request whose values break a rule (empty name, short password…).
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after_s: i64) -> Self {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
            .with_details(serde_json::json!({ "retry_after_s": retry_after_s.max(1) }))
    }

    /// Something on our side broke; the cause goes to the log, not to the caller.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the service could not complete the request",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self
            .details
            .as_ref()
            .and_then(|d| d.get("retry_after_s"))
            .and_then(Value::as_i64);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            if let Ok(value) = seconds.to_string().parse() {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => {
                ApiError::conflict("that already exists")
            }
            Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => {
                ApiError::conflict("other records still refer to it")
            }
            Some(c) if *c == SqlState::CHECK_VIOLATION => {
                ApiError::invalid("a value is out of its allowed range")
            }
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "a concurrent change got in the way; try again",
            ),
            _ => ApiError::internal(e),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        tracing::error!(error = %e, "database pool");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database cannot be reached right now",
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let code = match &r {
            JsonRejection::JsonDataError(_) => "invalid_body",
            JsonRejection::JsonSyntaxError(_) => "bad_json",
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            _ => "bad_body",
        };
        // serde's own words name the field and the position: "missing field `name` at line 1".
        let message = match &r {
            JsonRejection::JsonDataError(e) => {
                format!("the request body does not fit: {}", source_text(e))
            }
            JsonRejection::JsonSyntaxError(e) => {
                format!("the request body is not valid JSON: {}", source_text(e))
            }
            _ => r.body_text(),
        };
        ApiError::new(status, code, message)
    }
}

fn source_text(e: &dyn std::error::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(s) = inner.source() {
        inner = s;
    }
    inner.to_string()
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_path",
            format!("the address is not valid: {}", r.body_text()),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("the query string is not valid: {}", r.body_text()),
        )
    }
}

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
