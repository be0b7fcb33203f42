//! The live feeds of a running node, over real sockets: WebSocket (`/api/v1/ws`) and SSE
//! (`/api/v1/events`): hello, snapshots, updates in log order, resume with `since=`, ping/pong,
//! display topics, bad topics, and a slow client dropped without holding anyone else up.

mod common;

use common::{Api, TestNode, HDMI};
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

async fn connect(node: &TestNode, query: &str) -> Ws {
    let url = format!(
        "{}/api/v1/ws?{query}",
        node.base.replace("http://", "ws://")
    );
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connects");
    ws
}

/// The next JSON message, skipping the periodic `time` messages and transport frames.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("the stream is open")
            .expect("a valid frame");
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["type"] != "time" {
                return v;
            }
        }
    }
}

/// Messages until one matches `done` (inclusive).
async fn until(ws: &mut Ws, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let v = next(ws).await;
        let stop = done(&v);
        out.push(v);
        if stop {
            return out;
        }
    }
}

/// Each topic's view as a client holds it: snapshots and full updates replace it, patches
/// change it, as every client of the live feed must.
#[derive(Default)]
struct Views {
    views: std::collections::BTreeMap<String, Value>,
    patches: std::collections::BTreeMap<String, usize>,
}

impl Views {
    fn absorb(&mut self, m: &Value) {
        let (Some(topic), Some(kind)) = (m["topic"].as_str(), m["type"].as_str()) else {
            return;
        };
        if kind != "snapshot" && kind != "update" {
            return;
        }
        if let Some(ops) = m.get("patch") {
            let ops: Vec<pvm_core::patch::PatchOp> = serde_json::from_value(ops.clone()).unwrap();
            let view = self
                .views
                .get_mut(topic)
                .unwrap_or_else(|| panic!("a patch for {topic} before its snapshot: {m}"));
            pvm_core::patch::apply(view, &ops)
                .unwrap_or_else(|e| panic!("the patch {m} does not fit {topic}: {e}"));
            *self.patches.entry(topic.to_string()).or_default() += 1;
        } else {
            self.views.insert(topic.to_string(), m["data"].clone());
        }
    }

    fn get(&self, topic: &str) -> &Value {
        self.views
            .get(topic)
            .unwrap_or_else(|| panic!("no view of {topic}"))
    }
}

async fn tournament_with_players(admin: &Api, n: usize) -> String {
    let t = common::create_tournament(admin, common::config("Live")).await;
    for i in 0..n {
        common::register_new(admin, &t, &format!("Player {i}")).await;
    }
    t
}

#[tokio::test]
async fn websocket_sends_hello_snapshots_then_updates_in_log_order() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let t = tournament_with_players(&admin, 2).await;
    let seq = admin.seq().await;
    let mut ws = connect(&node, &format!("topics=venue,tournaments,tournament/{t}")).await;

    let hello = next(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["seq"], seq);
    assert!(hello["server_time_ms"].as_i64().unwrap() > 1_600_000_000_000);
    let mut topics = Vec::new();
    let mut views = Views::default();
    for _ in 0..3 {
        let s = next(&mut ws).await;
        views.absorb(&s);
        assert_eq!(s["type"], "snapshot", "{s}");
        assert_eq!(s["seq"], seq);
        topics.push(s["topic"].as_str().unwrap().to_string());
        if s["topic"] == format!("tournament/{t}") {
            assert_eq!(s["data"]["tournament"]["id"], t.as_str());
            assert_eq!(
                s["data"]["tournament"]["entries"]
                    .as_object()
                    .unwrap()
                    .len(),
                2
            );
        }
        if s["topic"] == "venue" {
            assert_eq!(s["data"]["currency"], "EUR");
        }
    }
    topics.sort();
    assert_eq!(
        topics,
        [
            "tournament/".to_string() + &t,
            "tournaments".into(),
            "venue".into()
        ]
    );

    // Commands produce updates, each with a higher sequence, for the topics they touch.
    admin
        .act(&format!("/api/v1/tournaments/{t}/clock/start"))
        .await
        .ok();
    common::register_new(&admin, &t, "Late Lou").await;
    let mut venue = admin.get("/api/v1/venue").await.ok();
    venue["name"] = json!("The Live Room");
    admin.put("/api/v1/venue", venue).await.ok();
    let last = admin.seq().await;

    let msgs = until(&mut ws, |v| v["topic"] == "venue").await;
    let mut last_seq = seq;
    let mut seen_kinds = Vec::new();
    for m in &msgs {
        assert_eq!(m["type"], "update", "{m}");
        let s = m["seq"].as_u64().unwrap();
        assert!(s >= last_seq, "sequence went back: {msgs:?}");
        last_seq = s;
        assert!(m["server_time_ms"].is_i64());
        seen_kinds.extend(
            m["kinds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string()),
        );
    }
    assert_eq!(last_seq, last);
    assert!(
        seen_kinds.contains(&"tournament.clock_changed".to_string()),
        "{seen_kinds:?}"
    );
    assert!(seen_kinds.contains(&"tournament.entry_registered".to_string()));
    msgs.iter().for_each(|m| views.absorb(m));
    let tour = views.get(&format!("tournament/{t}"));
    assert_eq!(tour["clock"]["status"], "running");
    assert_eq!(tour["tournament"]["entries"].as_object().unwrap().len(), 3);
    assert_eq!(views.get("venue")["name"], "The Live Room");
}

#[tokio::test]
async fn websocket_resume_with_since_replays_the_missed_events() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let t = tournament_with_players(&admin, 1).await;
    let since = admin.seq().await;
    // Missed while disconnected: a start, a pause, a new player.
    admin
        .act(&format!("/api/v1/tournaments/{t}/clock/start"))
        .await
        .ok();
    admin
        .act(&format!("/api/v1/tournaments/{t}/clock/pause"))
        .await
        .ok();
    common::register_new(&admin, &t, "Missed Mo").await;
    let now = admin.seq().await;

    let mut ws = connect(&node, &format!("topics=tournament/{t}&since={since}")).await;
    let hello = next(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["seq"], now);
    let msgs = until(&mut ws, |v| v["type"] == "snapshot").await;
    let events: Vec<&Value> = msgs.iter().filter(|m| m["type"] == "event").collect();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (since + 1..=now).collect();
    assert_eq!(seqs, expected, "every missed event once, in order");
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "tournament.clock_changed",
            "tournament.clock_changed",
            "player.added",
            "tournament.entry_registered"
        ]
    );
    assert!(events
        .iter()
        .all(|e| e["topic"] == format!("tournament/{t}")));
    assert_eq!(
        events[0]["event"]["body"]["tournament_id"],
        t.as_str(),
        "{}",
        events[0]
    );
    let snapshot = msgs.last().unwrap();
    assert_eq!(snapshot["seq"], now);
    assert_eq!(snapshot["data"]["clock"]["status"], "paused");

    // Resuming from the present replays nothing.
    let mut ws = connect(&node, &format!("topics=tournament/{t}&since={now}")).await;
    assert_eq!(next(&mut ws).await["type"], "hello");
    assert_eq!(next(&mut ws).await["type"], "snapshot");
}

#[tokio::test]
async fn ping_gets_pong_with_server_time_and_display_topics_carry_a_display_view() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let t = tournament_with_players(&admin, 1).await;
    let screen = admin
        .post(
            "/api/v1/screens",
            json!({"name": "Clock", "kind": {"type": "tournament_clock", "tournament_id": t}}),
        )
        .await
        .created();
    admin
        .put(
            &format!("/api/v1/displays/{HDMI}/screen"),
            json!({"screen_id": screen}),
        )
        .await
        .ok();

    let mut ws = connect(&node, &format!("topics=display/{HDMI}")).await;
    assert_eq!(next(&mut ws).await["type"], "hello");
    let snap = next(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["topic"], format!("display/{HDMI}"));
    let view = &snap["data"];
    assert_eq!(view["display_id"], HDMI);
    assert_eq!(view["screen_id"], screen.as_str());
    assert_eq!(view["content"]["type"], "clock", "{view}");
    assert_eq!(view["content"]["tournament_id"], t.as_str());
    assert!(view["content"]["segments"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
    assert!(view["server_time_ms"].is_i64());

    let sent = json!({"type": "ping", "client_time_ms": 12345});
    ws.send(Message::Text(sent.to_string().into()))
        .await
        .unwrap();
    let pong = next(&mut ws).await;
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["client_time_ms"], 12345);
    let server = pong["server_time_ms"].as_i64().unwrap();
    let here = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (here - server).abs() < 5_000,
        "server {server} vs here {here}"
    );

    // A clock change reaches the display as an update with a fresh view.
    admin
        .act(&format!("/api/v1/tournaments/{t}/clock/start"))
        .await
        .ok();
    let u = next(&mut ws).await;
    assert_eq!(u["type"], "update");
    let mut views = Views::default();
    views.absorb(&snap);
    views.absorb(&u);
    let view = views.get(&format!("display/{HDMI}"));
    assert_eq!(view["content"]["running"], true, "{u}");

    // A message the node does not understand is answered, not fatal.
    ws.send(Message::Text("{\"type\":\"dance\"}".into()))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await["type"], "error");
    ws.send(Message::Text(sent.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await["type"], "pong");
}

#[tokio::test]
async fn an_unknown_topic_is_refused_with_400() {
    let node = TestNode::start().await;
    let url = format!(
        "{}/api/v1/ws?topics=venue,horses",
        node.base.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => panic!("an unknown topic was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            common::assert_error_shape(&body, &body.to_string());
            assert!(body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("horses"));
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
    for q in ["topics=horses", "topics=tournament/not-a-uuid"] {
        let r = node.anonymous().get(&format!("/api/v1/events?{q}")).await;
        r.error(StatusCode::BAD_REQUEST, "bad_request");
    }
}

/// Reads SSE frames from a raw HTTP body: `data:` lines joined, with their `id:`.
struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    async fn open(node: &TestNode, query: &str) -> Sse {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1/events?{query}", node.base))
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Sse {
            resp,
            buf: String::new(),
        }
    }

    /// The next event's (id, JSON), skipping `time` messages and keep-alive comments.
    async fn next(&mut self) -> (Option<u64>, Value) {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(&data).unwrap();
                if v["type"] != "time" {
                    return (id, v);
                }
            }
            let chunk = tokio::time::timeout(WAIT, self.resp.chunk())
                .await
                .expect("an SSE frame in time")
                .expect("the stream is readable")
                .expect("the stream is open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn sse_delivers_hello_snapshots_updates_and_resume_like_the_websocket() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let t = tournament_with_players(&admin, 1).await;
    let seq = admin.seq().await;
    let mut sse = Sse::open(&node, &format!("topics=tournament/{t},displays")).await;
    let (_, hello) = sse.next().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["seq"], seq);
    let mut topics = Vec::new();
    let mut views = Views::default();
    for _ in 0..2 {
        let (id, s) = sse.next().await;
        views.absorb(&s);
        assert_eq!(s["type"], "snapshot");
        assert_eq!(id, Some(seq), "the SSE id carries the sequence");
        topics.push(s["topic"].as_str().unwrap().to_string());
    }
    topics.sort();
    assert_eq!(topics, ["displays".to_string(), format!("tournament/{t}")]);

    admin
        .act(&format!("/api/v1/tournaments/{t}/clock/start"))
        .await
        .ok();
    let (id, u) = sse.next().await;
    assert_eq!(u["type"], "update");
    assert_eq!(u["topic"], format!("tournament/{t}"));
    assert_eq!(id, Some(seq + 1));
    views.absorb(&u);
    assert_eq!(
        views.get(&format!("tournament/{t}"))["clock"]["status"],
        "running"
    );
    drop(sse);

    // Resume, as a browser would, with Last-Event-ID: the missed events, then snapshots.
    admin
        .act(&format!("/api/v1/tournaments/{t}/clock/pause"))
        .await
        .ok();
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/events?topics=tournament/{t}", node.base))
        .header("last-event-id", (seq + 1).to_string())
        .send()
        .await
        .unwrap();
    let mut sse = Sse {
        resp,
        buf: String::new(),
    };
    assert_eq!(sse.next().await.1["type"], "hello");
    let (id, e) = sse.next().await;
    assert_eq!(e["type"], "event");
    assert_eq!(e["kind"], "tournament.clock_changed");
    assert_eq!(id, Some(seq + 2));
    let (_, s) = sse.next().await;
    assert_eq!(s["type"], "snapshot");
    assert_eq!(s["data"]["clock"]["status"], "paused");
}

async fn live_clients(node: &TestNode) -> u64 {
    gauge(node, "pvm_live_clients").await
}

/// One unlabelled gauge of the node's `/metrics`.
async fn gauge(node: &TestNode, name: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .unwrap()
}

/// Reads up to the next update, requires it to be a patch (the client holds the chain's
/// view), and applies it.
async fn next_update_is_a_patch(ws: &mut Ws, views: &mut Views) {
    let update = until(ws, |m| m["type"] == "update").await.pop().unwrap();
    assert!(
        update.get("patch").is_some(),
        "a patch, not the whole view: {update}"
    );
    views.absorb(&update);
}

#[tokio::test]
async fn the_view_of_a_topic_nobody_watches_any_more_is_let_go() {
    use pvm_node::api::live::{CHAIN_IDLE_ENTRIES, SWEEP_EVERY_ENTRIES};
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let old = tournament_with_players(&admin, 1).await;
    let busy = common::create_tournament(&admin, common::config("Busy")).await;
    let entry = common::register_new(&admin, &busy, "Player").await;
    // A screen on a topic none of the commands below change: its view must be kept all along.
    let mut quiet_ws = connect(&node, "topics=venue").await;
    let mut quiet_views = Views::default();
    for m in until(&mut quiet_ws, |m| m["type"] == "snapshot").await {
        quiet_views.absorb(&m);
    }
    let before = gauge(&node, "pvm_live_views_kept").await;

    let mut old_ws = connect(&node, &format!("topics=tournament/{old}")).await;
    until(&mut old_ws, |m| m["type"] == "snapshot").await;
    let mut busy_ws = connect(&node, &format!("topics=tournament/{busy}")).await;
    let mut busy_views = Views::default();
    for m in until(&mut busy_ws, |m| m["type"] == "snapshot").await {
        busy_views.absorb(&m);
    }
    assert_eq!(gauge(&node, "pvm_live_views_kept").await, before + 2);
    old_ws.close(None).await.unwrap();
    drop(old_ws);

    // Enough commits on the other tournament for the closed one's view to go idle, while its
    // own viewer keeps reading (and checks every patch fits what it holds).
    let commits = CHAIN_IDLE_ENTRIES + 2 * SWEEP_EVERY_ENTRIES;
    let (topic, watched) = (format!("tournament/{busy}"), entry.clone());
    let reader = tokio::spawn(async move {
        let mut last_chips = 0;
        while last_chips != 100 + commits {
            let m = next(&mut busy_ws).await;
            busy_views.absorb(&m);
            if m["type"] == "update" {
                last_chips = busy_views.get(&topic)["tournament"]["entries"][&watched]["chips"]
                    .as_u64()
                    .unwrap_or(0);
            }
        }
        (busy_ws, busy_views)
    });
    let path = format!("/api/v1/tournaments/{busy}/entries/{entry}/chips");
    for chips in 101..=100 + commits {
        admin.post(&path, json!({"chips": chips})).await.ok();
    }
    let (mut busy_ws, mut busy_views) = tokio::time::timeout(WAIT * 4, reader)
        .await
        .expect("the watched tournament's viewer got every update")
        .unwrap();
    assert_eq!(
        gauge(&node, "pvm_live_views_kept").await,
        before + 1,
        "only the watched views are kept: the busy tournament's and the quiet venue's"
    );
    // The quiet screen still holds the venue's chain: its next update is a patch.
    let mut venue = admin.get("/api/v1/venue").await.ok();
    venue["name"] = json!("The Quiet Room");
    admin.put("/api/v1/venue", venue).await.ok();
    next_update_is_a_patch(&mut quiet_ws, &mut quiet_views).await;
    assert_eq!(quiet_views.get("venue")["name"], "The Quiet Room");

    // Whoever opens the old tournament again starts a new chain: a snapshot, then patches.
    let mut again = connect(&node, &format!("topics=tournament/{old}")).await;
    let mut views = Views::default();
    for m in until(&mut again, |m| m["type"] == "snapshot").await {
        views.absorb(&m);
    }
    admin
        .act(&format!("/api/v1/tournaments/{old}/clock/start"))
        .await
        .ok();
    next_update_is_a_patch(&mut again, &mut views).await;
    assert_eq!(
        views.get(&format!("tournament/{old}"))["clock"]["status"],
        "running"
    );
    // And the busy viewer is still in step.
    admin.post(&path, json!({"chips": 7})).await.ok();
    for m in until(&mut busy_ws, |m| m["type"] == "update").await.iter() {
        busy_views.absorb(m);
    }
    assert_eq!(
        busy_views.get(&format!("tournament/{busy}"))["tournament"]["entries"][&entry]["chips"],
        7
    );
}

/// Sends a client message, then a ping, and waits for the pong: the session handles a
/// client's messages in order, so the first has been acted on.
async fn tell(ws: &mut Ws, message: Value) {
    ws.send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
    ws.send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await
        .unwrap();
    until(ws, |m| m["type"] == "pong").await;
}

/// A commit is offered only to the connections watching something it may change (counted in
/// `pvm_live_ws_offers_total`), and that follows what a connection subscribes to and drops.
#[tokio::test]
async fn a_commit_visits_only_the_connections_it_may_change() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let t = common::create_tournament(&admin, common::config("Watched")).await;
    let entry = common::register_new(&admin, &t, "Player").await;
    let topic = format!("tournament/{t}");
    let mut screens = Vec::new();
    for _ in 0..20 {
        let mut screen = connect(&node, "topics=venue").await;
        until(&mut screen, |m| m["type"] == "snapshot").await;
        screens.push(screen);
    }
    let mut floor = connect(&node, &format!("topics={topic}")).await;
    until(&mut floor, |m| m["type"] == "snapshot").await;

    // The offers of a commit are counted before its first write, so once a client has read
    // the last commit's update, every offer of these commits is counted.
    let offers = || gauge(&node, "pvm_live_ws_offers_total");
    let chips = format!("/api/v1/tournaments/{t}/entries/{entry}/chips");
    let at_last_commit = |seq: u64| move |m: &Value| m["type"] == "update" && m["seq"] == seq;

    let before = offers().await;
    for count in 1..=5 {
        admin.post(&chips, json!({"chips": count})).await.ok();
    }
    let updates = until(&mut floor, at_last_commit(admin.seq().await)).await;
    assert_eq!(updates.len(), 5, "{updates:?}");
    assert_eq!(
        offers().await - before,
        5,
        "five chip counts, each offered to the floor's phone alone, not to the 20 screens"
    );

    // A screen that subscribes to the tournament is offered its commits from then on.
    tell(
        &mut screens[0],
        json!({"type": "subscribe", "topics": [&topic]}),
    )
    .await;
    let before = offers().await;
    admin.post(&chips, json!({"chips": 6})).await.ok();
    let seq = admin.seq().await;
    until(&mut floor, at_last_commit(seq)).await;
    let update = until(&mut screens[0], at_last_commit(seq))
        .await
        .pop()
        .unwrap();
    assert_eq!(update["topic"], topic.as_str());
    assert_eq!(offers().await - before, 2);

    // And no longer once it unsubscribed; the venue's changes still reach every screen.
    tell(
        &mut screens[0],
        json!({"type": "unsubscribe", "topics": [&topic]}),
    )
    .await;
    let before = offers().await;
    admin.post(&chips, json!({"chips": 7})).await.ok();
    until(&mut floor, at_last_commit(admin.seq().await)).await;
    assert_eq!(offers().await - before, 1);
    let before = offers().await;
    let mut venue = admin.get("/api/v1/venue").await.ok();
    venue["name"] = json!("The Watched Room");
    admin.put("/api/v1/venue", venue).await.ok();
    let seq = admin.seq().await;
    for screen in &mut screens {
        let update = next(screen).await;
        assert_eq!(
            (&update["topic"], &update["seq"]),
            (&json!("venue"), &json!(seq))
        );
    }
    assert_eq!(offers().await - before, 20);
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_while_others_keep_receiving() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path());
    config.ws.client_queue = 16;
    let node = TestNode::start_with(dir, config).await;
    let admin = node.setup_admin().await;
    // Big messages fill the socket buffers sooner: a tournament with many entries.
    let t = tournament_with_players(&admin, 60).await;
    let topics = format!("topics=tournament/{t},tournaments,display/{HDMI}");

    // The slow client: a tiny receive buffer, and it never reads after the handshake.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(node.running().addr).await.unwrap();
    let url = format!(
        "{}/api/v1/ws?{topics}",
        node.base.replace("http://", "ws://")
    );
    let (mut slow, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    let mut normal = connect(&node, &topics).await;
    assert_eq!(next(&mut normal).await["type"], "hello");
    assert_eq!(live_clients(&node).await, 2);

    // A flood of commands, one commit each.
    let tp = format!("/api/v1/tournaments/{t}");
    let mut flood = 0;
    let mut received = 0;
    let mut dropped = false;
    for i in 0..400 {
        let r = admin
            .post(&format!("{tp}/clock/set-time"), json!({"seconds": 600 + i}))
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "command {i} during the flood: {}",
            r.text
        );
        flood += 1;
        // Updates are small patches, which the socket buffers would take thousands of:
        // the slow client also asks for the tournament's whole view again and again (and
        // never reads it), as a client that re-subscribes after each hiccup would.
        for (kind, topic) in [
            ("unsubscribe", format!("tournament/{t}")),
            ("subscribe", format!("tournament/{t}")),
        ] {
            let ask = json!({"type": kind, "topics": [topic]});
            let _ = slow.send(Message::Text(ask.to_string().into())).await;
        }
        // The normal client keeps up.
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_millis(1), normal.next()).await
        {
            received += 1;
        }
        if i % 20 == 19 && live_clients(&node).await == 1 {
            dropped = true;
            break;
        }
    }
    println!("slow client: dropped={dropped} after {flood} commands; normal client got {received} messages");
    assert!(
        dropped,
        "the slow client is still connected after {flood} commands"
    );

    // The normal client is still served: it sees the next command.
    admin
        .post(&format!("{tp}/clock/set-time"), json!({"seconds": 42}))
        .await
        .ok();
    let last = admin.seq().await;
    let msgs = until(&mut normal, |v| {
        v["type"] == "update" && v["seq"] == last && v["topic"] == format!("tournament/{t}")
    })
    .await;
    assert!(msgs.iter().all(|m| m["type"] == "update"));
    // The slow client's connection was closed by the node: draining it ends.
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = slow.next().await {
            if let Message::Close(_) = m {
                break;
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the slow client's connection never ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_numbers_reach_signed_in_staff_but_never_public_screens() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let game = admin
        .post(
            "/api/v1/cash/games",
            json!({"game": "NLH", "small_blind": 100, "big_blind": 300}),
        )
        .await
        .created();
    admin
        .post(
            "/api/v1/cash/waitlist",
            json!({"game_id": game, "name": "Ana", "phone": "+353 87 555 0101"}),
        )
        .await
        .ok();

    let mut public = connect(&node, "topics=cash").await;
    let seen = until(&mut public, |v| v["type"] == "snapshot").await;
    let text = serde_json::to_string(&seen).unwrap();
    assert!(text.contains("Ana"), "{text}");
    assert!(
        !text.contains("555 0101"),
        "a public screen got a phone number: {text}"
    );

    let url = format!(
        "{}/api/v1/ws?topics=cash",
        node.base.replace("http://", "ws://")
    );
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    let bearer = format!("Bearer {}", admin.token.clone().unwrap());
    request
        .headers_mut()
        .insert("authorization", bearer.parse().unwrap());
    let (mut staff, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let seen = until(&mut staff, |v| v["type"] == "snapshot").await;
    let text = serde_json::to_string(&seen).unwrap();
    assert!(
        text.contains("555 0101"),
        "staff should see the phone: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_node_closes_open_live_connections() {
    let mut node = TestNode::start().await;
    let mut ws = connect(&node, "topics=venue").await;
    until(&mut ws, |v| v["type"] == "snapshot").await;
    // An SSE stream is an ordinary HTTP response that never ends by itself: the stop must not
    // wait on it.
    let mut sse = Sse::open(&node, "topics=venue").await;
    while sse.next().await.1["type"] != "snapshot" {}
    tokio::time::timeout(Duration::from_secs(10), node.stop())
        .await
        .expect("the node stops with live connections open");
    let sse_ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match sse.resp.chunk().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(
        sse_ended.is_ok(),
        "the SSE stream stayed open after the node stopped"
    );
    // The connection ends (close frame, error or end of stream) instead of lingering on a
    // node that no longer serves.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the live connection stayed open after the node stopped"
    );
}

/// A delivery task starved for longer than the engine keeps commits (16 here, the client queue)
/// cannot tell its connections which updates they missed: each is told `too_slow` with the
/// sequence to resume from and closed, and resuming from there loses nothing.
// The default current-thread runtime on purpose: the node's tasks run on this one thread, so
// blocking it starves the delivery task while the writer (a thread of its own) commits.
#[tokio::test]
async fn a_starved_delivery_task_tells_its_clients_to_resume_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(&dir.path().join("data"));
    config.ws.client_queue = 16;
    let node = TestNode::start_with(dir, config).await;
    let admin = node.setup_admin().await;
    let t = tournament_with_players(&admin, 1).await;
    let query = format!("topics=tournament/{t}");
    let mut ws = connect(&node, &query).await;
    let snapshot = until(&mut ws, |v| v["type"] == "snapshot").await;
    let held = snapshot.last().unwrap()["seq"].as_u64().unwrap();

    let engine = node.running().engine.clone();
    let commits = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            for n in 0..40 {
                let details = pvm_core::players::PlayerDetails {
                    name: format!("Starved {n}"),
                    ..Default::default()
                };
                engine
                    .execute(pvm_core::Command::AddPlayer { details })
                    .await
                    .unwrap();
            }
        })
    });
    // Blocks this thread, and with it every task of the node, until the 40 commits are in.
    commits.join().unwrap();
    let last = admin.seq().await;
    assert_eq!(last, held + 40);

    let told = next(&mut ws).await;
    assert_eq!(told["type"], "error", "{told}");
    assert_eq!(told["code"], "too_slow", "{told}");
    assert!(
        told["message"]
            .as_str()
            .unwrap()
            .contains(&format!("since={held}")),
        "{told}"
    );
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(v["type"], "time", "after too_slow only the close: {v}");
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection stayed open after too_slow");

    // Resuming where it was told to replays every commit it missed, once, in order.
    let mut ws = connect(&node, &format!("{query}&since={held}")).await;
    let msgs = until(&mut ws, |v| v["type"] == "snapshot").await;
    let seqs: Vec<u64> = msgs
        .iter()
        .filter(|m| m["type"] == "event")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (held + 1..=last).collect::<Vec<u64>>());
    assert_eq!(msgs.last().unwrap()["seq"], last);
}

/// The view with the render time taken out: two renders of the same state differ only there.
fn timeless(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            map.remove("server_time_ms");
            for child in map.values_mut() {
                *child = timeless(std::mem::take(child));
            }
        }
        Value::Array(items) => {
            for child in items.iter_mut() {
                *child = timeless(std::mem::take(child));
            }
        }
        _ => {}
    }
    v
}

/// Every topic's view from a connection opened now.
async fn fresh_views(node: &TestNode, query: &str, topics: usize) -> Views {
    fresh_views_from(&mut connect(node, query).await, topics).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patched_views_of_every_topic_kind_equal_fresh_snapshots_after_each_change() {
    let node = TestNode::start().await;
    let admin = node.setup_admin().await;
    let t = tournament_with_players(&admin, 3).await;
    let entries: Vec<String> = admin.get(&format!("/api/v1/tournaments/{t}")).await.ok()
        ["tournament"]["entries"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let game = admin
        .post(
            "/api/v1/cash/games",
            json!({"game": "NLH", "small_blind": 100, "big_blind": 300}),
        )
        .await
        .created();
    let mut waiting = Vec::new();
    for name in ["Ana", "Bo", "Cy"] {
        let r = admin
            .post(
                "/api/v1/cash/waitlist",
                json!({"game_id": game, "name": name}),
            )
            .await
            .ok();
        waiting.push(r["created_id"].as_str().unwrap().to_string());
    }
    let clock = admin
        .post(
            "/api/v1/screens",
            json!({"name": "Clock", "kind": {"type": "tournament_clock", "tournament_id": t}}),
        )
        .await
        .created();
    let list = admin
        .post(
            "/api/v1/screens",
            json!({"name": "List", "kind": {"type": "waiting_list"}}),
        )
        .await
        .created();
    admin
        .put(
            &format!("/api/v1/displays/{HDMI}/screen"),
            json!({"screen_id": clock}),
        )
        .await
        .ok();

    let names = [
        "venue".to_string(),
        "tournaments".into(),
        format!("tournament/{t}"),
        "cash".into(),
        "displays".into(),
        format!("display/{HDMI}"),
        format!("screen/{list}"),
    ];
    let query = format!("topics={}", names.join(","));
    let mut ws = connect(&node, &query).await;
    let mut views = fresh_views_from(&mut ws, names.len()).await;

    let tp = format!("/api/v1/tournaments/{t}");
    let check = async |views: &mut Views, ws: &mut Ws, what: &str| {
        let fresh = fresh_views(&node, &query, names.len()).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let differ: Vec<&String> = names
                .iter()
                .filter(|n| timeless(views.get(n).clone()) != timeless(fresh.get(n).clone()))
                .collect();
            if differ.is_empty() {
                return;
            }
            let Ok(m) = tokio::time::timeout_at(deadline, next(ws)).await else {
                panic!(
                    "after {what}: the patched views of {differ:?} never became the \
                     fresh snapshots"
                );
            };
            views.absorb(&m);
        }
    };

    // Map members added (an entry), changed (chips), array elements added and removed
    // (the waiting list, front and middle), renamed screens, a display switching to another
    // kind of screen (a whole subtree replaced), an announcement appearing.
    common::register_new(&admin, &t, "Late Lou").await;
    check(&mut views, &mut ws, "a late entry").await;
    admin
        .post(
            &format!("{tp}/entries/{}/chips", entries[0]),
            json!({"chips": 31_500}),
        )
        .await
        .ok();
    check(&mut views, &mut ws, "a chip count").await;
    admin.act(&format!("{tp}/clock/start")).await.ok();
    admin.act(&format!("{tp}/clock/pause")).await.ok();
    check(&mut views, &mut ws, "the clock started and paused").await;
    admin
        .post(
            &format!("{tp}/busts"),
            json!({"busts": [{"entry_id": entries[1]}]}),
        )
        .await
        .ok();
    check(&mut views, &mut ws, "a bust").await;
    admin
        .post(
            "/api/v1/cash/waitlist",
            json!({"game_id": game, "name": "Di"}),
        )
        .await
        .ok();
    check(&mut views, &mut ws, "a name added to the list").await;
    admin
        .delete(&format!("/api/v1/cash/waitlist/{}", waiting[1]))
        .await
        .ok();
    check(&mut views, &mut ws, "a name removed from the middle").await;
    admin
        .delete(&format!("/api/v1/cash/waitlist/{}", waiting[0]))
        .await
        .ok();
    check(&mut views, &mut ws, "the first name removed").await;
    admin
        .put(
            &format!("/api/v1/screens/{list}"),
            json!({"name": "Waiting", "kind": {"type": "waiting_list"}}),
        )
        .await
        .ok();
    check(&mut views, &mut ws, "a screen renamed").await;
    admin
        .put(
            &format!("/api/v1/displays/{HDMI}/screen"),
            json!({"screen_id": list}),
        )
        .await
        .ok();
    check(&mut views, &mut ws, "the display switched screens").await;
    admin
        .post(
            "/api/v1/announcements",
            json!({"text": "Dinner break at 8", "style": "ticker", "duration_secs": 600}),
        )
        .await
        .ok();
    check(&mut views, &mut ws, "an announcement").await;
    let mut venue = admin.get("/api/v1/venue").await.ok();
    venue["name"] = json!("The Patched Room");
    admin.put("/api/v1/venue", venue).await.ok();
    check(&mut views, &mut ws, "the venue renamed").await;

    // Every topic kind was followed through patches, not only through whole views.
    for n in &names {
        assert!(
            views.patches.get(n).copied().unwrap_or(0) > 0,
            "{n} never got a patch: {:?}",
            views.patches
        );
    }
}

async fn fresh_views_from(ws: &mut Ws, topics: usize) -> Views {
    let mut views = Views::default();
    assert_eq!(next(ws).await["type"], "hello");
    for _ in 0..topics {
        let m = next(ws).await;
        assert_eq!(m["type"], "snapshot", "{m}");
        views.absorb(&m);
    }
    views
}

/// The node speaks the WebSocket protocol itself (api/live/ws.rs): the handshake, the
/// protocol's own ping and close, a client message over the limit, and a first frame sent
/// before the handshake's answer came back.
#[tokio::test]
async fn the_websocket_handshake_pings_closes_and_limits_follow_rfc_6455() {
    use tokio::io::AsyncWriteExt;
    let node = TestNode::start().await;
    let addr = node.base.trim_start_matches("http://").to_owned();

    // Not a WebSocket request, or the wrong version: a clear error, no upgrade.
    let plain = node.anonymous().get("/api/v1/ws?topics=venue").await;
    plain.error(StatusCode::UPGRADE_REQUIRED, "upgrade_required");
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let old_version = format!(
        "GET /api/v1/ws?topics=venue HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 8\r\n\r\n"
    );
    stream.write_all(old_version.as_bytes()).await.unwrap();
    let (head, _) = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");

    // The handshake with RFC 6455's own example key, and the client's first message (a ping)
    // in the same write: it arrives before the node answered and must not be lost.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let mut opening = format!(
        "GET /api/v1/ws?topics=venue HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    opening.extend(masked_frame(0x1, br#"{"type":"ping","client_time_ms":7}"#));
    stream.write_all(&opening).await.unwrap();
    let (head, mut buf) = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    let mut types = Vec::new();
    while !types.contains(&"pong".to_owned()) {
        let (opcode, payload) = read_frame(&mut stream, &mut buf).await;
        assert_eq!(opcode, 0x1, "server frames here are text");
        let v: Value = serde_json::from_slice(&payload).unwrap();
        if v["type"] == "pong" {
            assert_eq!(v["client_time_ms"], 7);
        }
        types.push(v["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(types, ["hello", "snapshot", "pong"]);

    // The protocol's own ping is answered with a pong carrying its payload, between the
    // feed's messages.
    let mut ws = connect(&node, "topics=venue").await;
    until(&mut ws, |v| v["type"] == "snapshot").await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Pong(payload))) => return payload,
                Some(Ok(_)) => {}
                other => panic!("the connection ended before the pong: {other:?}"),
            }
        }
    })
    .await
    .expect("a pong in time");
    assert_eq!(&pong[..], b"are you there");

    // A client that closes gets the closing handshake back and the connection ends.
    ws.close(None).await.unwrap();
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None => return true,
                Some(Err(_)) => return false,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the close answered in time");
    assert!(closed, "the node did not answer the close");

    // A message over the limit (64 KiB) ends the connection; the node goes on serving.
    let mut ws = connect(&node, "topics=venue").await;
    until(&mut ws, |v| v["type"] == "snapshot").await;
    let huge = format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let _ = ws.send(Message::Text(huge.into())).await;
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a 70 KiB message was taken");
    let mut ws = connect(&node, "topics=venue").await;
    assert_eq!(next(&mut ws).await["type"], "hello");
}

/// Reads an HTTP response head; returns it and the bytes that came after it.
async fn read_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return (head, buf[end + 4..].to_vec());
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "the node closed the connection before answering");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads one whole server frame (unmasked, unfragmented): its opcode and payload.
async fn read_frame(stream: &mut TcpStream, buf: &mut Vec<u8>) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    loop {
        if buf.len() >= 2 {
            assert_eq!(buf[0] & 0x80, 0x80, "the node fragments nothing");
            assert_eq!(buf[1] & 0x80, 0, "server frames are not masked");
            let (start, len) = match buf[1] & 0x7F {
                126 if buf.len() >= 4 => (4, usize::from(u16::from_be_bytes([buf[2], buf[3]]))),
                127 if buf.len() >= 10 => {
                    let len = u64::from_be_bytes(buf[2..10].try_into().unwrap());
                    (10, usize::try_from(len).unwrap())
                }
                126 | 127 => (usize::MAX, 0),
                n => (2, usize::from(n)),
            };
            if start != usize::MAX && buf.len() >= start + len {
                let opcode = buf[0] & 0x0F;
                let payload = buf[start..start + len].to_vec();
                buf.drain(..start + len);
                return (opcode, payload);
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("a frame in time")
            .unwrap();
        assert!(n > 0, "the node closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A client frame: masked, as RFC 6455 requires of clients.
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut out = vec![0x80 | opcode];
    assert!(payload.len() < 126, "short frames only");
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}
