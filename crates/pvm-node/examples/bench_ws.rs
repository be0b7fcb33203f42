//! Delivery of one update to many WebSocket clients, and the node's memory with them.
//!
//! Starts the real `pvm-node` on loopback, connects `--clients` (default 1000) WebSocket
//! clients to one tournament's topic and waits for every snapshot. Then, `--updates`
//! (default 100) times, one chip report is sent over HTTP; for every client, the delivery
//! latency is the time from the command's acknowledgement (its HTTP answer) to that
//! client receiving the `update` with the command's seq. The node publishes before it
//! answers, so a client may get the update before the ack arrives: that counts as 0, and the
//! latency from sending the command is printed too.
//!
//! At the venue every screen has a CPU of its own; here the 1,000 clients share the node's two
//! cores, so whatever they do after taking delivery is work the node never competes with in
//! real life, yet it delays the node's writes here. So the clients take delivery lean: two
//! threads read all their sockets (one epoll set each, no task per client), decode the
//! WebSocket frames, read each message's type
//! and seq (a `serde` pass that skips the rest), and stamp the time of the read. One client in
//! `--full-every` (default 50) also parses every message in full and applies its JSON Patch to
//! the view it holds, as the kiosk and the web pages do, and checks that the patches fit. One
//! more client, the probe, does the same on a thread and runtime of its own; its latency from
//! the send is what one screen at the venue sees while 1,000 others are served. The probe
//! prints the update's size and the size of the whole view (what each update carried before).
//!
//! Each lean read also carries the kernel's receive timestamp, so the benchmark prints when the
//! bytes were in each client's socket beside when the client read them: the first is the
//! node's part (on loopback the receiving socket is filled by the node's own send), the
//! difference is the clients waiting for the shared cores.
//!
//! `cargo run --release -p pvm-node --example bench_ws -- --clients 1000 --updates 100`

#[path = "support/mod.rs"]
mod support;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{ms, percentile, result, NodeProcess};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

fn main() {
    let clients: usize = support::flag("--clients", 1000);
    let updates: usize = support::flag("--updates", 100);
    let entries: usize = support::flag("--entries", 30);
    let dir = support::scratch_dir("pvm-bench-ws");
    let node = NodeProcess::start(dir.path(), support::QUIET_CONFIG, true);
    let full_every: usize = support::flag("--full-every", 50);
    // The clients' reading is spread over `--threads` (default 2) threads of their own (see
    // `lean::read_clients`), as it is over many devices at the venue: one thread reading a
    // thousand sockets lags behind a node that writes them from two. The runtime only sends the
    // commands and gathers the figures.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
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

        // Every client records (its index, seq, when) for each update it receives.
        let seen = Arc::new(Deliveries::default());
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<usize>();
        let url = format!(
            "ws://{}/api/v1/ws?topics=tournament/{tournament}",
            node.addr
        );
        let path = format!("/api/v1/ws?topics=tournament/{tournament}");
        let threads = support::flag("--threads", 2usize).max(1);
        let mut shares: Vec<Vec<lean::Client>> = (0..threads).map(|_| Vec::new()).collect();
        for i in 0..clients {
            let (stream, first) = support::open_websocket(node.addr, &path)
                .await
                .expect("a WebSocket connection");
            let full = full_every > 0 && i % full_every == 0;
            let client = lean::Client::new(i, stream, first, full).expect("a lean client");
            shares[i % threads].push(client);
        }
        let stop_reading = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<std::thread::JoinHandle<()>> = shares
            .into_iter()
            .map(|share| {
                let (seen, ready_tx) = (seen.clone(), ready_tx.clone());
                let stop = stop_reading.clone();
                std::thread::spawn(move || {
                    if let Err(e) = lean::read_clients(share, &seen, &ready_tx, &stop) {
                        eprintln!("ws: a reading thread failed: {e}");
                    }
                })
            })
            .collect();
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
            if let Err(missing) = seen.wait_for(seq, clients, Duration::from_secs(10)).await {
                panic!("the warm-up update never reached {missing} clients");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            seq
        };

        let mut from_ack = Vec::with_capacity(clients * updates);
        let mut from_send = Vec::with_capacity(clients * updates);
        let mut arrived_from_send = Vec::with_capacity(clients * updates);
        let mut unstamped = 0usize;
        let mut early = 0usize;
        let mut sent_at = std::collections::HashMap::new();
        let mut commands = Vec::with_capacity(updates);
        let (node_cpu_before, own_cpu_before) =
            (support::cpu_time(node.pid()), support::own_cpu_time());
        let (steal_before, window_started) = (support::steal_time(), Instant::now());
        let stages_before = support::stage_buckets(&admin, &base).await;
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
            commands.push(acked - sent);
            let seq = answer["seq"].as_u64().expect("a seq");
            sent_at.insert(seq, sent);
            let arrivals = match seen.wait_for(seq, clients, Duration::from_secs(10)).await {
                Ok(arrivals) => arrivals,
                Err(missing) => panic!("update {seq}: {missing} clients never received it"),
            };
            for stamp in arrivals {
                let at = stamp.read;
                from_send.push(at.duration_since(sent));
                match stamp.arrived {
                    Some(arrived) => arrived_from_send.push(arrived.saturating_duration_since(sent)),
                    None => unstamped += 1,
                }
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
        let stolen = support::steal_time().saturating_sub(steal_before);
        let window = window_started.elapsed();
        // Where a slow command's time went: in the writer's queue, or in its commit (fsync).
        let stages_after = support::stage_buckets(&admin, &base).await;
        support::print_stages("ws", &stages_before, &stages_after);
        from_ack.sort();
        from_send.sort();
        arrived_from_send.sort();
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
            "ws: {updates} updates × {clients} clients ({} of them, and the probe, parse and apply \
             every message in full); {early} deliveries arrived before the ack",
            if full_every > 0 { clients.div_ceil(full_every) } else { 0 },
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
        // No update leaves before its command is durable, so a slow fsync of this disk delays
        // every client of that round from the send: the commands' own times tell such a round
        // from a slow delivery.
        commands.sort();
        println!(
            "ws: the commands themselves (send to ack, durable): p50 {:.2} ms, p99 {:.2} ms, \
             max {:.2} ms",
            ms(percentile(&commands, 50.0)),
            ms(percentile(&commands, 99.0)),
            ms(percentile(&commands, 100.0)),
        );
        result(
            "ws_command_max",
            ms(percentile(&commands, 100.0)),
            "ms",
            None,
        );
        // The same deliveries timed by the kernel's receive stamp: when the node's bytes were
        // in each client's socket, before that client waited for a CPU to read them (at the
        // venue every screen has its own). The part of the figures above that is the node's.
        if unstamped == 0 {
            println!(
                "ws: from the send to the bytes in each client's socket (kernel receive stamp): \
                 p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                ms(percentile(&arrived_from_send, 50.0)),
                ms(percentile(&arrived_from_send, 99.0)),
                ms(percentile(&arrived_from_send, 100.0)),
            );
            result(
                "ws_in_socket_from_send_p99",
                ms(percentile(&arrived_from_send, 99.0)),
                "ms",
                None,
            );
        } else {
            // Never stand in the read time for a missing stamp: the figure would look like the
            // node's part and be the clients' as well.
            println!(
                "ws: the kernel gave no receive stamp for {unstamped} deliveries; the in-socket \
                 figure is left out"
            );
        }
        let per_update = |cpu: Duration| ms(cpu) / updates.max(1) as f64;
        println!(
            "ws: CPU per update (the command and its delivery to {clients} clients): node {:.2} ms, \
             load generator {:.2} ms",
            per_update(node_cpu),
            per_update(own_cpu),
        );
        support::report_steal("ws", "ws_vm_steal", stolen, window);
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
        stop_reading.store(true, Ordering::Release);
        for reader in readers {
            let _ = reader.join();
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

/// The updates the clients received: recorded by each client as it reads one, gathered by the
/// measuring loop once all have it. One wake-up of that loop per update, not one per client:
/// with a thousand clients, handing each arrival over on a channel was a good part of this
/// generator's work, on the cores the node needs.
#[derive(Default)]
struct Deliveries {
    seen: std::sync::Mutex<Vec<(usize, u64, lean::Stamp)>>,
    count: AtomicUsize,
    wanted: AtomicUsize,
    reached: tokio::sync::Notify,
}

impl Deliveries {
    /// Takes the arrivals a reading thread saw in one round of its sockets.
    fn record(&self, arrivals: &mut Vec<(usize, u64, lean::Stamp)>) {
        let n = arrivals.len();
        self.seen
            .lock()
            .expect("no client panics while recording")
            .append(arrivals);
        let count = self.count.fetch_add(n, Ordering::AcqRel) + n;
        if count >= self.wanted.load(Ordering::Acquire) {
            self.reached.notify_one();
        }
    }

    /// When each of `clients` clients received update `seq`; `Err(missing)` past `within`.
    async fn wait_for(
        &self,
        seq: u64,
        clients: usize,
        within: Duration,
    ) -> Result<Vec<lean::Stamp>, usize> {
        let deadline = tokio::time::Instant::now() + within;
        let mut got: Vec<Option<lean::Stamp>> = vec![None; clients];
        let mut missing = clients;
        loop {
            let taken = std::mem::take(&mut *self.seen.lock().expect("recording never panics"));
            for (client, s, at) in taken {
                if s == seq && got[client].is_none() {
                    got[client] = Some(at);
                    missing -= 1;
                }
            }
            if missing == 0 {
                return Ok(got.into_iter().flatten().collect());
            }
            // Woken once the count of all arrivals could cover the ones still missing.
            let reached = self.reached.notified();
            self.wanted.store(
                self.count.load(Ordering::Acquire) + missing,
                Ordering::Release,
            );
            if !self.seen.lock().expect("recording never panics").is_empty() {
                continue;
            }
            if tokio::time::timeout_at(deadline, reached).await.is_err() {
                return Err(missing);
            }
        }
    }
}

/// The clients' lean side of the WebSocket protocol after the opening handshake
/// ([`support::open_websocket`]): the server's frames, read straight off the socket. Server
/// frames are never masked; the node sends text frames whole (no fragments), and a ping is
/// answered with a masked pong as RFC 6455 asks.
mod lean {
    use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
    use nix::sys::socket::{
        recvmsg, setsockopt, sockopt::ReceiveTimestampns, ControlMessageOwned, MsgFlags,
    };
    use nix::sys::time::TimeSpec;
    use std::io::{self, IoSliceMut, Write};
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
    use tokio::net::TcpStream;

    /// When a message's bytes reached the client: `arrived` is the kernel's receive timestamp
    /// of the last segment read (on loopback, the moment the node's send put them in this
    /// socket), `read` when this client read them, which on these shared cores is later by
    /// however long the client waited for a CPU.
    #[derive(Debug, Clone, Copy)]
    pub struct Stamp {
        /// None if the kernel gave no stamp with the read.
        pub arrived: Option<Instant>,
        pub read: Instant,
    }

    /// One lean client: its socket (non-blocking, read by a thread of [`read_clients`]), the
    /// bytes not yet made into frames, and for the sampled clients the view it holds.
    pub struct Client {
        index: usize,
        stream: std::net::TcpStream,
        buf: Vec<u8>,
        view: Option<super::HeldView>,
        at: Stamp,
        open: bool,
    }

    impl Client {
        pub fn new(
            index: usize,
            stream: TcpStream,
            first: Vec<u8>,
            full: bool,
        ) -> io::Result<Client> {
            let stream = stream.into_std()?;
            stream.set_nonblocking(true)?;
            setsockopt(&stream, ReceiveTimestampns, &true).map_err(io::Error::from)?;
            Ok(Client {
                index,
                stream,
                buf: first,
                view: full.then(super::HeldView::default),
                at: Stamp {
                    arrived: None,
                    read: Instant::now(),
                },
                open: true,
            })
        }

        /// Takes in the whole frames in the buffer: a snapshot is reported on `ready`, an
        /// update added to `arrivals` with the stamp of the read that completed it.
        fn absorb_frames(
            &mut self,
            arrivals: &mut Vec<(usize, u64, Stamp)>,
            ready: &tokio::sync::mpsc::UnboundedSender<usize>,
        ) -> io::Result<()> {
            let mut used = 0;
            while let Some((opcode, payload, len)) = frame(&self.buf[used..])? {
                let payload = used + payload.start..used + payload.end;
                match opcode {
                    0x1 => {
                        let text = std::str::from_utf8(&self.buf[payload]).map_err(|e| {
                            io::Error::other(format!("a text frame is not UTF-8: {e}"))
                        })?;
                        // The seq and type, and for the sampled clients the whole message
                        // applied to the view they hold.
                        let heard = match &mut self.view {
                            Some(view) => view.absorb(text),
                            None => type_and_seq(text),
                        };
                        match heard {
                            Some(("snapshot", _)) => {
                                let _ = ready.send(self.index);
                            }
                            Some(("update", seq)) => arrivals.push((self.index, seq, self.at)),
                            _ => {}
                        }
                    }
                    0x8 => self.open = false,
                    0x9 => {
                        let pong = masked(0xA, &self.buf[payload]);
                        // A pong that does not fit the socket now is dropped: the node only
                        // pings to find dead connections, and this one is alive.
                        let _ = (&self.stream).write(&pong);
                    }
                    _ => {}
                }
                used += len;
            }
            self.buf.drain(..used);
            Ok(())
        }
    }

    /// Reads `clients` until `stop`, on the calling thread: one epoll set, each ready socket
    /// read with one `recvmsg` (which also brings the kernel's receive timestamp), the
    /// updates of a round handed over together. A task per client on a runtime cost a wake-up,
    /// a poll and a readiness update per message: work a screen at the venue does on its own
    /// CPU, here on the node's.
    pub fn read_clients(
        mut clients: Vec<Client>,
        seen: &super::Deliveries,
        ready: &tokio::sync::mpsc::UnboundedSender<usize>,
        stop: &AtomicBool,
    ) -> io::Result<()> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(io::Error::from)?;
        for (slot, client) in clients.iter().enumerate() {
            epoll
                .add(
                    &client.stream,
                    EpollEvent::new(EpollFlags::EPOLLIN, slot as u64),
                )
                .map_err(io::Error::from)?;
        }
        // What came with the handshake's answer.
        let mut arrivals = Vec::new();
        for client in clients.iter_mut() {
            client.absorb_frames(&mut arrivals, ready)?;
        }
        let mut events = vec![EpollEvent::empty(); 256];
        let mut chunk = vec![0u8; 16 * 1024];
        let mut control = nix::cmsg_space!(TimeSpec);
        let anchor = (Instant::now(), SystemTime::now());
        while !stop.load(Ordering::Acquire) {
            let n = match epoll.wait(&mut events, 100u16) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            for event in &events[..n] {
                let Some(client) = usize::try_from(event.data())
                    .ok()
                    .and_then(|slot| clients.get_mut(slot))
                else {
                    continue;
                };
                let fd = client.stream.as_raw_fd();
                let mut iov = [IoSliceMut::new(&mut chunk)];
                let received = recvmsg::<()>(fd, &mut iov, Some(&mut control), MsgFlags::empty());
                let (bytes, stamp) = match received {
                    Ok(msg) => {
                        let stamp = msg.cmsgs().map_err(io::Error::from)?.find_map(|c| match c {
                            ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
                            _ => None,
                        });
                        (msg.bytes, stamp)
                    }
                    Err(nix::errno::Errno::EAGAIN) => continue,
                    Err(e) => {
                        eprintln!("ws: client {}: {e}", client.index);
                        (0, None)
                    }
                };
                if bytes == 0 {
                    client.open = false;
                } else {
                    client.buf.extend_from_slice(&chunk[..bytes]);
                    let read = Instant::now();
                    client.at = Stamp {
                        arrived: stamp.map(|ts| on_monotonic_clock(anchor, ts, read)),
                        read,
                    };
                    if let Err(e) = client.absorb_frames(&mut arrivals, ready) {
                        eprintln!("ws: client {}: {e}", client.index);
                        client.open = false;
                    }
                }
                if !client.open {
                    let _ = epoll.delete(&client.stream);
                }
            }
            if !arrivals.is_empty() {
                seen.record(&mut arrivals);
            }
        }
        Ok(())
    }

    /// A kernel receive stamp (`SO_TIMESTAMPNS`, wall clock) as an `Instant`, like every other
    /// time this benchmark takes; `anchor` is one moment on both clocks.
    fn on_monotonic_clock(anchor: (Instant, SystemTime), ts: TimeSpec, read: Instant) -> Instant {
        let (anchor_instant, anchor_wall) = anchor;
        let wall = UNIX_EPOCH + Duration::from(ts);
        let arrived = match wall.duration_since(anchor_wall) {
            Ok(after) => anchor_instant + after,
            Err(before) => anchor_instant
                .checked_sub(before.duration())
                .unwrap_or(anchor_instant),
        };
        // A wall clock stepped by NTP mid-run must not put an arrival after its read.
        arrived.min(read)
    }

    /// The first whole frame in `buf`: (opcode, payload's range, frame's length).
    fn frame(buf: &[u8]) -> io::Result<Option<(u8, std::ops::Range<usize>, usize)>> {
        if buf.len() < 2 {
            return Ok(None);
        }
        if buf[0] & 0x80 == 0 {
            return Err(io::Error::other("the node sent a fragmented message"));
        }
        if buf[1] & 0x80 != 0 {
            return Err(io::Error::other("the node sent a masked frame"));
        }
        let (start, len) = match buf[1] & 0x7F {
            126 if buf.len() >= 4 => (4, u64::from(u16::from_be_bytes([buf[2], buf[3]]))),
            127 if buf.len() >= 10 => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&buf[2..10]);
                (10, u64::from_be_bytes(be))
            }
            126 | 127 => return Ok(None),
            short => (2, u64::from(short)),
        };
        let len = usize::try_from(len).map_err(|_| io::Error::other("a frame too big"))?;
        if buf.len() < start + len {
            return Ok(None);
        }
        Ok(Some((buf[0] & 0x0F, start..start + len, start + len)))
    }

    /// A client's control frame: masked, as every client frame must be.
    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x5A, 0x3C, 0x96, 0xE1];
        let mut out = vec![0x80 | opcode, 0x80 | payload.len().min(125) as u8];
        out.extend_from_slice(&mask);
        out.extend(
            payload
                .iter()
                .take(125)
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4]),
        );
        out
    }

    /// The message's type and seq, read without building the rest of it.
    pub fn type_and_seq(text: &str) -> Option<(&'static str, u64)> {
        #[derive(serde::Deserialize)]
        struct Head<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
            seq: Option<u64>,
        }
        let head: Head = serde_json::from_str(text).ok()?;
        let kind = match head.kind.as_ref() {
            "snapshot" => "snapshot",
            "update" => "update",
            _ => return None,
        };
        Some((kind, head.seq?))
    }
}
