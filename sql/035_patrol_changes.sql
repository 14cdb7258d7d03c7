-- The patrol evaluates what changed, not the whole fleet, every cycle (patrol/engine.py,
-- docs/patrol.md "Evaluation"). For each rule it keeps what its last evaluation rested on;
-- a registry write moves a version every device-level check depends on; the alerts the
-- cycle touches every time get room on their page for the new version of each row.

-- What each rule's last evaluation read besides the device state (a fingerprint of its
-- params, overrides, hours, maintenance windows, the registry's version and the clock
-- values its check names), and from which transaction on a device_state row is news to it:
-- the oldest transaction still running when that evaluation began.
CREATE TABLE patrol_rule_state (
    rule_id      text PRIMARY KEY REFERENCES patrol_rule(id) ON DELETE CASCADE,
    basis        text NOT NULL,
    changes_from xid8 NOT NULL,
    evaluated_at timestamptz NOT NULL
);

-- Any write to the registry a check reads (devices, schools, community members) moves the
-- version, in the writer's own transaction: the patrol sees the new version exactly when it
-- sees the write, and evaluates every device again. Registry writes are rare; each statement
-- takes the one row's lock until its transaction ends.
CREATE TABLE patrol_registry_version (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint NOT NULL
);
INSERT INTO patrol_registry_version VALUES (true, 0);

CREATE FUNCTION patrol_registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE patrol_registry_version SET version = version + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER patrol_registry_device AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON device_all
    FOR EACH STATEMENT EXECUTE FUNCTION patrol_registry_changed();
CREATE TRIGGER patrol_registry_school AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON school
    FOR EACH STATEMENT EXECUTE FUNCTION patrol_registry_changed();
CREATE TRIGGER patrol_registry_community AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON community_member
    FOR EACH STATEMENT EXECUTE FUNCTION patrol_registry_changed();

-- Every cycle writes last_seen and count of each open alert again: with room left on the page
-- the new version stays there and no index changes (a heap-only update).
ALTER TABLE alert SET (fillfactor = 70);
