use super::*;
use axum::body::{to_bytes, Body};
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use tower::ServiceExt;

#[derive(Deserialize)]
#[allow(dead_code)] // only deserialized: the tests are about what refuses it
struct Player {
    name: String,
    chips: u32,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Page {
    limit: u32,
}

/// A router that uses the extractors the way the node and the cloud do, behind the same limit.
fn app() -> Router {
    Router::new()
        .route(
            "/players",
            post(|ApiJson(_): ApiJson<Player>| async { "ok" }),
        )
        .route(
            "/players/{id}",
            get(|ApiPath(_): ApiPath<u32>| async { "ok" }),
        )
        .route("/page", get(|ApiQuery(_): ApiQuery<Page>| async { "ok" }))
        .route(
            "/slow-down",
            get(|| async { ApiError::too_many("rate_limited", "slow down", 0) }),
        )
        .route(
            "/broken",
            get(|| async { ApiError::internal("disk on fire at /var/lib/secret") }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

async fn send(req: Request<Body>) -> Answer {
    let res = app().oneshot(req).await.unwrap();
    let status = res.status();
    let retry_after = res
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

fn post_json(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

fn get_req(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn an_error_leaves_as_the_error_object_with_code_message_and_details() {
    let e = ApiError::conflict("seat taken").with_details(json!({"seat": 3}));
    let res = e.into_response();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": "conflict", "message": "seat taken", "details": {"seat": 3}}})
    );
}

#[tokio::test]
async fn details_are_null_when_there_are_none() {
    let res = ApiError::not_found("player").into_response();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": "not_found", "message": "player not found", "details": null}})
    );
}

#[tokio::test]
async fn malformed_json_is_400_bad_json_with_the_position() {
    let a = send(post_json("/players", "{\"name\": ")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["error"]["code"], "bad_json");
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the request body is not valid JSON: "),
        "{message}"
    );
    assert!(message.contains("line 1"), "{message}");
}

#[tokio::test]
async fn a_wrong_type_is_422_invalid_body_naming_the_field() {
    let a = send(post_json("/players", r#"{"name":"Ann","chips":"many"}"#)).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["error"]["code"], "invalid_body");
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the request body does not fit: "),
        "{message}"
    );
    assert!(message.contains("invalid type"), "{message}");

    let a = send(post_json("/players", r#"{"chips":5}"#)).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("missing field `name`"), "{message}");
}

#[tokio::test]
async fn a_body_without_the_json_content_type_is_415() {
    let req = Request::post("/players")
        .body(Body::from(r#"{"name":"Ann","chips":5}"#))
        .unwrap();
    let a = send(req).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(a.body["error"]["code"], "unsupported_media_type");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_naming_the_limit() {
    let big = format!(
        r#"{{"name":"{}","chips":5}}"#,
        "x".repeat(MAX_BODY_BYTES + 1)
    );
    let a = send(post_json("/players", big)).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.body["error"]["code"], "body_too_large");
    assert_eq!(
        a.body["error"]["message"],
        "the request body is larger than the 1 MiB limit"
    );
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_parsed() {
    let fits = format!(
        r#"{{"name":"{}","chips":5}}"#,
        "x".repeat(MAX_BODY_BYTES - 100)
    );
    let a = send(post_json("/players", fits)).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn a_path_that_does_not_parse_is_400_bad_path() {
    let a = send(get_req("/players/seven")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["error"]["code"], "bad_path");
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the address is not valid: "),
        "{message}"
    );
}

#[tokio::test]
async fn a_query_that_does_not_parse_is_400_bad_query() {
    let a = send(get_req("/page?limit=lots")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["error"]["code"], "bad_query");
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the query string is not valid: "),
        "{message}"
    );
}

#[tokio::test]
async fn too_many_sends_retry_after_of_at_least_one_second() {
    let a = send(get_req("/slow-down")).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.body["error"]["code"], "rate_limited");
    assert_eq!(a.body["error"]["details"]["retry_after_s"], 1);
    assert_eq!(a.retry_after.as_deref(), Some("1"));
}

#[tokio::test]
async fn other_errors_send_no_retry_after() {
    let a = send(get_req("/players/seven")).await;
    assert_eq!(a.retry_after, None);
}

#[tokio::test]
async fn an_internal_error_keeps_its_cause_out_of_the_answer() {
    let a = send(get_req("/broken")).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.body["error"]["code"], "internal");
    assert!(!a.body.to_string().contains("secret"), "{}", a.body);
}

#[test]
fn the_error_body_schema_has_code_message_and_details() {
    use utoipa::PartialSchema;
    let schema = serde_json::to_value(ErrorDetail::schema()).unwrap();
    let properties = schema["properties"].as_object().unwrap();
    for field in ["code", "message", "details"] {
        assert!(properties.contains_key(field), "{schema}");
    }
}
