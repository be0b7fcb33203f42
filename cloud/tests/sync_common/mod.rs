//! Shared by the sync tests: a nats-server trusting a fresh operator (the cloud's generated
//! auth config), a migrated PostgreSQL, venue nodes' event logs made by pvm-core itself, and
//! what those logs should project to (computed with pvm-core, independently of the cloud).
#![allow(dead_code)]

use std::time::Duration;

use async_nats::jetstream;
use pvm_cloud::sync::nats_auth::{self, files};
use pvm_core::cash::CashCommand;
use pvm_core::ids::{EntryId, GameId, TableId, TournamentId};
use pvm_core::players::PlayerDetails;
use pvm_core::structure::{Structure, Template};
use pvm_core::tournament::{
    BustInput, RebuyRule, ReentryRule, TournamentCommand, TournamentConfig,
};
use pvm_core::{apply, decide, Command, EventBody, Money, SeededEntropy, Timestamp, VenueState};
use pvm_sync::UpEvent;
use uuid::Uuid;

/// nats-server with the cloud's generated decentralized auth, and the folder holding its
/// keys and the cloud's credentials.
pub struct AuthNats {
    pub server: pvm_testpeers::NatsServer,
    pub dir: tempfile::TempDir,
}

impl AuthNats {
    pub fn start() -> AuthNats {
        let dir = tempfile::tempdir().unwrap();
        nats_auth::nats_init(dir.path()).unwrap();
        let conf = std::fs::read_to_string(dir.path().join(files::SERVER_CONFIG)).unwrap();
        let server = pvm_testpeers::NatsServer::start_with_config(&conf).unwrap();
        AuthNats { server, dir }
    }

    pub fn creds_file(&self) -> std::path::PathBuf {
        self.dir.path().join(files::CLOUD_CREDS)
    }

    pub fn account_seed_file(&self) -> std::path::PathBuf {
        self.dir.path().join(files::ACCOUNT_SEED)
    }

    /// A connection with the cloud's own (full) credentials.
    pub async fn cloud_client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::with_credentials_file(self.creds_file())
            .await
            .unwrap()
            .connect(self.server.url())
            .await
            .unwrap()
    }
}

/// A migrated database pool on `pg`.
pub async fn migrated_pool(pg: &pvm_testpeers::Postgres) -> deadpool_postgres::Pool {
    let pool = pvm_cloud::db::pool(&pg.url(), 8).unwrap();
    pvm_cloud::db::migrate(&pool).await.unwrap();
    pool
}

/// A tenant, a venue and `count` enrolled nodes, written straight into the tables (for the
/// ingestion tests, which do not go through HTTP). Returns (venue id, node ids).
pub async fn seed_nodes(pool: &deadpool_postgres::Pool, count: usize) -> (Uuid, Vec<Uuid>) {
    let client = pool.get().await.unwrap();
    let tenant = Uuid::now_v7();
    let venue = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO tenants (id, name) VALUES ($1, 'T')",
            &[&tenant],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO venues (id, tenant_id, name) VALUES ($1, $2, 'V')",
            &[&venue, &tenant],
        )
        .await
        .unwrap();
    let mut nodes = Vec::new();
    for _ in 0..count {
        let node = Uuid::now_v7();
        client
            .execute(
                "INSERT INTO nodes (id, venue_id, tenant_id) VALUES ($1, $2, $3)",
                &[&node, &venue, &tenant],
            )
            .await
            .unwrap();
        nodes.push(node);
    }
    (venue, nodes)
}

/// A node's log: events made by pvm-core's own `decide`, numbered like the node's store.
pub struct NodeLog {
    pub node_id: Uuid,
    pub venue_id: Uuid,
    pub state: VenueState,
    entropy: SeededEntropy,
    now: Timestamp,
    pub events: Vec<UpEvent>,
}

impl NodeLog {
    pub fn new(node_id: Uuid, venue_id: Uuid, seed: u64) -> NodeLog {
        NodeLog {
            node_id,
            venue_id,
            state: VenueState::default(),
            entropy: SeededEntropy::new(seed),
            now: Timestamp::from_millis(1_800_000_000_000),
            events: Vec::new(),
        }
    }

    pub fn run(&mut self, command: Command) -> Vec<pvm_core::Event> {
        self.now = self.now.plus_millis(1_000);
        let events = decide(&self.state, command, self.now, &mut self.entropy).unwrap();
        for event in &events {
            apply(&mut self.state, event);
            self.events.push(UpEvent {
                node_id: self.node_id,
                venue_id: self.venue_id,
                seq: self.events.len() as u64 + 1,
                event: event.clone(),
            });
        }
        events
    }

    fn t(&mut self, tournament_id: TournamentId, command: TournamentCommand) {
        self.run(Command::Tournament {
            tournament_id,
            command,
        });
    }

    fn register(&mut self, tournament_id: TournamentId, name: &str) -> EntryId {
        self.run(Command::RegisterNewPlayer {
            tournament_id,
            details: PlayerDetails {
                name: name.into(),
                ..Default::default()
            },
        });
        *self.state.tournaments[&tournament_id]
            .entries
            .keys()
            .last()
            .unwrap()
    }

    /// A whole tournament: `players` entries, a rebuy, a re-entry, busts down to a winner.
    pub fn tournament(&mut self, name: &str, players: usize) -> TournamentId {
        let mut config =
            TournamentConfig::freezeout(name, Money::units(100), Money::units(10), 20_000);
        config.reentry = Some(ReentryRule { max_per_player: 2 });
        config.rebuy = Some(RebuyRule {
            price: Money::units(50),
            fee: Money::units(0),
            chips: 10_000,
            until_level: 6,
            max_stack: None,
            max_per_entry: None,
        });
        config.late_registration = Some(pvm_core::tournament::LateRegistration {
            until_level: 6,
            through_break: false,
        });
        let events = self.run(Command::CreateTournament {
            config,
            structure: Structure::template(Template::Standard),
        });
        let EventBody::Tournament { tournament_id, .. } = events[0].body else {
            panic!("not a tournament event");
        };
        let mut entries: Vec<EntryId> = (0..players)
            .map(|i| self.register(tournament_id, &format!("{name} player {i}")))
            .collect();
        self.t(tournament_id, TournamentCommand::StartClock);
        self.t(
            tournament_id,
            TournamentCommand::Rebuy {
                entry_id: entries[0],
                stack: None,
            },
        );
        // The last player busts, re-enters (same person, new entry), and busts again later.
        let last = entries.pop().unwrap();
        self.bust(tournament_id, last);
        let player = self.state.tournaments[&tournament_id].entries[&last].player_id;
        self.t(
            tournament_id,
            TournamentCommand::Register { player_id: player },
        );
        let reentry = *self.state.tournaments[&tournament_id]
            .entries
            .keys()
            .last()
            .unwrap();
        entries.push(reentry);
        while entries.len() > 1 {
            let out = entries.pop().unwrap();
            self.bust(tournament_id, out);
        }
        tournament_id
    }

    fn bust(&mut self, tournament_id: TournamentId, entry_id: EntryId) {
        self.t(
            tournament_id,
            TournamentCommand::Bust {
                busts: vec![BustInput {
                    entry_id,
                    stack: None,
                }],
                eliminated_by: None,
            },
        );
    }

    /// A cash game whose list sees joins, a call, a seating and a removal.
    pub fn waitlist(&mut self, people: usize) {
        let cash = |command| Command::Cash { command };
        let events = self.run(cash(CashCommand::CreateGame {
            game: "NLH".into(),
            small_blind: Money::units(1),
            big_blind: Money::units(2),
            min_buy_in: None,
            max_buy_in: None,
            name: Some(format!("Game {}", self.events.len())),
        }));
        let game_id = GameId(events[0].body_created_id());
        let number = self.state.cash.tables.len() as u32 + 1;
        let events = self.run(cash(CashCommand::AddTable {
            number,
            seat_count: 9,
            game_id,
        }));
        let table_id = TableId(events[0].body_created_id());
        self.run(cash(CashCommand::OpenTable { table_id }));
        let mut entries = Vec::new();
        let round = number;
        for i in 0..people {
            let events = self.run(cash(CashCommand::JoinWaitlist {
                game_id,
                name: format!("cash {round}.{i}"),
                phone: None,
                player_id: None,
            }));
            entries.push(pvm_core::ids::WaitlistEntryId(events[0].body_created_id()));
        }
        self.run(cash(CashCommand::CallPlayer {
            entry_id: entries[0],
        }));
        self.run(cash(CashCommand::SeatFromWaitlist {
            entry_id: entries[0],
            table_id,
            seat: None,
        }));
        if let Some(last) = entries.last().copied().filter(|_| entries.len() > 1) {
            self.run(cash(CashCommand::RemoveFromWaitlist { entry_id: last }));
        }
    }
}

trait CreatedId {
    fn body_created_id(&self) -> Uuid;
}

impl CreatedId for pvm_core::Event {
    fn body_created_id(&self) -> Uuid {
        match &self.body {
            EventBody::Cash { event } => event.created_id().unwrap(),
            other => panic!("no created id in {other:?}"),
        }
    }
}

/// Publishes one event as a node does: `Nats-Msg-Id` = event id (unless `with_id` is
/// false, which makes JetStream store a duplicate that only PostgreSQL can drop).
pub async fn publish(js: &jetstream::Context, up: &UpEvent, with_id: bool) {
    let mut headers = async_nats::HeaderMap::new();
    if with_id {
        headers.insert(pvm_sync::MSG_ID_HEADER, up.event.id.0.to_string().as_str());
    }
    headers.insert(pvm_sync::SEQ_HEADER, up.seq.to_string().as_str());
    js.publish_with_headers(
        pvm_sync::subjects::up_events(up.node_id),
        headers,
        serde_json::to_vec(up).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// Polls `check` until it returns true, for at most `secs` seconds.
pub async fn wait_until<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

pub async fn scalar(pool: &deadpool_postgres::Pool, sql: &str, node: Uuid) -> i64 {
    let client = pool.get().await.unwrap();
    client.query_one(sql, &[&node]).await.unwrap().get(0)
}

pub async fn applied_seq(pool: &deadpool_postgres::Pool, node: Uuid) -> i64 {
    let client = pool.get().await.unwrap();
    client
        .query_opt(
            "SELECT applied_seq FROM sync_node_state WHERE node_id = $1",
            &[&node],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
        .unwrap_or(0)
}

/// Checks that PostgreSQL holds exactly the node's log (each event once, seq 1..=n, the same
/// ids) and the projections pvm-core computes from the same log.
pub async fn assert_node_matches(pool: &deadpool_postgres::Pool, log: &NodeLog) {
    let client = pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT id, seq FROM sync_events WHERE node_id = $1 ORDER BY seq",
            &[&log.node_id],
        )
        .await
        .unwrap();
    let stored: Vec<(Uuid, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected: Vec<(Uuid, i64)> = log
        .events
        .iter()
        .map(|e| (e.event.id.0, e.seq as i64))
        .collect();
    assert_eq!(
        stored, expected,
        "sync_events must hold the node's log exactly"
    );
    assert_eq!(
        applied_seq(pool, log.node_id).await,
        log.events.len() as i64
    );

    let unit = log.state.settings.rounding_unit;
    for (tid, t) in &log.state.tournaments {
        let row = client
            .query_one(
                "SELECT status, entries, reentries, rebuys, prize_pool_cents, players_left \
                 FROM cloud_tournaments WHERE tournament_id = $1",
                &[&tid.0],
            )
            .await
            .unwrap();
        let pool_view = t.prize_pool();
        assert_eq!(row.get::<_, i32>(1) as u32, pool_view.entries);
        assert_eq!(row.get::<_, i32>(2) as u32, pool_view.reentries);
        assert_eq!(row.get::<_, i32>(3) as u32, pool_view.rebuys);
        assert_eq!(row.get::<_, i64>(4), pool_view.total.as_cents());
        let entries = client
            .query(
                "SELECT entry_id, player_name, is_reentry, rebuys, place \
                 FROM cloud_tournament_entries WHERE tournament_id = $1 ORDER BY entry_id",
                &[&tid.0],
            )
            .await
            .unwrap();
        let got: Vec<(Uuid, String, bool, i32, Option<i32>)> = entries
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
        let want: Vec<(Uuid, String, bool, i32, Option<i32>)> = t
            .entries
            .values()
            .map(|e| {
                (
                    e.id.0,
                    e.player_name.clone(),
                    e.is_reentry,
                    e.rebuys as i32,
                    e.place.map(|p| p as i32),
                )
            })
            .collect();
        assert_eq!(got, want, "entries of {}", t.config.name);
        let results = client
            .query(
                "SELECT place, prize_cents, entry_id, paid_cents FROM cloud_tournament_results \
                 WHERE tournament_id = $1 ORDER BY place",
                &[&tid.0],
            )
            .await
            .unwrap();
        let got: Vec<(i32, i64, Option<Uuid>, Option<i64>)> = results
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        let mut want: Vec<(i32, i64, Option<Uuid>, Option<i64>)> = t
            .results(unit)
            .iter()
            .map(|r| {
                (
                    r.place as i32,
                    r.prize.as_cents(),
                    r.entry_id.map(|e| e.0),
                    r.paid.map(|p| p.as_cents()),
                )
            })
            .collect();
        want.dedup_by_key(|w| w.0);
        assert_eq!(got, want, "results of {}", t.config.name);
    }
}
