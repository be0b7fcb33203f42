//! The HTTP API: one place that knows every route. REST JSON under `/api/v1`, described by
//! the OpenAPI document at `/api/v1/openapi.json`, built from the same handler list.
//!
//! Tenant-scoped routes live under `/api/v1/tenants/{tenant_id}/…`; their handlers start
//! with [`crate::auth::tenant_access`] and put the tenant id into every SQL statement.

mod accounts;
pub mod extract;
mod nodes;
mod players;
mod releases;
mod system;
mod tenants;
mod venues;

use crate::error::{ApiError, ErrorBody};
use crate::state::CloudState;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Largest request body accepted (the 413 message names it, so it is the shared one).
pub const MAX_BODY_BYTES: usize = pvm_apierror::MAX_BODY_BYTES;

#[derive(OpenApi)]
#[openapi(
    info(title = "PVM cloud API", description = "Accounts, tenants, venues, players, node enrolment, fleet status and the release catalog."),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody)),
    tags(
        (name = "system", description = "Health"),
        (name = "auth", description = "Signup, login, token refresh, logout"),
        (name = "tenants", description = "Tenants and their users"),
        (name = "venues", description = "Venues and enrolment codes"),
        (name = "players", description = "Universal player accounts and venue memberships"),
        (name = "fleet", description = "Enrolled nodes and their status"),
        (name = "releases", description = "The release catalog"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
        }
    }
}

/// The whole API: the accounts side's routes and the sync side's, with the OpenAPI document.
pub fn router(state: CloudState) -> Router {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(system::routes())
        .merge(accounts::routes())
        .merge(tenants::routes())
        .merge(venues::routes())
        .merge(players::routes())
        .merge(nodes::routes())
        .merge(releases::routes())
        .merge(crate::sync::routes())
        .split_for_parts();
    let doc = Arc::new(doc);
    Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json((*doc).clone()) }
            }),
        )
        .fallback(|| async { ApiError::not_found("route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Statuses answered with no body.
pub(crate) fn no_content() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}
