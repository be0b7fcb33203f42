//! Who may change what, proved against a running node over HTTP: every mutating route in the
//! served OpenAPI document refuses callers without a session, the auth routes too (only setup
//! and login are open), roles are enforced, and failed logins are rate-limited.

mod common;

use common::{Api, TestNode};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Fills `{name}` segments: integers for integer parameters, random UUIDs for the rest.
fn fill_path(path: &str, params: &[Value]) -> String {
    let mut out = path.to_string();
    while let Some(start) = out.find('{') {
        let end = start + out[start..].find('}').expect("closing brace");
        let name = &out[start + 1..end];
        let integer = params.iter().any(|p| {
            p["name"] == name && matches!(p["schema"]["type"].as_str(), Some("integer" | "number"))
        });
        let value = if integer {
            "3".to_string()
        } else {
            common::random_id()
        };
        out.replace_range(start..=end, &value);
    }
    out
}

/// Every (method, concrete path) pair that can change state, read from the served document.
async fn mutating_routes(api: &Api) -> Vec<(Method, String)> {
    let doc = api.get("/api/v1/openapi.json").await.ok();
    let paths = doc["paths"]
        .as_object()
        .expect("paths in the OpenAPI document");
    let mut routes = Vec::new();
    for (path, item) in paths {
        let shared: Vec<Value> = item["parameters"].as_array().cloned().unwrap_or_default();
        for (method, op) in item.as_object().unwrap() {
            let m = match method.as_str() {
                "post" => Method::POST,
                "put" => Method::PUT,
                "patch" => Method::PATCH,
                "delete" => Method::DELETE,
                _ => continue,
            };
            let mut params = shared.clone();
            params.extend(op["parameters"].as_array().cloned().unwrap_or_default());
            routes.push((m, fill_path(path, &params)));
        }
    }
    routes
}

#[tokio::test]
async fn every_mutating_route_in_the_openapi_document_refuses_an_unauthenticated_caller() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    // Real things to point at too, so a route that only checks the session after finding its
    // target would be caught.
    let t = common::create_tournament(&admin, common::config("Security")).await;
    let routes = mutating_routes(&node.anonymous()).await;
    // The API has dozens of mutating routes; a handful would mean the document lost them.
    assert!(
        routes.len() >= 60,
        "only {} mutating routes found",
        routes.len()
    );
    let before = admin.seq().await;

    let nobody = node.anonymous();
    let forged = Api::new(&node.base, Some("not-a-real-token".into()));
    let body = json!({"name": "x", "config": common::config("x"), "seconds": 60});
    for (method, path) in &routes {
        for (who, caller) in [("no session", &nobody), ("forged token", &forged)] {
            let mut targets = vec![path.clone()];
            if let Some(id) = uuid_in(path) {
                targets.push(path.replacen(&id, &t, 1));
            }
            for target in targets {
                let r = caller
                    .send(method.clone(), &target, Some(body.clone()))
                    .await;
                assert_eq!(
                    r.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {target} with {who}: {}",
                    r.text
                );
                r.error(StatusCode::UNAUTHORIZED, "unauthorized");
            }
        }
    }
    assert_eq!(
        admin.seq().await,
        before,
        "a refused call recorded something"
    );
}

/// The first UUID in `path`.
fn uuid_in(path: &str) -> Option<String> {
    path.split('/')
        .find(|s| uuid::Uuid::parse_str(s).is_ok())
        .map(str::to_string)
}

#[tokio::test]
async fn auth_routes_outside_the_document_need_a_session_except_setup_and_login() {
    let node = TestNode::start().await;
    let nobody = node.anonymous();
    let protected = [
        (Method::POST, "/api/v1/auth/logout"),
        (Method::POST, "/api/v1/auth/password"),
        (Method::POST, "/api/v1/users"),
        (Method::PATCH, "/api/v1/users/someone"),
        (Method::DELETE, "/api/v1/users/someone"),
        (Method::PUT, "/api/v1/users/someone/password"),
        // The web fallback answers unknown paths; it must not open a way around the guard.
        (Method::POST, "/api/v1/not-a-route"),
        (Method::PUT, "/index.html"),
    ];
    for (method, path) in protected {
        let r = nobody
            .send(method.clone(), path, Some(json!({"password": "x"})))
            .await;
        r.error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // Reading the user list needs a session too, even though GET passes the guard.
    nobody
        .get("/api/v1/users")
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");

    // The two public mutations answer on their merits, not with 401 "unauthorized".
    let r = nobody
        .post(
            "/api/v1/setup",
            json!({"setup_code": "000000", "username": "x", "password": PASSWORD_LIKE}),
        )
        .await;
    assert_ne!(r.body["error"]["code"], "unauthorized", "{}", r.text);
    r.error(StatusCode::FORBIDDEN, "wrong_setup_code");
    let admin = node.setup_admin().await;
    let r = nobody
        .post(
            "/api/v1/auth/login",
            json!({"username": common::ADMIN, "password": common::PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["token"].as_str().is_some_and(|t| t.len() >= 32));
    // And the second setup is refused: there is an admin now.
    let again = nobody
        .post(
            "/api/v1/setup",
            json!({"setup_code": "000000", "username": "y", "password": PASSWORD_LIKE}),
        )
        .await;
    assert!(again.status.is_client_error(), "{}", again.text);
    assert_eq!(
        admin.get("/api/v1/auth/me").await.ok()["user"]["role"],
        "admin"
    );
}

const PASSWORD_LIKE: &str = "long enough password 123";

#[tokio::test]
async fn a_dealer_is_refused_floor_and_admin_routes_and_a_floor_user_admin_routes() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let dealer = node.user(&admin, "dana", "dealer").await;
    let floor = node.user(&admin, "fred", "floor").await;
    let t = common::create_tournament(&admin, common::config("Roles")).await;
    let entry = common::register_new(&admin, &t, "Ann").await;
    let game = admin
        .post(
            "/api/v1/cash/games",
            json!({"game": "NLH", "small_blind": 100, "big_blind": 300}),
        )
        .await
        .created();
    let before = admin.seq().await;

    let venue = admin.get("/api/v1/venue").await.ok();
    let floor_routes: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/api/v1/tournaments".into(),
            json!({"config": common::config("Nope"), "template": "turbo"}),
        ),
        (
            Method::POST,
            format!("/api/v1/tournaments/{t}/clock/start"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/api/v1/tournaments/{t}/entries"),
            json!({"new_player": {"name": "Bob"}}),
        ),
        (
            Method::POST,
            format!("/api/v1/tournaments/{t}/busts"),
            json!({"busts": [{"entry_id": entry}]}),
        ),
        (
            Method::POST,
            format!("/api/v1/tournaments/{t}/tables"),
            json!({"number": 1, "seats": 9}),
        ),
        (
            Method::POST,
            "/api/v1/cash/tables".into(),
            json!({"number": 1, "seat_count": 9, "game_id": game}),
        ),
        (
            Method::POST,
            "/api/v1/cash/waitlist".into(),
            json!({"game_id": game, "name": "Cy"}),
        ),
        (
            Method::POST,
            "/api/v1/announcements".into(),
            json!({"text": "hi", "style": "ticker"}),
        ),
        (
            Method::POST,
            "/api/v1/players".into(),
            json!({"name": "Dee"}),
        ),
    ];
    let admin_routes: Vec<(Method, String, Value)> = vec![
        (Method::PUT, "/api/v1/venue".into(), venue.clone()),
        (
            Method::POST,
            format!("/api/v1/tournaments/{t}/cancel"),
            Value::Null,
        ),
        (
            Method::PUT,
            "/api/v1/cash/settings".into(),
            admin.get("/api/v1/cash").await.ok()["settings"].clone(),
        ),
        (
            Method::POST,
            "/api/v1/users".into(),
            json!({"username": "eve", "role": "dealer", "password": PASSWORD_LIKE}),
        ),
        (Method::GET, "/api/v1/users".into(), Value::Null),
        (Method::DELETE, "/api/v1/users/dana".into(), Value::Null),
    ];

    for (method, path, body) in floor_routes.iter().chain(admin_routes.iter()) {
        let body = (!body.is_null()).then(|| body.clone());
        let r = dealer.send(method.clone(), path, body).await;
        r.error(StatusCode::FORBIDDEN, "forbidden");
    }
    for (method, path, body) in &admin_routes {
        let body = (!body.is_null()).then(|| body.clone());
        let r = floor.send(method.clone(), path, body).await;
        r.error(StatusCode::FORBIDDEN, "forbidden");
    }
    assert_eq!(
        admin.seq().await,
        before,
        "a refused call recorded something"
    );
    assert_eq!(
        admin
            .get("/api/v1/users")
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // What each role may do, it can: the guard is not simply shut.
    dealer
        .act(&format!("/api/v1/tournaments/{t}/clock/pause"))
        .await
        .error(StatusCode::CONFLICT, "refused");
    floor
        .act(&format!("/api/v1/tournaments/{t}/clock/start"))
        .await
        .ok();
    dealer
        .act(&format!("/api/v1/tournaments/{t}/clock/pause"))
        .await
        .ok();
    admin.put("/api/v1/venue", venue).await.ok();
}

#[tokio::test]
async fn repeated_failed_logins_are_answered_429_with_retry_after() {
    let node = TestNode::start().await;
    let _admin = node.setup_admin().await;
    let nobody = node.anonymous();
    let wrong = json!({"username": common::ADMIN, "password": "wrong password guess"});
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = nobody.post("/api/v1/auth/login", wrong.clone()).await;
        statuses.push(r.status);
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            r.error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
            break;
        }
        r.error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "never limited: {statuses:?}"
    );
    assert!(
        statuses.len() <= 6,
        "limited only after {} tries",
        statuses.len()
    );
    // Even the right password is refused while the limit holds: guessing is what it stops.
    let right = json!({"username": common::ADMIN, "password": common::PASSWORD});
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", node.base))
        .json(&right)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
}
