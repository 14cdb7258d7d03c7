-- An open alert seen again is not written again (patrol/engine.py, docs/patrol.md "Evaluation").
-- Its last_seen and count (when the condition was last observed, how many evaluations observed
-- it) follow from a run of sightings: the alert has been seen at every evaluation of its rule
-- since one of them, so its figures are those it had then moved on by the evaluations since.
-- Only a changed detail or severity, or the end or start of a run, writes the row. Readers see
-- the figures through `alert_seen`; `alert.last_seen` and `alert.count` are as of the last write.

-- How many times each rule has been evaluated, and when last.
CREATE TABLE patrol_rule_seen (
    rule_id      text PRIMARY KEY REFERENCES patrol_rule(id) ON DELETE CASCADE,
    evaluations  bigint NOT NULL,
    evaluated_at timestamptz NOT NULL
);

-- The evaluation of its rule (patrol_rule_seen.evaluations) from which on the alert has been seen
-- at every one; last_seen and count are as at that evaluation. NULL: no run (figures as stored).
ALTER TABLE alert ADD COLUMN seen_from bigint;

-- Every alert as users see it: last_seen and count moved on by the run of sightings.
CREATE VIEW alert_seen AS
SELECT a.id, a.rule_id, a.device_id, a.school_code, a.state, a.severity, a.summary, a.detail, a.first_seen,
       CASE WHEN e.evaluations > a.seen_from THEN e.evaluated_at ELSE a.last_seen END AS last_seen,
       a.count + coalesce(e.evaluations - a.seen_from, 0)::integer AS count,
       a.fired_at, a.acked_at, a.acked_by, a.resolved_at, a.resolution, a.inhibited_by, a.silence_id, a.team_id,
       a.escalation_level, a.escalated_at, a.notified_at, a.reminded_at, a.resolved_notified_at
FROM alert a LEFT JOIN patrol_rule_seen e ON e.rule_id = a.rule_id AND a.seen_from IS NOT NULL;

-- A run ends when the alert is resolved (by the patrol, by a retired device, by anyone) or is
-- not seen at an evaluation (outside its rule's hours, in a maintenance window: seen_from set
-- to NULL): the figures it had reached are written into the row, as at the rule's evaluations
-- so far (the patrol counts an evaluation once the cycle's alerts have moved).
CREATE FUNCTION alert_seen_run_ends() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    done patrol_rule_seen;
BEGIN
    SELECT * INTO done FROM patrol_rule_seen WHERE rule_id = OLD.rule_id;
    IF done.evaluations > OLD.seen_from THEN
        NEW.count := NEW.count + (done.evaluations - OLD.seen_from);
        NEW.last_seen := done.evaluated_at;
    END IF;
    NEW.seen_from := NULL;
    RETURN NEW;
END
$$;
CREATE TRIGGER alert_seen_run_ends BEFORE UPDATE OF state, seen_from ON alert
    FOR EACH ROW WHEN (OLD.seen_from IS NOT NULL AND (NEW.state = 'resolved' OR NEW.seen_from IS NULL))
    EXECUTE FUNCTION alert_seen_run_ends();

-- The open alerts have no run yet: the next evaluation of each rule looks at every device.
DELETE FROM patrol_rule_state;
