//! The one error type of the core. Every refusal says what was refused and why, in words a
//! floor manager understands ("late registration closed at the end of level 6").

use serde::Serialize;
use thiserror::Error;

/// A command the rules refuse. `code` is stable for programs; the message is for people.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
pub enum DomainError {
    /// The thing named does not exist (unknown id).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// The input is malformed or out of range (bad structure, negative amount…).
    #[error("{0}")]
    Invalid(String),
    /// The command is well formed but the current state does not allow it.
    #[error("{0}")]
    Refused(String),
    /// The command would create something that already exists.
    #[error("{0}")]
    Conflict(String),
}

impl DomainError {
    /// A stable machine-readable code for the API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::NotFound { .. } => "not_found",
            DomainError::Invalid(_) => "invalid",
            DomainError::Refused(_) => "refused",
            DomainError::Conflict(_) => "conflict",
        }
    }

    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        DomainError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        DomainError::Invalid(msg.into())
    }

    pub fn refused(msg: impl Into<String>) -> Self {
        DomainError::Refused(msg.into())
    }

    pub fn conflict(msg: impl Into<String>) -> Self {
        DomainError::Conflict(msg.into())
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
