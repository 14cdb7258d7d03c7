-- Cumulative counters, guarded. Each reading carries the increase it adds to its device's
-- counter, judged as it is stored (a trigger, whoever writes) against the device's previous
-- reading in device time: never more than the time that passed allows, so a replaced, re-flashed
-- or reset board (or a simulator restarting from another base) cannot add days of use in one
-- hour. After a reset or a jump, counting goes on from the new base; each reading the guard did
-- not count in full is recorded in counter_anomaly, per device. Rollups sum the increases, so an
-- hour, a day and a term agree by construction; an hour counts at most an hour of use (a reading
-- after a gap may carry the gap's use).

-- What a reading adds to a cumulative counter: `value` now, `previous` at the device's previous
-- reading `elapsed_s` earlier, the counter able to grow at most `per_s` a second (with 1 % and
-- two seconds' slack for the clocks). The first reading of a device is its base and adds nothing.
CREATE FUNCTION counter_increase(value bigint, previous bigint, elapsed_s double precision, per_s double precision)
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN previous IS NULL THEN 0
        WHEN value >= previous AND value - previous <= greatest(elapsed_s, 0) * per_s * 1.01 + 2 * per_s
            THEN value - previous
        ELSE 0                              -- a reset or a jump: the reading is the new base
    END
$$;

-- Why a reading's increase was not counted in full: NULL when it was.
CREATE FUNCTION counter_anomaly_kind(value bigint, previous bigint, elapsed_s double precision, per_s double precision)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN previous IS NULL OR counter_increase(value, previous, elapsed_s, per_s) = value - previous THEN NULL
        WHEN value < previous THEN 'reset'
        ELSE 'jump'
    END
$$;

ALTER TABLE board_telemetry ADD COLUMN use_increase_s bigint;
ALTER TABLE recorder_telemetry ADD COLUMN frames_increase bigint;

CREATE TABLE counter_anomaly (
    device_id   text NOT NULL,
    time        timestamptz NOT NULL,      -- the reading's device time
    counter     text NOT NULL CHECK (counter IN ('active_use_s', 'dropped_frames')),
    kind        text NOT NULL CHECK (kind IN ('reset', 'jump')),
    previous    bigint NOT NULL,
    value       bigint NOT NULL,
    elapsed_s   double precision NOT NULL,
    counted     bigint NOT NULL,           -- what the reading added after all
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, counter, time)
);
CREATE INDEX counter_anomaly_time_idx ON counter_anomaly (time);

-- Record a reading the guard did not count in full (a redelivered reading records nothing new).
CREATE FUNCTION note_counter_anomaly(device text, at timestamptz, counter text, previous bigint, value bigint,
                                     elapsed_s double precision, per_s double precision) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO counter_anomaly (device_id, time, counter, kind, previous, value, elapsed_s, counted)
    SELECT device, at, counter, counter_anomaly_kind(value, previous, elapsed_s, per_s), previous, value, elapsed_s,
           counter_increase(value, previous, elapsed_s, per_s)
    WHERE counter_anomaly_kind(value, previous, elapsed_s, per_s) IS NOT NULL
    ON CONFLICT DO NOTHING
$$;

-- A reading older than one already stored adds nothing: the later reading counted its span. Rows
-- of one INSERT are judged in the order they come, each seeing the ones before it.
CREATE FUNCTION judge_board_use() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    prev record;
    elapsed double precision;
BEGIN
    IF EXISTS (SELECT 1 FROM board_telemetry l WHERE l.device_id = NEW.device_id AND l.time > NEW.time) THEN
        NEW.use_increase_s := 0;
        RETURN NEW;
    END IF;
    SELECT q.time, q.active_use_s AS value INTO prev FROM board_telemetry q
    WHERE q.device_id = NEW.device_id AND q.time < NEW.time ORDER BY q.time DESC LIMIT 1;
    elapsed := extract(epoch FROM NEW.time - prev.time);
    NEW.use_increase_s := counter_increase(NEW.active_use_s, prev.value, elapsed, 1);
    PERFORM note_counter_anomaly(NEW.device_id, NEW.time, 'active_use_s', prev.value, NEW.active_use_s, elapsed, 1);
    RETURN NEW;
END
$$;

-- Dropped frames grow at most at 240 frames a second per camera.
CREATE FUNCTION judge_recorder_frames() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    prev record;
    elapsed double precision;
    per_s double precision := 240.0 * greatest(NEW.cameras_total, 1);
BEGIN
    IF EXISTS (SELECT 1 FROM recorder_telemetry l WHERE l.device_id = NEW.device_id AND l.time > NEW.time) THEN
        NEW.frames_increase := 0;
        RETURN NEW;
    END IF;
    SELECT q.time, q.dropped_frames AS value INTO prev FROM recorder_telemetry q
    WHERE q.device_id = NEW.device_id AND q.time < NEW.time ORDER BY q.time DESC LIMIT 1;
    elapsed := extract(epoch FROM NEW.time - prev.time);
    NEW.frames_increase := counter_increase(NEW.dropped_frames, prev.value, elapsed, per_s);
    PERFORM note_counter_anomaly(NEW.device_id, NEW.time, 'dropped_frames', prev.value, NEW.dropped_frames, elapsed,
                                 per_s);
    RETURN NEW;
END
$$;

-- Readings stored before this migration: the same judgement, in device time order.
CREATE TEMP TABLE judged_use ON COMMIT DROP AS
SELECT device_id, time, seq, active_use_s AS value,
       lag(active_use_s) OVER w AS previous, extract(epoch FROM time - lag(time) OVER w) AS elapsed_s
FROM board_telemetry WINDOW w AS (PARTITION BY device_id ORDER BY time, seq);
UPDATE board_telemetry t SET use_increase_s = counter_increase(j.value, j.previous, j.elapsed_s, 1)
FROM judged_use j WHERE t.device_id = j.device_id AND t.time = j.time AND t.seq = j.seq;
SELECT note_counter_anomaly(device_id, time, 'active_use_s', previous, value, elapsed_s, 1) FROM judged_use;

CREATE TEMP TABLE judged_frames ON COMMIT DROP AS
SELECT device_id, time, seq, dropped_frames AS value, 240.0 * greatest(cameras_total, 1) AS per_s,
       lag(dropped_frames) OVER w AS previous, extract(epoch FROM time - lag(time) OVER w) AS elapsed_s
FROM recorder_telemetry WINDOW w AS (PARTITION BY device_id ORDER BY time, seq);
UPDATE recorder_telemetry t SET frames_increase = counter_increase(j.value, j.previous, j.elapsed_s, j.per_s)
FROM judged_frames j WHERE t.device_id = j.device_id AND t.time = j.time AND t.seq = j.seq;
SELECT note_counter_anomaly(device_id, time, 'dropped_frames', previous, value, elapsed_s, per_s) FROM judged_frames;

CREATE TRIGGER judge_use BEFORE INSERT ON board_telemetry FOR EACH ROW EXECUTE FUNCTION judge_board_use();
CREATE TRIGGER judge_frames BEFORE INSERT ON recorder_telemetry FOR EACH ROW EXECUTE FUNCTION judge_recorder_frames();

-- With TimescaleDB the device rollups are views over continuous aggregates (004_rollups.sql),
-- which keep a counter's lowest and highest value per bucket. The increases get continuous
-- aggregates of their own, and the views take the counters from them.
DO $$
DECLARE
    grain text;
BEGIN
    IF to_regclass('board_hourly_cagg') IS NULL THEN
        RETURN;
    END IF;
    EXECUTE $q$
    CREATE MATERIALIZED VIEW board_use_hourly_cagg
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket('1 hour', time, origin => '2000-01-01 00:00+08') AS bucket, device_id,
           sum(use_increase_s) AS active_use_s
    FROM board_telemetry GROUP BY 1, 2 WITH NO DATA $q$;
    EXECUTE $q$
    CREATE MATERIALIZED VIEW recorder_frames_hourly_cagg
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket('1 hour', time, origin => '2000-01-01 00:00+08') AS bucket, device_id,
           sum(frames_increase) AS dropped_frames_increase
    FROM recorder_telemetry GROUP BY 1, 2 WITH NO DATA $q$;
    EXECUTE $q$
    CREATE MATERIALIZED VIEW board_use_daily_cagg
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket('1 day', bucket, origin => '2000-01-01 00:00+08') AS bucket, device_id,
           sum(least(active_use_s, 3600)) AS active_use_s, count(*) FILTER (WHERE active_use_s > 0) AS active_hours
    FROM board_use_hourly_cagg GROUP BY 1, 2 WITH NO DATA $q$;
    EXECUTE $q$
    CREATE MATERIALIZED VIEW recorder_frames_daily_cagg
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket('1 day', bucket, origin => '2000-01-01 00:00+08') AS bucket, device_id,
           sum(dropped_frames_increase) AS dropped_frames_increase
    FROM recorder_frames_hourly_cagg GROUP BY 1, 2 WITH NO DATA $q$;

    FOREACH grain IN ARRAY ARRAY['hourly', 'daily'] LOOP
        EXECUTE format($q$
        CREATE OR REPLACE VIEW device_%1$s AS
        SELECT c.bucket, c.device_id, 'board'::text AS kind, c.readings::integer AS readings,
               c.online_minutes::integer AS online_minutes, c.powered_on_minutes::integer AS powered_on_minutes,
               c.screen_on_minutes::integer AS screen_on_minutes, c.use_min, c.use_max,
               least(coalesce(u.active_use_s, 0), %4$s)::bigint AS active_use_s,
               c.cpu_temp_max, c.disk_used_max, NULL::integer AS recording_minutes,
               NULL::integer AS streaming_minutes, NULL::bigint AS frames_min, NULL::bigint AS frames_max,
               NULL::bigint AS dropped_frames_increase, NULL::real AS storage_free_min_gb,
               NULL::integer AS cameras_offline_max, NULL::real AS rx_mbps_avg, NULL::real AS rx_mbps_max,
               NULL::real AS utilisation_max, NULL::real AS latency_avg, NULL::real AS loss_avg,
               NULL::integer AS aps_offline_max%2$s
        FROM board_%1$s_cagg c
        LEFT JOIN board_use_%1$s_cagg u ON u.device_id = c.device_id AND u.bucket = c.bucket
        UNION ALL
        SELECT c.bucket, c.device_id, 'recorder', c.readings::integer, c.online_minutes::integer, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, c.recording_minutes::integer, c.streaming_minutes::integer,
               c.frames_min, c.frames_max, coalesce(f.dropped_frames_increase, 0)::bigint,
               c.storage_free_min_gb, c.cameras_offline_max::integer, NULL, NULL, NULL, NULL, NULL, NULL%3$s
        FROM recorder_%1$s_cagg c
        LEFT JOIN recorder_frames_%1$s_cagg f ON f.device_id = c.device_id AND f.bucket = c.bucket
        UNION ALL
        SELECT c.bucket, c.device_id, 'gateway', c.readings::integer, c.online_minutes::integer, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               (c.rx_sum / c.readings)::real, c.rx_mbps_max, c.utilisation_max::real,
               (c.latency_sum / nullif(c.latency_n, 0))::real, (c.loss_sum / nullif(c.loss_n, 0))::real,
               c.aps_offline_max::integer%3$s
        FROM gateway_%1$s_cagg c $q$,
            grain,
            CASE grain WHEN 'daily' THEN ', coalesce(u.active_hours, 0)::integer AS active_hours' ELSE '' END,
            CASE grain WHEN 'daily' THEN ', NULL' ELSE '' END,
            CASE grain WHEN 'daily' THEN 86400 ELSE 3600 END);
    END LOOP;

    PERFORM add_continuous_aggregate_policy(cagg, start_offset => interval '3 days',
                                            end_offset => interval '1 hour', schedule_interval => interval '30 minutes')
    FROM unnest(ARRAY['board_use_hourly_cagg', 'recorder_frames_hourly_cagg']::regclass[]) cagg;
    PERFORM add_continuous_aggregate_policy(cagg, start_offset => interval '10 days',
                                            end_offset => interval '1 day', schedule_interval => interval '2 hours')
    FROM unnest(ARRAY['board_use_daily_cagg', 'recorder_frames_daily_cagg']::regclass[]) cagg;
END
$$;
