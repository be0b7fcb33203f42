//! Crash safety of the real binary: `pvm-node` runs under concurrent command load over HTTP
//! and is SIGKILLed at a random moment, again and again. After every restart, each command
//! that was acknowledged (a 2xx with its seq) must still be there: its events at their seqs
//! with the same ids and kinds, the players and entries it created, the chip counts it
//! reported. The log must open clean every time (the node refuses writes to a damaged one, and the
//! test opens it once more through `pvm_store`, which runs SQLite's quick check).
//!
//! `PVM_CRASH_ROUNDS` sets the number of rounds (default 200); `PVM_CRASH_SEED` replays the
//! same random choices (op mix, chip counts, kill delays). The seed is printed at the start
//! and in every failure. The soak runs thousands of rounds in release:
//! `PVM_CRASH_ROUNDS=2000 cargo test --release -p pvm-node --test crash -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

const DEFAULT_ROUNDS: u64 = 200;
/// Concurrent HTTP clients during each round's load.
const WORKERS: u64 = 6;
/// Longest random delay between the start of the load and the kill.
const MAX_KILL_DELAY_MS: u64 = 200;
/// Commands one worker sends at most in one round, so a slow kill cannot run away.
const MAX_OPS_PER_WORKER: u64 = 400;
const ADMIN: &str = "crash-admin";
const PASSWORD: &str = "crash-test-password";

/// SplitMix64: tiny, seedable, and good enough to pick delays and op mixes reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// One event as the node acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AckedEvent {
    seq: u64,
    id: Uuid,
    kind: String,
}

/// A tournament entry owned by one worker per round, with the chip counts it may hold: the
/// last acknowledged report, plus any report whose answer was lost in the crash (it may or
/// may not have been committed).
#[derive(Debug, Clone)]
struct EntryRec {
    id: Uuid,
    player_id: Uuid,
    possible_chips: BTreeSet<Option<u64>>,
}

/// What one worker saw acknowledged during one round.
#[derive(Default)]
struct WorkerReport {
    events: Vec<AckedEvent>,
    players: Vec<(Uuid, String)>,
    /// Players registered together with their entry (`RegisterNewPlayer`): the entry id is
    /// not in the answer, so it is checked by player.
    entered_players: Vec<Uuid>,
    entries: Vec<EntryRec>,
    unregistered: Vec<Uuid>,
    acked: u64,
}

/// A running `pvm-node` child process.
struct NodeProcess {
    child: Child,
    addr: SocketAddr,
    setup_code: Option<String>,
}

impl NodeProcess {
    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL: no destructor, no checkpoint, no flush; exactly a power cut for the process.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Harness {
    dir: tempfile::TempDir,
    seed: u64,
}

impl Harness {
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("node-output.log")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("node.toml")
    }

    /// The last lines the node printed, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn fail(&self, round: u64, what: impl std::fmt::Display) -> ! {
        panic!(
            "round {round}: {what}\n(replay with PVM_CRASH_SEED={})\nlast node output:\n{}",
            self.seed,
            self.log_tail()
        );
    }

    /// Starts the binary on a kernel-chosen loopback port and waits until it serves.
    fn start_node(&self, round: u64) -> NodeProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        writeln!(&log, "=== round {round}: starting").unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pvm-node"))
            .arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("RUST_LOG", "warn")
            // Logs must land in our pipe, never in the journal of whoever runs the tests.
            .env_remove("JOURNAL_STREAM")
            .env_remove("INVOCATION_ID")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.try_clone().unwrap()))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        // Drains stdout for the node's whole life, so a full pipe can never block it.
        std::thread::spawn(move || {
            let mut log = log;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut addr = None;
        let mut setup_code = None;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => break,
            };
            if let Some(rest) = line.split(" serving on ").nth(1) {
                addr = Some(rest.trim().parse::<SocketAddr>().unwrap());
            }
            if let Some(code) = line.split("first-run setup code: ").nth(1) {
                setup_code = Some(code.trim().to_owned());
            }
            // The setup code, when there is one, is printed right after the address.
            if addr.is_some() && (setup_code.is_some() || round > 0) {
                break;
            }
        }
        let Some(addr) = addr else {
            let status = child.try_wait().ok().flatten();
            let _ = child.kill();
            let _ = child.wait();
            self.fail(
                round,
                format!("the node did not start serving (exit status {status:?})"),
            );
        };
        NodeProcess {
            child,
            addr,
            setup_code,
        }
    }
}

fn client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// What happened to one request.
enum Sent {
    /// 2xx: the node says it is durable.
    Acked(Value),
    /// The node answered, but not with success: nothing was recorded.
    Refused(u16, String),
    /// No answer (the node died): it may or may not have been recorded.
    Lost,
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> Sent {
    let response = match client.post(url).json(&body).send().await {
        Ok(r) => r,
        Err(_) => return Sent::Lost,
    };
    let status = response.status();
    // A body cut off by the kill is a lost answer, even after a 200 status line.
    let Ok(text) = response.text().await else {
        return Sent::Lost;
    };
    if status.is_success() {
        match serde_json::from_str(&text) {
            Ok(v) => Sent::Acked(v),
            Err(_) => Sent::Lost,
        }
    } else {
        Sent::Refused(status.as_u16(), text)
    }
}

fn acked_events(answer: &Value) -> Vec<AckedEvent> {
    let events = answer["events"].as_array().cloned().unwrap_or_default();
    let list: Vec<AckedEvent> = events
        .iter()
        .map(|e| AckedEvent {
            seq: e["seq"].as_u64().unwrap(),
            id: e["id"].as_str().unwrap().parse().unwrap(),
            kind: e["kind"].as_str().unwrap().to_owned(),
        })
        .collect();
    assert_eq!(
        answer["seq"].as_u64(),
        list.last().map(|e| e.seq),
        "an answer's seq is the seq of its last event: {answer}"
    );
    list
}

fn created_id(answer: &Value) -> Uuid {
    answer["created_id"].as_str().unwrap().parse().unwrap()
}

fn kinds(events: &[AckedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// One worker's share of a round: random commands until the node dies (or the op cap).
async fn worker(
    base: String,
    client: reqwest::Client,
    tournament: Uuid,
    mut rng: Rng,
    mut entries: Vec<EntryRec>,
    mut unregistered: Vec<Uuid>,
    tag: String,
) -> WorkerReport {
    let mut report = WorkerReport::default();
    for n in 0..MAX_OPS_PER_WORKER {
        let roll = rng.below(100);
        if roll < 30 || (roll < 55 && unregistered.is_empty()) {
            let name = format!("{tag}-{n}");
            match post(
                &client,
                format!("{base}/api/v1/players"),
                json!({"name": name}),
            )
            .await
            {
                Sent::Acked(a) => {
                    let events = acked_events(&a);
                    assert_eq!(kinds(&events), ["player.added"], "{a}");
                    let id = created_id(&a);
                    report.events.extend(events);
                    report.players.push((id, name));
                    unregistered.push(id);
                    report.acked += 1;
                }
                Sent::Refused(status, body) => {
                    panic!("adding a player was refused: {status} {body}")
                }
                Sent::Lost => break,
            }
        } else if roll < 55 {
            let player = unregistered.swap_remove(rng.below(unregistered.len() as u64) as usize);
            let url = format!("{base}/api/v1/tournaments/{tournament}/entries");
            match post(&client, url, json!({"player_id": player})).await {
                Sent::Acked(a) => {
                    let events = acked_events(&a);
                    assert_eq!(kinds(&events), ["tournament.entry_registered"], "{a}");
                    report.events.extend(events);
                    entries.push(EntryRec {
                        id: created_id(&a),
                        player_id: player,
                        possible_chips: BTreeSet::from([None]),
                    });
                    report.acked += 1;
                }
                Sent::Refused(status, body) => {
                    panic!("a registration was refused: {status} {body}")
                }
                Sent::Lost => {
                    // Perhaps registered, perhaps not: never register this player again.
                    break;
                }
            }
        } else if roll < 65 {
            let name = format!("{tag}-{n}-walk-in");
            let url = format!("{base}/api/v1/tournaments/{tournament}/entries");
            match post(&client, url, json!({"new_player": {"name": name}})).await {
                Sent::Acked(a) => {
                    let events = acked_events(&a);
                    assert_eq!(
                        kinds(&events),
                        ["player.added", "tournament.entry_registered"],
                        "{a}"
                    );
                    // The new player comes first, then the entry (`created_id` is the entry).
                    let id: Uuid = a["created_ids"][0].as_str().unwrap().parse().unwrap();
                    report.events.extend(events);
                    report.players.push((id, name));
                    report.entered_players.push(id);
                    report.acked += 1;
                }
                Sent::Refused(status, body) => panic!("a walk-in was refused: {status} {body}"),
                Sent::Lost => break,
            }
        } else {
            if entries.is_empty() {
                continue;
            }
            let i = rng.below(entries.len() as u64) as usize;
            let chips = 1 + rng.below(1_000_000);
            let url = format!(
                "{base}/api/v1/tournaments/{tournament}/entries/{}/chips",
                entries[i].id
            );
            match post(&client, url, json!({"chips": chips})).await {
                Sent::Acked(a) => {
                    let events = acked_events(&a);
                    assert_eq!(kinds(&events), ["tournament.chips_reported"], "{a}");
                    report.events.extend(events);
                    entries[i].possible_chips = BTreeSet::from([Some(chips)]);
                    report.acked += 1;
                }
                Sent::Refused(status, body) => panic!("a chip count was refused: {status} {body}"),
                Sent::Lost => {
                    entries[i].possible_chips.insert(Some(chips));
                    break;
                }
            }
        }
    }
    report.entries = entries;
    report.unregistered = unregistered;
    report
}

/// Everything acknowledged so far, across rounds.
#[derive(Default)]
struct Ledger {
    /// seq → the event acknowledged there.
    events: BTreeMap<u64, AckedEvent>,
    /// Players created in the last round, checked over HTTP after the next restart.
    fresh_players: Vec<(Uuid, String)>,
    entered_players: Vec<Uuid>,
    entries: Vec<EntryRec>,
    /// Players added but not registered, per worker slot.
    unregistered: Vec<Vec<Uuid>>,
    /// Every seq up to this one was already compared with the log.
    verified_upto: u64,
    acked_total: u64,
}

impl Ledger {
    fn record(&mut self, report: WorkerReport, slot: usize) {
        for e in report.events {
            let seq = e.seq;
            if let Some(old) = self.events.insert(seq, e) {
                panic!("two acknowledged events share seq {seq}: {old:?}");
            }
        }
        self.fresh_players.extend(report.players);
        self.entered_players.extend(report.entered_players);
        self.entries.extend(report.entries);
        self.unregistered[slot] = report.unregistered;
        self.acked_total += report.acked;
    }
}

async fn get_json(client: &reqwest::Client, url: String) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// After a restart: the log opens clean, holds every acknowledged event unchanged, and the
/// node's state holds every acknowledged player, entry and chip count.
async fn verify(
    h: &Harness,
    round: u64,
    node: &NodeProcess,
    client: &reqwest::Client,
    tournament: Uuid,
    ledger: &mut Ledger,
) {
    // A second, independent open of the log: pvm_store refuses a damaged file (quick_check).
    let store = match pvm_store::Store::open(&h.data_dir().join("events.db")) {
        Ok(s) => s,
        Err(e) => h.fail(round, format!("the event log does not open clean: {e}")),
    };
    let last_seq = store.last_seq().unwrap();
    let max_acked = ledger.events.keys().next_back().copied().unwrap_or(0);
    if last_seq < max_acked {
        h.fail(
            round,
            format!("the log ends at seq {last_seq} but seq {max_acked} was acknowledged"),
        );
    }
    let mut expected_seq = ledger.verified_upto + 1;
    loop {
        let batch = store.events_since(expected_seq - 1, 5_000).unwrap();
        if batch.is_empty() {
            break;
        }
        for stored in &batch {
            if stored.seq != expected_seq {
                h.fail(
                    round,
                    format!("the log skips from {} to {}", expected_seq - 1, stored.seq),
                );
            }
            if let Some(acked) = ledger.events.get(&stored.seq) {
                if acked.id != stored.id || acked.kind != stored.kind {
                    h.fail(
                        round,
                        format!("acknowledged {acked:?} but the log holds {stored:?}"),
                    );
                }
            }
            expected_seq += 1;
        }
    }
    drop(store);
    ledger.verified_upto = last_seq;

    let (status, metrics) = {
        let r = client
            .get(format!("{}/metrics", node.base()))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(status, 200);
    let node_seq: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pvm_log_sequence "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| h.fail(round, "no pvm_log_sequence in /metrics"));
    if node_seq != last_seq {
        h.fail(
            round,
            format!("the node restarted at seq {node_seq}, but the log ends at {last_seq}"),
        );
    }

    for (id, name) in std::mem::take(&mut ledger.fresh_players) {
        let (status, player) =
            get_json(client, format!("{}/api/v1/players/{id}", node.base())).await;
        if status != 200 || player["name"] != name.as_str() {
            h.fail(
                round,
                format!("acknowledged player {name} ({id}) is missing: {status} {player}"),
            );
        }
    }

    let (status, list) = get_json(
        client,
        format!("{}/api/v1/tournaments/{tournament}/entries", node.base()),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let found: BTreeMap<Uuid, (Uuid, Option<u64>)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().parse().unwrap(),
                (
                    e["player_id"].as_str().unwrap().parse().unwrap(),
                    e["chips"].as_u64(),
                ),
            )
        })
        .collect();
    for entry in &mut ledger.entries {
        let Some((player, chips)) = found.get(&entry.id) else {
            h.fail(round, format!("acknowledged entry {} is missing", entry.id));
        };
        if *player != entry.player_id {
            h.fail(round, format!("entry {} changed player", entry.id));
        }
        if !entry.possible_chips.contains(chips) {
            h.fail(
                round,
                format!(
                    "entry {} holds {chips:?} chips; acknowledged or in flight: {:?}",
                    entry.id, entry.possible_chips
                ),
            );
        }
        entry.possible_chips = BTreeSet::from([*chips]);
    }
    let entered: BTreeSet<Uuid> = found.values().map(|(p, _)| *p).collect();
    for player in std::mem::take(&mut ledger.entered_players) {
        if !entered.contains(&player) {
            h.fail(
                round,
                format!("the walk-in entry of player {player} is missing"),
            );
        }
    }
}

#[test]
fn every_acknowledged_command_survives_sigkill_at_random_moments() {
    let rounds = env_u64("PVM_CRASH_ROUNDS").unwrap_or(DEFAULT_ROUNDS);
    let seed = env_u64("PVM_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    eprintln!("crash test: {rounds} rounds, PVM_CRASH_SEED={seed}");
    let h = Harness {
        dir: tempfile::tempdir().unwrap(),
        seed,
    };
    // No mDNS, no SNTP: the test must not talk to anything but loopback. Frequent snapshots,
    // so kills also land while one is being written and restarts load from one.
    std::fs::write(
        h.config_path(),
        "[mdns]\nenabled = false\n\n[time]\nntp_servers = []\n\n[engine]\nsnapshot_every_events = 100\n",
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rng = Rng(seed);

    // First run: the setup code printed on stdout makes the first admin; then one tournament.
    let node = h.start_node(0);
    let code = node
        .setup_code
        .clone()
        .unwrap_or_else(|| h.fail(0, "no setup code printed on first start"));
    let (token, tournament) = runtime.block_on(async {
        let plain = reqwest::Client::new();
        let response = plain
            .post(format!("{}/api/v1/setup", node.base()))
            .json(&json!({"setup_code": code, "username": ADMIN, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "setup: {}",
            response.status()
        );
        let session: Value = response.json().await.unwrap();
        let token = session["token"].as_str().unwrap().to_owned();
        let config = json!({
            "name": "Crash test freezeout",
            "buy_in": 10_000,
            "starting_stack": 20_000,
        });
        match post(
            &client(&token),
            format!("{}/api/v1/tournaments", node.base()),
            json!({"config": config, "template": "turbo"}),
        )
        .await
        {
            Sent::Acked(a) => (token, created_id(&a)),
            Sent::Refused(status, body) => panic!("creating the tournament: {status} {body}"),
            Sent::Lost => panic!("creating the tournament: no answer"),
        }
    });
    node.kill();

    let mut ledger = Ledger {
        unregistered: vec![Vec::new(); WORKERS as usize],
        ..Ledger::default()
    };
    let started = Instant::now();
    let (mut starting, mut verifying, mut loading) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for round in 1..=rounds {
        let t = Instant::now();
        let node = h.start_node(round);
        starting += t.elapsed();
        let base = node.base();
        let kill_after = Duration::from_millis(rng.below(MAX_KILL_DELAY_MS + 1));
        let worker_seeds: Vec<u64> = (0..WORKERS).map(|_| rng.next()).collect();
        let reports = runtime.block_on(async {
            let client = client(&token);
            let t = Instant::now();
            verify(&h, round, &node, &client, tournament, &mut ledger).await;
            verifying += t.elapsed();
            let t = Instant::now();
            // Each entry belongs to one worker this round, so its chip reports stay ordered.
            let mut shares: Vec<Vec<EntryRec>> = vec![Vec::new(); WORKERS as usize];
            for (i, entry) in std::mem::take(&mut ledger.entries).into_iter().enumerate() {
                shares[i % WORKERS as usize].push(entry);
            }
            let mut tasks = Vec::new();
            for (w, share) in shares.into_iter().enumerate() {
                tasks.push(tokio::spawn(worker(
                    base.clone(),
                    client.clone(),
                    tournament,
                    Rng(worker_seeds[w]),
                    share,
                    std::mem::take(&mut ledger.unregistered[w]),
                    format!("r{round}w{w}"),
                )));
            }
            tokio::time::sleep(kill_after).await;
            node.kill();
            let mut reports = Vec::new();
            for task in tasks {
                reports.push(task.await.unwrap());
            }
            loading += t.elapsed();
            reports
        });
        for (w, report) in reports.into_iter().enumerate() {
            ledger.record(report, w);
        }
    }

    // The last round's acknowledgements, and a full pass over the whole log.
    let node = h.start_node(rounds + 1);
    runtime.block_on(async {
        let client = client(&token);
        verify(&h, rounds + 1, &node, &client, tournament, &mut ledger).await;
    });
    node.kill();
    ledger.verified_upto = 0;
    let store = pvm_store::Store::open(&h.data_dir().join("events.db")).unwrap();
    let all = store.events_since(0, usize::MAX).unwrap();
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>());
    for (seq, acked) in &ledger.events {
        let stored = &all[(*seq - 1) as usize];
        assert_eq!(
            (stored.id, &stored.kind),
            (acked.id, &acked.kind),
            "seq {seq}"
        );
    }
    eprintln!(
        "crash test: {rounds} rounds in {:.1}s (starting {:.1}s, verifying {:.1}s, load and kill {:.1}s), \
         {} commands acknowledged, {} events in the log",
        started.elapsed().as_secs_f64(),
        starting.as_secs_f64(),
        verifying.as_secs_f64(),
        loading.as_secs_f64(),
        ledger.acked_total,
        all.len()
    );
    assert!(
        ledger.acked_total > 0,
        "no command was ever acknowledged: the test proved nothing"
    );
}
