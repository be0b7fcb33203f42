//! How a running node refuses: bad JSON, wrong fields, unknown ids, oversized bodies and
//! invalid transitions each get their status and the one error shape, and a refused command
//! leaves nothing behind in the log.

mod common;

use common::{Api, TestNode};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Runs `call`, asserts it was refused with `status`/`code`, and that the log did not move.
async fn refused(
    api: &Api,
    r: common::Reply,
    status: StatusCode,
    code: &str,
    before: u64,
) -> String {
    let message = r.error(status, code);
    assert_eq!(api.seq().await, before, "refused but recorded: {}", r.text);
    message
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_refused_naming_the_problem() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let t = common::create_tournament(&admin, common::config("Errors")).await;
    let before = admin.seq().await;

    // Not JSON at all.
    for path in [
        "/api/v1/tournaments".to_string(),
        format!("/api/v1/tournaments/{t}/tables"),
        "/api/v1/cash/games".to_string(),
        "/api/v1/players".to_string(),
    ] {
        let r = admin
            .raw(
                Method::POST,
                &path,
                Some(b"{\"config\": {".to_vec()),
                "application/json",
            )
            .await;
        let m = refused(&admin, r, StatusCode::BAD_REQUEST, "bad_json", before).await;
        assert!(m.contains("not valid JSON"), "{path}: {m}");
    }

    // A wrong type names the field.
    let r = admin
        .post(
            &format!("/api/v1/tournaments/{t}/tables"),
            json!({"number": "one", "seats": 9}),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.text);
    let m = refused(
        &admin,
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
        before,
    )
    .await;
    assert!(m.contains("number"), "{m}");
    // A missing field names the field.
    let r = admin
        .post(
            &format!("/api/v1/tournaments/{t}/tables"),
            json!({"number": 1}),
        )
        .await;
    let m = refused(
        &admin,
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
        before,
    )
    .await;
    assert!(m.contains("missing field `seats`"), "{m}");
    // Nested, in the tournament config.
    let r = admin
        .post(
            "/api/v1/tournaments",
            json!({"config": {"name": "x", "buy_in": 100}, "template": "turbo"}),
        )
        .await;
    let m = refused(
        &admin,
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
        before,
    )
    .await;
    assert!(m.contains("starting_stack"), "{m}");
    // The cash routes build their command from the body: same kind of message.
    let r = admin
        .post(
            "/api/v1/cash/games",
            json!({"game": "NLH", "small_blind": "lots", "big_blind": 300}),
        )
        .await;
    let m = refused(
        &admin,
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
        before,
    )
    .await;
    assert!(m.contains("small_blind") || m.contains("lots"), "{m}");
    let r = admin
        .post(
            "/api/v1/cash/games",
            json!({"game": "NLH", "small_blind": 100}),
        )
        .await;
    let m = refused(
        &admin,
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
        before,
    )
    .await;
    assert!(m.contains("big_blind"), "{m}");
    // Something that is JSON but not an object where one is needed.
    let r = admin.post("/api/v1/cash/games", json!([1, 2])).await;
    assert!(r.status.is_client_error(), "{}", r.text);
    common::assert_error_shape(&r.body, &r.text);
    // A path segment that is not an id.
    let r = admin.get("/api/v1/tournaments/not-a-uuid").await;
    refused(&admin, r, StatusCode::BAD_REQUEST, "bad_path", before).await;
    // The domain's own validation: 422 with the core's words.
    let r = admin
        .post(
            &format!("/api/v1/tournaments/{t}/tables"),
            json!({"number": 1, "seats": 40}),
        )
        .await;
    let m = refused(
        &admin,
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        before,
    )
    .await;
    assert!(m.contains("2 to 12 seats"), "{m}");
}

#[tokio::test]
async fn unknown_ids_are_404_and_record_nothing() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let t = common::create_tournament(&admin, common::config("Ids")).await;
    let before = admin.seq().await;
    let x = common::random_id();
    for path in [
        format!("/api/v1/tournaments/{x}"),
        format!("/api/v1/tournaments/{x}/entries"),
        format!("/api/v1/tournaments/{x}/payouts"),
        format!("/api/v1/players/{x}"),
        format!("/api/v1/displays/{x}/view"),
        format!("/api/v1/screens/{x}/view"),
    ] {
        let r = admin.get(&path).await;
        refused(&admin, r, StatusCode::NOT_FOUND, "not_found", before).await;
    }
    let posts = [
        (format!("/api/v1/tournaments/{x}/clock/start"), None),
        (
            format!("/api/v1/tournaments/{x}/entries"),
            Some(json!({"new_player": {"name": "Ghost"}})),
        ),
        (
            format!("/api/v1/tournaments/{t}/entries"),
            Some(json!({"player_id": x})),
        ),
        (
            format!("/api/v1/tournaments/{t}/busts"),
            Some(json!({"busts": [{"entry_id": x}]})),
        ),
        (format!("/api/v1/cash/tables/{x}/open"), None),
        (format!("/api/v1/cash/waitlist/{x}/call"), None),
        (
            "/api/v1/cash/waitlist".to_string(),
            Some(json!({"game_id": x, "name": "Nobody"})),
        ),
    ];
    for (path, body) in posts {
        let r = admin.send(Method::POST, &path, body).await;
        refused(&admin, r, StatusCode::NOT_FOUND, "not_found", before).await;
    }
    let r = admin
        .put(
            &format!("/api/v1/displays/{x}/screen"),
            json!({"screen_id": null}),
        )
        .await;
    refused(&admin, r, StatusCode::NOT_FOUND, "not_found", before).await;
    let r = admin.delete(&format!("/api/v1/announcements/{x}")).await;
    refused(&admin, r, StatusCode::NOT_FOUND, "not_found", before).await;
    // The player "Ghost" above was refused with the tournament: not added to the venue either.
    assert_eq!(admin.get("/api/v1/players").await.ok(), json!([]));
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_refused_with_413() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let before = admin.seq().await;
    let big = "x".repeat(1024 * 1024 + 10);
    let r = admin
        .post("/api/v1/players", json!({"name": "Big", "nickname": big}))
        .await;
    refused(
        &admin,
        r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        before,
    )
    .await;
    let r = admin
        .post(
            "/api/v1/cash/games",
            json!({"game": big, "small_blind": 1, "big_blind": 2}),
        )
        .await;
    refused(
        &admin,
        r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        before,
    )
    .await;
    // Just under the limit is parsed (and then judged on its merits).
    let fits = "y".repeat(1000);
    let r = admin
        .post("/api/v1/players", json!({"name": "Fits", "nickname": fits}))
        .await;
    assert!(r.status != StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    // The auth routes share the limit and the error shape.
    let r = node
        .anonymous()
        .post(
            "/api/v1/auth/login",
            json!({"username": big, "password": "x"}),
        )
        .await;
    r.error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
}

#[tokio::test]
async fn invalid_transitions_are_409_with_the_cores_message_and_nothing_half_applied() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let t = common::create_tournament(&admin, common::config("Transitions")).await;
    let tp = format!("/api/v1/tournaments/{t}");

    // Nobody registered: the clock cannot start.
    let before = admin.seq().await;
    let r = admin.act(&format!("{tp}/clock/start")).await;
    let m = refused(&admin, r, StatusCode::CONFLICT, "refused", before).await;
    assert!(m.contains("no entries yet"), "{m}");

    common::register_new(&admin, &t, "Ann").await;
    common::register_new(&admin, &t, "Ben").await;
    admin.act(&format!("{tp}/clock/start")).await.ok();
    admin.act(&format!("{tp}/clock/pause")).await.ok();
    let before = admin.seq().await;
    let r = admin.act(&format!("{tp}/clock/pause")).await;
    let m = refused(&admin, r, StatusCode::CONFLICT, "refused", before).await;
    assert_eq!(m, "the clock is already paused");
    let r = admin.act(&format!("{tp}/clock/start")).await;
    refused(&admin, r, StatusCode::CONFLICT, "refused", before).await;
    admin.act(&format!("{tp}/clock/resume")).await.ok();
    let before = admin.seq().await;
    let r = admin.act(&format!("{tp}/clock/resume")).await;
    refused(&admin, r, StatusCode::CONFLICT, "refused", before).await;

    // Late registration closes at the end of level 2: skip to level 3.
    admin.act(&format!("{tp}/clock/next")).await.ok();
    admin.act(&format!("{tp}/clock/next")).await.ok();
    let d = admin.get(&tp).await.ok();
    assert_eq!(d["clock"]["level_number"], 3, "{}", d["clock"]);
    assert_eq!(
        d["late_registration_closed"],
        "late registration closed at the end of level 2"
    );
    let players_before = admin.get("/api/v1/players").await.ok();
    let before = admin.seq().await;
    let r = admin
        .post(
            &format!("{tp}/entries"),
            json!({"new_player": {"name": "Late Larry"}}),
        )
        .await;
    let m = refused(&admin, r, StatusCode::CONFLICT, "refused", before).await;
    assert_eq!(
        m,
        "cannot register Late Larry: late registration closed at the end of level 2"
    );
    // The new player is part of the same command: refused with it, not added on the side.
    assert_eq!(admin.get("/api/v1/players").await.ok(), players_before);

    // More refusals, each leaving the log as it was.
    let r = admin.act(&format!("{tp}/busts/undo")).await;
    refused(&admin, r, StatusCode::CONFLICT, "refused", before).await;
    let r = admin.act(&format!("{tp}/deal")).await;
    assert!(r.status.is_client_error(), "{}", r.text);
    common::assert_error_shape(&r.body, &r.text);
    let r = admin.delete(&format!("{tp}/deal")).await;
    refused(&admin, r, StatusCode::CONFLICT, "refused", before).await;
    let r = admin
        .post(
            &format!("{tp}/clock/add-time"),
            json!({"seconds": 10_000_000}),
        )
        .await;
    refused(
        &admin,
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        before,
    )
    .await;
    admin.act(&format!("{tp}/cancel")).await.ok();
    let before = admin.seq().await;
    let r = admin.act(&format!("{tp}/clock/pause")).await;
    let m = refused(&admin, r, StatusCode::CONFLICT, "refused", before).await;
    assert!(m.contains("was cancelled"), "{m}");
}

#[tokio::test]
async fn healthz_and_metrics_report_the_log_the_commands_and_live_clients() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let anon = node.anonymous();
    let h = anon.get("/healthz").await.ok();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["seq"], 0);
    let t = common::create_tournament(&admin, common::config("Metrics")).await;
    common::register_new(&admin, &t, "Ann").await;
    admin
        .act(&format!("/api/v1/tournaments/{t}/clock/pause"))
        .await
        .error(StatusCode::CONFLICT, "refused");
    let h = anon.get("/healthz").await.ok();
    // Created (1), player added + entry registered (2).
    assert_eq!(h["seq"], 3, "{h}");
    assert_eq!(h["queue"], 0);

    let resp = reqwest::get(format!("{}/metrics", node.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    let metric = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
    };
    assert_eq!(metric("pvm_events_appended_total "), 3.0);
    assert_eq!(metric("pvm_commands_total{result=\"ok\"}"), 2.0);
    assert_eq!(metric("pvm_commands_total{result=\"refused\"}"), 1.0);
    assert_eq!(metric("pvm_log_sequence "), 3.0);
    assert!(metric("pvm_command_latency_seconds_sum ") > 0.0);
    assert!(metric("pvm_command_latency_seconds_max ") > 0.0);
    assert_eq!(metric("pvm_live_clients "), 0.0);
    // The writer's stages: two groups committed and answered, nothing else for it to do yet.
    let stage = |stage: &str| {
        metric(&format!(
            "pvm_engine_stage_seconds_count{{stage=\"{stage}\"}}"
        ))
    };
    assert_eq!(stage("committing"), 2.0);
    assert_eq!(stage("answered"), 2.0);
    assert_eq!(stage("housekeeping"), 0.0);
    // Three events are far from the first snapshot.
    assert_eq!(metric("pvm_snapshots_saved_total "), 0.0);
    // Every sample has its HELP and TYPE.
    for name in [
        "pvm_events_appended_total",
        "pvm_commands_total",
        "pvm_command_latency_seconds_sum",
        "pvm_live_clients",
        "pvm_live_views_kept",
        "pvm_live_ws_offers_total",
        "pvm_snapshots_saved_total",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
    }

    // A live client is counted while it is connected.
    let sse = reqwest::get(format!("{}/api/v1/events?topics=venue", node.base))
        .await
        .unwrap();
    let mut sse = sse;
    let first = sse.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("hello"));
    let text = reqwest::get(format!("{}/metrics", node.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("\npvm_live_clients 1\n"), "{text}");
    drop(sse);
}
