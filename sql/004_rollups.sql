-- Hourly and daily rollups per device and per school. Queries read these names only.
-- They are tables refreshed incrementally by core/rollups.py: every bucket touched by
-- rows received since the last refresh is recomputed whole from raw telemetry, so
-- late and out-of-order readings land in the right bucket. Days are local days
-- (Asia/Shanghai); hours are UTC hours, which coincide with local hours there.

CREATE INDEX board_telemetry_received_idx ON board_telemetry (received_at);
CREATE INDEX recorder_telemetry_received_idx ON recorder_telemetry (received_at);
CREATE INDEX gateway_telemetry_received_idx ON gateway_telemetry (received_at);

CREATE TABLE device_hourly (
    bucket                  timestamptz NOT NULL,
    device_id               text NOT NULL,
    kind                    text NOT NULL,
    readings                integer NOT NULL,
    online_minutes          integer NOT NULL,   -- distinct minutes with a reading (one a minute expected)
    powered_on_minutes      integer,
    screen_on_minutes       integer,
    use_min                 bigint,             -- cumulative active-use counter: lowest and highest seen
    use_max                 bigint,
    active_use_s            bigint,             -- its increase since the previous bucket's last value
    cpu_temp_max            real,
    disk_used_max           real,
    recording_minutes       integer,
    streaming_minutes       integer,
    frames_min              bigint,
    frames_max              bigint,
    dropped_frames_increase bigint,
    storage_free_min_gb     real,
    cameras_offline_max     integer,
    rx_mbps_avg             real,
    rx_mbps_max             real,
    utilisation_max         real,               -- rx / contracted uplink
    latency_avg             real,
    loss_avg                real,
    aps_offline_max         integer,
    PRIMARY KEY (device_id, bucket)
);
CREATE INDEX device_hourly_bucket_idx ON device_hourly (bucket);

CREATE TABLE device_daily (LIKE device_hourly INCLUDING ALL);
ALTER TABLE device_daily ADD COLUMN active_hours integer;  -- hours with any active use
CREATE INDEX device_daily_bucket_kind_idx ON device_daily (bucket, kind);

CREATE TABLE school_hourly (
    bucket             timestamptz NOT NULL,
    school_code        char(10) NOT NULL,
    kind               text NOT NULL,
    devices_reporting  integer NOT NULL,
    devices_active     integer NOT NULL,        -- devices with any active use (boards)
    online_minutes     bigint NOT NULL,
    powered_on_minutes bigint,
    active_use_s       bigint,
    recording_minutes  bigint,
    streaming_minutes  bigint,
    rx_mbps_max        real,
    utilisation_max    real,
    latency_avg        real,
    loss_avg           real,
    PRIMARY KEY (school_code, kind, bucket)
);
CREATE INDEX school_hourly_bucket_idx ON school_hourly (bucket);

CREATE TABLE school_daily (LIKE school_hourly INCLUDING ALL);
CREATE INDEX school_daily_bucket_kind_idx ON school_daily (bucket, kind);

CREATE TABLE rollup_watermark (
    name          text PRIMARY KEY,
    received_upto timestamptz NOT NULL
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- Raw telemetry is compressed after a week and dropped after 180 days; the
        -- rollups above keep the history.
        EXECUTE 'ALTER TABLE board_telemetry SET (timescaledb.compress, timescaledb.compress_segmentby = ''device_id'', timescaledb.compress_orderby = ''time DESC'')';
        EXECUTE 'ALTER TABLE recorder_telemetry SET (timescaledb.compress, timescaledb.compress_segmentby = ''device_id'', timescaledb.compress_orderby = ''time DESC'')';
        EXECUTE 'ALTER TABLE gateway_telemetry SET (timescaledb.compress, timescaledb.compress_segmentby = ''device_id'', timescaledb.compress_orderby = ''time DESC'')';
        PERFORM add_compression_policy('board_telemetry', interval '7 days');
        PERFORM add_compression_policy('recorder_telemetry', interval '7 days');
        PERFORM add_compression_policy('gateway_telemetry', interval '7 days');
        PERFORM add_retention_policy('board_telemetry', interval '180 days');
        PERFORM add_retention_policy('recorder_telemetry', interval '180 days');
        PERFORM add_retention_policy('gateway_telemetry', interval '180 days');
        PERFORM add_retention_policy('device_event', interval '365 days');
        PERFORM add_retention_policy('device_status_change', interval '365 days');
    END IF;
END
$$;
