//! Delivery of one update to many WebSocket clients, and the node's memory with them.
//!
//! Starts the real `pvm-node` on loopback, connects `--clients` (default 1000) WebSocket
//! clients to one tournament's topic and waits for every snapshot. Then, `--updates`
//! (default 30) times, one chip report is sent over HTTP; for every client, the delivery
//! latency is the time from the command's acknowledgement (its HTTP answer) to that
//! client receiving the `update` with the command's seq. The node publishes before it
//! answers, so a client may get the update before the ack arrives: that counts as 0, and the
//! latency from sending the command is printed too.
//!
//! `cargo run --release -p pvm-node --example bench_ws -- --clients 1000 --updates 30`

#[path = "support/mod.rs"]
mod support;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};
use support::{ms, percentile, result, NodeProcess};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

fn main() {
    let clients: usize = support::flag("--clients", 1000);
    let updates: usize = support::flag("--updates", 30);
    let entries: usize = support::flag("--entries", 30);
    let dir = support::scratch_dir("pvm-bench-ws");
    let node = NodeProcess::start(dir.path(), support::QUIET_CONFIG, true);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");

    runtime.block_on(async {
        let token = support::setup_admin(&node).await;
        let admin = support::client(&token);
        let base = node.base();
        let (tournament, entry_ids) =
            support::tournament_with_entries(&admin, &base, entries).await;
        let rss_before = node.rss_kib();

        // Every client reports (its index, seq) for each update it receives.
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, u64, Instant)>();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<usize>();
        let url = format!(
            "ws://{}/api/v1/ws?topics=tournament/{tournament}",
            node.addr
        );
        let mut connections = Vec::with_capacity(clients);
        for i in 0..clients {
            let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .expect("a WebSocket connection");
            let (seen_tx, ready_tx) = (seen_tx.clone(), ready_tx.clone());
            connections.push(tokio::spawn(async move {
                let (mut sink, mut stream) = socket.split();
                while let Some(Ok(message)) = stream.next().await {
                    let at = Instant::now();
                    let text = match message {
                        Message::Text(t) => t,
                        Message::Ping(p) => {
                            let _ = sink.send(Message::Pong(p)).await;
                            continue;
                        }
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    // Keys are sorted, so the big `data` comes first and the top-level seq
                    // and type last: find them from the end instead of parsing the lot.
                    let kind = message_type(&text);
                    if kind == Some("snapshot") {
                        let _ = ready_tx.send(i);
                    } else if kind == Some("update") {
                        if let Some(seq) = top_level_seq(&text) {
                            let _ = seen_tx.send((i, seq, at));
                        }
                    }
                }
            }));
        }
        for _ in 0..clients {
            ready_rx
                .recv()
                .await
                .expect("every client gets its snapshot");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        result(
            "rss_1000_ws",
            node.rss_kib() as f64 / 1024.0,
            "MiB",
            Some(("<=", 60.0)),
        );
        println!(
            "ws: {clients} clients connected; node RSS {:.1} MiB before, {:.1} MiB after",
            rss_before as f64 / 1024.0,
            node.rss_kib() as f64 / 1024.0
        );

        let mut from_ack = Vec::with_capacity(clients * updates);
        let mut from_send = Vec::with_capacity(clients * updates);
        let mut early = 0usize;
        for u in 0..updates {
            let entry = &entry_ids[u % entry_ids.len()];
            let sent = Instant::now();
            let answer = support::command(
                &admin,
                format!("{base}/api/v1/tournaments/{tournament}/entries/{entry}/chips"),
                json!({"chips": 5_000 + u}),
            )
            .await;
            let acked = Instant::now();
            let seq = answer["seq"].as_u64().expect("a seq");
            let mut got = vec![false; clients];
            let mut missing = clients;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while missing > 0 {
                let Ok(Some((i, s, at))) = tokio::time::timeout_at(deadline, seen_rx.recv()).await
                else {
                    panic!("update {seq}: {missing} clients never received it");
                };
                if s != seq || got[i] {
                    continue;
                }
                got[i] = true;
                missing -= 1;
                from_send.push(at.duration_since(sent));
                match at.checked_duration_since(acked) {
                    Some(d) => from_ack.push(d),
                    None => {
                        early += 1;
                        from_ack.push(Duration::ZERO);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        from_ack.sort();
        from_send.sort();
        println!(
            "ws: {updates} updates × {clients} clients; {early} deliveries arrived before the ack",
        );
        result(
            "ws_delivery_p50",
            ms(percentile(&from_ack, 50.0)),
            "ms",
            None,
        );
        result(
            "ws_delivery_p99",
            ms(percentile(&from_ack, 99.0)),
            "ms",
            Some(("<=", 20.0)),
        );
        result(
            "ws_delivery_max",
            ms(percentile(&from_ack, 100.0)),
            "ms",
            None,
        );
        result(
            "ws_from_send_p99",
            ms(percentile(&from_send, 99.0)),
            "ms",
            None,
        );
        result(
            "rss_1000_ws_peak",
            node.peak_rss_kib() as f64 / 1024.0,
            "MiB",
            None,
        );
        for c in connections {
            c.abort();
        }
    });
    node.stop();
}

fn message_type(text: &str) -> Option<&str> {
    let at = text.rfind("\"type\":\"")? + "\"type\":\"".len();
    let rest = &text[at..];
    Some(&rest[..rest.find('"')?])
}

fn top_level_seq(text: &str) -> Option<u64> {
    let at = text.rfind("\"seq\":")? + "\"seq\":".len();
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}
