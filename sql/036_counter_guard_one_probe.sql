-- The counter guard (020, 024) judged each reading with two index probes and then called
-- note_counter_anomaly for every reading, anomaly or not. That SQL function holds an INSERT, so
-- PostgreSQL planned it afresh on every call: ~370 µs of database CPU a reading, by far the
-- largest cost of storing telemetry (docs/benchmarks.md, "Drain"). The same judgement with one
-- probe (the device's newest reading: at or after this one means that one counted the span;
-- before it, it is the previous reading; of two at one instant, the higher seq) and the note taken
-- only when there is an anomaly.
-- Same increases, same anomalies: tests/rollups/test_counters.py.

CREATE OR REPLACE FUNCTION judge_board_use() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    prev record;
    elapsed double precision;
BEGIN
    SELECT q.time, q.active_use_s AS value INTO prev FROM board_telemetry q
    WHERE q.device_id = NEW.device_id ORDER BY q.time DESC, q.seq DESC LIMIT 1;
    IF prev.time >= NEW.time THEN
        NEW.use_increase_s := 0;
        RETURN NEW;
    END IF;
    elapsed := extract(epoch FROM NEW.time - prev.time);
    NEW.use_increase_s := counter_increase(NEW.active_use_s, prev.value, elapsed, 1);
    IF counter_anomaly_kind(NEW.active_use_s, prev.value, elapsed, 1) IS NOT NULL THEN
        PERFORM note_counter_anomaly(NEW.device_id, NEW.time, 'active_use_s', prev.value, NEW.active_use_s,
                                     elapsed, 1);
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION judge_recorder_frames() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    prev record;
    elapsed double precision;
    per_s double precision := 240.0 * greatest(NEW.cameras_total, 1);
BEGIN
    SELECT q.time, q.dropped_frames AS value INTO prev FROM recorder_telemetry q
    WHERE q.device_id = NEW.device_id ORDER BY q.time DESC, q.seq DESC LIMIT 1;
    IF prev.time >= NEW.time THEN
        NEW.frames_increase := 0;
        RETURN NEW;
    END IF;
    elapsed := extract(epoch FROM NEW.time - prev.time);
    NEW.frames_increase := counter_increase(NEW.dropped_frames, prev.value, elapsed, per_s);
    IF counter_anomaly_kind(NEW.dropped_frames, prev.value, elapsed, per_s) IS NOT NULL THEN
        PERFORM note_counter_anomaly(NEW.device_id, NEW.time, 'dropped_frames', prev.value, NEW.dropped_frames,
                                     elapsed, per_s);
    END IF;
    RETURN NEW;
END
$$;
