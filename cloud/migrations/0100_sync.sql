-- Sync side of the cloud: every node event exactly once, the per-node fold state behind the
-- projections, the projections themselves, and messages that could not be read.

-- A node's release channel (release notices go to the nodes of a channel).
ALTER TABLE nodes ADD COLUMN IF NOT EXISTS channel text NOT NULL DEFAULT 'stable';

-- Every event of every node. The id (UUIDv7, made on the node) is the primary key and
-- (node_id, seq) is unique: a re-published event, however late, is dropped here.
CREATE TABLE sync_events (
    id           uuid PRIMARY KEY,
    node_id      uuid NOT NULL,
    venue_id     uuid NOT NULL,
    tenant_id    uuid NOT NULL,
    seq          bigint NOT NULL CHECK (seq > 0),
    type         text NOT NULL,
    at           timestamptz NOT NULL,
    body         jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (node_id, seq)
);
CREATE INDEX sync_events_venue ON sync_events (venue_id, at);

-- Per node: the projections include every stored event up to applied_seq (events are
-- folded in seq order only, so a gap waits for the missing event). `state` is the
-- pvm-core VenueState after state_seq (≤ applied_seq); the rest is replayed from
-- sync_events. The row is locked FOR UPDATE by whichever instance applies a batch.
CREATE TABLE sync_node_state (
    node_id      uuid PRIMARY KEY,
    applied_seq  bigint NOT NULL DEFAULT 0,
    state_seq    bigint NOT NULL DEFAULT 0,
    state        jsonb,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Messages that could not be read or attributed: kept for an operator, acknowledged so
-- they are never redelivered in a loop.
CREATE TABLE sync_dead_letters (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    subject      text NOT NULL,
    stream_seq   bigint,
    node_id      uuid,
    reason       text NOT NULL,
    payload      bytea NOT NULL
);

-- Tournaments as the node's state shows them after the last applied event.
CREATE TABLE cloud_tournaments (
    tournament_id  uuid PRIMARY KEY,
    node_id        uuid NOT NULL,
    venue_id       uuid NOT NULL,
    tenant_id      uuid NOT NULL,
    name           text NOT NULL,
    status         text NOT NULL,
    created_at     timestamptz NOT NULL,
    buy_in_cents   bigint NOT NULL,
    entries        integer NOT NULL,
    reentries      integer NOT NULL,
    rebuys         integer NOT NULL,
    addons         integer NOT NULL,
    players_left   integer NOT NULL,
    prize_pool_cents bigint NOT NULL,
    applied_seq    bigint NOT NULL
);
CREATE INDEX cloud_tournaments_venue ON cloud_tournaments (venue_id, created_at);
CREATE INDEX cloud_tournaments_tenant ON cloud_tournaments (tenant_id);

-- Every entry, re-entries included, with rebuys, add-on and where it finished.
CREATE TABLE cloud_tournament_entries (
    tournament_id   uuid NOT NULL REFERENCES cloud_tournaments(tournament_id) ON DELETE CASCADE,
    entry_id        uuid NOT NULL,
    player_id       uuid NOT NULL,
    player_name     text NOT NULL,
    number          integer NOT NULL,
    is_reentry      boolean NOT NULL,
    registered_at   timestamptz NOT NULL,
    rebuys          integer NOT NULL,
    addon           boolean NOT NULL,
    status          text NOT NULL,
    place           integer,
    busted_at       timestamptz,
    bounty_cents    bigint NOT NULL,
    bounties_won_cents bigint NOT NULL,
    PRIMARY KEY (tournament_id, entry_id)
);
CREATE INDEX cloud_tournament_entries_player ON cloud_tournament_entries (player_id);

-- The results / payout table: one line per paid or finished place.
CREATE TABLE cloud_tournament_results (
    tournament_id   uuid NOT NULL REFERENCES cloud_tournaments(tournament_id) ON DELETE CASCADE,
    place           integer NOT NULL,
    prize_cents     bigint NOT NULL,
    entry_id        uuid,
    player_name     text,
    paid_cents      bigint,
    bounties_won_cents bigint NOT NULL,
    PRIMARY KEY (tournament_id, place)
);

-- What happened on the cash waiting lists, one row per list entry touched by an event.
CREATE TABLE cloud_waitlist_history (
    event_id     uuid NOT NULL,
    entry_id     uuid NOT NULL,
    node_id      uuid NOT NULL,
    venue_id     uuid NOT NULL,
    tenant_id    uuid NOT NULL,
    seq          bigint NOT NULL,
    game_id      uuid,
    action       text NOT NULL,
    name         text,
    player_id    uuid,
    at           timestamptz NOT NULL,
    PRIMARY KEY (event_id, entry_id)
);
CREATE INDEX cloud_waitlist_history_venue ON cloud_waitlist_history (venue_id, at);
