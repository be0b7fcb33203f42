//! PostgreSQL failures as API errors: constraint violations are the caller's conflict or bad
//! value, a serialization failure is worth a retry, anything else is ours and goes to the log.

use crate::ApiError;
use axum::http::StatusCode;
use tokio_postgres::error::SqlState;

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
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
