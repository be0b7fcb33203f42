//! A real node showing a running tournament clock, for the kiosk's side-by-side benchmark
//! (scripts/bench-kiosk.sh): it starts `pvm-node` on loopback, makes the first admin, creates a
//! tournament with a field, starts its clock, makes a clock screen and puts it on the HDMI
//! output. Then it prints, one per line,
//!
//! ```text
//! PAGE=http://127.0.0.1:<port>/display/<screen-id>
//! WS=ws://127.0.0.1:<port>/api/v1/ws
//! NODE_PID=<pid>
//! ```
//!
//! and keeps the node up until its standard input closes or `--hold` seconds (default 600)
//! pass, then stops it.
//!
//! `cargo run --release -p pvm-node --example bench_display -- --hold 120`

#[path = "support/mod.rs"]
mod support;

use pvm_core::displays::HDMI_DISPLAY_ID;
use serde_json::json;
use std::io::{Read, Write};
use std::time::Duration;
use support::NodeProcess;

fn main() {
    let hold: u64 = support::flag("--hold", 600);
    let entries: usize = support::flag("--entries", 40);
    let dir = support::scratch_dir("pvm-bench-display");
    let node = NodeProcess::start(dir.path(), support::QUIET_CONFIG, true);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let screen = runtime.block_on(async {
        let token = support::setup_admin(&node).await;
        let admin = support::client(&token);
        let base = node.base();
        let (tournament, _) = support::tournament_with_entries(&admin, &base, entries).await;
        support::command(
            &admin,
            format!("{base}/api/v1/tournaments/{tournament}/clock/start"),
            json!({}),
        )
        .await;
        let created = support::command(
            &admin,
            format!("{base}/api/v1/screens"),
            json!({"name": "Main clock",
                   "kind": {"type": "tournament_clock", "tournament_id": tournament}}),
        )
        .await;
        let screen = created["created_id"]
            .as_str()
            .expect("a screen id")
            .to_owned();
        let response = admin
            .put(format!("{base}/api/v1/displays/{HDMI_DISPLAY_ID}/screen"))
            .json(&json!({"screen_id": screen}))
            .send()
            .await
            .expect("assigning the HDMI screen");
        assert!(
            response.status().is_success(),
            "assigning the HDMI screen: {}",
            response.status()
        );
        screen
    });
    drop(runtime);

    let mut out = std::io::stdout().lock();
    writeln!(out, "PAGE={}/display/{screen}", node.base()).expect("stdout");
    writeln!(out, "WS=ws://{}/api/v1/ws", node.addr).expect("stdout");
    writeln!(out, "NODE_PID={}", node.pid()).expect("stdout");
    out.flush().expect("stdout");
    drop(out);

    // Whichever comes first: the caller closes our input, or the hold time ends.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = done_tx.send(());
    });
    let _ = done_rx.recv_timeout(Duration::from_secs(hold));
    node.stop();
}
