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
//! From the send, the 1,000 clients' own figure is mostly this generator's: they share two
//! worker threads (and the node's two cores) and each parses its copy of the update in turn. So
//! one more client, the probe, reads the same topic on a thread and runtime of its own; its
//! latency from the send is what one screen at the venue sees while 1,000 others are served.
//!
//! Updates carry a JSON Patch against the previous view; every client here parses each message
//! in full and applies it to the view it holds, as the kiosk and the web pages do. The probe
//! prints the update's size and the size of the whole view (what each update carried before).
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
                let mut view = HeldView::default();
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
                    // Parsed in full and applied, as a real client would: the view it holds
                    // is kept current by every update.
                    match view.absorb(&text) {
                        Some(("snapshot", _)) => {
                            let _ = ready_tx.send(i);
                        }
                        Some(("update", seq)) => {
                            let _ = seen_tx.send((i, seq, at));
                        }
                        _ => {}
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
        let (probe_tx, probe_rx) = std::sync::mpsc::channel::<ProbeSeen>();
        let probe = spawn_probe(url.clone(), probe_tx);
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

        // One update first, not measured: clients whose snapshot was rendered at another
        // moment than the topic's last view (all but the first here) get that update whole,
        // then patches. What is measured is the steady state, every client on patches.
        let warmup_seq = {
            let entry = &entry_ids[0];
            let answer = support::command(
                &admin,
                format!("{base}/api/v1/tournaments/{tournament}/entries/{entry}/chips"),
                json!({"chips": 4_000}),
            )
            .await;
            let seq = answer["seq"].as_u64().expect("a seq");
            let mut missing = clients;
            while missing > 0 {
                let Ok(Some((_, s, _))) =
                    tokio::time::timeout(Duration::from_secs(10), seen_rx.recv()).await
                else {
                    panic!("the warm-up update never reached {missing} clients");
                };
                if s == seq {
                    missing -= 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            seq
        };

        let mut from_ack = Vec::with_capacity(clients * updates);
        let mut from_send = Vec::with_capacity(clients * updates);
        let mut early = 0usize;
        let mut sent_at = std::collections::HashMap::new();
        let (node_cpu_before, own_cpu_before) =
            (support::cpu_time(node.pid()), support::own_cpu_time());
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
            sent_at.insert(seq, sent);
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
        // Between updates both sides are idle (the pauses cost no CPU), so this is the work of
        // one command plus the delivery of its update to every client, on each side.
        let node_cpu = support::cpu_time(node.pid()).saturating_sub(node_cpu_before);
        let own_cpu = support::own_cpu_time().saturating_sub(own_cpu_before);
        from_ack.sort();
        from_send.sort();
        drop(probe);
        let probe_seen: Vec<ProbeSeen> = probe_rx
            .try_iter()
            .filter(|p| p.seq > warmup_seq)
            .collect();
        let mut from_send_probe: Vec<Duration> = probe_seen
            .iter()
            .filter_map(|p| Some(p.at.duration_since(*sent_at.get(&p.seq)?)))
            .collect();
        from_send_probe.sort();
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
        // The honest figure: from the moment the command left, as a person at the console
        // would see it, to each of the 1,000 clients having its copy.
        result(
            "ws_from_send_p50",
            ms(percentile(&from_send, 50.0)),
            "ms",
            None,
        );
        result(
            "ws_from_send_p99",
            ms(percentile(&from_send, 99.0)),
            "ms",
            Some(("<=", 20.0)),
        );
        let per_update = |cpu: Duration| ms(cpu) / updates.max(1) as f64;
        println!(
            "ws: CPU per update (the command and its delivery to {clients} clients): node {:.2} ms, \
             load generator {:.2} ms",
            per_update(node_cpu),
            per_update(own_cpu),
        );
        result("ws_node_cpu_per_update", per_update(node_cpu), "ms", None);
        result("ws_generator_cpu_per_update", per_update(own_cpu), "ms", None);
        if !probe_seen.is_empty() {
            let n = probe_seen.len() as f64;
            let message = probe_seen.iter().map(|p| p.message_bytes).sum::<usize>() as f64 / n;
            let view = probe_seen.iter().map(|p| p.view_bytes).sum::<usize>() as f64 / n;
            let patched = probe_seen.iter().filter(|p| p.patched).count();
            println!(
                "ws: update message {message:.0} bytes on average ({patched} of {} were patches); \
                 the whole view it describes, as every update carried before patches: \
                 {view:.0} bytes",
                probe_seen.len()
            );
            result("ws_update_bytes", message, "bytes", None);
            result("ws_view_bytes", view, "bytes", None);
        }
        if !from_send_probe.is_empty() {
            println!(
                "ws: the probe client on its own thread got {} of {updates} updates; from the \
                 send: p50 {:.2} ms, max {:.2} ms",
                from_send_probe.len(),
                ms(percentile(&from_send_probe, 50.0)),
                ms(percentile(&from_send_probe, 100.0)),
            );
            result(
                "ws_probe_from_send_p99",
                ms(percentile(&from_send_probe, 99.0)),
                "ms",
                Some(("<=", 20.0)),
            );
        }
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

/// The probe client: one WebSocket on a thread and runtime of its own, reporting (seq, arrival)
/// for every update. Stops when the returned guard is dropped.
fn spawn_probe(url: String, seen: std::sync::mpsc::Sender<ProbeSeen>) -> ProbeGuard {
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the probe's runtime");
        runtime.block_on(async move {
            let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .expect("the probe's WebSocket connection");
            let (mut sink, mut stream) = socket.split();
            let mut view = HeldView::default();
            loop {
                let message = tokio::select! {
                    _ = &mut stop_rx => break,
                    m = stream.next() => m,
                };
                let Some(Ok(message)) = message else { break };
                let at = Instant::now();
                match message {
                    Message::Text(text) => {
                        if let Some(("update", seq)) = view.absorb(&text) {
                            let view_bytes = serde_json::to_vec(&view.data).map_or(0, |v| v.len());
                            let _ = seen.send(ProbeSeen {
                                seq,
                                at,
                                message_bytes: text.len(),
                                view_bytes,
                                patched: view.last_was_patch,
                            });
                        }
                    }
                    Message::Ping(p) => {
                        let _ = sink.send(Message::Pong(p)).await;
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        });
    });
    ProbeGuard {
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

struct ProbeGuard {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the probe saw of one update: when, how big the message was, and how big the view it
/// produced is (what every update carried before updates became patches).
struct ProbeSeen {
    seq: u64,
    at: Instant,
    message_bytes: usize,
    view_bytes: usize,
    patched: bool,
}

/// One client's copy of the topic's view, kept as the live protocol says: a snapshot or a
/// full update replaces it, a patch changes it.
#[derive(Default)]
struct HeldView {
    data: serde_json::Value,
    last_was_patch: bool,
}

impl HeldView {
    /// Takes in one message; says its type and seq for snapshots and updates.
    fn absorb(&mut self, text: &str) -> Option<(&'static str, u64)> {
        let mut message: serde_json::Value = serde_json::from_str(text).ok()?;
        let seq = message["seq"].as_u64()?;
        let kind = match message["type"].as_str()? {
            "snapshot" => "snapshot",
            "update" => "update",
            _ => return None,
        };
        self.last_was_patch = false;
        if let Some(ops) = message.get_mut("patch") {
            let ops: Vec<pvm_core::patch::PatchOp> =
                serde_json::from_value(ops.take()).expect("a JSON Patch");
            pvm_core::patch::apply(&mut self.data, &ops).expect("the patch fits the view held");
            self.last_was_patch = true;
        } else {
            self.data = message["data"].take();
        }
        Some((kind, seq))
    }
}
