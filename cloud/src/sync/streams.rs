//! The JetStream streams and consumers of the sync contract, created idempotently: every
//! cloud instance calls [`ensure_streams`] at start, and enrolment calls
//! [`ensure_node_consumer`] for the new node.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use pvm_sync::streams;
use uuid::Uuid;

/// How long JetStream remembers a `Nats-Msg-Id` to drop a re-published event. Longer
/// outages are covered by PostgreSQL's unique key on the event id.
pub const UP_DUPLICATE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Down messages a node has not pulled within this age are dropped (a node offline longer
/// gets a fresh `Players` snapshot and release notice when it is next addressed).
pub const DOWN_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an ingest delivery may stay unacknowledged before JetStream redelivers it
/// (the default of [`super::ingest::IngestConfig::ack_wait`]). Short, so a crashed
/// instance's batch is taken over within seconds: an instance still storing a batch keeps
/// it with in-progress acks (see [`super::ingest::Ingestor::store_with_progress`]), and a
/// redelivery that overlaps a commit after all is stored as a no-op.
pub const INGEST_ACK_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("create or update stream {name}: {message}")]
    Stream { name: &'static str, message: String },
    #[error("create consumer {name}: {message}")]
    Consumer { name: String, message: String },
}

fn up_config() -> stream::Config {
    stream::Config {
        name: streams::UP.to_string(),
        subjects: vec![streams::UP_SUBJECTS.to_string()],
        storage: stream::StorageType::File,
        duplicate_window: UP_DUPLICATE_WINDOW,
        // Events stay until the cloud has them in PostgreSQL; the ingest consumer's acks
        // are what matters, so a plain limits stream (no retention by interest) keeps
        // several cloud instances and operators' replays simple.
        ..Default::default()
    }
}

fn down_config() -> stream::Config {
    stream::Config {
        name: streams::DOWN.to_string(),
        subjects: vec![streams::DOWN_SUBJECTS.to_string()],
        storage: stream::StorageType::File,
        max_age: DOWN_MAX_AGE,
        duplicate_window: UP_DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// Creates PVM_UP and PVM_DOWN, or brings an existing one to this configuration.
pub async fn ensure_streams(js: &jetstream::Context) -> Result<(), StreamError> {
    for (name, config) in [(streams::UP, up_config()), (streams::DOWN, down_config())] {
        js.create_or_update_stream(config)
            .await
            .map_err(|e| StreamError::Stream {
                name,
                message: e.to_string(),
            })?;
    }
    Ok(())
}

/// The durable pull consumer a node reads its down messages from: `node-<id>`, filtered to
/// `pvm.down.<id>`, explicit ack. Creating it again is a no-op.
pub async fn ensure_node_consumer(
    js: &jetstream::Context,
    node_id: Uuid,
) -> Result<(), StreamError> {
    let name = streams::down_durable(node_id);
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: pvm_sync::subjects::down(node_id),
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    };
    js.create_consumer_on_stream(config, streams::DOWN)
        .await
        .map_err(|e| StreamError::Consumer {
            name,
            message: e.to_string(),
        })?;
    Ok(())
}

/// The ingest consumer all cloud instances share.
pub async fn ensure_ingest_consumer(
    js: &jetstream::Context,
    max_ack_pending: i64,
    ack_wait: Duration,
) -> Result<consumer::Consumer<consumer::pull::Config>, StreamError> {
    let name = streams::UP_INGEST_DURABLE.to_string();
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        ack_wait,
        max_ack_pending,
        ..Default::default()
    };
    js.create_consumer_on_stream(config, streams::UP)
        .await
        .map_err(|e| StreamError::Consumer {
            name,
            message: e.to_string(),
        })
}
