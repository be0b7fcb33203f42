//! What the console's System page reads and does, through a real node: the network facts
//! (host name, mDNS name, interfaces and which serve the console) and the staff accounts
//! (create, change role, disable, reset password), with the role each needs.

mod common;

use common::{TestNode, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn network_shows_the_host_interfaces_and_which_one_serves_the_console() {
    let mut node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let dealer = node.user(&admin, "dana", "dealer").await;

    node.anonymous()
        .get("/api/v1/system/network")
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");

    let net = dealer.get("/api/v1/system/network").await.ok();
    let expected_host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    assert_eq!(net["hostname"], expected_host.as_str());
    // The test node does not announce itself.
    assert_eq!(net["mdns_name"], Value::Null);
    let addr = node.running().addr;
    assert_eq!(net["listen"], addr.to_string().as_str());
    let urls: Vec<String> = serde_json::from_value(net["console_urls"].clone()).unwrap();
    assert_eq!(urls, node.running().console_urls);
    assert!(urls.contains(&format!("http://{addr}")), "{urls:?}");

    // Bound to 127.0.0.1: the loopback interface serves the console and no other does.
    let ifaces = net["interfaces"].as_array().unwrap();
    let serving: Vec<&str> = ifaces
        .iter()
        .filter(|i| i["serves_console"] == true)
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(serving.len(), 1, "{net}");
    let lo = ifaces.iter().find(|i| i["name"] == serving[0]).unwrap();
    assert_eq!(lo["loopback"], true);
    assert!(
        lo["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["ip"] == "127.0.0.1" && a["family"] == "ipv4" && a["prefix_len"] == 8),
        "{lo}"
    );

    // It is in the OpenAPI document with the rest of the API.
    let doc = node.anonymous().get("/api/v1/openapi.json").await.ok();
    assert!(doc["paths"]["/api/v1/system/network"]["get"].is_object());
    node.stop().await;
}

#[tokio::test]
async fn an_admin_manages_staff_accounts_and_no_one_else_can() {
    let mut node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let floor = node.user(&admin, "fergal", "floor").await;

    // Only an admin creates, changes or resets accounts.
    let attempt = json!({"username": "sneaky", "role": "admin", "password": PASSWORD});
    floor
        .post("/api/v1/users", attempt)
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    floor
        .send(
            reqwest::Method::PATCH,
            "/api/v1/users/fergal",
            Some(json!({"role": "admin"})),
        )
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    floor
        .put(
            "/api/v1/users/boss/password",
            json!({"password": "taken over!"}),
        )
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");

    // Create a dealer, promote them to floor, and they can now run the clock's commands.
    let created = admin
        .post(
            "/api/v1/users",
            json!({"username": "Deirdre", "display_name": "Deirdre O.", "role": "dealer", "password": PASSWORD}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["username"], "deirdre");
    let promoted = admin
        .send(
            reqwest::Method::PATCH,
            "/api/v1/users/deirdre",
            Some(json!({"role": "floor"})),
        )
        .await
        .ok();
    assert_eq!(promoted["role"], "floor");
    let deirdre = node.login("deirdre").await;
    let me = deirdre.get("/api/v1/auth/me").await.ok();
    assert_eq!(me["user"]["role"], "floor");

    // A reset password works at once and ends the sessions opened with the old one.
    admin
        .put(
            "/api/v1/users/deirdre/password",
            json!({"password": "new-pass-456"}),
        )
        .await
        .ok();
    deirdre
        .get("/api/v1/auth/me")
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    let relogin = node
        .anonymous()
        .post(
            "/api/v1/auth/login",
            json!({"username": "deirdre", "password": "new-pass-456"}),
        )
        .await;
    assert_eq!(relogin.status, StatusCode::OK, "{}", relogin.text);

    // Disabled: the account stays listed, but cannot sign in.
    admin
        .send(
            reqwest::Method::PATCH,
            "/api/v1/users/deirdre",
            Some(json!({"disabled": true})),
        )
        .await
        .ok();
    let refused = node
        .anonymous()
        .post(
            "/api/v1/auth/login",
            json!({"username": "deirdre", "password": "new-pass-456"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let users = admin.get("/api/v1/users").await.ok();
    let listed = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "deirdre")
        .unwrap();
    assert_eq!(listed["disabled"], true);
    assert_eq!(listed["display_name"], "Deirdre O.");
    node.stop().await;
}
