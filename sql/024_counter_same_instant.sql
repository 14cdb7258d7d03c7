-- A reading at the same device time as one already stored (a repeat under another seq) adds
-- nothing either: the stored one counted that span. Was: only a later reading made it add 0, so
-- a repeat at the same instant was judged against the reading before and counted its span twice.

CREATE OR REPLACE FUNCTION judge_board_use() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    prev record;
    elapsed double precision;
BEGIN
    IF EXISTS (SELECT 1 FROM board_telemetry l WHERE l.device_id = NEW.device_id AND l.time >= NEW.time) THEN
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

CREATE OR REPLACE FUNCTION judge_recorder_frames() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    prev record;
    elapsed double precision;
    per_s double precision := 240.0 * greatest(NEW.cameras_total, 1);
BEGIN
    IF EXISTS (SELECT 1 FROM recorder_telemetry l WHERE l.device_id = NEW.device_id AND l.time >= NEW.time) THEN
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
