//! `GET /api/v1/system/firstboot` serves the report pvm-firstboot wrote (the real one, made by
//! the pvm-firstboot library from a pvm.toml with mistakes), without a session; and the venue
//! name pvm.toml gives reaches the TV's setup screen through the environment file it writes.

mod common;

use common::{test_config, TestNode};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

/// pvm-firstboot's real run on a card whose p1 holds `pvm_toml`; the settings go under
/// `dir/root`. Returns that root and the report.
fn first_boot(dir: &Path, pvm_toml: &str) -> (PathBuf, pvm_firstboot::Report) {
    let root = dir.join("root");
    let autoboot = dir.join("autoboot");
    fs::create_dir_all(&autoboot).unwrap();
    fs::write(autoboot.join("pvm.toml"), pvm_toml).unwrap();
    let report = pvm_firstboot::run(&pvm_firstboot::Options {
        root: root.clone(),
        autoboot,
        set_kernel_hostname: false,
    });
    (root, report)
}

/// What the HDMI display (the TV's kiosk) is given to draw.
async fn hdmi_view(node: &TestNode) -> serde_json::Value {
    let hdmi = pvm_core::displays::HDMI_DISPLAY_ID;
    node.anonymous()
        .get(&format!("/api/v1/displays/{hdmi}/view"))
        .await
        .ok()
}

#[tokio::test]
async fn the_first_boot_report_is_served_with_its_mistakes_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (_, report) = first_boot(dir.path(), "hostname = \"club7\"\ncolour = \"red\"\n");
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
    let view = hdmi_view(&node).await;
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
    let view = hdmi_view(&node).await;
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

/// The assignments of a systemd `EnvironmentFile` as pvm-firstboot writes it: `KEY=value` or
/// `KEY="value"` with `\\`, `\"` and `\$` escaped inside the quotes.
fn environment_file(path: &Path) -> HashMap<String, String> {
    let text = fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(quoted) => {
                    let mut out = String::new();
                    let mut chars = quoted.chars();
                    while let Some(c) = chars.next() {
                        out.push(if c == '\\' { chars.next().unwrap() } else { c });
                    }
                    out
                }
                None => value.to_owned(),
            };
            (key.to_owned(), value)
        })
        .collect()
}

#[tokio::test]
async fn the_venue_name_from_pvm_toml_is_the_setup_screens_title() {
    let dir = tempfile::tempdir().unwrap();
    let (root, report) = first_boot(dir.path(), "venue_name = \"The \\\"River\\\" Room\"\n");
    assert_eq!(report.applied, ["venue_name"], "{report:?}");

    // The node reads the file systemd hands it as its environment, through its own loader.
    let env = environment_file(&pvm_firstboot::Target::new(&root).node_env());
    let loaded = pvm_node::config::load_with_default_file(
        [OsString::from("pvm-node")],
        &|name| env.get(name).cloned(),
        &dir.path().join("no-node.toml"),
    )
    .unwrap();
    assert_eq!(loaded.venue_name(), Some("The \"River\" Room"));
    let mut config = test_config(&dir.path().join("data"));
    config.node_name = loaded.node_name;
    let node = TestNode::start_with(dir, config).await;

    let view = hdmi_view(&node).await;
    assert_eq!(view["content"]["type"], "setup", "{view}");
    assert_eq!(
        view["content"]["title"], "Welcome to The \"River\" Room",
        "{view}"
    );
}
