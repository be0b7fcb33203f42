//! What the node benchmarks share: starting the real `pvm-node` binary on loopback, first-run
//! setup, reading the process's memory, percentiles, and the result lines that
//! `scripts/bench-node.sh` gathers into its table.
//!
//! Not an example itself: cargo only builds `examples/*.rs` and `examples/*/main.rs`.

#![allow(dead_code)] // each benchmark uses a different part of this module

pub mod history;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ADMIN: &str = "bench-admin";
pub const PASSWORD: &str = "bench-password-1";

/// No mDNS and no SNTP: a benchmark talks to loopback only.
pub const QUIET_CONFIG: &str = "[mdns]\nenabled = false\n\n[time]\nntp_servers = []\n";

/// The `pvm-node` binary: `PVM_NODE_BIN`, else the one cargo built next to this example
/// (`target/<profile>/examples/<bench>` → `target/<profile>/pvm-node`).
pub fn node_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PVM_NODE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the benchmark knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("examples live in target/<profile>/examples");
    let bin = profile_dir.join("pvm-node");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build --release -p pvm-node --bins --examples)",
        bin.display()
    );
    bin
}

/// A running `pvm-node` child process.
pub struct NodeProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub setup_code: Option<String>,
    /// When the process was spawned.
    pub spawned: Instant,
}

impl NodeProcess {
    /// Spawns the node with `config` (TOML) in `dir`, data in `dir/data`, and waits until it
    /// prints where it serves (and its setup code, if `expect_setup_code`).
    pub fn start(dir: &Path, config: &str, expect_setup_code: bool) -> NodeProcess {
        let (child, rx, spawned) = Self::spawn(dir, config, "127.0.0.1:0");
        Self::await_banner(dir, child, rx, spawned, expect_setup_code)
    }

    /// Spawns the node listening on `addr` and returns at once: for timing the start itself,
    /// since the node prints where it serves only once its log has passed the integrity check,
    /// and it serves before that.
    pub fn start_at(dir: &Path, config: &str, addr: SocketAddr) -> NodeProcess {
        let (child, _rx, spawned) = Self::spawn(dir, config, &addr.to_string());
        NodeProcess {
            child,
            addr,
            setup_code: None,
            spawned,
        }
    }

    fn spawn(dir: &Path, config: &str, listen: &str) -> (Child, mpsc::Receiver<String>, Instant) {
        let config_path = dir.join("node.toml");
        std::fs::write(&config_path, config).expect("writing the node's config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node-output.log"))
            .expect("opening the node's log");
        let spawned = Instant::now();
        let mut child = Command::new(node_binary())
            .arg("--config")
            .arg(&config_path)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--listen")
            .arg(listen)
            .env("RUST_LOG", "warn")
            .env_remove("JOURNAL_STREAM")
            .env_remove("INVOCATION_ID")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.try_clone().expect("cloning a file handle")))
            .spawn()
            .expect("starting pvm-node");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        // Drains stdout for the node's whole life, so a full pipe never blocks it.
        std::thread::spawn(move || {
            let mut log = log;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                let _ = tx.send(line);
            }
        });
        (child, rx, spawned)
    }

    fn await_banner(
        dir: &Path,
        mut child: Child,
        rx: mpsc::Receiver<String>,
        spawned: Instant,
        expect_setup_code: bool,
    ) -> NodeProcess {
        let deadline = Instant::now() + Duration::from_secs(120);
        let (mut addr, mut setup_code) = (None, None);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = rx.recv_timeout(left) else {
                break;
            };
            if let Some(rest) = line.split(" serving on ").nth(1) {
                addr = rest.trim().parse::<SocketAddr>().ok();
            }
            if let Some(code) = line.split("first-run setup code: ").nth(1) {
                setup_code = Some(code.trim().to_owned());
            }
            if addr.is_some() && (setup_code.is_some() || !expect_setup_code) {
                break;
            }
        }
        let Some(addr) = addr else {
            let _ = child.kill();
            panic!(
                "pvm-node did not start; see {}",
                dir.join("node-output.log").display()
            );
        };
        NodeProcess {
            child,
            addr,
            setup_code,
            spawned,
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the node process now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS")
    }

    /// Peak resident memory of the node process so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM")
    }

    /// SIGTERM and wait: the node drains its writer, snapshots and closes the log.
    pub fn stop(mut self) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = self.child.wait();
    }

    /// SIGKILL: a power cut for the process (the next start recovers from the WAL).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of `/proc/<pid>/status` in KiB (0 if unreadable).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Completes first-run setup and returns the admin's bearer token.
pub async fn setup_admin(node: &NodeProcess) -> String {
    let code = node
        .setup_code
        .clone()
        .expect("a fresh node prints its setup code");
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/setup", node.base()))
        .json(&json!({"setup_code": code, "username": ADMIN, "password": PASSWORD}))
        .send()
        .await
        .expect("setup request");
    assert!(response.status().is_success(), "setup refused");
    let v: Value = response.json().await.expect("setup answer");
    v["token"].as_str().expect("a token").to_owned()
}

/// A client that sends the bearer token; one keep-alive connection per client when used
/// by one task at a time.
pub fn client(token: &str) -> reqwest::Client {
    client_with_pool(token, 1)
}

/// A client that sends the bearer token and keeps up to `idle` keep-alive connections, for
/// many requests in flight at once.
pub fn client_with_pool(token: &str, idle: usize) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a valid header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(idle)
        .build()
        .expect("an HTTP client")
}

/// POSTs a command; returns its answer (`seq`, `events`, `created_id`) or panics on refusal.
pub async fn command(client: &reqwest::Client, url: String, body: Value) -> Value {
    let response = client.post(&url).json(&body).send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("answer");
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).expect("JSON answer")
}

/// Creates a freezeout and registers `players` walk-ins; returns the tournament and entries.
pub async fn tournament_with_entries(
    client: &reqwest::Client,
    base: &str,
    players: usize,
) -> (String, Vec<String>) {
    let created = command(
        client,
        format!("{base}/api/v1/tournaments"),
        json!({"config": {"name": "Bench freezeout", "buy_in": 10_000, "starting_stack": 20_000},
               "template": "turbo"}),
    )
    .await;
    let tournament = created["created_id"].as_str().expect("an id").to_owned();
    let mut entries = Vec::with_capacity(players);
    for n in 0..players {
        let player = command(
            client,
            format!("{base}/api/v1/players"),
            json!({"name": format!("Bench player {n}")}),
        )
        .await;
        let entry = command(
            client,
            format!("{base}/api/v1/tournaments/{tournament}/entries"),
            json!({"player_id": player["created_id"]}),
        )
        .await;
        entries.push(entry["created_id"].as_str().expect("an id").to_owned());
    }
    (tournament, entries)
}

/// The `p`-th percentile (0–100) of sorted samples, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One figure for the table: `RESULT|metric|value|unit|target|met`. `target` is e.g.
/// `>= 2000` or `<= 5`; `met` says whether the figure meets it (printed, never asserted).
pub fn result(metric: &str, value: f64, unit: &str, target: Option<(&str, f64)>) {
    let (target_text, met) = match target {
        Some((">=", t)) => (format!(">= {t}"), if value >= t { "yes" } else { "NO" }),
        Some(("<=", t)) => (format!("<= {t}"), if value <= t { "yes" } else { "NO" }),
        _ => ("-".to_owned(), "-"),
    };
    println!("RESULT|{metric}|{value:.2}|{unit}|{target_text}|{met}");
}

/// A loopback address with a port free right now (the node binds it a moment later).
pub fn free_loopback_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("the probe listener's address")
}

/// A fresh scratch directory under `PVM_BENCH_DIR` (default: the system's temp dir).
pub fn scratch_dir(name: &str) -> tempfile::TempDir {
    let parent = std::env::var_os("PVM_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent).expect("creating the bench directory");
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(parent)
        .expect("a scratch directory")
}

/// Reads a `--name value` flag from the command line.
pub fn flag<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The disk's own floor for a durable commit, measured beside the node: `rounds` times, one
/// 4 KiB page appended to a growing file in `dir` and `fdatasync`ed — what a WAL commit with
/// `synchronous=FULL` asks of the disk at the least. Returns the sorted latencies.
pub fn fsync_probe(dir: &Path, rounds: usize) -> Vec<Duration> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("creating the fsync probe file");
    let page = [0x5au8; 4096];
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        file.write_all(&page).expect("writing the probe page");
        file.sync_data().expect("fdatasync of the probe file");
        samples.push(t.elapsed());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    samples.sort();
    samples
}

/// CPU time used so far by every thread of process `pid` (user and system), from the
/// scheduler's own nanosecond counters (`/proc/<pid>/task/*/schedstat`). Threads that have
/// already exited are not counted, so take it from long-lived processes only.
pub fn cpu_time(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// CPU time the hypervisor took from this machine so far ("steal", all CPUs together), from
/// `/proc/stat`; zero on bare metal. On a virtual machine whose host caps its CPU, the whole
/// machine stops for milliseconds at a time once the cap is reached, and every request in
/// flight then waits: the benchmarks print this beside their latencies so a tail made by the
/// host can be told from one made by the node.
pub fn steal_time() -> Duration {
    // The kernel reports these in USER_HZ ticks, which Linux fixes at 100 per second.
    const TICKS_PER_SECOND: u64 = 100;
    let ticks = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let total = stat.lines().find(|l| l.starts_with("cpu "))?.to_owned();
            total.split_whitespace().nth(8)?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

/// Prints [`steal_time`] over a measured window, as a share of the machine's CPUs, and records
/// it as a figure without a target.
pub fn report_steal(bench: &str, name: &str, stolen: Duration, window: Duration) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = stolen.as_secs_f64() * 100.0 / (window.as_secs_f64() * cpus as f64).max(1e-9);
    println!(
        "{bench}: the hypervisor held this machine back for {:.0} ms of CPU during the window \
         ({share:.1}% of {cpus} CPUs); each hold stops every request in flight",
        stolen.as_secs_f64() * 1e3
    );
    result(name, share, "%", None);
}

/// [`cpu_time`] of this process (the load generator).
pub fn own_cpu_time() -> Duration {
    cpu_time(std::process::id())
}

/// Opens a WebSocket to the node the way a lean client does (the upgrade written by hand, the
/// answer's head checked); returns the stream and any bytes of the first frames that came
/// with the answer.
pub async fn open_websocket(
    addr: SocketAddr,
    path: &str,
) -> std::io::Result<(tokio::net::TcpStream, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: cHZtLWJlbmNoLWNsaWVudA==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(4096);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(std::io::Error::other(
                "the node closed the connection during the upgrade",
            ));
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            if !head.starts_with("HTTP/1.1 101") {
                return Err(std::io::Error::other(format!(
                    "the upgrade was refused: {head}"
                )));
            }
            buf.drain(..end + 4);
            return Ok((stream, buf));
        }
    }
}

/// The node's `/metrics` text.
pub async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The cumulative buckets of `pvm_engine_stage_seconds`: (stage, upper bound in ms, count).
pub async fn stage_buckets(client: &reqwest::Client, base: &str) -> Vec<(String, f64, f64)> {
    metrics_text(client, base)
        .await
        .lines()
        .filter_map(|l| l.strip_prefix("pvm_engine_stage_seconds_bucket{stage=\""))
        .filter_map(|l| {
            let (stage, rest) = l.split_once("\",le=\"")?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse::<f64>().ok()? * 1e3
            };
            Some((stage.to_owned(), le, count.trim().parse().ok()?))
        })
        .collect()
}

/// One stage's cumulative buckets over the measured window: (upper bound in ms, count).
pub fn stage_window(
    before: &[(String, f64, f64)],
    after: &[(String, f64, f64)],
    stage: &str,
) -> Vec<(f64, f64)> {
    after
        .iter()
        .filter(|(s, _, _)| s == stage)
        .map(|(_, le, n)| {
            let earlier = before
                .iter()
                .find(|(s, l, _)| s == stage && l == le)
                .map_or(0.0, |(_, _, n)| *n);
            (*le, n - earlier)
        })
        .collect()
}

/// The upper bound (ms) of the bucket holding percentile `p`, as text ("inf" past the last).
pub fn bucket_percentile(window: &[(f64, f64)], p: f64) -> String {
    let total = window.last().map_or(0.0, |(_, n)| *n);
    if total == 0.0 {
        return "-".to_owned();
    }
    let wanted = total * p / 100.0;
    window
        .iter()
        .find(|(_, n)| *n >= wanted)
        .map_or_else(|| "inf".to_owned(), |(le, _)| format!("{le:.1}"))
}

/// Prints the writer's stages over a window (from two [`stage_buckets`] readings): where the
/// commands' time went on the node's side. Bucketed, so each figure is the bound of the bucket
/// the percentile falls in.
pub fn print_stages(bench: &str, before: &[(String, f64, f64)], after: &[(String, f64, f64)]) {
    for stage in ["queued", "committing", "answered", "housekeeping"] {
        let window = stage_window(before, after, stage);
        println!(
            "{bench}: node stage {stage:<12} p50 ≤ {} ms, p99 ≤ {} ms, p99.9 ≤ {} ms, max ≤ {} ms ({} samples)",
            bucket_percentile(&window, 50.0),
            bucket_percentile(&window, 99.0),
            bucket_percentile(&window, 99.9),
            bucket_percentile(&window, 100.0),
            window.last().map_or(0.0, |(_, n)| *n),
        );
    }
}
