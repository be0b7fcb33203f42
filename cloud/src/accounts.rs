//! Account rules shared by the API and the operator CLI: e-mail and name checks, creating
//! users and tenants.

use crate::password::{check_new_password, Passwords};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    #[error(transparent)]
    Password(#[from] crate::password::PasswordError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// The canonical (trimmed, lower-case) form of an e-mail address, if it looks like one.
pub fn normalize_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.ends_with('.');
    if valid {
        Ok(email)
    } else {
        Err(AccountError::Invalid(
            "the e-mail address is not valid".into(),
        ))
    }
}

/// A trimmed display name of 1–200 characters; `what` names it in the message.
pub fn check_name(name: &str, what: &str) -> Result<String, AccountError> {
    let name = name.trim();
    let len = name.chars().count();
    if len == 0 || len > 200 || name.chars().any(char::is_control) {
        return Err(AccountError::Invalid(format!(
            "the {what} must have 1 to 200 characters and no control characters"
        )));
    }
    Ok(name.to_string())
}

/// Creates a user with a checked password; [`AccountError::EmailTaken`] if the e-mail is
/// already registered.
pub async fn create_user(
    db: &impl GenericClient,
    passwords: &Passwords,
    email: &str,
    password: &str,
    display_name: &str,
) -> Result<Uuid, AccountError> {
    let email = normalize_email(email)?;
    check_new_password(password).map_err(AccountError::Invalid)?;
    let display_name = display_name.trim();
    if display_name.chars().count() > 200 {
        return Err(AccountError::Invalid(
            "the display name must have at most 200 characters".into(),
        ));
    }
    let hash = passwords.hash(password).await?;
    let id = Uuid::now_v7();
    let inserted = db
        .execute(
            "INSERT INTO users (id, email, display_name, password_hash) VALUES ($1, $2, $3, $4)
             ON CONFLICT (email) DO NOTHING",
            &[&id, &email, &display_name, &hash],
        )
        .await?;
    if inserted == 0 {
        return Err(AccountError::EmailTaken);
    }
    Ok(id)
}

/// The user with this e-mail: id and password hash.
pub async fn find_user(
    db: &impl GenericClient,
    email: &str,
) -> Result<Option<(Uuid, String)>, tokio_postgres::Error> {
    let row = db
        .query_opt(
            "SELECT id, password_hash FROM users WHERE email = $1",
            &[&email],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Creates a tenant with `admin_user` as its first admin; returns the tenant id.
pub async fn create_tenant(
    db: &impl GenericClient,
    name: &str,
    admin_user: Uuid,
) -> Result<Uuid, AccountError> {
    let name = check_name(name, "tenant name")?;
    let tenant_id = Uuid::now_v7();
    db.execute(
        "INSERT INTO tenants (id, name) VALUES ($1, $2)",
        &[&tenant_id, &name],
    )
    .await?;
    db.execute(
        "INSERT INTO tenant_memberships (tenant_id, user_id, role) VALUES ($1, $2, 'admin')",
        &[&tenant_id, &admin_user],
    )
    .await?;
    Ok(tenant_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mails_are_trimmed_lower_cased_and_must_look_like_addresses() {
        assert_eq!(
            normalize_email("  Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a nn@example.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_must_be_one_to_two_hundred_characters() {
        assert_eq!(check_name("  Main room ", "name").unwrap(), "Main room");
        assert!(check_name("   ", "name").is_err());
        assert!(check_name(&"x".repeat(201), "name").is_err());
    }
}
