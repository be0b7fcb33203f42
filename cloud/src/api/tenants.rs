//! Tenants and their users. Admins add users, change their roles and remove them; a tenant
//! always keeps at least one admin.

use super::extract::{ApiJson, ApiPath};
use crate::accounts::{self, normalize_email, AccountError};
use crate::auth::{tenant_access, Caller, Role};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::CloudState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<CloudState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants))
        .routes(routes!(get_tenant, patch_tenant))
        .routes(routes!(list_users, add_user))
        .routes(routes!(get_user, patch_user, remove_user))
}

#[derive(Serialize, ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The caller's role in this tenant.
    pub role: Role,
}

/// The tenants the caller is a member of, with their role in each.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", security(("bearer" = [])),
    responses((status = 200, body = [Tenant]), (status = 401, body = ErrorBody)))]
async fn list_tenants(State(s): State<CloudState>, caller: Caller) -> ApiResult<Json<Vec<Tenant>>> {
    let db = s.pool.get().await?;
    let rows = db
        .query(
            "SELECT t.id, t.name, t.created_at, m.role FROM tenants t
             JOIN tenant_memberships m ON m.tenant_id = t.id
             WHERE m.user_id = $1 ORDER BY t.name, t.id",
            &[&caller.user_id],
        )
        .await?;
    Ok(Json(
        rows.iter()
            .filter_map(|r| {
                Some(Tenant {
                    id: r.get(0),
                    name: r.get(1),
                    created_at: r.get(2),
                    role: Role::parse(r.get(3))?,
                })
            })
            .collect(),
    ))
}

/// One tenant the caller is a member of.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path)),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody)))]
async fn get_tenant(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath(tenant_id): ApiPath<Uuid>,
) -> ApiResult<Json<Tenant>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Player).await?;
    let row = db
        .query_opt(
            "SELECT name, created_at FROM tenants WHERE id = $1",
            &[&access.tenant_id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(Json(Tenant {
        id: tenant_id,
        name: row.get(0),
        created_at: row.get(1),
        role: access.role,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    pub name: Option<String>,
}

/// Rename a tenant (admin).
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant_id}", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path)), request_body = TenantPatch,
    responses((status = 200, body = Tenant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn patch_tenant(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath(tenant_id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<TenantPatch>,
) -> ApiResult<Json<Tenant>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Admin).await?;
    if let Some(name) = patch.name {
        let name = accounts::check_name(&name, "tenant name")?;
        db.execute(
            "UPDATE tenants SET name = $2 WHERE id = $1",
            &[&access.tenant_id, &name],
        )
        .await?;
    }
    get_tenant(State(s), caller, ApiPath(tenant_id)).await
}

#[derive(Serialize, ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// When the user joined this tenant.
    pub created_at: DateTime<Utc>,
}

const MEMBER_SELECT: &str = "SELECT u.id, u.email, u.display_name, m.role, m.created_at
     FROM tenant_memberships m JOIN users u ON u.id = m.user_id";

fn member(row: &tokio_postgres::Row) -> Option<Member> {
    Some(Member {
        user_id: row.get(0),
        email: row.get(1),
        display_name: row.get(2),
        role: Role::parse(row.get(3))?,
        created_at: row.get(4),
    })
}

async fn load_member(db: &impl GenericClient, tenant_id: Uuid, user_id: Uuid) -> ApiResult<Member> {
    let row = db
        .query_opt(
            &format!("{MEMBER_SELECT} WHERE m.tenant_id = $1 AND m.user_id = $2"),
            &[&tenant_id, &user_id],
        )
        .await?;
    row.as_ref()
        .and_then(member)
        .ok_or_else(|| ApiError::not_found("user"))
}

/// The tenant's users and their roles (manager or higher).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/users", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path)),
    responses((status = 200, body = [Member]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_users(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath(tenant_id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<Member>>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Manager).await?;
    let rows = db
        .query(
            &format!("{MEMBER_SELECT} WHERE m.tenant_id = $1 ORDER BY u.email"),
            &[&access.tenant_id],
        )
        .await?;
    Ok(Json(rows.iter().filter_map(member).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddUser {
    pub email: String,
    pub role: Role,
    /// Needed only when no account has this e-mail yet (it is then created).
    pub password: Option<String>,
    #[serde(default)]
    pub display_name: String,
}

/// Add a user to the tenant with a role (admin). An existing account (by e-mail) joins as
/// it is; otherwise an account is created with the given password.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/users", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path)), request_body = AddUser,
    responses((status = 201, body = Member), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_user(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath(tenant_id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<AddUser>,
) -> ApiResult<(StatusCode, Json<Member>)> {
    let mut client = s.pool.get().await?;
    let tx = client.transaction().await?;
    let access = tenant_access(&tx, &caller, tenant_id, Role::Admin).await?;
    let email = normalize_email(&req.email)?;
    let user_id = match accounts::find_user(&tx, &email).await? {
        Some((id, _)) => id,
        None => {
            let password = req.password.as_deref().ok_or_else(|| {
                ApiError::invalid("no account has this e-mail yet: give a password to create it")
            })?;
            match accounts::create_user(&tx, &s.passwords, &email, password, &req.display_name)
                .await
            {
                Ok(id) => id,
                // Created by someone else a moment ago: take that account.
                Err(AccountError::EmailTaken) => accounts::find_user(&tx, &email)
                    .await?
                    .map(|(id, _)| id)
                    .ok_or_else(|| ApiError::conflict("the account changed meanwhile; retry"))?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let inserted = tx
        .execute(
            "INSERT INTO tenant_memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&access.tenant_id, &user_id, &req.role.as_str()],
        )
        .await?;
    if inserted == 0 {
        return Err(ApiError::conflict(
            "this user is already a member of the tenant; change their role instead",
        ));
    }
    let member = load_member(&tx, access.tenant_id, user_id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// One user of the tenant (manager or higher).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/users/{user_id}", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 200, body = Member), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_user(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Member>> {
    let db = s.pool.get().await?;
    let access = tenant_access(&db, &caller, tenant_id, Role::Manager).await?;
    Ok(Json(load_member(&db, access.tenant_id, user_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    pub role: Role,
}

/// Refuses a change that would leave the tenant without an admin. Call with the tenant's
/// admin rows locked (inside the transaction that makes the change).
async fn keep_an_admin(db: &impl GenericClient, tenant_id: Uuid, user_id: Uuid) -> ApiResult<()> {
    let others = db
        .query(
            "SELECT user_id FROM tenant_memberships
             WHERE tenant_id = $1 AND role = 'admin' FOR UPDATE",
            &[&tenant_id],
        )
        .await?
        .iter()
        .filter(|r| r.get::<_, Uuid>(0) != user_id)
        .count();
    if others == 0 {
        return Err(ApiError::conflict(
            "the tenant would have no admin left; make someone else admin first",
        ));
    }
    Ok(())
}

/// Change a user's role in the tenant (admin).
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant_id}/users/{user_id}", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = MemberPatch,
    responses((status = 200, body = Member), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn patch_user(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(patch): ApiJson<MemberPatch>,
) -> ApiResult<Json<Member>> {
    let mut client = s.pool.get().await?;
    let tx = client.transaction().await?;
    let access = tenant_access(&tx, &caller, tenant_id, Role::Admin).await?;
    let current = load_member(&tx, access.tenant_id, user_id).await?;
    if current.role == Role::Admin && patch.role != Role::Admin {
        keep_an_admin(&tx, access.tenant_id, user_id).await?;
    }
    tx.execute(
        "UPDATE tenant_memberships SET role = $3 WHERE tenant_id = $1 AND user_id = $2",
        &[&access.tenant_id, &user_id, &patch.role.as_str()],
    )
    .await?;
    let member = load_member(&tx, access.tenant_id, user_id).await?;
    tx.commit().await?;
    Ok(Json(member))
}

/// Remove a user from the tenant (admin). Their account remains, with its other tenants.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/users/{user_id}", tag = "tenants", security(("bearer" = [])),
    params(("tenant_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn remove_user(
    State(s): State<CloudState>,
    caller: Caller,
    ApiPath((tenant_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let mut client = s.pool.get().await?;
    let tx = client.transaction().await?;
    let access = tenant_access(&tx, &caller, tenant_id, Role::Admin).await?;
    let current = load_member(&tx, access.tenant_id, user_id).await?;
    if current.role == Role::Admin {
        keep_an_admin(&tx, access.tenant_id, user_id).await?;
    }
    tx.execute(
        "DELETE FROM tenant_memberships WHERE tenant_id = $1 AND user_id = $2",
        &[&access.tenant_id, &user_id],
    )
    .await?;
    tx.commit().await?;
    Ok(super::no_content())
}
