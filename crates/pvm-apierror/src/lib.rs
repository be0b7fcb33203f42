//! The HTTP APIs' one error shape. The node and the cloud answer every failure as
//! `{"error":{"code","message","details"}}` with the status that fits, so one client library
//! (and one person reading a log) understands both.
//!
//! This crate owns the body, its OpenAPI schema, the response (with `Retry-After` when the
//! details carry `retry_after_s`), and the mapping of axum's extractor rejections: malformed
//! JSON, wrong types, bodies over [`MAX_BODY_BYTES`], bad paths and query strings. Each service
//! keeps its own domain errors and maps them into [`ApiError`] where it defines them.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

#[cfg(feature = "postgres")]
mod postgres;

/// The request body limit both APIs apply; the 413 message names it.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A failure on its way out: status, stable code, message for people, optional details.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `not_found`, `invalid`, `refused`, `conflict`, `unauthorized`,
    /// `forbidden`, `locked`, `rate_limited`, `bad_json`, `invalid_body`, `body_too_large`, …
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

    /// 429 with `details.retry_after_s` (at least 1), which also becomes `Retry-After`.
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
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
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
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => too_large_message(),
            _ => r.body_text(),
        };
        ApiError::new(status, code, message)
    }
}

/// The 413 message, naming the limit the caller went over.
pub fn too_large_message() -> String {
    format!(
        "the request body is larger than the {} MiB limit",
        MAX_BODY_BYTES / (1024 * 1024)
    )
}

/// The innermost cause: serde's message without axum's wrapping around it.
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

/// `Json<T>` with rejections as [`ApiError`].
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `Path<T>` with rejections as [`ApiError`].
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Query<T>` with rejections as [`ApiError`].
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

#[cfg(test)]
mod tests;
