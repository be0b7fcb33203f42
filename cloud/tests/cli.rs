//! The `pvm-cloud` binary: the operator's `create-tenant`, `gen-token-key`, and `serve`
//! sharing its token key with another instance.

mod common;

use common::{Api, Cloud, PASSWORD};
use pvm_cloud::token::TokenKeys;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pvm-cloud");
/// Cheap argon2 for the debug build, as in the in-process tests.
const CHEAP_HASH: [&str; 4] = ["--password-memory-kib", "64", "--password-iterations", "1"];

/// The served binary, killed if the test fails before stopping it.
struct Served(Option<std::process::Child>);

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn create_tenant_reads_the_password_from_stdin_and_its_admin_can_sign_in() {
    let cloud = Cloud::start().await;
    let url = cloud.pg.url();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(BIN)
            .args([
                "create-tenant",
                "--name",
                "Casino Royale",
                "--admin-email",
                "boss@example.com",
            ])
            .args(["--database-url", &url])
            .args(CHEAP_HASH)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let session = cloud.api.login("boss@example.com").await;
    let tenant = session["memberships"][0]["tenant_id"].as_str().unwrap();
    assert!(printed.contains(tenant), "{printed}");
    assert_eq!(session["memberships"][0]["role"], "admin");
    cloud.stop().await;
}

#[tokio::test]
async fn a_served_instance_and_another_with_the_same_key_file_accept_each_others_tokens() {
    let cloud = Cloud::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("token.key");
    let out = Command::new(BIN)
        .args(["gen-token-key", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It refuses to overwrite a key (that would log every session out).
    let again = Command::new(BIN)
        .args(["gen-token-key", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success());

    let port = pvm_testpeers::free_port().unwrap();
    let served = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &cloud.pg.url()])
        .arg("--token-key-file")
        .arg(&key)
        .args(CHEAP_HASH)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut served = Served(Some(served));
    let served_api = Api::new(([127, 0, 0, 1], port).into());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = reqwest::get(format!("{}/healthz", served_api.base)).await;
        if up.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "pvm-cloud serve did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An in-process instance with the same key file on the same database.
    let mut config = (*cloud.app.state.config).clone();
    config.token_key_file = Some(key.clone());
    let keys = TokenKeys::load(&key, &[] as &[&std::path::Path]).unwrap();
    let local = pvm_cloud::start(config, keys).await.unwrap();
    let local_api = Api::new(local.addr);

    served_api.signup("Casino", "ann@example.com").await;
    let token = served_api.token("ann@example.com").await;
    local_api.get("/api/v1/me", Some(&token)).await.expect(200);
    let token = local_api.token("ann@example.com").await;
    served_api.get("/api/v1/me", Some(&token)).await.expect(200);
    // The test suite's own instance has another key: it refuses them.
    cloud
        .api
        .get("/api/v1/me", Some(&token))
        .await
        .expect_error(401, "unauthorized");

    // SIGTERM: a clean stop.
    let mut child = served.0.take().unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "exit: {status}");
    local.stop().await;
    cloud.stop().await;
}
