-- A device's school, installation day or registration changed, or the device was removed, after
-- its readings were rolled up: its schools' rollups (which count a device's in-service hours at
-- the school it belongs to) are recomputed from the device rollups by the rollups service on its
-- next round (rollups/service.py rebuild_stale_schools), from the earliest day the change
-- touches, and the counties' totals after them. A device's history goes with it to its new school.

CREATE TABLE school_rollup_stale (
    school_code char(10) PRIMARY KEY,
    from_date   date NOT NULL
);

CREATE FUNCTION school_rollups_mark(school char(10), from_date date) RETURNS void LANGUAGE sql AS $$
    INSERT INTO school_rollup_stale AS x (school_code, from_date) VALUES ($1, $2)
    ON CONFLICT (school_code) DO UPDATE SET from_date = least(x.from_date, EXCLUDED.from_date);
$$;

CREATE FUNCTION school_rollups_device_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM school_rollups_mark(OLD.school_code, '-infinity');
    ELSIF OLD.school_code <> NEW.school_code THEN
        PERFORM school_rollups_mark(OLD.school_code, '-infinity');
        PERFORM school_rollups_mark(NEW.school_code, '-infinity');
    ELSIF OLD.installed_on IS DISTINCT FROM NEW.installed_on OR OLD.registered_at <> NEW.registered_at THEN
        -- the day before the earliest of the old and new moments, whatever the schools' time zone
        PERFORM school_rollups_mark(NEW.school_code,
            least(OLD.installed_on, NEW.installed_on, OLD.registered_at::date, NEW.registered_at::date) - 1);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER school_rollups_device_changed AFTER UPDATE OR DELETE ON device
    FOR EACH ROW EXECUTE FUNCTION school_rollups_device_changed();
