//! The sync contract between a venue node and the cloud.
//!
//! Both sides compile against these definitions so that a subject or a field cannot drift
//! between them. See `docs/sync.md` for the protocol in prose.
//!
//! Direction "up" (node → cloud):
//! - every event of the node's log is published, in sequence order, to
//!   [`subjects::up_events`] with the `Nats-Msg-Id` header set to the event id; the message
//!   body is an [`UpEvent`]. The stream [`streams::UP`] captures them; the cloud consumes
//!   it with the durable consumer [`streams::UP_INGEST_DURABLE`] shared by all its instances.
//! - heartbeats are plain (core NATS) publishes to [`subjects::up_heartbeat`]; the cloud
//!   listens in the queue group [`HEARTBEAT_QUEUE_GROUP`].
//!
//! Direction "down" (cloud → node): [`DownMessage`]s are published to
//! [`subjects::down`] and captured by [`streams::DOWN`]; each node pulls from its own
//! durable consumer [`streams::down_durable`], created by the cloud at enrolment.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Header carrying the event id, so JetStream drops a re-published event inside its
/// duplicate window; PostgreSQL's unique key on the id covers any longer outage.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// Header carrying the event's per-node sequence, so the cloud can order without parsing.
pub const SEQ_HEADER: &str = "Pvm-Seq";
/// Queue group the cloud instances share for heartbeats (each heartbeat handled once).
pub const HEARTBEAT_QUEUE_GROUP: &str = "pvm-cloud-heartbeats";

pub mod streams {
    /// Stream holding every node's events (subjects `pvm.up.*.events`).
    pub const UP: &str = "PVM_UP";
    /// Subjects of [`UP`].
    pub const UP_SUBJECTS: &str = "pvm.up.*.events";
    /// Durable pull consumer all cloud instances share to ingest [`UP`].
    pub const UP_INGEST_DURABLE: &str = "pvm-cloud-ingest";
    /// Stream holding messages for nodes (subjects `pvm.down.*`).
    pub const DOWN: &str = "PVM_DOWN";
    /// Subjects of [`DOWN`].
    pub const DOWN_SUBJECTS: &str = "pvm.down.*";

    /// The durable pull consumer of one node on [`DOWN`] (filter [`super::subjects::down`]).
    pub fn down_durable(node_id: uuid::Uuid) -> String {
        format!("node-{node_id}")
    }
}

pub mod subjects {
    use uuid::Uuid;

    pub fn up_events(node_id: Uuid) -> String {
        format!("pvm.up.{node_id}.events")
    }

    pub fn up_heartbeat(node_id: Uuid) -> String {
        format!("pvm.up.{node_id}.heartbeat")
    }

    /// Every subject a node may publish to under "up" (`pvm.up.<node>.>`).
    pub fn up_all(node_id: Uuid) -> String {
        format!("pvm.up.{node_id}.>")
    }

    pub fn down(node_id: Uuid) -> String {
        format!("pvm.down.{node_id}")
    }

    /// The node's own reply-inbox prefix: its credentials allow subscribing only below it,
    /// so it can receive JetStream acks without seeing any other node's replies.
    pub fn inbox_prefix(node_id: Uuid) -> String {
        format!("_INBOX_{node_id}")
    }
}

/// NATS user credentials in the standard `.creds` text form, which NATS clients load as
/// is (async-nats: `ConnectOptions::credentials(&text)`), so the node needs no signing code
/// of its own: `user_creds(&resp.nats_user_jwt, &resp.nats_user_seed)`.
pub mod creds {
    pub fn user_creds(jwt: &str, seed: &str) -> String {
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        )
    }
}

/// One event of a node's log, as published up. `seq` is the node's log sequence (1-based,
/// gap-free per node); `event` is the pvm-core event exactly as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpEvent {
    pub node_id: Uuid,
    pub venue_id: Uuid,
    pub seq: u64,
    pub event: pvm_core::Event,
}

/// What a node reports about itself every few seconds while connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node_id: Uuid,
    /// Node software version (`CARGO_PKG_VERSION` of pvm-node, or the release version).
    pub version: String,
    pub uptime_s: u64,
    /// SoC temperature; absent where the machine does not expose one.
    pub temperature_c: Option<f64>,
    pub disk_free_bytes: u64,
    pub disk_total_bytes: u64,
    /// Highest sequence the cloud has acknowledged.
    pub last_synced_seq: u64,
    /// Highest sequence in the node's log (lag = last_event_seq - last_synced_seq).
    pub last_event_seq: u64,
    /// Measured SNTP offset of the node's clock; absent until the first time sync.
    pub clock_offset_ms: Option<i64>,
    /// Node wall time when sent, milliseconds since the Unix epoch.
    pub sent_at_ms: i64,
    /// The system update agent's state; absent from nodes that predate it and from
    /// machines whose updates are not managed (not an A/B appliance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateReport>,
}

/// Where a node's system update stands, for the fleet view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateReport {
    /// `idle`, `downloading`, `verifying`, `installing`, `ready`, `trying`, `committed`,
    /// `rolled_back` or `failed` (text, so a newer node's new state still parses).
    pub state: String,
    /// 0–100 while bytes move (download, verify, install); absent otherwise.
    #[serde(default)]
    pub progress_pct: Option<u8>,
    /// The version being (or last) installed.
    #[serde(default)]
    pub target_version: Option<String>,
    /// Why the last attempt failed or was rolled back.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// A message from the cloud to one node. `id` makes applying it idempotent: a node that
/// has applied an id acknowledges a redelivery without acting again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownMessage {
    pub id: Uuid,
    pub issued_at_ms: i64,
    pub body: DownBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DownBody {
    /// Publish again every event from `from_seq` (inclusive); the cloud dedups by id.
    Resync { from_seq: u64 },
    /// Reboot when no tournament clock is running (never mid-tournament unless `force`).
    Reboot { force: bool },
    /// A new release is available for this node's channel.
    ReleaseNotice {
        version: String,
        channel: String,
        bundle_url: String,
        notes: String,
    },
    /// The venue's player accounts and memberships as the cloud knows them (full set).
    Players { players: Vec<CloudPlayer> },
}

/// A universal player account as seen by one venue (its membership there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudPlayer {
    pub player_id: Uuid,
    pub display_name: String,
    /// The venue's membership number, if it issues them.
    pub membership_number: Option<String>,
    pub active: bool,
}

/// Node → cloud: `POST /api/v1/enrol` (no session: the one-time code is the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolRequest {
    pub code: String,
    pub hostname: String,
    pub version: String,
}

/// Cloud → node: the answer to a successful enrolment. The node keeps it in its data
/// directory (`cloud.json`, mode 0600) and never shows the seed again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub node_id: Uuid,
    pub venue_id: Uuid,
    pub tenant_id: Uuid,
    pub venue_name: String,
    /// NATS URLs to try in order, e.g. `nats://cloud.example:4222`.
    pub nats_urls: Vec<String>,
    /// The node's NATS user JWT, signed by the cloud's account key.
    pub nats_user_jwt: String,
    /// The node's NATS user nkey seed (`SU…`).
    pub nats_user_seed: String,
    /// Inbox prefix the node must use ([`subjects::inbox_prefix`]).
    pub inbox_prefix: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_subjects_are_under_the_nodes_own_prefix() {
        let node = Uuid::from_u128(7);
        let up_all = subjects::up_all(node);
        let prefix = up_all.trim_end_matches('>');
        assert!(subjects::up_events(node).starts_with(prefix));
        assert!(subjects::up_heartbeat(node).starts_with(prefix));
        assert_ne!(subjects::down(node), subjects::down(Uuid::from_u128(8)));
    }

    #[test]
    fn down_messages_round_trip_with_a_kind_tag() {
        let message = DownMessage {
            id: Uuid::from_u128(1),
            issued_at_ms: 5,
            body: DownBody::Resync { from_seq: 42 },
        };
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["body"]["kind"], "resync");
        let back: DownMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, message);
    }

    #[test]
    fn a_heartbeat_from_a_node_without_update_reporting_still_parses() {
        let old = serde_json::json!({
            "node_id": Uuid::from_u128(3), "version": "0.1.0", "uptime_s": 5,
            "temperature_c": null, "disk_free_bytes": 1, "disk_total_bytes": 2,
            "last_synced_seq": 0, "last_event_seq": 0, "clock_offset_ms": null,
            "sent_at_ms": 0,
        });
        let beat: Heartbeat = serde_json::from_value(old).unwrap();
        assert_eq!(beat.update, None);
    }

    #[test]
    fn a_heartbeat_carries_the_update_state_round_trip() {
        let beat = Heartbeat {
            node_id: Uuid::from_u128(3),
            version: "1.0.0".into(),
            uptime_s: 5,
            temperature_c: None,
            disk_free_bytes: 1,
            disk_total_bytes: 2,
            last_synced_seq: 0,
            last_event_seq: 0,
            clock_offset_ms: None,
            sent_at_ms: 0,
            update: Some(UpdateReport {
                state: "installing".into(),
                progress_pct: Some(40),
                target_version: Some("1.1.0".into()),
                last_error: None,
            }),
        };
        let json = serde_json::to_value(&beat).unwrap();
        assert_eq!(json["update"]["state"], "installing");
        assert_eq!(json["update"]["progress_pct"], 40);
        assert_eq!(serde_json::from_value::<Heartbeat>(json).unwrap(), beat);
    }
}
