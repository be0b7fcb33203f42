//! `make image` (image/buildroot/build.sh) on a machine that cannot reach the Buildroot
//! download: it must stop at once, say so, and leave nothing behind. The "server" is a
//! loopback port nobody listens on, so the test behaves the same with or without internet.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

#[test]
fn offline_make_image_stops_at_once_and_says_so() {
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../image/buildroot/build.sh");
    let output = Command::new(script)
        .env("PVM_IMAGE_OUT", &out)
        .env(
            "PVM_BUILDROOT_GIT",
            format!("http://127.0.0.1:{closed_port}/buildroot.git"),
        )
        .env("PVM_RELEASE_KEY", "none")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("OFFLINE"), "{stderr}");
    assert!(stderr.contains("needs the internet"), "{stderr}");
    assert!(stderr.contains("Nothing was built"), "{stderr}");
    // It stopped before the first thing it would have made.
    assert!(!out.exists());
}
