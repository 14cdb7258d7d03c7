-- Hourly and daily rollups per device and per school. Queries read these names only:
-- device_hourly, device_daily, school_hourly, school_daily. Days are local days
-- (Asia/Shanghai); hours are UTC hours, which coincide with local hours there.
--
-- Plain PostgreSQL (CI, the embedded default): device_* are tables refreshed
-- incrementally by core/rollups.py: every bucket touched by rows received since the
-- last refresh is recomputed whole from raw telemetry, so late and out-of-order
-- readings land in the right bucket.
--
-- TimescaleDB (with continuous aggregates, i.e. not an Apache-only build): the tables
-- are replaced by one real-time continuous aggregate per telemetry hypertable and grain
-- (board_hourly_cagg ... gateway_daily_cagg; the daily ones are hierarchical, over the
-- hourly ones) and device_hourly / device_daily become views UNION ALL-ing them, with
-- NULL for the columns of other kinds. A cagg cannot look at the previous bucket, so
-- the caggs keep each counter's min and max and the views take the increase from the
-- previous bucket's max, as the tables do. online_minutes and the other minute counts
-- are count(DISTINCT time_bucket('1 minute', time)), which finalized caggs (2.7+)
-- accept. Local days are fixed 24-hour buckets with their origin at a local midnight
-- (Asia/Shanghai has had no DST since 1991), not time_bucket('1 day', ..,
-- 'Asia/Shanghai'): with that variable-width bucket, TimescaleDB 2.28 did not
-- re-materialise an existing day when new hours under it were refreshed, so late data
-- never reached device_daily. Hierarchical caggs need the same origin, so the hourly
-- ones carry it too (their buckets are still the UTC hours). core/rollups.py calls
-- refresh_continuous_aggregate for the touched window; refresh policies back it up.

-- school_hourly / school_daily stay TABLES in both modes, refreshed by core/rollups.py
-- from device_* for the touched buckets: a cagg cannot join the registry (device ->
-- school) and a view over the caggs would aggregate every device of a province on each
-- trend request; 010 also indexes them.

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

-- Continuous aggregates where TimescaleDB can make them (see the top of this file).
DO $$
DECLARE
    grain text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
       OR current_setting('timescaledb.license', true) = 'apache' THEN
        RETURN;
    END IF;
    DROP TABLE device_daily, device_hourly;

    EXECUTE $q$
    CREATE MATERIALIZED VIEW board_hourly_cagg
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket('1 hour', time, origin => '2000-01-01 00:00+08') AS bucket, device_id, count(*) AS readings,
           count(DISTINCT time_bucket('1 minute', time)) AS online_minutes,
           count(DISTINCT time_bucket('1 minute', time)) FILTER (WHERE power_on) AS powered_on_minutes,
           count(DISTINCT time_bucket('1 minute', time)) FILTER (WHERE screen_on) AS screen_on_minutes,
           min(active_use_s) AS use_min, max(active_use_s) AS use_max,
           max(cpu_temp_c) AS cpu_temp_max, max(disk_used_pct) AS disk_used_max
    FROM board_telemetry GROUP BY 1, 2 WITH NO DATA $q$;

    EXECUTE $q$
    CREATE MATERIALIZED VIEW recorder_hourly_cagg
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket('1 hour', time, origin => '2000-01-01 00:00+08') AS bucket, device_id, count(*) AS readings,
           count(DISTINCT time_bucket('1 minute', time)) AS online_minutes,
           count(DISTINCT time_bucket('1 minute', time)) FILTER (WHERE recording) AS recording_minutes,
           count(DISTINCT time_bucket('1 minute', time)) FILTER (WHERE streaming) AS streaming_minutes,
           min(dropped_frames) AS frames_min, max(dropped_frames) AS frames_max,
           min(storage_free_gb) AS storage_free_min_gb,
           max(cameras_total - cameras_online) AS cameras_offline_max
    FROM recorder_telemetry GROUP BY 1, 2 WITH NO DATA $q$;

    -- Averages are kept as sums and counts so the daily ones are exact.
    EXECUTE $q$
    CREATE MATERIALIZED VIEW gateway_hourly_cagg
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket('1 hour', time, origin => '2000-01-01 00:00+08') AS bucket, device_id, count(*) AS readings,
           count(DISTINCT time_bucket('1 minute', time)) AS online_minutes,
           sum(rx_mbps) AS rx_sum, max(rx_mbps) AS rx_mbps_max,
           max(rx_mbps / nullif(uplink_mbps, 0)) AS utilisation_max,
           sum(latency_ms) AS latency_sum, count(latency_ms) AS latency_n,
           sum(loss_pct) AS loss_sum, count(loss_pct) AS loss_n,
           max(aps_total - aps_online) AS aps_offline_max
    FROM gateway_telemetry GROUP BY 1, 2 WITH NO DATA $q$;

    EXECUTE $q$
    CREATE MATERIALIZED VIEW board_daily_cagg
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket('1 day', bucket, origin => '2000-01-01 00:00+08') AS bucket, device_id, sum(readings) AS readings,
           sum(online_minutes) AS online_minutes, sum(powered_on_minutes) AS powered_on_minutes,
           sum(screen_on_minutes) AS screen_on_minutes, min(use_min) AS use_min, max(use_max) AS use_max,
           count(*) FILTER (WHERE use_max > use_min) AS active_hours,
           max(cpu_temp_max) AS cpu_temp_max, max(disk_used_max) AS disk_used_max
    FROM board_hourly_cagg GROUP BY 1, 2 WITH NO DATA $q$;

    EXECUTE $q$
    CREATE MATERIALIZED VIEW recorder_daily_cagg
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket('1 day', bucket, origin => '2000-01-01 00:00+08') AS bucket, device_id, sum(readings) AS readings,
           sum(online_minutes) AS online_minutes, sum(recording_minutes) AS recording_minutes,
           sum(streaming_minutes) AS streaming_minutes, min(frames_min) AS frames_min,
           max(frames_max) AS frames_max, min(storage_free_min_gb) AS storage_free_min_gb,
           max(cameras_offline_max) AS cameras_offline_max
    FROM recorder_hourly_cagg GROUP BY 1, 2 WITH NO DATA $q$;

    EXECUTE $q$
    CREATE MATERIALIZED VIEW gateway_daily_cagg
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket('1 day', bucket, origin => '2000-01-01 00:00+08') AS bucket, device_id, sum(readings) AS readings,
           sum(online_minutes) AS online_minutes, sum(rx_sum) AS rx_sum, max(rx_mbps_max) AS rx_mbps_max,
           max(utilisation_max) AS utilisation_max, sum(latency_sum) AS latency_sum,
           sum(latency_n) AS latency_n, sum(loss_sum) AS loss_sum, sum(loss_n) AS loss_n,
           max(aps_offline_max) AS aps_offline_max
    FROM gateway_hourly_cagg GROUP BY 1, 2 WITH NO DATA $q$;

    -- The same view text for both grains; only the cagg names and active_hours differ.
    FOREACH grain IN ARRAY ARRAY['hourly', 'daily'] LOOP
        EXECUTE format($q$
        CREATE VIEW device_%1$s AS
        SELECT c.bucket, c.device_id, 'board'::text AS kind, c.readings::integer AS readings,
               c.online_minutes::integer AS online_minutes, c.powered_on_minutes::integer AS powered_on_minutes,
               c.screen_on_minutes::integer AS screen_on_minutes, c.use_min, c.use_max,
               CASE WHEN p.use_max IS NULL OR p.use_max > c.use_min THEN c.use_max - c.use_min
                    ELSE c.use_max - p.use_max END AS active_use_s,
               c.cpu_temp_max, c.disk_used_max, NULL::integer AS recording_minutes,
               NULL::integer AS streaming_minutes, NULL::bigint AS frames_min, NULL::bigint AS frames_max,
               NULL::bigint AS dropped_frames_increase, NULL::real AS storage_free_min_gb,
               NULL::integer AS cameras_offline_max, NULL::real AS rx_mbps_avg, NULL::real AS rx_mbps_max,
               NULL::real AS utilisation_max, NULL::real AS latency_avg, NULL::real AS loss_avg,
               NULL::integer AS aps_offline_max%2$s
        FROM board_%1$s_cagg c
        LEFT JOIN LATERAL (SELECT q.use_max FROM board_%1$s_cagg q WHERE q.device_id = c.device_id
                           AND q.bucket < c.bucket ORDER BY q.bucket DESC LIMIT 1) p ON true
        UNION ALL
        SELECT c.bucket, c.device_id, 'recorder', c.readings::integer, c.online_minutes::integer, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, c.recording_minutes::integer, c.streaming_minutes::integer,
               c.frames_min, c.frames_max,
               CASE WHEN p.frames_max IS NULL OR p.frames_max > c.frames_min THEN c.frames_max - c.frames_min
                    ELSE c.frames_max - p.frames_max END,
               c.storage_free_min_gb, c.cameras_offline_max::integer, NULL, NULL, NULL, NULL, NULL, NULL%3$s
        FROM recorder_%1$s_cagg c
        LEFT JOIN LATERAL (SELECT q.frames_max FROM recorder_%1$s_cagg q WHERE q.device_id = c.device_id
                           AND q.bucket < c.bucket ORDER BY q.bucket DESC LIMIT 1) p ON true
        UNION ALL
        SELECT c.bucket, c.device_id, 'gateway', c.readings::integer, c.online_minutes::integer, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               (c.rx_sum / c.readings)::real, c.rx_mbps_max, c.utilisation_max::real,
               (c.latency_sum / nullif(c.latency_n, 0))::real, (c.loss_sum / nullif(c.loss_n, 0))::real,
               c.aps_offline_max::integer%3$s
        FROM gateway_%1$s_cagg c $q$,
            grain,
            CASE grain WHEN 'daily' THEN ', c.active_hours::integer AS active_hours' ELSE '' END,
            CASE grain WHEN 'daily' THEN ', NULL' ELSE '' END);
    END LOOP;

    -- Background refreshes back up the explicit ones in core/rollups.py; both stay far
    -- inside the 180 days of raw data kept, so a refresh never empties a bucket.
    PERFORM add_continuous_aggregate_policy(cagg, start_offset => interval '3 days',
                                            end_offset => interval '1 hour', schedule_interval => interval '30 minutes')
    FROM unnest(ARRAY['board_hourly_cagg', 'recorder_hourly_cagg', 'gateway_hourly_cagg']::regclass[]) cagg;
    PERFORM add_continuous_aggregate_policy(cagg, start_offset => interval '10 days',
                                            end_offset => interval '1 day', schedule_interval => interval '2 hours')
    FROM unnest(ARRAY['board_daily_cagg', 'recorder_daily_cagg', 'gateway_daily_cagg']::regclass[]) cagg;
END
$$;
