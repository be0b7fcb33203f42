//! Tenant isolation and role checks. Isolation is checked systematically: every
//! tenant-scoped route in the OpenAPI document must appear in the table below, and each is
//! called by tenant A's admin with tenant B's ids (and with A's tenant id but B's object
//! ids) and must answer 404, leaving B's data unchanged.

mod common;

use common::{Cloud, PASSWORD};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

/// Every tenant-scoped route: method, path template (as in the OpenAPI document), body.
fn tenant_routes() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("get", "/api/v1/tenants/{tenant_id}", None),
        (
            "patch",
            "/api/v1/tenants/{tenant_id}",
            Some(json!({"name": "taken over"})),
        ),
        ("get", "/api/v1/tenants/{tenant_id}/users", None),
        (
            "post",
            "/api/v1/tenants/{tenant_id}/users",
            Some(json!({"email": "intruder@example.com", "role": "admin", "password": PASSWORD})),
        ),
        ("get", "/api/v1/tenants/{tenant_id}/users/{user_id}", None),
        (
            "patch",
            "/api/v1/tenants/{tenant_id}/users/{user_id}",
            Some(json!({"role": "player"})),
        ),
        (
            "delete",
            "/api/v1/tenants/{tenant_id}/users/{user_id}",
            None,
        ),
        ("get", "/api/v1/tenants/{tenant_id}/venues", None),
        (
            "post",
            "/api/v1/tenants/{tenant_id}/venues",
            Some(json!({"name": "Intruder"})),
        ),
        ("get", "/api/v1/tenants/{tenant_id}/venues/{venue_id}", None),
        (
            "patch",
            "/api/v1/tenants/{tenant_id}/venues/{venue_id}",
            Some(json!({"name": "taken"})),
        ),
        (
            "delete",
            "/api/v1/tenants/{tenant_id}/venues/{venue_id}",
            None,
        ),
        (
            "post",
            "/api/v1/tenants/{tenant_id}/venues/{venue_id}/enrolment-codes",
            Some(json!({})),
        ),
        (
            "get",
            "/api/v1/tenants/{tenant_id}/venues/{venue_id}/players",
            None,
        ),
        (
            "post",
            "/api/v1/tenants/{tenant_id}/venues/{venue_id}/players",
            Some(json!({"display_name": "Intruder", "email": "bella@example.com"})),
        ),
        (
            "get",
            "/api/v1/tenants/{tenant_id}/venues/{venue_id}/players/{player_id}",
            None,
        ),
        (
            "patch",
            "/api/v1/tenants/{tenant_id}/venues/{venue_id}/players/{player_id}",
            Some(json!({"active": false})),
        ),
        (
            "delete",
            "/api/v1/tenants/{tenant_id}/venues/{venue_id}/players/{player_id}",
            None,
        ),
        (
            "get",
            "/api/v1/tenants/{tenant_id}/venues/{venue_id}/nodes",
            None,
        ),
        ("get", "/api/v1/tenants/{tenant_id}/nodes", None),
        ("get", "/api/v1/tenants/{tenant_id}/nodes/{node_id}", None),
        // The sync side's (sync/commands.rs); where it is absent the fallback's 404 answers.
        (
            "post",
            "/api/v1/tenants/{tenant_id}/nodes/{node_id}/commands",
            Some(json!({"kind": "reboot", "force": true})),
        ),
    ]
}

struct World {
    tenant: String,
    admin_token: String,
    venue: String,
    user: String,
    player: String,
    node: String,
}

/// A tenant with an admin, a venue, a floor user, a player with a membership and a node.
async fn world(cloud: &Cloud, name: &str, prefix: &str) -> World {
    let api = &cloud.api;
    let admin_email = format!("{prefix}admin@example.com");
    let (tenant, _) = api.signup(name, &admin_email).await;
    let admin_token = api.token(&admin_email).await;
    let venue = api
        .venue(&admin_token, &tenant, &format!("{name} room"))
        .await;
    let user = api
        .add_user(
            &admin_token,
            &tenant,
            &format!("{prefix}floor@example.com"),
            "floor",
        )
        .await;
    let player = api
        .post(
            &format!("/api/v1/tenants/{tenant}/venues/{venue}/players"),
            Some(&admin_token),
            json!({"display_name": format!("{prefix} player"), "email": format!("{prefix}player@example.com"),
                   "membership_number": "0001"}),
        )
        .await
        .expect(201)["player_id"]
        .as_str()
        .unwrap()
        .to_string();
    let node = uuid::Uuid::now_v7().to_string();
    cloud
        .pg
        .psql(&format!(
            "INSERT INTO nodes (id, venue_id, tenant_id, hostname, last_heartbeat_at)
             VALUES ('{node}', '{venue}', '{tenant}', '{prefix}-pi', now())"
        ))
        .unwrap();
    World {
        tenant,
        admin_token,
        venue,
        user,
        player,
        node,
    }
}

fn fill(template: &str, ids: &HashMap<&str, &str>) -> String {
    let mut path = template.to_string();
    for (name, id) in ids {
        path = path.replace(&format!("{{{name}}}"), id);
    }
    path
}

#[tokio::test]
async fn every_tenant_route_answers_404_for_another_tenants_ids_and_changes_nothing() {
    let cloud = Cloud::start().await;
    let api = &cloud.api;
    let a = world(&cloud, "Alpha", "a").await;
    let b = world(&cloud, "Bravo", "b").await;

    // The table covers every tenant-scoped route the service has.
    let doc = api.get("/api/v1/openapi.json", None).await.expect(200);
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with("/api/v1/tenants/{tenant_id}"))
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let tested: BTreeSet<(String, String)> = tenant_routes()
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented.difference(&tested).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "tenant routes without an isolation check"
    );

    let theirs: HashMap<&str, &str> = HashMap::from([
        ("tenant_id", b.tenant.as_str()),
        ("venue_id", b.venue.as_str()),
        ("user_id", b.user.as_str()),
        ("player_id", b.player.as_str()),
        ("node_id", b.node.as_str()),
    ]);
    // Our own tenant id, their objects: guessing ids must not help either.
    let mixed: HashMap<&str, &str> = HashMap::from([
        ("tenant_id", a.tenant.as_str()),
        ("venue_id", b.venue.as_str()),
        ("user_id", b.user.as_str()),
        ("player_id", b.player.as_str()),
        ("node_id", b.node.as_str()),
    ]);
    // Our own tenant and venue, their player.
    let mixed_venue: HashMap<&str, &str> = HashMap::from([
        ("tenant_id", a.tenant.as_str()),
        ("venue_id", a.venue.as_str()),
        ("user_id", b.user.as_str()),
        ("player_id", b.player.as_str()),
        ("node_id", b.node.as_str()),
    ]);
    let b_ids: BTreeSet<&str> = theirs.values().copied().collect();
    let mut checked = 0;
    for ids in [&theirs, &mixed, &mixed_venue] {
        for (method, template, body) in tenant_routes() {
            let path = fill(template, ids);
            let touches_b = b_ids.iter().any(|id| path.contains(id));
            if !touches_b {
                continue;
            }
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = api
                .call(method.clone(), &path, Some(&a.admin_token), body)
                .await;
            assert_eq!(
                resp.status, 404,
                "{method} {path} answered {}: {}",
                resp.status, resp.body
            );
            assert_eq!(resp.code(), "not_found", "{method} {path}: {}", resp.body);
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} calls checked");

    // Lists in our own tenant show none of theirs.
    for path in [
        format!("/api/v1/tenants/{}/venues", a.tenant),
        format!("/api/v1/tenants/{}/users", a.tenant),
        format!("/api/v1/tenants/{}/nodes", a.tenant),
        format!("/api/v1/tenants/{}/venues/{}/players", a.tenant, a.venue),
        "/api/v1/tenants".to_string(),
    ] {
        let text = api
            .get(&path, Some(&a.admin_token))
            .await
            .expect(200)
            .to_string();
        for id in &b_ids {
            assert!(!text.contains(id), "{path} shows tenant B's {id}");
        }
    }

    // B is untouched.
    let bt = &b.admin_token;
    let tenant = api
        .get(&format!("/api/v1/tenants/{}", b.tenant), Some(bt))
        .await
        .expect(200);
    assert_eq!(tenant["name"], "Bravo");
    let users = api
        .get(&format!("/api/v1/tenants/{}/users", b.tenant), Some(bt))
        .await
        .expect(200);
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert!(users
        .iter()
        .any(|u| u["user_id"] == b.user.as_str() && u["role"] == "floor"));
    let venue = api
        .get(
            &format!("/api/v1/tenants/{}/venues/{}", b.tenant, b.venue),
            Some(bt),
        )
        .await
        .expect(200);
    assert_eq!(venue["name"], "Bravo room");
    let players = api
        .get(
            &format!("/api/v1/tenants/{}/venues/{}/players", b.tenant, b.venue),
            Some(bt),
        )
        .await
        .expect(200);
    assert_eq!(players.as_array().unwrap().len(), 1);
    assert_eq!(players[0]["active"], true);
    assert_eq!(players[0]["display_name"], "b player");
    assert_eq!(
        cloud
            .pg
            .psql(&format!(
                "SELECT count(*) FROM enrolment_codes WHERE tenant_id = '{}'",
                b.tenant
            ))
            .unwrap(),
        "0"
    );
    cloud.stop().await;
}

#[tokio::test]
async fn each_role_may_do_only_what_it_is_allowed() {
    let cloud = Cloud::start().await;
    let api = &cloud.api;
    let (t, _) = api.signup("Alpha", "admin@example.com").await;
    let admin = api.token("admin@example.com").await;
    let venue = api.venue(&admin, &t, "Main").await;
    let mut tokens = HashMap::new();
    for role in ["manager", "floor", "dealer", "player"] {
        let email = format!("{role}@example.com");
        api.add_user(&admin, &t, &email, role).await;
        tokens.insert(role, api.token(&email).await);
    }
    let manager_id = api
        .get(&format!("/api/v1/tenants/{t}/users"), Some(&admin))
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["role"] == "manager")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let codes = format!("/api/v1/tenants/{t}/venues/{venue}/enrolment-codes");
    let venues = format!("/api/v1/tenants/{t}/venues");
    let users = format!("/api/v1/tenants/{t}/users");
    let players = format!("/api/v1/tenants/{t}/venues/{venue}/players");
    let nodes = format!("/api/v1/tenants/{t}/nodes");

    // floor: players and fleet yes; enrolment codes, venues, users no.
    let floor = tokens["floor"].as_str();
    api.post(&codes, Some(floor), json!({}))
        .await
        .expect_error(403, "forbidden");
    api.post(&venues, Some(floor), json!({"name": "X"}))
        .await
        .expect_error(403, "forbidden");
    api.get(&users, Some(floor))
        .await
        .expect_error(403, "forbidden");
    api.get(&nodes, Some(floor)).await.expect(200);
    let player = api
        .post(&players, Some(floor), json!({"display_name": "Walk-in"}))
        .await
        .expect(201);
    api.delete(
        &format!("{players}/{}", player["player_id"].as_str().unwrap()),
        Some(floor),
    )
    .await
    .expect_error(403, "forbidden");
    // dealer: may read venues, nothing about players or nodes.
    let dealer = tokens["dealer"].as_str();
    api.get(&venues, Some(dealer)).await.expect(200);
    api.get(&players, Some(dealer))
        .await
        .expect_error(403, "forbidden");
    api.get(&nodes, Some(dealer))
        .await
        .expect_error(403, "forbidden");
    // player: sees the tenant exists, nothing inside.
    let player_token = tokens["player"].as_str();
    api.get(&format!("/api/v1/tenants/{t}"), Some(player_token))
        .await
        .expect(200);
    api.get(&venues, Some(player_token))
        .await
        .expect_error(403, "forbidden");
    // manager: venues and codes yes; users no.
    let manager = tokens["manager"].as_str();
    api.post(&venues, Some(manager), json!({"name": "Second"}))
        .await
        .expect(201);
    api.post(&codes, Some(manager), json!({})).await.expect(201);
    api.get(&users, Some(manager)).await.expect(200);
    api.post(
        &users,
        Some(manager),
        json!({"email": "new@example.com", "role": "floor", "password": PASSWORD}),
    )
    .await
    .expect_error(403, "forbidden");
    api.patch(
        &format!("{users}/{manager_id}"),
        Some(manager),
        json!({"role": "admin"}),
    )
    .await
    .expect_error(403, "forbidden");
    api.patch(
        &format!("/api/v1/tenants/{t}"),
        Some(manager),
        json!({"name": "Mine"}),
    )
    .await
    .expect_error(403, "forbidden");
    cloud.stop().await;
}

#[tokio::test]
async fn a_tenant_always_keeps_an_admin() {
    let cloud = Cloud::start().await;
    let api = &cloud.api;
    let (t, admin_id) = api.signup("Alpha", "admin@example.com").await;
    let admin = api.token("admin@example.com").await;
    let me = format!("/api/v1/tenants/{t}/users/{admin_id}");
    api.patch(&me, Some(&admin), json!({"role": "manager"}))
        .await
        .expect_error(409, "conflict");
    api.delete(&me, Some(&admin))
        .await
        .expect_error(409, "conflict");
    let other = api
        .add_user(&admin, &t, "second@example.com", "floor")
        .await;
    api.patch(
        &format!("/api/v1/tenants/{t}/users/{other}"),
        Some(&admin),
        json!({"role": "admin"}),
    )
    .await
    .expect(200);
    let demoted = api
        .patch(&me, Some(&admin), json!({"role": "manager"}))
        .await
        .expect(200);
    assert_eq!(demoted["role"], "manager");
    cloud.stop().await;
}

#[tokio::test]
async fn one_user_holds_different_roles_in_different_tenants() {
    let cloud = Cloud::start().await;
    let api = &cloud.api;
    let (a, _) = api.signup("Alpha", "alpha@example.com").await;
    let (b, _) = api.signup("Bravo", "bravo@example.com").await;
    let alpha = api.token("alpha@example.com").await;
    api.add_user(&alpha, &a, "sam@example.com", "floor").await;
    let bravo = api.token("bravo@example.com").await;
    // Sam already has an account: joins Bravo without a password.
    api.post(
        &format!("/api/v1/tenants/{b}/users"),
        Some(&bravo),
        json!({"email": "Sam@Example.com", "role": "manager"}),
    )
    .await
    .expect(201);
    let session = api.login("sam@example.com").await;
    let roles: HashMap<String, String> = session["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["tenant_id"].as_str().unwrap().into(),
                m["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(roles[&a], "floor");
    assert_eq!(roles[&b], "manager");
    let sam = session["access_token"].as_str().unwrap();
    api.post(
        &format!("/api/v1/tenants/{a}/venues"),
        Some(sam),
        json!({"name": "X"}),
    )
    .await
    .expect_error(403, "forbidden");
    api.post(
        &format!("/api/v1/tenants/{b}/venues"),
        Some(sam),
        json!({"name": "X"}),
    )
    .await
    .expect(201);
    cloud.stop().await;
}

#[tokio::test]
async fn a_removed_member_loses_access_at_once_though_their_token_lives_on() {
    let cloud = Cloud::start().await;
    let api = &cloud.api;
    let (t, _) = api.signup("Alpha", "admin@example.com").await;
    let admin = api.token("admin@example.com").await;
    let floor_id = api.add_user(&admin, &t, "floor@example.com", "floor").await;
    let floor = api.token("floor@example.com").await;
    let nodes = format!("/api/v1/tenants/{t}/nodes");
    api.get(&nodes, Some(&floor)).await.expect(200);
    assert_eq!(
        api.delete(
            &format!("/api/v1/tenants/{t}/users/{floor_id}"),
            Some(&admin)
        )
        .await
        .status,
        204
    );
    api.get(&nodes, Some(&floor))
        .await
        .expect_error(404, "not_found");
    cloud.stop().await;
}
