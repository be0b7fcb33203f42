//! System updates through the real node: upload or fetch a signed bundle over HTTP, install
//! it into the other slot, reboot into it for a trial, and let the node's health check at
//! the next start commit it or go back.
//!
//! The machine is made of files: p1 with autoboot.txt, the four slot partitions, the
//! trusted keys, the data directory. The Pi firmware cannot run here, so it is mocked by
//! `pvm_ota::FileBootloader` (the crate's one firmware stand-in): a reboot only records the
//! request, and `simulate_boot` plays the firmware's part (one-shot `[tryboot]`, else
//! `[all]`) before the test starts the node again. Everything else is the real node, the
//! real agent and real sockets.

mod common;

use common::{Api, TestNode};
use pvm_node::update::config::FirmwareKind;
use pvm_ota::bundle::{self, BundleSpec};
use pvm_ota::{keys, Autoboot, Bootloader, FileBootloader, KeyChanges, PayloadKind};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SLOT_LEN: usize = 1 << 20;

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// A file-backed A/B machine running version 1.0.0 from slot A (boot partition 2).
struct Machine {
    root: PathBuf,
}

impl Machine {
    fn new(root: &Path) -> Machine {
        for d in ["p1", "keys", "run", "data"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        let (pub_text, sk_text) = keys::generate_keypair(None).unwrap();
        fs::write(root.join("keys/release.pub"), pub_text).unwrap();
        fs::write(root.join("release.key"), sk_text).unwrap();
        for p in ["p2", "p3", "p4", "p5"] {
            fs::write(root.join(p), vec![0xEE; SLOT_LEN]).unwrap();
        }
        fs::write(root.join("version"), "1.0.0\n").unwrap();
        Autoboot {
            normal: 2,
            tryboot: 2,
        }
        .write(&root.join("p1/autoboot.txt"))
        .unwrap();
        FileBootloader::new(root.join("fw"), 2).unwrap();
        Machine {
            root: root.to_path_buf(),
        }
    }

    fn config(&self) -> pvm_node::config::NodeConfig {
        let mut c = common::test_config(&self.root.join("data"));
        let u = &mut c.update;
        u.keys_dir = self.root.join("keys");
        u.autoboot = self.root.join("p1/autoboot.txt");
        u.boot_a = self.root.join("p2");
        u.boot_b = self.root.join("p3");
        u.system_a = self.root.join("p4");
        u.system_b = self.root.join("p5");
        u.firmware = FirmwareKind::Files(self.root.join("fw"));
        u.version_file = self.root.join("version");
        u.kiosk_frame_file = Some(self.root.join("run/kiosk-frame"));
        u.health_deadline_secs = 3;
        c
    }

    fn firmware(&self) -> FileBootloader {
        FileBootloader {
            dir: self.root.join("fw"),
        }
    }

    fn autoboot(&self) -> Autoboot {
        Autoboot::read(&self.root.join("p1/autoboot.txt")).unwrap()
    }

    fn reboot_request(&self) -> Option<String> {
        fs::read_to_string(self.root.join("fw/reboot-request")).ok()
    }

    /// Plays the firmware at power-on and the system's own boot: `/run` starts empty.
    fn boot(&self) -> pvm_ota::BootStatus {
        let _ = fs::remove_file(self.root.join("run/kiosk-frame"));
        self.firmware()
            .simulate_boot(&self.root.join("p1/autoboot.txt"))
            .unwrap()
    }

    /// The kiosk drew its first frame.
    fn kiosk_draws(&self) {
        fs::write(self.root.join("run/kiosk-frame"), "1\n").unwrap();
    }

    fn slot_starts_with(&self, part: &str, bytes: &[u8]) -> bool {
        fs::read(self.root.join(part)).unwrap()[..bytes.len()] == *bytes
    }

    /// A signed bundle of `version` with boot and rootfs images derived from `seed`.
    fn bundle(&self, version: &str, seed: u8) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let src = self.root.join(format!("src-{version}-{seed}"));
        fs::create_dir_all(&src).unwrap();
        let boot = payload(100_000 + seed as usize, seed);
        let rootfs = payload(700_000, seed.wrapping_add(1));
        fs::write(src.join("boot.img"), &boot).unwrap();
        fs::write(src.join("rootfs.img"), &rootfs).unwrap();
        let m = bundle::make_manifest(&BundleSpec {
            product: "pvm".into(),
            board: "rpi5".into(),
            version: semver::Version::parse(version).unwrap(),
            min_version: semver::Version::new(1, 0, 0),
            build_time: 1_790_000_000,
            payloads: vec![
                (PayloadKind::Boot, src.join("boot.img")),
                (PayloadKind::Rootfs, src.join("rootfs.img")),
            ],
            keys: KeyChanges::default(),
        })
        .unwrap();
        let json = m.to_json().unwrap();
        let sk = keys::load_secret_key(&self.root.join("release.key"), None).unwrap();
        let sig = keys::sign(&sk, &json, &m.trusted_comment()).unwrap();
        let out = src.join("update.pvmb");
        bundle::write_bundle(&out, &json, Some(&sig), &src).unwrap();
        (fs::read(out).unwrap(), boot, rootfs)
    }

    async fn start(&self) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        TestNode::start_with(dir, self.config()).await
    }
}

async fn upload(api: &Api, bundle: Vec<u8>) -> common::Reply {
    api.raw(
        reqwest::Method::POST,
        "/api/v1/system/update/bundle",
        Some(bundle),
        "application/octet-stream",
    )
    .await
}

/// Polls the update status until `done` holds (or fails the test after 30 s).
async fn wait_for(api: &Api, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let v = api.get("/api/v1/system/update").await.ok();
        if done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "timed out waiting for {what}: {}",
        api.get("/api/v1/system/update").await.text
    );
}

/// Polls (often, to catch a view read mid-decision) until the trial boot is decided.
/// Every view on the way pairs state and result: `trying` with no result yet, a decided
/// state with its result (no earlier trial exists in these tests).
async fn wait_for_decision(api: &Api) -> Value {
    for _ in 0..3000 {
        let v = api.get("/api/v1/system/update").await.ok();
        let decided = state(&v) != "trying";
        assert_eq!(
            decided,
            !v["last_trial"].is_null(),
            "state and trial disagree: {v}"
        );
        if decided {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "timed out waiting for the trial's decision: {}",
        api.get("/api/v1/system/update").await.text
    );
}

fn state(v: &Value) -> &str {
    v["status"]["state"].as_str().unwrap_or("")
}

/// Installs a fresh v1.1.0 bundle into slot B and asks for the trial reboot.
async fn install_and_request_trial(
    m: &Machine,
    node: &TestNode,
    admin: &Api,
) -> (Vec<u8>, Vec<u8>) {
    let (bundle, boot, rootfs) = m.bundle("1.1.0", 9);
    let r = upload(admin, bundle.clone()).await.ok();
    assert_eq!(r["bytes"], bundle.len() as u64);
    assert_eq!(r["update"]["bundle_bytes"], bundle.len() as u64);
    admin
        .post("/api/v1/system/update/install", json!({}))
        .await
        .ok();
    let v = wait_for(admin, "the install", |v| {
        !v["busy"].as_bool().unwrap_or(true) && matches!(state(v), "ready" | "failed")
    })
    .await;
    assert_eq!(state(&v), "ready", "{v}");
    assert_eq!(v["status"]["target_partition"], 3);
    assert!(m.slot_starts_with("p3", &boot) && m.slot_starts_with("p5", &rootfs));
    assert_eq!(
        m.autoboot(),
        Autoboot {
            normal: 2,
            tryboot: 3
        }
    );
    admin
        .post("/api/v1/system/update/reboot", json!({}))
        .await
        .ok();
    assert_eq!(m.reboot_request().as_deref(), Some("tryboot"));
    let _ = node;
    (boot, rootfs)
}

#[tokio::test]
async fn a_machine_without_ab_slots_says_updates_are_not_managed_here() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(&dir.path().join("data"));
    config.update.autoboot = dir.path().join("no-such-partition/autoboot.txt");
    let node = TestNode::start_with(dir, config).await;
    let admin = node.setup_admin().await;
    let v = admin.get("/api/v1/system/update").await.ok();
    assert_eq!(v["managed"], false);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("not managed on this machine"),
        "{v}"
    );
    assert_eq!(v["running_version"], pvm_node::node::VERSION);
    let r = admin.post("/api/v1/system/update/install", json!({})).await;
    let msg = r.error(StatusCode::CONFLICT, "not_managed");
    assert!(msg.contains("not managed on this machine"), "{msg}");
    upload(&admin, vec![1, 2, 3])
        .await
        .error(StatusCode::CONFLICT, "not_managed");
    admin
        .post(
            "/api/v1/system/update/fetch",
            json!({"url": "http://127.0.0.1:9/x"}),
        )
        .await
        .error(StatusCode::CONFLICT, "not_managed");
}

#[tokio::test]
async fn update_actions_need_an_admin() {
    let root = tempfile::tempdir().unwrap();
    let m = Machine::new(root.path());
    let node = m.start().await;
    let admin = node.setup_admin().await;
    let floor = node.user(&admin, "floor", "floor").await;
    floor
        .get("/api/v1/system/update")
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    floor
        .post("/api/v1/system/update/install", json!({}))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    node.anonymous()
        .post("/api/v1/system/update/reboot", json!({"force": true}))
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(m.reboot_request(), None);
}

#[tokio::test]
async fn an_uploaded_update_installs_trial_boots_passes_its_health_check_and_commits() {
    let root = tempfile::tempdir().unwrap();
    let m = Machine::new(root.path());
    let mut node = m.start().await;
    let admin = node.setup_admin().await;
    let v = admin.get("/api/v1/system/update").await.ok();
    assert_eq!(v["managed"], true, "{v}");
    assert_eq!(v["running_version"], "1.0.0");
    assert_eq!(v["current_partition"], 2);
    assert_eq!(v["other_partition"], 3);
    assert_eq!(state(&v), "idle");

    let (boot, rootfs) = install_and_request_trial(&m, &node, &admin).await;
    node.stop().await;

    // Power-on: the firmware serves [tryboot] once; the new system's kiosk draws.
    let booted = m.boot();
    assert!(booted.tryboot && booted.partition == 3);
    m.kiosk_draws();
    let node = m.start().await;
    let admin = node.login(common::ADMIN).await;
    let v = wait_for_decision(&admin).await;
    assert_eq!(v["last_trial"]["outcome"], "committed", "{v}");
    assert_eq!(v["last_trial"]["version"], "1.1.0");
    assert_eq!(state(&v), "committed");
    assert_eq!(v["trial_boot"], true);
    assert_eq!(m.autoboot().normal, 3, "[all] names the new slot");
    assert_eq!(m.reboot_request(), None, "a healthy trial is not rebooted");
    assert!(m.slot_starts_with("p3", &boot) && m.slot_starts_with("p5", &rootfs));

    // The next ordinary boot comes up in the new slot.
    let again = m.boot();
    assert!(!again.tryboot && again.partition == 3);
}

#[tokio::test]
async fn a_trial_boot_whose_kiosk_never_draws_goes_back_to_the_old_slot_by_itself() {
    let root = tempfile::tempdir().unwrap();
    let m = Machine::new(root.path());
    let mut node = m.start().await;
    let admin = node.setup_admin().await;
    install_and_request_trial(&m, &node, &admin).await;
    node.stop().await;

    let booted = m.boot();
    assert!(booted.tryboot && booted.partition == 3);
    // No kiosk frame: the deadline (3 s here) passes without one.
    let mut node = m.start().await;
    let admin = node.login(common::ADMIN).await;
    let v = wait_for_decision(&admin).await;
    assert_eq!(v["last_trial"]["outcome"], "rolled_back", "{v}");
    assert_eq!(v["last_trial"]["health"]["kiosk"], false);
    assert_eq!(v["last_trial"]["health"]["http"], true);
    assert_eq!(v["last_trial"]["health"]["database"], true);
    assert_eq!(state(&v), "rolled_back");
    assert_eq!(m.reboot_request().as_deref(), Some("normal"));
    assert_eq!(
        m.autoboot().normal,
        2,
        "autoboot.txt still names the old slot"
    );
    node.stop().await;

    // The firmware serves [all]: the old system, which records the rollback and stays.
    let back = m.boot();
    assert!(!back.tryboot && back.partition == 2);
    m.kiosk_draws();
    let node = m.start().await;
    let admin = node.login(common::ADMIN).await;
    let v = admin.get("/api/v1/system/update").await.ok();
    assert_eq!(v["current_partition"], 2);
    assert_eq!(state(&v), "rolled_back");
    assert_eq!(v["last_trial"]["outcome"], "rolled_back");
    assert_eq!(m.firmware().status().unwrap().partition, 2);
}

#[tokio::test]
async fn install_and_reboot_are_refused_while_a_tournament_clock_runs_unless_forced() {
    let root = tempfile::tempdir().unwrap();
    let m = Machine::new(root.path());
    let node = m.start().await;
    let admin = node.setup_admin().await;
    let t = common::create_tournament(&admin, common::config("Main event")).await;
    common::register_new(&admin, &t, "Ann").await;
    admin
        .act(&format!("/api/v1/tournaments/{t}/clock/start"))
        .await
        .ok();
    let (bundle, _, _) = m.bundle("1.1.0", 3);
    upload(&admin, bundle).await.ok();
    let v = admin.get("/api/v1/system/update").await.ok();
    assert_eq!(v["clock_running"], true);

    let before = fs::read(m.root.join("p3")).unwrap();
    let msg = admin
        .post("/api/v1/system/update/install", json!({}))
        .await
        .error(StatusCode::CONFLICT, "deferred");
    assert!(msg.contains("tournament clock is running"), "{msg}");
    assert_eq!(
        fs::read(m.root.join("p3")).unwrap(),
        before,
        "nothing written"
    );

    admin
        .post("/api/v1/system/update/install", json!({"force": true}))
        .await
        .ok();
    let v = wait_for(&admin, "the forced install", |v| {
        !v["busy"].as_bool().unwrap_or(true) && matches!(state(v), "ready" | "failed")
    })
    .await;
    assert_eq!(state(&v), "ready", "{v}");

    admin
        .post("/api/v1/system/update/reboot", json!({}))
        .await
        .error(StatusCode::CONFLICT, "deferred");
    assert_eq!(m.reboot_request(), None);
    admin
        .post("/api/v1/system/update/postpone", json!({"minutes": 60}))
        .await
        .ok();
    admin
        .act(&format!("/api/v1/tournaments/{t}/clock/pause"))
        .await
        .ok();
    let msg = admin
        .post("/api/v1/system/update/reboot", json!({}))
        .await
        .error(StatusCode::CONFLICT, "deferred");
    assert!(msg.contains("postponed"), "{msg}");
    admin
        .post("/api/v1/system/update/reboot", json!({"force": true}))
        .await
        .ok();
    assert_eq!(m.reboot_request().as_deref(), Some("tryboot"));
}

#[tokio::test]
async fn a_tampered_bundle_is_refused_with_its_reason_and_no_slot_changes() {
    let root = tempfile::tempdir().unwrap();
    let m = Machine::new(root.path());
    let node = m.start().await;
    let admin = node.setup_admin().await;
    let (mut bundle, _, _) = m.bundle("1.1.0", 5);
    // A byte deep inside the rootfs payload (the last entry, before tar's end padding).
    let at = bundle.len() - 2048 - 100;
    bundle[at] ^= 0x40;
    upload(&admin, bundle).await.ok();
    let slots: Vec<Vec<u8>> = ["p2", "p3", "p4", "p5", "p1/autoboot.txt"]
        .iter()
        .map(|p| fs::read(m.root.join(p)).unwrap())
        .collect();
    admin
        .post("/api/v1/system/update/install", json!({}))
        .await
        .ok();
    let v = wait_for(&admin, "the refusal", |v| {
        !v["busy"].as_bool().unwrap_or(true) && matches!(state(v), "ready" | "failed")
    })
    .await;
    assert_eq!(state(&v), "failed");
    assert!(
        v["status"]["error"].as_str().unwrap().contains("SHA-256"),
        "{v}"
    );
    for (p, before) in ["p2", "p3", "p4", "p5", "p1/autoboot.txt"]
        .iter()
        .zip(slots)
    {
        assert_eq!(fs::read(m.root.join(p)).unwrap(), before, "{p} changed");
    }
    admin
        .post("/api/v1/system/update/reboot", json!({"force": true}))
        .await
        .error(StatusCode::CONFLICT, "wrong_state");
}

#[tokio::test]
async fn a_bundle_fetched_from_a_url_is_staged_with_progress_and_installs() {
    let root = tempfile::tempdir().unwrap();
    let m = Machine::new(root.path());
    let node = m.start().await;
    let admin = node.setup_admin().await;
    let (bundle, boot, _) = m.bundle("1.2.0", 11);
    let served = bundle.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/releases/1.2.0.pvmb",
            axum::routing::get(move || {
                let b = served.clone();
                async move { b }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    });

    let r = admin
        .post(
            "/api/v1/system/update/fetch",
            json!({"url": format!("http://{addr}/releases/1.2.0.pvmb")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let v = wait_for(&admin, "the download", |v| {
        !v["busy"].as_bool().unwrap_or(true) && matches!(state(v), "idle" | "failed")
    })
    .await;
    assert_eq!(state(&v), "idle", "{v}");
    assert_eq!(v["bundle_bytes"], bundle.len() as u64);

    // A URL that does not answer fails the download with its reason.
    admin
        .post(
            "/api/v1/system/update/fetch",
            json!({"url": format!("http://{addr}/releases/none.pvmb")}),
        )
        .await
        .ok();
    let v = wait_for(&admin, "the failed download", |v| {
        !v["busy"].as_bool().unwrap_or(true) && state(v) == "failed"
    })
    .await;
    assert!(
        v["status"]["error"].as_str().unwrap().contains("404"),
        "{v}"
    );
    assert_eq!(
        v["bundle_bytes"],
        bundle.len() as u64,
        "the staged bundle stays"
    );

    admin
        .post("/api/v1/system/update/install", json!({}))
        .await
        .ok();
    let v = wait_for(&admin, "the install", |v| {
        !v["busy"].as_bool().unwrap_or(true) && matches!(state(v), "ready" | "failed")
    })
    .await;
    assert_eq!(state(&v), "ready", "{v}");
    assert!(m.slot_starts_with("p3", &boot));
    server.abort();
}

#[tokio::test]
async fn the_live_system_topic_carries_progress_and_state_to_signed_in_staff() {
    use futures::{SinkExt, StreamExt};
    let root = tempfile::tempdir().unwrap();
    let m = Machine::new(root.path());
    let node = m.start().await;
    let admin = node.setup_admin().await;
    let url = format!("ws://{}/api/v1/ws?topics=system", node.running().addr);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        url.as_str(),
    )
    .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", admin.token.clone().unwrap())
            .parse()
            .unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut next = async || -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await
                .expect("a live message in time")
                .unwrap()
                .unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["topic"] == "system" {
                    return v;
                }
            }
        }
    };
    let snap = next().await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["data"]["managed"], true);

    let (bundle, _, _) = m.bundle("1.1.0", 21);
    upload(&admin, bundle).await.ok();
    admin
        .post("/api/v1/system/update/install", json!({}))
        .await
        .ok();
    let mut seen = Vec::new();
    let mut installing_progress = false;
    loop {
        let u = next().await;
        assert_eq!(u["type"], "update");
        let s = u["data"]["status"]["state"].as_str().unwrap().to_string();
        if s == "installing" && u["data"]["status"]["progress"]["total"].as_u64() > Some(0) {
            installing_progress = true;
        }
        if seen.last() != Some(&s) {
            seen.push(s.clone());
        }
        if s == "ready" || s == "failed" {
            break;
        }
    }
    assert_eq!(seen.last().map(String::as_str), Some("ready"), "{seen:?}");
    assert!(seen.iter().any(|s| s == "verifying"), "{seen:?}");
    assert!(
        installing_progress,
        "install progress on the topic: {seen:?}"
    );
    let _ = ws.close(None).await;
    let _ = ws
        .send(tokio_tungstenite::tungstenite::Message::Close(None))
        .await;
}
