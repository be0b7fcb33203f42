//! The release catalog nodes update from. Platform operators (`--operator-email`) publish;
//! any signed-in user may read.

use super::extract::{ApiJson, ApiQuery};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::CloudState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<CloudState> {
    OpenApiRouter::new().routes(routes!(list_releases, publish_release))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRelease {
    /// e.g. `1.4.0`
    pub version: String,
    /// e.g. `stable`, `beta`
    pub channel: String,
    /// Where nodes download the signed bundle.
    pub bundle_url: String,
    /// Lower-case hex SHA-256 of the bundle.
    pub sha256: String,
    #[serde(default)]
    pub notes: String,
}

#[derive(Serialize, ToSchema)]
pub struct Release {
    pub version: String,
    pub channel: String,
    pub bundle_url: String,
    pub sha256: String,
    pub notes: String,
    pub published_at: DateTime<Utc>,
}

fn release(r: &tokio_postgres::Row) -> Release {
    Release {
        version: r.get(0),
        channel: r.get(1),
        bundle_url: r.get(2),
        sha256: r.get(3),
        notes: r.get(4),
        published_at: r.get(5),
    }
}

fn token_ok(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
}

fn check(req: &NewRelease) -> ApiResult<()> {
    if !token_ok(&req.version, 64) {
        return Err(ApiError::invalid(
            "the version must be 1–64 characters of letters, digits and . - _ +",
        ));
    }
    if !token_ok(&req.channel, 32) {
        return Err(ApiError::invalid(
            "the channel must be 1–32 characters of letters, digits and . - _ +",
        ));
    }
    let url = req.bundle_url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048 {
        return Err(ApiError::invalid("the bundle URL must be an http(s) URL"));
    }
    if req.sha256.len() != 64
        || !req
            .sha256
            .chars()
            .all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    {
        return Err(ApiError::invalid(
            "sha256 must be 64 lower-case hexadecimal characters",
        ));
    }
    if req.notes.len() > 64 * 1024 {
        return Err(ApiError::invalid("the notes must be at most 64 KiB"));
    }
    Ok(())
}

/// Publish a release (platform operators only).
#[utoipa::path(post, path = "/api/v1/releases", tag = "releases", security(("bearer" = [])),
    request_body = NewRelease,
    responses((status = 201, body = Release), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn publish_release(
    State(s): State<CloudState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewRelease>,
) -> ApiResult<(StatusCode, Json<Release>)> {
    let db = s.pool.get().await?;
    // The e-mail as stored now, not as in the token, decides.
    let email: Option<String> = db
        .query_opt("SELECT email FROM users WHERE id = $1", &[&caller.user_id])
        .await?
        .map(|r| r.get(0));
    if !email.is_some_and(|e| s.config.is_operator(&e)) {
        return Err(ApiError::forbidden(
            "only the platform's operators may publish releases",
        ));
    }
    check(&req)?;
    let row = db
        .query_opt(
            "INSERT INTO releases (version, channel, bundle_url, sha256, notes, published_by)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
             RETURNING version, channel, bundle_url, sha256, notes, published_at",
            &[
                &req.version,
                &req.channel,
                &req.bundle_url.trim(),
                &req.sha256,
                &req.notes,
                &caller.user_id,
            ],
        )
        .await?
        .ok_or_else(|| ApiError::conflict("this version is already published on this channel"))?;
    let published = release(&row);
    crate::sync::notify_release(
        &s,
        crate::sync::down::ReleaseInfo {
            version: published.version.clone(),
            channel: published.channel.clone(),
            bundle_url: published.bundle_url.clone(),
            notes: published.notes.clone(),
        },
    );
    Ok((StatusCode::CREATED, Json(published)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReleaseQuery {
    /// Only this channel.
    pub channel: Option<String>,
}

/// Published releases, newest first (any signed-in user).
#[utoipa::path(get, path = "/api/v1/releases", tag = "releases", security(("bearer" = [])),
    params(ReleaseQuery),
    responses((status = 200, body = [Release]), (status = 401, body = ErrorBody)))]
async fn list_releases(
    State(s): State<CloudState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<ReleaseQuery>,
) -> ApiResult<Json<Vec<Release>>> {
    let db = s.pool.get().await?;
    let rows = db
        .query(
            "SELECT version, channel, bundle_url, sha256, notes, published_at FROM releases
             WHERE $1::text IS NULL OR channel = $1
             ORDER BY published_at DESC, channel, version",
            &[&q.channel],
        )
        .await?;
    Ok(Json(rows.iter().map(release).collect()))
}
