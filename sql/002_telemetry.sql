-- Telemetry, events and the per-device current state.
-- Every message is keyed on (device_id, seq, time): a redelivered message is the same
-- row, so writes are idempotent. With TimescaleDB these become hypertables (see the
-- DO block at the end); without it they are plain tables with the same names.

CREATE TABLE board_telemetry (
    device_id      text NOT NULL,
    time           timestamptz NOT NULL,
    seq            bigint NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    power_on       boolean NOT NULL,
    screen_on      boolean NOT NULL,
    active_use_s   bigint NOT NULL,
    cpu_temp_c     real,
    cpu_load       real,
    mem_load       real,
    disk_used_pct  real,
    foreground_app text,
    os_version     text,
    error_codes    text[] NOT NULL DEFAULT '{}',
    clock_skewed   boolean NOT NULL DEFAULT false,
    UNIQUE (device_id, seq, time)
);
CREATE INDEX board_telemetry_device_time_idx ON board_telemetry (device_id, time DESC);

CREATE TABLE recorder_telemetry (
    device_id        text NOT NULL,
    time             timestamptz NOT NULL,
    seq              bigint NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    recording        boolean NOT NULL,
    streaming        boolean NOT NULL,
    bitrate_kbps     real,
    dropped_frames   bigint NOT NULL,
    cameras_total    smallint NOT NULL,
    cameras_online   smallint NOT NULL,
    cameras          jsonb NOT NULL DEFAULT '[]',
    storage_free_gb  real,
    lesson_id        text,
    clock_skewed     boolean NOT NULL DEFAULT false,
    UNIQUE (device_id, seq, time)
);
CREATE INDEX recorder_telemetry_device_time_idx ON recorder_telemetry (device_id, time DESC);

CREATE TABLE gateway_telemetry (
    device_id         text NOT NULL,
    time              timestamptz NOT NULL,
    seq               bigint NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    uplink_mbps       real NOT NULL,
    rx_mbps           real NOT NULL,
    tx_mbps           real NOT NULL,
    latency_ms        real,
    loss_pct          real,
    aps_total         integer NOT NULL,
    aps_online        integer NOT NULL,
    wifi_clients      integer NOT NULL,
    clock_skewed      boolean NOT NULL DEFAULT false,
    UNIQUE (device_id, seq, time)
);
CREATE INDEX gateway_telemetry_device_time_idx ON gateway_telemetry (device_id, time DESC);

CREATE TABLE device_event (
    device_id    text NOT NULL,
    time         timestamptz NOT NULL,
    seq          bigint NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    type         text NOT NULL,
    lesson_id    text,
    lesson_role  text,
    detail       jsonb NOT NULL DEFAULT '{}',
    clock_skewed boolean NOT NULL DEFAULT false,
    UNIQUE (device_id, seq, time)
);
CREATE INDEX device_event_device_time_idx ON device_event (device_id, time DESC);
CREATE INDEX device_event_lesson_idx ON device_event (lesson_id, time) WHERE lesson_id IS NOT NULL;

-- Online/offline transitions from the retained status topic (birth and last will).
CREATE TABLE device_status_change (
    device_id   text NOT NULL,
    time        timestamptz NOT NULL,
    online      boolean NOT NULL,
    reason      text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, time, online)
);
CREATE INDEX device_status_change_device_time_idx ON device_status_change (device_id, time DESC);

-- Anything that failed validation, stored whole with the reason.
CREATE TABLE dead_letter (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    reason      text NOT NULL,
    device_id   text
);
CREATE INDEX dead_letter_received_idx ON dead_letter (received_at DESC);

-- Current state per device: "now" views read this and never scan history.
CREATE TABLE device_state (
    device_id        text PRIMARY KEY REFERENCES device(id) ON DELETE CASCADE,
    online           boolean NOT NULL DEFAULT false,
    status_time      timestamptz,
    last_seen        timestamptz,
    last_seq         bigint,
    power_on         boolean,
    in_use           boolean,
    recording        boolean,
    streaming        boolean,
    last_values      jsonb NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('board_telemetry', 'time', chunk_time_interval => interval '1 day');
        PERFORM create_hypertable('recorder_telemetry', 'time', chunk_time_interval => interval '1 day');
        PERFORM create_hypertable('gateway_telemetry', 'time', chunk_time_interval => interval '1 day');
        PERFORM create_hypertable('device_event', 'time', chunk_time_interval => interval '7 days');
        PERFORM create_hypertable('device_status_change', 'time', chunk_time_interval => interval '7 days');
    END IF;
END
$$;
