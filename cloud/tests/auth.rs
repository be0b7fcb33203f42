//! Sign-up, login, refresh rotation with reuse detection, logout, lockout and rate limits,
//! and two instances sharing one database and one key — over real HTTP, real PostgreSQL.

mod common;

use common::{Cloud, PASSWORD};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn login_gives_an_access_token_that_identifies_the_user_and_their_roles() {
    let cloud = Cloud::start().await;
    let api = &cloud.api;
    let (tenant, user) = api.signup("Riverside Poker", "Ann@Example.com").await;
    let session = api.login("ann@example.com").await;
    assert_eq!(session["token_type"], "Bearer");
    assert!(session["expires_in"].as_i64().unwrap() > 800);
    assert!(session["refresh_token"]
        .as_str()
        .unwrap()
        .starts_with("pvmr_"));
    let token = session["access_token"].as_str().unwrap();
    let me = api.get("/api/v1/me", Some(token)).await.expect(200);
    assert_eq!(me["id"], user.as_str());
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(
        me["memberships"],
        json!([{"tenant_id": tenant, "role": "admin"}])
    );

    api.post(
        "/api/v1/auth/login",
        None,
        json!({"email": "ann@example.com", "password": "wrong password!"}),
    )
    .await
    .expect_error(401, "bad_credentials");
    api.post(
        "/api/v1/auth/login",
        None,
        json!({"email": "nobody@example.com", "password": PASSWORD}),
    )
    .await
    .expect_error(401, "bad_credentials");
    api.get("/api/v1/me", None)
        .await
        .expect_error(401, "unauthorized");
    api.get("/api/v1/me", Some("not.a.token"))
        .await
        .expect_error(401, "unauthorized");
    // One signature character changed (well inside it, so real signature bits change).
    let mut forged: Vec<char> = token.chars().collect();
    let at = token.rfind('.').unwrap() + 10;
    forged[at] = if forged[at] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    api.get("/api/v1/me", Some(&forged))
        .await
        .expect_error(401, "unauthorized");
    cloud.stop().await;
}

#[tokio::test]
async fn refresh_rotates_and_reusing_an_old_refresh_token_revokes_the_whole_login() {
    let cloud = Cloud::start().await;
    let api = &cloud.api;
    api.signup("Riverside", "ann@example.com").await;
    let first = api.login("ann@example.com").await;
    let other_login = api.login("ann@example.com").await;
    let r1 = first["refresh_token"].as_str().unwrap();

    let second = api
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": r1}))
        .await
        .expect(200);
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    api.get("/api/v1/me", second["access_token"].as_str())
        .await
        .expect(200);
    let third = api
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": r2}))
        .await
        .expect(200);
    let r3 = third["refresh_token"].as_str().unwrap();

    // r1 was used: someone replays it. The family (r1, r2, r3) is revoked.
    api.post("/api/v1/auth/refresh", None, json!({"refresh_token": r1}))
        .await
        .expect_error(401, "refresh_reused");
    api.post("/api/v1/auth/refresh", None, json!({"refresh_token": r3}))
        .await
        .expect_error(401, "unauthorized");
    // Another login of the same user is its own family and unaffected.
    api.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": other_login["refresh_token"]}),
    )
    .await
    .expect(200);
    api.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": "pvmr_made-up"}),
    )
    .await
    .expect_error(401, "unauthorized");
    cloud.stop().await;
}

#[tokio::test]
async fn two_refreshes_racing_with_one_token_leave_at_most_one_winner() {
    let cloud = Cloud::start().await;
    let api = cloud.api.clone();
    api.signup("Riverside", "ann@example.com").await;
    let session = api.login("ann@example.com").await;
    let r1 = session["refresh_token"].as_str().unwrap().to_string();
    let (a, b) = tokio::join!(
        api.post("/api/v1/auth/refresh", None, json!({"refresh_token": r1})),
        api.post("/api/v1/auth/refresh", None, json!({"refresh_token": r1})),
    );
    let winners = [&a, &b].iter().filter(|r| r.status == 200).count();
    assert_eq!(winners, 1, "{a:?} {b:?}");
    // The loser was treated as reuse, so even the winner's new token is revoked.
    let winner = if a.status == 200 { a } else { b };
    api.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": winner.body["refresh_token"]}),
    )
    .await
    .expect_error(401, "unauthorized");
    cloud.stop().await;
}

#[tokio::test]
async fn logout_revokes_every_refresh_token_of_that_login() {
    let cloud = Cloud::start().await;
    let api = &cloud.api;
    api.signup("Riverside", "ann@example.com").await;
    let session = api.login("ann@example.com").await;
    let r1 = session["refresh_token"].as_str().unwrap();
    let next = api
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": r1}))
        .await
        .expect(200);
    let r2 = next["refresh_token"].as_str().unwrap();
    assert_eq!(
        api.post("/api/v1/auth/logout", None, json!({"refresh_token": r1}))
            .await
            .status,
        204
    );
    api.post("/api/v1/auth/refresh", None, json!({"refresh_token": r2}))
        .await
        .expect_error(401, "unauthorized");
    // Signing out twice is fine.
    assert_eq!(
        api.post("/api/v1/auth/logout", None, json!({"refresh_token": r2}))
            .await
            .status,
        204
    );
    cloud.stop().await;
}

#[tokio::test]
async fn an_account_locks_after_repeated_failures_and_unlocks_after_the_window() {
    let cloud = Cloud::start_with(|c| {
        c.login_max_failures = 3;
        // Long enough that the lock cannot lapse between the failures and the check on a
        // loaded machine; short enough to wait out.
        c.login_lockout_s = 4;
    })
    .await;
    let api = &cloud.api;
    api.signup("Riverside", "ann@example.com").await;
    let wrong = json!({"email": "ann@example.com", "password": "not the password"});
    let right = json!({"email": "ann@example.com", "password": PASSWORD});
    for _ in 0..3 {
        api.post("/api/v1/auth/login", None, wrong.clone())
            .await
            .expect_error(401, "bad_credentials");
    }
    // Locked: even the right password is refused, with a hint when to retry.
    let locked = api.post("/api/v1/auth/login", None, right.clone()).await;
    locked.expect_error(429, "locked");
    assert!(
        locked.body["error"]["details"]["retry_after_s"]
            .as_i64()
            .unwrap()
            >= 1
    );
    tokio::time::sleep(Duration::from_millis(4300)).await;
    api.post("/api/v1/auth/login", None, right.clone())
        .await
        .expect(200);
    // After a success the count starts afresh: one more failure does not lock.
    api.post("/api/v1/auth/login", None, wrong)
        .await
        .expect_error(401, "bad_credentials");
    api.post("/api/v1/auth/login", None, right)
        .await
        .expect(200);
    cloud.stop().await;
}

#[tokio::test]
async fn lockout_holds_across_instances() {
    let cloud = Cloud::start_with(|c| {
        c.login_max_failures = 2;
        c.login_lockout_s = 60;
    })
    .await;
    let (second, other) = cloud.another_instance().await;
    cloud.api.signup("Riverside", "ann@example.com").await;
    let wrong = json!({"email": "ann@example.com", "password": "not the password"});
    cloud
        .api
        .post("/api/v1/auth/login", None, wrong.clone())
        .await
        .expect_error(401, "bad_credentials");
    other
        .post("/api/v1/auth/login", None, wrong)
        .await
        .expect_error(401, "bad_credentials");
    cloud
        .api
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await
        .expect_error(429, "locked");
    second.stop().await;
    cloud.stop().await;
}

#[tokio::test]
async fn one_address_with_many_failures_is_refused_whatever_account_it_tries() {
    let cloud = Cloud::start_with(|c| {
        c.login_max_failures_per_ip = 4;
        c.login_max_failures = 100;
    })
    .await;
    let api = &cloud.api;
    api.signup("Riverside", "ann@example.com").await;
    for i in 0..4 {
        api.post(
            "/api/v1/auth/login",
            None,
            json!({"email": format!("guess{i}@example.com"), "password": "whatever123"}),
        )
        .await
        .expect_error(401, "bad_credentials");
    }
    let refused = api
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    refused.expect_error(429, "rate_limited");
    cloud.stop().await;
}

#[tokio::test]
async fn signups_from_one_address_are_rate_limited() {
    let cloud = Cloud::start_with(|c| c.signup_max_per_ip_per_hour = 2).await;
    let api = &cloud.api;
    api.signup("One", "one@example.com").await;
    api.signup("Two", "two@example.com").await;
    api.post(
        "/api/v1/signup",
        None,
        json!({"tenant_name": "Three", "email": "three@example.com", "password": PASSWORD}),
    )
    .await
    .expect_error(429, "rate_limited");
    cloud.stop().await;
}

#[tokio::test]
async fn an_existing_account_adds_a_tenant_only_with_its_own_password() {
    let cloud = Cloud::start().await;
    let api = &cloud.api;
    let (first, _) = api.signup("One", "ann@example.com").await;
    api.post(
        "/api/v1/signup",
        None,
        json!({"tenant_name": "Stolen", "email": "ann@example.com", "password": "someone else's"}),
    )
    .await
    .expect_error(409, "email_taken");
    let (second, _) = api.signup("Two", "ann@example.com").await;
    let me = api
        .get("/api/v1/me", Some(&api.token("ann@example.com").await))
        .await
        .expect(200);
    let tenants: Vec<&str> = me["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, [first.as_str(), second.as_str()]);
    cloud.stop().await;
}

#[tokio::test]
async fn a_second_instance_accepts_the_first_ones_tokens_and_refreshes_its_sessions() {
    let cloud = Cloud::start().await;
    let (second, other) = cloud.another_instance().await;
    cloud.api.signup("Riverside", "ann@example.com").await;
    let session = cloud.api.login("ann@example.com").await;
    other
        .get("/api/v1/me", session["access_token"].as_str())
        .await
        .expect(200);
    let rotated = other
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": session["refresh_token"]}),
        )
        .await
        .expect(200);
    cloud
        .api
        .get("/api/v1/me", rotated["access_token"].as_str())
        .await
        .expect(200);
    // Reuse is seen whichever instance the replay reaches.
    cloud
        .api
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": session["refresh_token"]}),
        )
        .await
        .expect_error(401, "refresh_reused");
    second.stop().await;
    cloud.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_client_error_in_the_error_shape() {
    let cloud = Cloud::start().await;
    let api = &cloud.api;
    api.post_raw("/api/v1/signup", None, "application/json", "{not json")
        .await
        .expect_error(400, "bad_json");
    api.post_raw("/api/v1/signup", None, "text/plain", "{}")
        .await
        .expect_error(415, "unsupported_media_type");
    api.post("/api/v1/signup", None, json!({"email": "a@example.com"}))
        .await
        .expect_error(422, "invalid_body");
    api.post(
        "/api/v1/signup",
        None,
        json!({"tenant_name": "X", "email": "a@example.com", "password": "short"}),
    )
    .await
    .expect_error(422, "invalid");
    api.post(
        "/api/v1/signup",
        None,
        json!({"tenant_name": "X", "email": "not-an-email", "password": PASSWORD}),
    )
    .await
    .expect_error(422, "invalid");
    api.post(
        "/api/v1/signup",
        None,
        json!({"tenant_name": "  ", "email": "a@example.com", "password": PASSWORD}),
    )
    .await
    .expect_error(422, "invalid");
    let (tenant, _) = api.signup("Riverside", "ann@example.com").await;
    let token = api.token("ann@example.com").await;
    api.get("/api/v1/tenants/not-a-uuid/venues", Some(&token))
        .await
        .expect_error(400, "bad_path");
    api.post(
        &format!("/api/v1/tenants/{tenant}/venues"),
        Some(&token),
        json!({"name": "Main", "time_zone": "Mars/Olympus_Mons"}),
    )
    .await
    .expect_error(422, "invalid");
    api.post(
        &format!("/api/v1/tenants/{tenant}/users"),
        Some(&token),
        json!({"email": "bob@example.com", "role": "emperor", "password": PASSWORD}),
    )
    .await
    .expect_error(422, "invalid_body");
    cloud.stop().await;
}
