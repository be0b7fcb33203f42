//! Command throughput and latency over HTTP with durable commits, plus the idle node's memory.
//!
//! Starts the real `pvm-node` on loopback, makes the first admin, registers a field of
//! players, then reports chip counts (each answer means the command's events are fsynced).
//! Two ways to load it:
//!
//! - closed loop (default): `--clients` (default 64) keep-alive clients each send the next
//!   command as soon as the last is answered. This finds the most commands/s the node takes;
//!   its latency is whatever queueing that saturation causes (by Little's law, the number of
//!   clients divided by the rate), so it says little about the latency of a node in use.
//! - open loop (`--rate R`): commands are sent at R per second on a fixed schedule, whether or
//!   not earlier ones were answered, over as many connections as are needed. Latency counts
//!   from the moment the schedule said a command was due, so a stall of the node (or of this
//!   generator) shows in full instead of slowing the senders down ("coordinated omission").
//!   The script measures latency this way too, at the throughput target.
//!
//! Both send over lean keep-alive connections (`lean_http`: the request written in one piece,
//! the answer's status and length read, nothing else): the clients stand for phones and
//! tablets, each on a CPU of its own, so whatever this generator spends per request is taken
//! from the node's two cores for nothing. A full HTTP client (reqwest) cost 40-50 µs per
//! command here, a third of the node's own; the lean one costs about 20.
//!
//! With `--history N`, the node starts on a log of N events of plausible venue history (as
//! `bench_startup` makes it): a venue's commands must not get slower as its history grows.
//! `--snapshot-behind M` puts the log's last snapshot M events before its end; M a little
//! under the snapshot interval (~90,000 for 1M events) makes the node save its next snapshot
//! during the run, so the run shows what that save costs the commands.
//!
//! With `--displays N`, N WebSocket clients watch `--display-topic` (default `venue`, which
//! chip reports do not change) for the whole run, as the venue's screens do while the floor
//! works: every commit is still offered to each of them, so this shows what a connected screen
//! costs the commands even when it has nothing to show. They never read: the few `time`
//! messages of a run wait in their sockets.
//!
//! Prints commands/s and the client-side latency percentiles, the node's and the generator's
//! CPU per command, and the node's per-stage histograms. Bounded: `--seconds` (default 10)
//! after a one-second warm-up, `--entries` (default 200).
//!
//! `cargo run --release -p pvm-node --example bench_commands -- --clients 64 --seconds 10`
//! `cargo run --release -p pvm-node --example bench_commands -- --rate 2000 --seconds 10`

#[path = "support/mod.rs"]
mod support;

use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{ms, percentile, result, NodeProcess};

fn main() {
    let clients: usize = support::flag("--clients", 64);
    let seconds: u64 = support::flag("--seconds", 10);
    let entries: usize = support::flag("--entries", 200);
    let rate: f64 = support::flag("--rate", 0.0);
    let displays: usize = support::flag("--displays", 0);
    let display_topic: String = support::flag("--display-topic", "venue".to_string());
    let history: u64 = support::flag("--history", 0);
    let snapshot_behind: u64 = support::flag("--snapshot-behind", 0);
    let dir = support::scratch_dir("pvm-bench-commands");
    if history > 0 {
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("creating the data directory");
        let log = data.join(pvm_node::node::EVENT_LOG_FILE);
        let (events, tournaments, players) =
            support::history::generate(&log, history, snapshot_behind);
        println!(
            "commands: the node starts with a history of {events} events \
             ({tournaments} tournaments, {players} players)"
        );
    }
    // The floor under every durable answer: what one fsync costs on this disk, alone.
    let probe = support::fsync_probe(dir.path(), 300);
    println!(
        "commands: fsync probe on the scratch disk: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&probe, 50.0)),
        ms(percentile(&probe, 99.0)),
        ms(percentile(&probe, 100.0))
    );
    let node = NodeProcess::start(dir.path(), support::QUIET_CONFIG, true);
    // One thread for the whole load generator: it shares the two cores with the node, and a
    // second worker would mostly add thread hand-offs to every measured round trip. Its cost
    // is printed (CPU per command) so it can be told from the node's.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    runtime.block_on(async {
        let token = support::setup_admin(&node).await;
        // Idle: set up, nothing connected, nothing happening.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = node.rss_kib() as f64 / 1024.0;
        if history > 0 {
            // The target is the fresh node's; this one holds a year of venue in memory.
            result(&format!("rss_idle_after_{}k_events", history / 1000), rss, "MiB", None);
        } else {
            result("rss_idle", rss, "MiB", Some(("<=", 20.0)));
        }

        let admin = support::client(&token);
        let (tournament, entry_ids) =
            support::tournament_with_entries(&admin, &node.base(), entries).await;

        let mut screens = Vec::with_capacity(displays);
        let display_path = format!("/api/v1/ws?topics={display_topic}");
        for _ in 0..displays {
            let (stream, _) = support::open_websocket(node.addr, &display_path)
                .await
                .expect("a display's WebSocket");
            screens.push(stream);
        }
        if displays > 0 {
            println!("commands: {displays} displays watch {display_topic} throughout");
        }

        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let load = Load {
            token: token.clone(),
            base: node.base(),
            tournament: tournament.clone(),
            entry_ids: Arc::new(entry_ids),
            measuring: measuring.clone(),
            stop: stop.clone(),
        };
        let tasks = if rate > 0.0 {
            vec![tokio::spawn(load.open_loop(rate))]
        } else {
            (0..clients)
                .map(|c| tokio::spawn(load.clone().closed_loop(c, clients)))
                .collect()
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (commits_before, snapshots_before) = counters(&admin, &node.base()).await;
        let stages_before = support::stage_buckets(&admin, &node.base()).await;
        let (node_cpu_before, own_cpu_before) = (support::cpu_time(node.pid()), support::own_cpu_time());
        let steal_before = support::steal_time();
        measuring.store(true, Ordering::Relaxed);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        measuring.store(false, Ordering::Relaxed);
        let elapsed = started.elapsed();
        let node_cpu = support::cpu_time(node.pid()).saturating_sub(node_cpu_before);
        let own_cpu = support::own_cpu_time().saturating_sub(own_cpu_before);
        let stolen = support::steal_time().saturating_sub(steal_before);
        let (commits_after, snapshots_after) = counters(&admin, &node.base()).await;
        let stages_after = support::stage_buckets(&admin, &node.base()).await;
        stop.store(true, Ordering::Relaxed);
        let mut samples = Vec::new();
        let mut from_send = Vec::new();
        for t in tasks {
            let (due, sent) = t.await.expect("a client task");
            samples.extend(due);
            from_send.extend(sent);
        }
        samples.sort();
        from_send.sort();
        let load_name = if rate > 0.0 {
            format!("at {rate:.0}/s on a fixed schedule")
        } else {
            format!("from {clients} clients")
        };
        println!(
            "commands: {} chip reports {load_name} in {:.1}s; {:.0} group commits (≈{:.1} commands each); \
             {:.0} snapshots saved",
            samples.len(),
            elapsed.as_secs_f64(),
            commits_after - commits_before,
            samples.len() as f64 / (commits_after - commits_before).max(1.0),
            snapshots_after - snapshots_before,
        );
        let per_command = |cpu: Duration| cpu.as_secs_f64() * 1e6 / samples.len().max(1) as f64;
        println!(
            "commands: CPU per command: node {:.0} µs, load generator {:.0} µs \
             (of {:.2} s wall; {:.0}% and {:.0}% of one core)",
            per_command(node_cpu),
            per_command(own_cpu),
            elapsed.as_secs_f64(),
            node_cpu.as_secs_f64() * 100.0 / elapsed.as_secs_f64(),
            own_cpu.as_secs_f64() * 100.0 / elapsed.as_secs_f64(),
        );
        // The node's own view of the same window: where the client's latency was spent.
        // Bucketed, so each figure is the bound of the bucket the percentile falls in.
        support::print_stages("commands", &stages_before, &stages_after);
        println!(
            "commands: client p95 {:.2} ms, p99.9 {:.2} ms",
            ms(percentile(&samples, 95.0)),
            ms(percentile(&samples, 99.9))
        );
        // Throughput is the closed loop's figure (see the module's comment).
        let name = |figure: &str| {
            let load = if rate > 0.0 {
                format!("{figure}_at_{rate:.0}ps")
            } else {
                format!("{figure}_{clients}c")
            };
            let load = if displays > 0 {
                format!("{load}_{displays}_displays")
            } else {
                load
            };
            if history > 0 {
                format!("{load}_after_{}k_events", history / 1000)
            } else {
                load
            }
        };
        // Held to the latency target: a few clients keeping the node busy, and a schedule at
        // the throughput target. Many clients only show the throughput: their latency is their
        // number over the rate (Little's law), whatever the node does.
        let latency_target = (rate > 0.0 || clients <= 8).then_some(("<=", 5.0));
        let rate_target = (rate == 0.0).then_some((">=", 2000.0));
        let measured_rate = samples.len() as f64 / elapsed.as_secs_f64();
        result(&name("commands_per_s"), measured_rate, "1/s", rate_target);
        result(&name("command_p50"), ms(percentile(&samples, 50.0)), "ms", None);
        result(&name("command_p95"), ms(percentile(&samples, 95.0)), "ms", None);
        result(&name("command_p99"), ms(percentile(&samples, 99.0)), "ms", latency_target);
        result(&name("command_max"), ms(percentile(&samples, 100.0)), "ms", None);
        if rate > 0.0 {
            // The same commands timed from when they actually left: the difference is how late
            // the generator sent them (its timer ticks each millisecond, and it shares the CPU).
            println!(
                "commands: timed from the send instead of the schedule: p50 {:.2} ms, p99 {:.2} ms",
                ms(percentile(&from_send, 50.0)),
                ms(percentile(&from_send, 99.0)),
            );
        }
        support::report_steal("commands", &name("vm_steal"), stolen, elapsed);
        result(&name("node_cpu_per_command"), per_command(node_cpu), "µs", None);
        result(&name("generator_cpu_per_command"), per_command(own_cpu), "µs", None);
        result("rss_after_load", node.rss_kib() as f64 / 1024.0, "MiB", None);
        drop(screens);
    });
    node.stop();
}

/// What every load needs: where to send, what to send, and when to record.
#[derive(Clone)]
struct Load {
    token: String,
    base: String,
    tournament: String,
    entry_ids: Arc<Vec<String>>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

/// Latencies measured from when each command was due, and from when it was sent (the second
/// only in the open loop, where the two differ).
type Samples = (Vec<Duration>, Vec<Duration>);

impl Load {
    fn path(&self, n: usize) -> String {
        let entry = &self.entry_ids[n % self.entry_ids.len()];
        format!(
            "/api/v1/tournaments/{}/entries/{entry}/chips",
            self.tournament
        )
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.base
            .trim_start_matches("http://")
            .parse()
            .expect("the node listens on an address")
    }

    /// One client: the next command as soon as the last is answered (due when sent).
    async fn closed_loop(self, first: usize, clients: usize) -> Samples {
        let mut connection = lean_http::Connection::open(self.addr(), &self.token)
            .await
            .expect("a connection to the node");
        let mut samples = Vec::new();
        let mut n = first;
        while !self.stop.load(Ordering::Relaxed) {
            let path = self.path(n);
            n += clients;
            let sent = Instant::now();
            report_chips(&mut connection, &path, 1_000 + n).await;
            if self.measuring.load(Ordering::Relaxed) {
                samples.push(sent.elapsed());
            }
        }
        // Each command is sent when due, so there is nothing to time from the send apart.
        (samples, Vec::new())
    }

    /// Commands at `rate` per second on a fixed schedule, each on its own task so a slow
    /// answer never delays the next send.
    async fn open_loop(self, rate: f64) -> Samples {
        // Idle connections; a command finding none opens another, so there are as many as
        // were ever in flight at once.
        let idle = Arc::new(std::sync::Mutex::new(Vec::<lean_http::Connection>::new()));
        let (addr, token) = (self.addr(), Arc::new(self.token.clone()));
        let every = Duration::from_secs_f64(1.0 / rate);
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut in_flight = Vec::new();
        let mut n = 0usize;
        while !self.stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let now = Instant::now();
            // Every command whose time has come, each stamped with its own due time.
            while let Some(due) = u32::try_from(n)
                .ok()
                .map(|k| start + every * k)
                .filter(|due| *due <= now)
            {
                let (idle, token, path) = (idle.clone(), token.clone(), self.path(n));
                let measured = self.measuring.load(Ordering::Relaxed);
                let chips = 1_000 + n;
                n += 1;
                in_flight.push(tokio::spawn(async move {
                    let reused = idle.lock().expect("the idle list").pop();
                    let mut connection = match reused {
                        Some(c) => c,
                        None => lean_http::Connection::open(addr, &token)
                            .await
                            .expect("a connection to the node"),
                    };
                    let sent = Instant::now();
                    report_chips(&mut connection, &path, chips).await;
                    let timing = measured.then(|| (due.elapsed(), sent.elapsed()));
                    idle.lock().expect("the idle list").push(connection);
                    timing
                }));
            }
        }
        let (mut from_due, mut from_send) = (Vec::new(), Vec::new());
        for task in in_flight {
            if let Some((due, sent)) = task.await.expect("a command task") {
                from_due.push(due);
                from_send.push(sent);
            }
        }
        (from_due, from_send)
    }
}

/// A keep-alive HTTP/1.1 connection that sends JSON and reads only the status and the length
/// of each answer: enough for a load generator, and a small fraction of a full client's work.
mod lean_http {
    use std::io;
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// As long as the full client this replaced waited.
    const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

    pub struct Connection {
        stream: TcpStream,
        host: String,
        token: String,
        buf: Vec<u8>,
    }

    impl Connection {
        pub async fn open(addr: SocketAddr, token: &str) -> io::Result<Connection> {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Connection {
                stream,
                host: addr.to_string(),
                token: token.to_owned(),
                buf: Vec::with_capacity(4096),
            })
        }

        /// POSTs `body` to `path` and returns the answer's status once its body is read; a
        /// node that does not answer within [`ANSWER_TIMEOUT`] is an error, so the benchmark
        /// stays bounded.
        pub async fn post_json(&mut self, path: &str, body: &str) -> io::Result<u16> {
            tokio::time::timeout(ANSWER_TIMEOUT, self.exchange(path, body))
                .await
                .map_err(|_| {
                    io::Error::other(format!("no answer to POST {path} in {ANSWER_TIMEOUT:?}"))
                })?
        }

        async fn exchange(&mut self, path: &str, body: &str) -> io::Result<u16> {
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                self.host,
                self.token,
                body.len()
            );
            self.stream.write_all(request.as_bytes()).await?;
            loop {
                if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let (status, length) = head(&self.buf[..end])?;
                    let total = end + 4 + length;
                    while self.buf.len() < total {
                        self.fill().await?;
                    }
                    self.buf.drain(..total);
                    return Ok(status);
                }
                self.fill().await?;
            }
        }

        async fn fill(&mut self) -> io::Result<()> {
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::other("the node closed the connection"));
            }
            Ok(())
        }
    }

    /// The status and Content-Length of an answer's head.
    fn head(head: &[u8]) -> io::Result<(u16, usize)> {
        let text = std::str::from_utf8(head)
            .map_err(|e| io::Error::other(format!("an answer's head is not UTF-8: {e}")))?;
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no status in {text:?}")))?;
        let mut length = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(io::Error::other(
                    "a chunked answer: this client reads only answers with a Content-Length",
                ));
            }
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok();
            }
        }
        let length =
            length.ok_or_else(|| io::Error::other(format!("no Content-Length in {text:?}")))?;
        Ok((status, length))
    }
}

/// One chip report, answered successfully (the bench stops on any failure).
async fn report_chips(connection: &mut lean_http::Connection, path: &str, chips: usize) {
    match connection
        .post_json(path, &json!({ "chips": chips }).to_string())
        .await
    {
        Ok(200..=299) => {}
        Ok(status) => panic!("a chip report was answered {status}"),
        Err(e) => panic!("a chip report failed: {e}"),
    }
}

/// The node's counters (commits, snapshots saved), as /metrics has them now.
async fn counters(client: &reqwest::Client, base: &str) -> (f64, f64) {
    let text = support::metrics_text(client, base).await;
    let counter = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    (
        counter("pvm_commits_total"),
        counter("pvm_snapshots_saved_total"),
    )
}
