//! Venues, enrolment codes (one-time, expiring, redeemed atomically), the fleet list,
//! players and memberships, and the release catalog.

mod common;

use common::{Cloud, PASSWORD};
use pvm_cloud::{redeem_enrolment_code, EnrolmentError};
use serde_json::json;

async fn admin_with_venue(cloud: &Cloud) -> (String, String, String) {
    let (t, _) = cloud.api.signup("Alpha", "admin@example.com").await;
    let token = cloud.api.token("admin@example.com").await;
    let venue = cloud.api.venue(&token, &t, "Main room").await;
    (t, token, venue)
}

async fn redeem(cloud: &Cloud, code: &str) -> Result<pvm_cloud::EnrolmentGrant, EnrolmentError> {
    let mut client = cloud.app.state.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let grant = redeem_enrolment_code(&tx, code).await;
    tx.commit().await.unwrap();
    grant
}

#[tokio::test]
async fn an_enrolment_code_grants_its_venue_once() {
    let cloud = Cloud::start().await;
    let (t, token, venue) = admin_with_venue(&cloud).await;
    let created = cloud
        .api
        .post(
            &format!("/api/v1/tenants/{t}/venues/{venue}/enrolment-codes"),
            Some(&token),
            json!({}),
        )
        .await
        .expect(201);
    let code = created["code"].as_str().unwrap();
    assert_eq!(code.len(), 14, "XXXX-XXXX-XXXX: {code}");
    let expires: chrono::DateTime<chrono::Utc> =
        created["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = expires - chrono::Utc::now();
    assert!(ttl > chrono::Duration::hours(23) && ttl <= chrono::Duration::hours(24));
    // Only the digest is stored.
    let stored = cloud
        .pg
        .psql("SELECT encode(code_hash, 'hex') FROM enrolment_codes")
        .unwrap();
    assert!(!stored.contains(&code.replace('-', "")));

    // A redemption rolled back (the node could not be created) leaves the code usable.
    {
        let mut client = cloud.app.state.pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        redeem_enrolment_code(&tx, code).await.unwrap();
        tx.rollback().await.unwrap();
    }
    // Typed sloppily: lower case, no dashes.
    let grant = redeem(&cloud, &code.replace('-', "").to_lowercase())
        .await
        .unwrap();
    assert_eq!(grant.venue_id.to_string(), venue);
    assert_eq!(grant.tenant_id.to_string(), t);
    assert_eq!(grant.venue_name, "Main room");
    assert!(matches!(
        redeem(&cloud, code).await,
        Err(EnrolmentError::AlreadyUsed)
    ));
    assert!(matches!(
        redeem(&cloud, "0000-0000-0000").await,
        Err(EnrolmentError::Unknown)
    ));
    assert!(matches!(
        redeem(&cloud, "not a code").await,
        Err(EnrolmentError::Unknown)
    ));
    cloud.stop().await;
}

#[tokio::test]
async fn an_expired_enrolment_code_is_refused() {
    let cloud = Cloud::start_with(|c| c.enrolment_code_ttl_s = 1).await;
    let (t, token, venue) = admin_with_venue(&cloud).await;
    let code = cloud
        .api
        .post(
            &format!("/api/v1/tenants/{t}/venues/{venue}/enrolment-codes"),
            Some(&token),
            json!({}),
        )
        .await
        .expect(201)["code"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert!(matches!(
        redeem(&cloud, &code).await,
        Err(EnrolmentError::Expired(_))
    ));
    cloud.stop().await;
}

#[tokio::test]
async fn two_nodes_racing_with_one_code_cannot_both_enrol() {
    let cloud = Cloud::start().await;
    let (t, token, venue) = admin_with_venue(&cloud).await;
    let code = cloud
        .api
        .post(
            &format!("/api/v1/tenants/{t}/venues/{venue}/enrolment-codes"),
            Some(&token),
            json!({}),
        )
        .await
        .expect(201)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut racers = Vec::new();
    for _ in 0..4 {
        let pool = cloud.app.state.pool.clone();
        let code = code.clone();
        racers.push(tokio::spawn(async move {
            let mut client = pool.get().await.unwrap();
            let tx = client.transaction().await.unwrap();
            let result = redeem_enrolment_code(&tx, &code).await;
            tx.commit().await.unwrap();
            result.is_ok()
        }));
    }
    let mut wins = 0;
    for r in racers {
        wins += usize::from(r.await.unwrap());
    }
    assert_eq!(wins, 1);
    cloud.stop().await;
}

#[tokio::test]
async fn the_fleet_lists_nodes_with_status_and_online_from_the_heartbeat_age() {
    let cloud = Cloud::start_with(|c| c.heartbeat_interval_s = 30).await;
    let (t, token, venue) = admin_with_venue(&cloud).await;
    let other_venue = cloud.api.venue(&token, &t, "Annex").await;
    cloud
        .pg
        .psql(&format!(
            "INSERT INTO nodes (id, venue_id, tenant_id, hostname, version, last_heartbeat_at,
                                uptime_s, temperature_c, disk_free_bytes, disk_total_bytes,
                                last_synced_seq, last_event_seq, clock_offset_ms)
             VALUES
             ('00000000-0000-7000-8000-000000000001', '{venue}', '{t}', 'fresh', '1.2.0',
              now() - interval '20 seconds', 3600, 51.5, 1000, 4000, 90, 100, -3),
             ('00000000-0000-7000-8000-000000000002', '{venue}', '{t}', 'stale', '1.1.0',
              now() - interval '100 seconds', 10, NULL, 1, 2, 5, 5, NULL),
             ('00000000-0000-7000-8000-000000000003', '{other_venue}', '{t}', 'never', '',
              NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
        ))
        .unwrap();
    let all = cloud
        .api
        .get(&format!("/api/v1/tenants/{t}/nodes"), Some(&token))
        .await
        .expect(200);
    let by_host = |host: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|n| n["hostname"] == host)
            .unwrap()
            .clone()
    };
    let fresh = by_host("fresh");
    assert_eq!(fresh["online"], true);
    assert_eq!(fresh["venue_name"], "Main room");
    assert_eq!(fresh["uptime_s"], 3600);
    assert_eq!(fresh["temperature_c"], 51.5);
    assert_eq!(fresh["disk_free_bytes"], 1000);
    assert_eq!(fresh["sync_lag"], 10);
    assert_eq!(fresh["clock_offset_ms"], -3);
    assert_eq!(by_host("stale")["online"], false, "100 s > 3 × 30 s");
    assert_eq!(by_host("never")["online"], false);
    assert!(by_host("never")["last_heartbeat_at"].is_null());

    let venue_nodes = cloud
        .api
        .get(
            &format!("/api/v1/tenants/{t}/venues/{other_venue}/nodes"),
            Some(&token),
        )
        .await
        .expect(200);
    assert_eq!(venue_nodes.as_array().unwrap().len(), 1);
    assert_eq!(venue_nodes[0]["hostname"], "never");
    let one = cloud
        .api
        .get(
            &format!("/api/v1/tenants/{t}/nodes/00000000-0000-7000-8000-000000000002"),
            Some(&token),
        )
        .await
        .expect(200);
    assert_eq!(one["version"], "1.1.0");
    // A venue with nodes cannot be deleted; one without can.
    cloud
        .api
        .delete(&format!("/api/v1/tenants/{t}/venues/{venue}"), Some(&token))
        .await
        .expect_error(409, "conflict");
    cloud
        .pg
        .psql("DELETE FROM nodes WHERE hostname <> 'never'")
        .unwrap();
    assert_eq!(
        cloud
            .api
            .delete(&format!("/api/v1/tenants/{t}/venues/{venue}"), Some(&token))
            .await
            .status,
        204
    );
    cloud.stop().await;
}

#[tokio::test]
async fn players_are_universal_accounts_with_a_membership_per_venue() {
    let cloud = Cloud::start().await;
    let api = &cloud.api;
    let (t, token, venue) = admin_with_venue(&cloud).await;
    let annex = api.venue(&token, &t, "Annex").await;
    let players = format!("/api/v1/tenants/{t}/venues/{venue}/players");
    let annex_players = format!("/api/v1/tenants/{t}/venues/{annex}/players");

    // Staff register Pat at two venues by e-mail: one universal player.
    let first = api
        .post(
            &players,
            Some(&token),
            json!({"display_name": "Pat", "email": "pat@example.com", "membership_number": "17"}),
        )
        .await
        .expect(201);
    let second = api
        .post(
            &annex_players,
            Some(&token),
            json!({"display_name": "Pat", "email": "PAT@example.com"}),
        )
        .await
        .expect(201);
    assert_eq!(first["player_id"], second["player_id"]);
    assert_eq!(first["has_account"], false);
    api.post(
        &players,
        Some(&token),
        json!({"display_name": "Pat again", "email": "pat@example.com"}),
    )
    .await
    .expect_error(409, "conflict");
    api.post(
        &players,
        Some(&token),
        json!({"display_name": "Sam", "membership_number": "17"}),
    )
    .await
    .expect_error(409, "conflict");

    // Pat signs up: the account takes over the player the staff created.
    let account = api
        .post(
            "/api/v1/players",
            None,
            json!({"email": "pat@example.com", "password": PASSWORD, "display_name": "Pat"}),
        )
        .await
        .expect(201);
    assert_eq!(account["player_id"], first["player_id"]);
    let me = api
        .get("/api/v1/me", Some(&api.token("pat@example.com").await))
        .await
        .expect(200);
    assert_eq!(me["player_id"], first["player_id"]);
    assert_eq!(me["memberships"], json!([]));

    let pat = format!("{players}/{}", first["player_id"].as_str().unwrap());
    let suspended = api
        .patch(
            &pat,
            Some(&token),
            json!({"active": false, "membership_number": "18"}),
        )
        .await
        .expect(200);
    assert_eq!(suspended["active"], false);
    assert_eq!(suspended["membership_number"], "18");
    assert_eq!(suspended["has_account"], true);
    assert_eq!(api.delete(&pat, Some(&token)).await.status, 204);
    api.get(&pat, Some(&token))
        .await
        .expect_error(404, "not_found");
    // Still a member of the annex.
    assert_eq!(
        api.get(&annex_players, Some(&token))
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    api.post(
        "/api/v1/players",
        None,
        json!({"email": "pat@example.com", "password": PASSWORD, "display_name": "Pat"}),
    )
    .await
    .expect_error(409, "email_taken");
    cloud.stop().await;
}

#[tokio::test]
async fn only_operators_publish_releases_and_anyone_signed_in_lists_them_by_channel() {
    let cloud = Cloud::start_with(|c| c.operator_email = vec!["ops@example.com".into()]).await;
    let api = &cloud.api;
    api.signup("Platform", "ops@example.com").await;
    api.signup("Alpha", "admin@example.com").await;
    let ops = api.token("ops@example.com").await;
    let admin = api.token("admin@example.com").await;
    let release = |version: &str, channel: &str| {
        json!({"version": version, "channel": channel,
               "bundle_url": format!("https://updates.example.com/pvm-{version}.raucb"),
               "sha256": "ab".repeat(32), "notes": "fixes"})
    };
    api.post("/api/v1/releases", Some(&admin), release("1.0.0", "stable"))
        .await
        .expect_error(403, "forbidden");
    api.post("/api/v1/releases", Some(&ops), release("1.0.0", "stable"))
        .await
        .expect(201);
    api.post(
        "/api/v1/releases",
        Some(&ops),
        release("1.1.0-beta.1", "beta"),
    )
    .await
    .expect(201);
    api.post("/api/v1/releases", Some(&ops), release("1.0.0", "stable"))
        .await
        .expect_error(409, "conflict");
    let mut bad = release("1.0.1", "stable");
    bad["sha256"] = json!("XYZ");
    api.post("/api/v1/releases", Some(&ops), bad)
        .await
        .expect_error(422, "invalid");

    let stable = api
        .get("/api/v1/releases?channel=stable", Some(&admin))
        .await
        .expect(200);
    assert_eq!(stable.as_array().unwrap().len(), 1);
    assert_eq!(stable[0]["version"], "1.0.0");
    let all = api.get("/api/v1/releases", Some(&admin)).await.expect(200);
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["version"], "1.1.0-beta.1", "newest first");
    api.get("/api/v1/releases", None)
        .await
        .expect_error(401, "unauthorized");
    cloud.stop().await;
}
