-- A registry the bureau keeps itself (spreadsheet imports, the cockpit's administration pages)
-- keeps its history: nothing is deleted.
--
-- * A device is retired, not deleted: `device_all` holds every device ever registered, with
--   `retired_at` set on the retired ones; `device` is the devices in service (a view every
--   reader already uses, and through which inserts and updates still work). A retired device
--   leaves the broker's accounts, the patrol and the figures (its school's rollups are
--   recomputed without it, as when it moves: the figures describe a school's fleet of today);
--   its readings and its own rollups stay stored, and registering the same id again brings it
--   back.
-- * registry_history: every move (a school to another county, a device to another school or
--   room), every retirement and return, every community member joining or leaving, with who
--   and when and through what (an import, the administration pages).
-- * broker_accounts: a notice whenever the set of devices that may connect changes, so the
--   broker's password file is rewritten and reloaded at once (ops/broker_sync.py).

ALTER TABLE device RENAME TO device_all;
ALTER TABLE device_all
    ADD COLUMN retired_at timestamptz,
    ADD COLUMN retired_reason text CHECK (length(retired_reason) <= 500);
CREATE INDEX device_all_retired_idx ON device_all (retired_at) WHERE retired_at IS NOT NULL;

CREATE VIEW device AS
SELECT id, kind, school_code, room, vendor, model, installed_on, secret_hash, registered_at
FROM device_all WHERE retired_at IS NULL;

-- The counties' fleet counts devices in service only (023's function, retired rows left out).
CREATE OR REPLACE FUNCTION county_fleet_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        DELETE FROM county_fleet f
        USING (SELECT s.county_code, d.kind, date_trunc('hour', d.registered_at, 'UTC') AS registered_hour,
                      coalesce(d.installed_on, 'infinity') AS installed_on, count(*) AS n
               FROM old_rows d JOIN school s ON s.code = d.school_code WHERE d.retired_at IS NULL
               GROUP BY 1, 2, 3, 4) o
        WHERE (f.county_code, f.kind, f.registered_hour, f.installed_on)
              = (o.county_code, o.kind, o.registered_hour, o.installed_on) AND f.devices <= o.n;
        UPDATE county_fleet f SET devices = f.devices - o.n
        FROM (SELECT s.county_code, d.kind, date_trunc('hour', d.registered_at, 'UTC') AS registered_hour,
                     coalesce(d.installed_on, 'infinity') AS installed_on, count(*) AS n
              FROM old_rows d JOIN school s ON s.code = d.school_code WHERE d.retired_at IS NULL
              GROUP BY 1, 2, 3, 4) o
        WHERE (f.county_code, f.kind, f.registered_hour, f.installed_on)
              = (o.county_code, o.kind, o.registered_hour, o.installed_on) AND f.devices > o.n;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO county_fleet AS f (county_code, kind, registered_hour, installed_on, devices)
        SELECT s.county_code, d.kind, date_trunc('hour', d.registered_at, 'UTC'), coalesce(d.installed_on, 'infinity'),
               count(*)
        FROM new_rows d JOIN school s ON s.code = d.school_code WHERE d.retired_at IS NULL GROUP BY 1, 2, 3, 4
        ON CONFLICT (county_code, kind, registered_hour, installed_on) DO UPDATE SET devices = f.devices + EXCLUDED.devices;
    END IF;
    RETURN NULL;
END
$$;

-- Retiring a device, or bringing it back, recomputes its school's rollups (026) from the start.
CREATE OR REPLACE FUNCTION school_rollups_device_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM school_rollups_mark(OLD.school_code, '-infinity');
    ELSIF OLD.school_code <> NEW.school_code THEN
        PERFORM school_rollups_mark(OLD.school_code, '-infinity');
        PERFORM school_rollups_mark(NEW.school_code, '-infinity');
    ELSIF (OLD.retired_at IS NULL) <> (NEW.retired_at IS NULL) THEN
        PERFORM school_rollups_mark(NEW.school_code, '-infinity');
    ELSIF OLD.installed_on IS DISTINCT FROM NEW.installed_on OR OLD.registered_at <> NEW.registered_at THEN
        PERFORM school_rollups_mark(NEW.school_code,
            least(OLD.installed_on, NEW.installed_on, OLD.registered_at::date, NEW.registered_at::date) - 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TABLE registry_history (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    entity      text NOT NULL CHECK (entity IN ('school', 'device', 'community', 'community_member', 'user')),
    key         text NOT NULL,             -- 学校标识码, 设备编号, 教联体编号 or 教联体编号/学校标识码, 用户名
    change      text NOT NULL CHECK (change IN ('created', 'moved', 'changed', 'retired', 'returned', 'joined',
                                                 'left', 'disabled', 'enabled')),
    before      jsonb,
    after       jsonb,
    changed_by  text NOT NULL,
    source      text NOT NULL CHECK (source IN ('import', 'admin', 'cli'))
);
CREATE INDEX registry_history_key_idx ON registry_history (entity, key, at DESC);

-- Accounts: when the password was last set (the policy's age), and whether its holder must
-- choose a new one at the next login (a generated or reset password).
ALTER TABLE app_user
    ADD COLUMN password_set_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN must_change_password boolean NOT NULL DEFAULT false,
    ADD COLUMN created_by text;

CREATE FUNCTION broker_accounts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('broker_accounts', TG_OP);
    RETURN NULL;
END
$$;
CREATE TRIGGER broker_accounts_insert AFTER INSERT OR DELETE ON device_all
    FOR EACH STATEMENT EXECUTE FUNCTION broker_accounts_changed();
CREATE TRIGGER broker_accounts_update AFTER UPDATE OF id, retired_at ON device_all
    FOR EACH STATEMENT EXECUTE FUNCTION broker_accounts_changed();

-- 完全中学 (a school with both junior and senior years) is a stage of its own in the bureaus' lists.
ALTER TABLE school DROP CONSTRAINT school_stage_check;
ALTER TABLE school ADD CONSTRAINT school_stage_check
    CHECK (stage IN ('primary', 'junior', 'nine_year', 'complete', 'senior', 'teaching_point'));

-- A retired device's open alerts end with it, whichever way it was retired (the administration
-- pages, an import): nobody is sent to repair a device that was taken out of service.
CREATE FUNCTION device_retired_alerts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE alert SET state = 'resolved', resolved_at = NEW.retired_at, resolution = 'device retired'
    WHERE device_id = NEW.id AND state <> 'resolved';
    RETURN NULL;
END
$$;
CREATE TRIGGER device_retired_alerts AFTER UPDATE OF retired_at ON device_all
    FOR EACH ROW WHEN (OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL)
    EXECUTE FUNCTION device_retired_alerts();
