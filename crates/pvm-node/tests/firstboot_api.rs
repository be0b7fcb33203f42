//! `GET /api/v1/system/firstboot` serves the report pvm-firstboot wrote (the real one, made by
//! the pvm-firstboot library from a pvm.toml with mistakes), without a session.

mod common;

use common::{test_config, TestNode};
use std::fs;

#[tokio::test]
async fn the_first_boot_report_is_served_with_its_mistakes_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let autoboot = dir.path().join("autoboot");
    fs::create_dir_all(&autoboot).unwrap();
    fs::write(
        autoboot.join("pvm.toml"),
        "hostname = \"club7\"\ncolour = \"red\"\n",
    )
    .unwrap();
    let report = pvm_firstboot::run(&pvm_firstboot::Options {
        root,
        autoboot,
        set_kernel_hostname: false,
    });
    let path = dir.path().join("run/pvm/firstboot.json");
    pvm_firstboot::write_report(&path, &report).unwrap();

    let mut config = test_config(&dir.path().join("data"));
    config.firstboot_report = path;
    let node = TestNode::start_with(dir, config).await;
    let body = node.anonymous().get("/api/v1/system/firstboot").await.ok();
    assert_eq!(body["ok"], false);
    assert_eq!(body["available"], true);
    assert_eq!(body["found"], true);
    assert_eq!(body["applied"], serde_json::json!(["hostname"]));
    assert_eq!(body["errors"][0]["key"], "colour");
    assert_eq!(body["errors"][0]["line"], 2);
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("unknown setting"));

    // The TV's setup screen lists the same mistake, under the setup code.
    let hdmi = pvm_core::displays::HDMI_DISPLAY_ID;
    let view = node
        .anonymous()
        .get(&format!("/api/v1/displays/{hdmi}/view"))
        .await
        .ok();
    assert_eq!(view["content"]["type"], "setup", "{view}");
    let notices = view["content"]["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{view}");
    let notice = notices[0].as_str().unwrap();
    assert!(
        notice.starts_with("Line 2") && notice.contains("colour"),
        "{notice}"
    );
    assert!(view["content"]["notices_title"]
        .as_str()
        .unwrap()
        .contains("pvm.toml"));
}

#[tokio::test]
async fn without_a_report_there_is_nothing_to_show() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir.path().join("data"));
    config.firstboot_report = dir.path().join("absent.json");
    let node = TestNode::start_with(dir, config).await;
    let body = node.anonymous().get("/api/v1/system/firstboot").await.ok();
    assert_eq!(body["ok"], true);
    assert_eq!(body["available"], false);
    assert_eq!(body["errors"], serde_json::json!([]));
    let hdmi = pvm_core::displays::HDMI_DISPLAY_ID;
    let view = node
        .anonymous()
        .get(&format!("/api/v1/displays/{hdmi}/view"))
        .await
        .ok();
    assert_eq!(view["content"]["notices"], serde_json::json!([]), "{view}");
}

#[tokio::test]
async fn a_garbled_report_is_shown_as_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("firstboot.json");
    fs::write(&path, "{not json").unwrap();
    let mut config = test_config(&dir.path().join("data"));
    config.firstboot_report = path;
    let node = TestNode::start_with(dir, config).await;
    let body = node.anonymous().get("/api/v1/system/firstboot").await.ok();
    assert_eq!(body["ok"], false);
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("cannot be read"));
}
