//! The receiver page's own logic (receiver/receiver.html), run by Node.js against a stand-in of
//! the Cast receiver SDK, which only exists on a Chromecast: see
//! tests/fake-chromecast/receiver-check.js for the checks.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_receiver_page_frames_navigates_and_refuses_as_documented() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("node")
        .arg(dir.join("tests/fake-chromecast/receiver-check.js"))
        .arg(dir.join("receiver/receiver.html"))
        .output()
        .expect("node is installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(", 0 failed"), "{stdout}");
}
