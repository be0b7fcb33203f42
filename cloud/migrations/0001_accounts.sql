-- Accounts side of the cloud: tenants, users and their roles, venues, players, refresh
-- tokens, login throttling, enrolment codes, nodes and the release catalog.
-- Every tenant-owned row carries tenant_id so each query can filter on it directly.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    -- Stored lower-cased and trimmed by the service, so the unique key is case-insensitive.
    email          text NOT NULL UNIQUE CHECK (email = lower(email)),
    display_name   text NOT NULL DEFAULT '',
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenant_memberships (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('admin', 'manager', 'floor', 'dealer', 'player')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX tenant_memberships_user ON tenant_memberships (user_id);

CREATE TABLE venues (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    time_zone   text NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX venues_tenant ON venues (tenant_id);

-- Universal player accounts: one per person across every venue and tenant. A player who
-- signed up has a login (user_id); one created by floor staff may have none yet.
CREATE TABLE players (
    id            uuid PRIMARY KEY,
    user_id       uuid UNIQUE REFERENCES users(id) ON DELETE SET NULL,
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    email         text UNIQUE CHECK (email = lower(email)),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE venue_memberships (
    venue_id           uuid NOT NULL REFERENCES venues(id) ON DELETE CASCADE,
    player_id          uuid NOT NULL REFERENCES players(id) ON DELETE CASCADE,
    tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    membership_number  text,
    active             boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (venue_id, player_id),
    UNIQUE (venue_id, membership_number)
);
CREATE INDEX venue_memberships_tenant ON venue_memberships (tenant_id);
CREATE INDEX venue_memberships_player ON venue_memberships (player_id);

-- Opaque refresh tokens, stored as SHA-256 digests. A family is every token descended from
-- one login; presenting a used token revokes the whole family.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Login throttling and request rate limits, shared by every instance. `key` is e.g.
-- `login-account:<email>`, `login-ip:<ip>`, `signup-ip:<ip>`: a counter per fixed window,
-- and for accounts a lock that holds until `locked_until`.
CREATE TABLE throttle (
    key           text PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    count         integer NOT NULL,
    locked_until  timestamptz
);

CREATE TABLE nodes (
    id                    uuid PRIMARY KEY,
    venue_id              uuid NOT NULL REFERENCES venues(id) ON DELETE RESTRICT,
    tenant_id             uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    hostname              text NOT NULL DEFAULT '',
    version               text NOT NULL DEFAULT '',
    enrolled_at           timestamptz NOT NULL DEFAULT now(),
    nats_user_public_key  text,
    last_heartbeat_at     timestamptz,
    uptime_s              bigint,
    temperature_c         double precision,
    disk_free_bytes       bigint,
    disk_total_bytes      bigint,
    last_synced_seq       bigint,
    last_event_seq        bigint,
    clock_offset_ms       bigint
);
CREATE INDEX nodes_tenant ON nodes (tenant_id);
CREATE INDEX nodes_venue ON nodes (venue_id);

-- One-time codes a node redeems to enrol for a venue; only the digest is kept.
CREATE TABLE enrolment_codes (
    id          uuid PRIMARY KEY,
    venue_id    uuid NOT NULL REFERENCES venues(id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    code_hash   bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    node_id     uuid REFERENCES nodes(id) ON DELETE SET NULL,
    created_by  uuid REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX enrolment_codes_venue ON enrolment_codes (venue_id);

-- The release catalog for OTA (platform-wide, not tenant-owned).
CREATE TABLE releases (
    version       text NOT NULL,
    channel       text NOT NULL,
    bundle_url    text NOT NULL,
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    notes         text NOT NULL DEFAULT '',
    published_at  timestamptz NOT NULL DEFAULT now(),
    published_by  uuid REFERENCES users(id) ON DELETE SET NULL,
    PRIMARY KEY (channel, version)
);
