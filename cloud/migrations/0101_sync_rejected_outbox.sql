-- Events that reuse a per-node sequence (or an event id) already stored for a different
-- event. The stored one stays the truth; the newcomer is kept here for an operator instead
-- of being dropped silently (a node restored from an old backup, or a bug, does this).
CREATE TABLE sync_rejected_events (
    id                 bigserial PRIMARY KEY,
    received_at        timestamptz NOT NULL DEFAULT now(),
    node_id            uuid NOT NULL,
    seq                bigint NOT NULL,
    event_id           uuid NOT NULL,
    -- The event already stored at (node_id, seq), or under event_id elsewhere.
    existing_event_id  uuid,
    reason             text NOT NULL,
    body               jsonb NOT NULL,
    -- A redelivered rejected message is recorded once.
    UNIQUE (node_id, seq, event_id)
);
CREATE INDEX sync_rejected_events_node ON sync_rejected_events (node_id, received_at);

-- Down-messages waiting to be stored in PVM_DOWN. A release notice or players snapshot is
-- written here first, in PostgreSQL, and published from here until JetStream acknowledges
-- it, so NATS being away (or this instance stopping) delays it instead of losing it. The
-- id is the DownMessage id and its Nats-Msg-Id: a publish retried after a lost ack is
-- stored once by JetStream, and a node applies an id once.
CREATE TABLE sync_down_outbox (
    id          uuid PRIMARY KEY,
    node_id     uuid NOT NULL,
    message     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    sent_at     timestamptz
);
CREATE INDEX sync_down_outbox_pending ON sync_down_outbox (created_at, id) WHERE sent_at IS NULL;
