//! `POST /api/v1/enrol`: a node redeems its one-time code and gets its identity, its venue
//! and NATS credentials that reach only its own subjects.
//!
//! No session: the code is the secret. Answers: 201 with the contract's `EnrolResponse`;
//! 404 `enrolment_code_unknown` (never issued, or mistyped), 409 `enrolment_code_used`,
//! 410 `enrolment_code_expired`; 429 `rate_limited` after too many failed codes from one
//! address (guessing); 503 `sync_unavailable` when this instance has no NATS or no account
//! key to sign with.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pvm_sync::{EnrolRequest, EnrolResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::nats_auth::UserIssuer;
use super::streams;
use crate::auth::ClientIp;
use crate::enrolment::{redeem_enrolment_code, EnrolmentError};
use crate::error::{ApiError, ApiResult};
use crate::state::CloudState;

/// Failed codes accepted from one address per window before it is refused.
pub const MAX_FAILURES_PER_IP: i32 = 10;
/// The window for failed codes, seconds.
pub const FAILURE_WINDOW_S: u64 = 15 * 60;

pub fn routes() -> OpenApiRouter<CloudState> {
    OpenApiRouter::new().routes(routes!(enrol))
}

/// `EnrolRequest` of the pvm-sync contract, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct EnrolRequestDoc {
    /// The one-time code shown by the cloud (`XXXX-XXXX-XXXX`; case and dashes ignored).
    code: String,
    hostname: String,
    version: String,
}

/// `EnrolResponse` of the pvm-sync contract, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct EnrolResponseDoc {
    node_id: Uuid,
    venue_id: Uuid,
    tenant_id: Uuid,
    venue_name: String,
    nats_urls: Vec<String>,
    nats_user_jwt: String,
    /// The node's NATS nkey seed: a secret, shown this once.
    nats_user_seed: String,
    inbox_prefix: String,
}

fn code_error(e: EnrolmentError) -> ApiError {
    match e {
        EnrolmentError::Unknown => ApiError::new(
            StatusCode::NOT_FOUND,
            "enrolment_code_unknown",
            "no such enrolment code: check it, or ask for a new one",
        ),
        EnrolmentError::AlreadyUsed => ApiError::new(
            StatusCode::CONFLICT,
            "enrolment_code_used",
            "this enrolment code has already paired a node; ask for a new one",
        ),
        EnrolmentError::Expired(at) => ApiError::new(
            StatusCode::GONE,
            "enrolment_code_expired",
            format!("this enrolment code expired at {at}; ask for a new one"),
        ),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("enrolment failed: {other}"),
        ),
    }
}

fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "sync_unavailable", message)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

fn trimmed(text: &str, max: usize) -> String {
    text.trim().chars().take(max).collect()
}

/// Pair a node with a venue using a one-time enrolment code.
#[utoipa::path(
    post,
    path = "/api/v1/enrol",
    tag = "fleet",
    request_body = EnrolRequestDoc,
    responses(
        (status = 201, description = "Enrolled: identity, venue and NATS credentials", body = EnrolResponseDoc),
        (status = 404, description = "Unknown code", body = crate::error::ErrorBody),
        (status = 409, description = "Code already used", body = crate::error::ErrorBody),
        (status = 410, description = "Code expired", body = crate::error::ErrorBody),
        (status = 429, description = "Too many failed codes from this address", body = crate::error::ErrorBody),
        (status = 503, description = "This instance cannot issue NATS credentials", body = crate::error::ErrorBody),
    )
)]
async fn enrol(
    State(state): State<CloudState>,
    ip: ClientIp,
    crate::api::extract::ApiJson(request): crate::api::extract::ApiJson<EnrolRequest>,
) -> ApiResult<(StatusCode, Json<EnrolResponse>)> {
    let throttle_key = format!("enrol-ip:{}", ip.key());
    let mut client = state.pool.get().await.map_err(internal)?;
    if crate::throttle::count(&client, &throttle_key, FAILURE_WINDOW_S)
        .await
        .map_err(internal)?
        >= MAX_FAILURES_PER_IP
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many wrong enrolment codes from this address; wait a few minutes",
        ));
    }
    let Some(nats) = state.nats.clone() else {
        return Err(unavailable("this cloud instance has no NATS connection"));
    };
    let Some(seed_file) = state.config.nats_account_seed_file.as_deref() else {
        return Err(unavailable(
            "this cloud instance has no NATS account key (--nats-account-seed-file)",
        ));
    };
    let issuer = UserIssuer::from_seed_file(seed_file).map_err(|e| unavailable(e.to_string()))?;

    let tx = client.transaction().await.map_err(internal)?;
    let grant = match redeem_enrolment_code(&tx, &request.code).await {
        Ok(grant) => grant,
        Err(e) => {
            drop(tx);
            let _ = crate::throttle::hit(&client, &throttle_key, FAILURE_WINDOW_S).await;
            return Err(code_error(e));
        }
    };
    let node_id = Uuid::now_v7();
    let user = issuer.issue_node_user(node_id).map_err(internal)?;
    tx.execute(
        "INSERT INTO nodes (id, venue_id, tenant_id, hostname, version, nats_user_public_key) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &node_id,
            &grant.venue_id,
            &grant.tenant_id,
            &trimmed(&request.hostname, 200),
            &trimmed(&request.version, 100),
            &user.public_key,
        ],
    )
    .await
    .map_err(internal)?;
    tx.execute(
        "UPDATE enrolment_codes SET node_id = $1 WHERE id = $2",
        &[&node_id, &grant.code_id],
    )
    .await
    .map_err(internal)?;
    // The node's down consumer exists before the code is spent: if JetStream is
    // unreachable the transaction rolls back and the code can be used again.
    let js = async_nats::jetstream::new(nats);
    streams::ensure_streams(&js)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    streams::ensure_node_consumer(&js, node_id)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    tx.commit().await.map_err(internal)?;
    tracing::info!(%node_id, venue_id = %grant.venue_id, "node enrolled");

    // The node starts with the venue's players; a failure here is repaired by the next
    // membership change, so it does not undo the enrolment.
    let pool = state.pool.clone();
    let venue_id = grant.venue_id;
    tokio::spawn(async move {
        if let Err(e) = send_players_to(&pool, &js, venue_id, node_id).await {
            tracing::warn!(%node_id, error = %e, "initial players snapshot not sent");
        }
    });

    Ok((
        StatusCode::CREATED,
        Json(EnrolResponse {
            node_id,
            venue_id: grant.venue_id,
            tenant_id: grant.tenant_id,
            venue_name: grant.venue_name,
            nats_urls: state.config.nats_urls_for_nodes(),
            nats_user_jwt: user.jwt.clone(),
            nats_user_seed: user.seed.clone(),
            inbox_prefix: pvm_sync::subjects::inbox_prefix(node_id),
        }),
    ))
}

async fn send_players_to(
    pool: &deadpool_postgres::Pool,
    js: &async_nats::jetstream::Context,
    venue_id: Uuid,
    node_id: Uuid,
) -> Result<(), super::down::DownError> {
    let client = pool.get().await?;
    let players = super::down::venue_players(&client, venue_id).await?;
    super::down::publish(js, node_id, pvm_sync::DownBody::Players { players }).await?;
    Ok(())
}
