//! The HTTP face of auth: extractors for other handlers, and the setup, login and user
//! routes.

use super::error::AuthError;
use super::service::{AuthService, NewSession, NewUserRequest};
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use pvm_core::Timestamp;
use pvm_store::accounts::{Role, TokenDigest, User, UserPatch};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "pvm_session";

/// The signed-in staff member. As an extractor it reads the `Authorization: Bearer` header
/// (preferred) or the `pvm_session` cookie, and rejects with 401 when neither holds a live
/// session. Works for any router state `S` from which `Arc<AuthService>` can be taken.
///
/// Not `Serialize`: it holds the session's digest, which has no business on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    user: User,
    session_digest: TokenDigest,
    expires_at: Timestamp,
}

impl AuthUser {
    pub(crate) fn new(user: User, session_digest: TokenDigest, expires_at: Timestamp) -> Self {
        AuthUser {
            user,
            session_digest,
            expires_at,
        }
    }

    /// Ok if this user's role is `needed` or higher (admin ⊇ floor ⊇ dealer), else 403:
    /// `auth_user.require(Role::Floor)?`.
    pub fn require(&self, needed: Role) -> Result<(), AuthError> {
        if self.user.role >= needed {
            Ok(())
        } else {
            Err(AuthError::Forbidden {
                needed,
                actual: self.user.role,
            })
        }
    }

    /// The account behind the session.
    pub fn user(&self) -> &User {
        &self.user
    }

    pub fn role(&self) -> Role {
        self.user.role
    }

    pub fn username(&self) -> &str {
        &self.user.username
    }

    /// When this session ends.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    pub(crate) fn session_digest(&self) -> &TokenDigest {
        &self.session_digest
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<AuthService>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Set by the server's session guard, which has just checked this request's session:
        // extensions are the server's own, no client can put one there.
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let token = presented_token(&parts.headers).ok_or(AuthError::MissingCredentials)?;
        let service = Arc::<AuthService>::from_ref(state);
        // Mostly a lookup in the service's session cache; an indexed SQLite read and a write
        // at most once a minute per session: short enough not to need the blocking pool.
        service.authenticate(&token)
    }
}

/// The client's IP address, used to rate-limit failed logins. Comes from axum's
/// `ConnectInfo<SocketAddr>`, which the node's server (`http_server::serve`) adds to every
/// request; served without it, all clients share one limit. Forwarding headers are ignored on purpose: the node faces the LAN directly and any
/// client could forge them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientIp {
    pub ip: Option<IpAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientIp { ip })
    }
}

/// JSON body whose rejections use the API's error shape instead of axum's plain text.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AuthError))]
struct Body<T>(T);

/// `GET /api/v1/setup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupStatus {
    pub setup_required: bool,
}

/// `POST /api/v1/setup`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    pub setup_code: String,
    pub username: String,
    pub password: String,
    /// Optional: blank means "same as the username".
    #[serde(default)]
    pub display_name: String,
}

/// `POST /api/v1/auth/login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Answer to a successful setup or login. The token is also set as the session cookie; it
/// is in the body for clients that use the `Authorization` header instead.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub user: User,
    pub expires_at: Timestamp,
}

/// `GET /api/v1/auth/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeResponse {
    pub user: User,
    pub expires_at: Timestamp,
}

/// `POST /api/v1/auth/password`: a user changes their own password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// `POST /api/v1/users`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    pub role: Role,
    pub password: String,
}

/// `PUT /api/v1/users/{username}/password`: an admin sets someone's password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub password: String,
}

// Requests and responses carry secrets: their Debug must never print them.
macro_rules! redacted_debug {
    ($ty:ident { $($shown:ident),* }) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($shown), &self.$shown))*
                    .finish_non_exhaustive()
            }
        }
    };
}
redacted_debug!(SetupRequest {
    username,
    display_name
});
redacted_debug!(LoginRequest { username });
redacted_debug!(LoginResponse { user, expires_at });
redacted_debug!(ChangePasswordRequest {});
redacted_debug!(CreateUserRequest {
    username,
    display_name,
    role
});
redacted_debug!(ResetPasswordRequest {});

/// The auth routes, for any router state that can hand out an `Arc<AuthService>`:
///
/// | route | who |
/// |---|---|
/// | `GET /api/v1/setup` → `{setup_required}` | anyone |
/// | `POST /api/v1/setup` | anyone with the setup code, once |
/// | `POST /api/v1/auth/login`, `POST /api/v1/auth/logout` | anyone |
/// | `GET /api/v1/auth/me`, `POST /api/v1/auth/password` | signed in |
/// | `GET, POST /api/v1/users`; `GET, PATCH, DELETE /api/v1/users/{username}`; `PUT /api/v1/users/{username}/password` | admin |
pub fn routes<S>() -> Router<S>
where
    Arc<AuthService>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/v1/setup", get(setup_status).post(setup))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/me", get(me))
        .route("/api/v1/auth/password", post(change_password))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route(
            "/api/v1/users/{username}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/api/v1/users/{username}/password", put(reset_password))
}

type Service = State<Arc<AuthService>>;

async fn setup_status(State(auth): Service) -> Result<Json<SetupStatus>, AuthError> {
    let setup_required = auth.setup_required()?;
    Ok(Json(SetupStatus { setup_required }))
}

async fn setup(
    State(auth): Service,
    client: ClientIp,
    Body(request): Body<SetupRequest>,
) -> Result<Response, AuthError> {
    let session = blocking(&auth, move |auth| {
        let admin = NewUserRequest {
            username: request.username,
            display_name: request.display_name,
            role: Role::Admin,
            password: request.password,
        };
        auth.complete_setup(&request.setup_code, admin, client.ip)
    })
    .await?;
    Ok(signed_in(StatusCode::CREATED, &auth, session))
}

async fn login(
    State(auth): Service,
    client: ClientIp,
    Body(request): Body<LoginRequest>,
) -> Result<Response, AuthError> {
    let session = blocking(&auth, move |auth| {
        auth.login(&request.username, &request.password, client.ip)
    })
    .await?;
    Ok(signed_in(StatusCode::OK, &auth, session))
}

/// Always succeeds and clears the cookie, so a stale browser tab can always sign out.
async fn logout(State(auth): Service, headers: HeaderMap) -> Result<Response, AuthError> {
    if let Some(token) = presented_token(&headers) {
        auth.logout(&token)?;
    }
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

async fn me(who: AuthUser) -> Json<MeResponse> {
    Json(MeResponse {
        expires_at: who.expires_at(),
        user: who.user,
    })
}

async fn change_password(
    State(auth): Service,
    who: AuthUser,
    client: ClientIp,
    Body(request): Body<ChangePasswordRequest>,
) -> Result<StatusCode, AuthError> {
    blocking(&auth, move |auth| {
        auth.change_own_password(
            &who,
            &request.current_password,
            &request.new_password,
            client.ip,
        )
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_users(State(auth): Service, who: AuthUser) -> Result<Json<Vec<User>>, AuthError> {
    who.require(Role::Admin)?;
    Ok(Json(auth.list_users()?))
}

async fn create_user(
    State(auth): Service,
    who: AuthUser,
    Body(request): Body<CreateUserRequest>,
) -> Result<(StatusCode, Json<User>), AuthError> {
    who.require(Role::Admin)?;
    let user = blocking(&auth, move |auth| {
        auth.create_user(NewUserRequest {
            username: request.username,
            display_name: request.display_name,
            role: request.role,
            password: request.password,
        })
    })
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn get_user(
    State(auth): Service,
    who: AuthUser,
    Path(username): Path<String>,
) -> Result<Json<User>, AuthError> {
    who.require(Role::Admin)?;
    Ok(Json(auth.user(&username)?))
}

async fn update_user(
    State(auth): Service,
    who: AuthUser,
    Path(username): Path<String>,
    Body(patch): Body<UserPatch>,
) -> Result<Json<User>, AuthError> {
    who.require(Role::Admin)?;
    Ok(Json(auth.update_user(&username, patch)?))
}

async fn reset_password(
    State(auth): Service,
    who: AuthUser,
    Path(username): Path<String>,
    Body(request): Body<ResetPasswordRequest>,
) -> Result<StatusCode, AuthError> {
    who.require(Role::Admin)?;
    blocking(&auth, move |auth| {
        auth.reset_password(&username, &request.password)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_user(
    State(auth): Service,
    who: AuthUser,
    Path(username): Path<String>,
) -> Result<StatusCode, AuthError> {
    who.require(Role::Admin)?;
    auth.delete_user(&username)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs password hashing (tens to hundreds of milliseconds) off the async workers.
async fn blocking<T, F>(auth: &Arc<AuthService>, work: F) -> Result<T, AuthError>
where
    F: FnOnce(&AuthService) -> Result<T, AuthError> + Send + 'static,
    T: Send + 'static,
{
    let auth = Arc::clone(auth);
    tokio::task::spawn_blocking(move || work(&auth))
        .await
        .map_err(|e| AuthError::Internal(format!("auth task failed: {e}")))?
}

fn signed_in(status: StatusCode, auth: &AuthService, session: NewSession) -> Response {
    let max_age_secs = auth.session_ttl_ms() / 1000;
    // No `Secure`: the node serves plain HTTP on the venue LAN, and the browser would drop
    // a Secure cookie there. SameSite=Strict keeps other sites from riding on it.
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}",
        session.token.as_str()
    );
    let body = LoginResponse {
        token: session.token.as_str().to_owned(),
        user: session.user,
        expires_at: session.expires_at,
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The token from `Authorization: Bearer …`, or else from the `pvm_session` cookie.
pub(crate) fn presented_token(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let from_cookie = || {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| value.trim())
    };
    bearer
        .or_else(from_cookie)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}
