//! Why an auth request was refused, and how that looks on the wire.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pvm_store::accounts::{AccountError, Role};
use serde_json::json;
use thiserror::Error;

/// A refused or failed auth request. Renders as the API's error body
/// `{"error":{"code":…,"message":…,"details":null}}` with the matching status.
#[derive(Debug, Error)]
pub enum AuthError {
    #[error("sign in first: this needs a staff login")]
    MissingCredentials,
    #[error("your session has expired or was signed out: sign in again")]
    InvalidSession,
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("the account \"{0}\" is disabled: ask an admin to enable it")]
    AccountDisabled(String),
    #[error("this needs the {needed} role or higher; you are signed in as {actual}")]
    Forbidden { needed: Role, actual: Role },
    #[error("too many failed attempts from this device: try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("setup is already complete: sign in with an admin account")]
    SetupComplete,
    #[error("the setup code is wrong: use the code shown on the venue TV or in the node's log")]
    WrongSetupCode,
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("the username \"{0}\" is already taken")]
    UsernameTaken(String),
    #[error("there is no user called \"{0}\"")]
    UnknownUser(String),
    /// The message comes from the store and names the admin concerned.
    #[error("{0}")]
    LastAdmin(String),
    /// Input that breaks a rule: password too short, username with spaces…
    #[error("{0}")]
    Invalid(String),
    /// A body that is not the expected JSON.
    #[error("{0}")]
    BadRequest(String),
    /// A body over the API's size limit: refused like anywhere else in the API (413).
    #[error("the request body is larger than the 1 MiB limit")]
    BodyTooLarge,
    /// Something broke on the node; the detail goes to the log, not to the client.
    #[error("the node could not check accounts: {0}")]
    Internal(String),
}

impl AuthError {
    /// HTTP status for this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::MissingCredentials
            | AuthError::InvalidSession
            | AuthError::WrongCredentials => StatusCode::UNAUTHORIZED,
            AuthError::AccountDisabled(_)
            | AuthError::Forbidden { .. }
            | AuthError::WrongSetupCode
            | AuthError::WrongCurrentPassword => StatusCode::FORBIDDEN,
            AuthError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            AuthError::SetupComplete | AuthError::UsernameTaken(_) | AuthError::LastAdmin(_) => {
                StatusCode::CONFLICT
            }
            AuthError::UnknownUser(_) => StatusCode::NOT_FOUND,
            AuthError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AuthError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AuthError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code for the error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials | AuthError::InvalidSession => "unauthorized",
            AuthError::WrongCredentials => "invalid_credentials",
            AuthError::AccountDisabled(_) => "account_disabled",
            AuthError::Forbidden { .. } => "forbidden",
            AuthError::TooManyAttempts { .. } => "too_many_attempts",
            AuthError::SetupComplete => "setup_complete",
            AuthError::WrongSetupCode => "wrong_setup_code",
            AuthError::WrongCurrentPassword => "wrong_password",
            AuthError::UsernameTaken(_) => "username_taken",
            AuthError::UnknownUser(_) => "unknown_user",
            AuthError::LastAdmin(_) => "last_admin",
            AuthError::Invalid(_) => "invalid",
            AuthError::BadRequest(_) => "bad_request",
            AuthError::BodyTooLarge => "body_too_large",
            AuthError::Internal(_) => "internal",
        }
    }
}

impl From<AccountError> for AuthError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::UsernameTaken(name) => AuthError::UsernameTaken(name),
            AccountError::UnknownUser(name) => AuthError::UnknownUser(name),
            AccountError::SetupAlreadyComplete => AuthError::SetupComplete,
            e @ AccountError::LastAdmin(_) => AuthError::LastAdmin(e.to_string()),
            e @ (AccountError::Corrupt(_) | AccountError::Database(_)) => {
                AuthError::Internal(e.to_string())
            }
        }
    }
}

impl From<JsonRejection> for AuthError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return AuthError::BodyTooLarge;
        }
        AuthError::BadRequest(rejection.body_text())
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let message = match &self {
            AuthError::Internal(detail) => {
                tracing::error!(%detail, "auth request failed");
                "the node could not check accounts; the details are in the node's log".to_owned()
            }
            other => other.to_string(),
        };
        let body = json!({
            "error": { "code": self.code(), "message": message, "details": null }
        });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let AuthError::TooManyAttempts { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}
