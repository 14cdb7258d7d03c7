-- Figures over a period at province and city scale without reading every school's days.
--
-- A period figure is a sum over (child, device kind) of the devices in service, their in-service
-- device-minutes, and the rollups' sums over the period's days (api/metrics/catalogue.py). At
-- province scale that is ~30,000 school-kinds × the period's days: seconds for a term. Two small
-- tables answer the same sums per county instead, exactly, for any range of days:
--
-- * county_fleet: the devices per county and kind, grouped by the hour they were registered and
--   the day they were installed (a few rows per county), kept by statement triggers on device
--   (and rebuilt when a school changes county). A device is in service from in_service_since().
-- * county_daily_cum: per county, kind and day with rollups, the running totals of the school
--   day rollups from the first day up to and including that day. The sums over days a..b are
--   the totals at the last row on or before b minus those at the last row before a. The rollups
--   service recomputes the rows from the earliest day a refresh touched (county_cum_refresh).
--
-- The per-school formulas and these give the same numbers (tests/api/test_cube.py compares them
-- over random registries, readings and periods). Time zones with a whole-hour offset only: the
-- hours here are UTC hours, as the hourly rollups' are.

-- When a device came into service: its registration or its installation day (a local midnight),
-- whichever came first, to the hour. Its hour counts whole, as the hourly rollups do.
CREATE FUNCTION in_service_since(registered_at timestamptz, installed_on date, tz text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT date_trunc('hour', least($1, $2::timestamp AT TIME ZONE $3), 'UTC')
$$;

CREATE TABLE county_fleet (
    county_code     text NOT NULL,
    kind            text NOT NULL,
    registered_hour timestamptz NOT NULL,  -- date_trunc('hour', registered_at, 'UTC')
    installed_on    date NOT NULL,         -- 'infinity' when unknown
    devices         integer NOT NULL CHECK (devices > 0),
    PRIMARY KEY (county_code, kind, registered_hour, installed_on)
);

CREATE FUNCTION county_fleet_rebuild() RETURNS void LANGUAGE sql AS $$
    DELETE FROM county_fleet;
    INSERT INTO county_fleet (county_code, kind, registered_hour, installed_on, devices)
    SELECT s.county_code, d.kind, date_trunc('hour', d.registered_at, 'UTC'), coalesce(d.installed_on, 'infinity'),
           count(*)
    FROM device d JOIN school s ON s.code = d.school_code GROUP BY 1, 2, 3, 4;
$$;

CREATE FUNCTION county_fleet_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        DELETE FROM county_fleet f
        USING (SELECT s.county_code, d.kind, date_trunc('hour', d.registered_at, 'UTC') AS registered_hour,
                      coalesce(d.installed_on, 'infinity') AS installed_on, count(*) AS n
               FROM old_rows d JOIN school s ON s.code = d.school_code GROUP BY 1, 2, 3, 4) o
        WHERE (f.county_code, f.kind, f.registered_hour, f.installed_on)
              = (o.county_code, o.kind, o.registered_hour, o.installed_on) AND f.devices <= o.n;
        UPDATE county_fleet f SET devices = f.devices - o.n
        FROM (SELECT s.county_code, d.kind, date_trunc('hour', d.registered_at, 'UTC') AS registered_hour,
                     coalesce(d.installed_on, 'infinity') AS installed_on, count(*) AS n
              FROM old_rows d JOIN school s ON s.code = d.school_code GROUP BY 1, 2, 3, 4) o
        WHERE (f.county_code, f.kind, f.registered_hour, f.installed_on)
              = (o.county_code, o.kind, o.registered_hour, o.installed_on) AND f.devices > o.n;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO county_fleet AS f (county_code, kind, registered_hour, installed_on, devices)
        SELECT s.county_code, d.kind, date_trunc('hour', d.registered_at, 'UTC'), coalesce(d.installed_on, 'infinity'),
               count(*)
        FROM new_rows d JOIN school s ON s.code = d.school_code GROUP BY 1, 2, 3, 4
        ON CONFLICT (county_code, kind, registered_hour, installed_on) DO UPDATE SET devices = f.devices + EXCLUDED.devices;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER county_fleet_insert AFTER INSERT ON device REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION county_fleet_change();
CREATE TRIGGER county_fleet_update AFTER UPDATE ON device REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION county_fleet_change();
CREATE TRIGGER county_fleet_delete AFTER DELETE ON device REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION county_fleet_change();

CREATE FUNCTION county_fleet_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM county_fleet;
    RETURN NULL;
END
$$;
CREATE TRIGGER county_fleet_truncate AFTER TRUNCATE ON device FOR EACH STATEMENT EXECUTE FUNCTION county_fleet_clear();

-- Whether a local day is a school day: calendar_day's word, else Monday to Friday (as
-- core/calendar.py decides it).
CREATE FUNCTION is_school_day(day date) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT c.is_school_day FROM calendar_day c WHERE c.day = $1), extract(isodow FROM $1) <= 5)
$$;

-- The running totals. `days` counts the school-kind day rows, so a range knows whether any
-- school of the county had rollups in it (the per-school formulas' "has this kind" test). The
-- lesson-hours lens counts school days only, so its totals (lesson_*, and `school_days`, its
-- count of rows) take in school days only, by the calendar when they were summed: a change to
-- calendar_day recomputes them from the day changed.
CREATE TABLE county_daily_cum (
    county_code               text NOT NULL,
    kind                      text NOT NULL,
    bucket                    timestamptz NOT NULL,
    days                      bigint NOT NULL,
    school_days               bigint NOT NULL,
    online_minutes            numeric NOT NULL,
    powered_on_minutes        numeric NOT NULL,
    active_use_s              numeric NOT NULL,
    recording_minutes         numeric NOT NULL,
    streaming_minutes         numeric NOT NULL,
    latency_w                 numeric NOT NULL,
    latency_n                 numeric NOT NULL,
    lesson_online_minutes     numeric NOT NULL,
    lesson_powered_on_minutes numeric NOT NULL,
    lesson_active_use_s       numeric NOT NULL,
    lesson_recording_minutes  numeric NOT NULL,
    lesson_streaming_minutes  numeric NOT NULL,
    PRIMARY KEY (county_code, kind, bucket)
);

-- Recompute the running totals of these counties from a day on (every kind); days are local days in tz.
CREATE FUNCTION county_cum_refresh(counties text[], from_day timestamptz, tz text) RETURNS void LANGUAGE sql AS $$
    DELETE FROM county_daily_cum WHERE county_code = ANY($1) AND bucket >= $2;
    INSERT INTO county_daily_cum
    SELECT d.county_code, d.kind, d.bucket,
           coalesce(b.days, 0) + sum(d.days) OVER w,
           coalesce(b.school_days, 0) + sum(d.school_days) OVER w,
           coalesce(b.online_minutes, 0) + sum(d.online_minutes) OVER w,
           coalesce(b.powered_on_minutes, 0) + sum(d.powered_on_minutes) OVER w,
           coalesce(b.active_use_s, 0) + sum(d.active_use_s) OVER w,
           coalesce(b.recording_minutes, 0) + sum(d.recording_minutes) OVER w,
           coalesce(b.streaming_minutes, 0) + sum(d.streaming_minutes) OVER w,
           coalesce(b.latency_w, 0) + sum(d.latency_w) OVER w,
           coalesce(b.latency_n, 0) + sum(d.latency_n) OVER w,
           coalesce(b.lesson_online_minutes, 0) + sum(d.lesson_online_minutes) OVER w,
           coalesce(b.lesson_powered_on_minutes, 0) + sum(d.lesson_powered_on_minutes) OVER w,
           coalesce(b.lesson_active_use_s, 0) + sum(d.lesson_active_use_s) OVER w,
           coalesce(b.lesson_recording_minutes, 0) + sum(d.lesson_recording_minutes) OVER w,
           coalesce(b.lesson_streaming_minutes, 0) + sum(d.lesson_streaming_minutes) OVER w
    FROM (SELECT s.county_code, x.kind, x.bucket, count(*) AS days,
                 count(*) FILTER (WHERE y.school) AS school_days,
                 coalesce(sum(x.online_minutes), 0) AS online_minutes,
                 coalesce(sum(x.powered_on_minutes), 0) AS powered_on_minutes,
                 coalesce(sum(x.active_use_s), 0) AS active_use_s,
                 coalesce(sum(x.recording_minutes), 0) AS recording_minutes,
                 coalesce(sum(x.streaming_minutes), 0) AS streaming_minutes,
                 coalesce(sum((x.latency_avg * x.online_minutes)::numeric), 0) AS latency_w,
                 coalesce(sum(x.online_minutes) FILTER (WHERE x.latency_avg IS NOT NULL), 0) AS latency_n,
                 coalesce(sum(x.lesson_online_minutes) FILTER (WHERE y.school), 0) AS lesson_online_minutes,
                 coalesce(sum(x.lesson_powered_on_minutes) FILTER (WHERE y.school), 0) AS lesson_powered_on_minutes,
                 coalesce(sum(x.lesson_active_use_s) FILTER (WHERE y.school), 0) AS lesson_active_use_s,
                 coalesce(sum(x.lesson_recording_minutes) FILTER (WHERE y.school), 0) AS lesson_recording_minutes,
                 coalesce(sum(x.lesson_streaming_minutes) FILTER (WHERE y.school), 0) AS lesson_streaming_minutes
          FROM school_daily x JOIN school s ON s.code = x.school_code
          CROSS JOIN LATERAL (SELECT is_school_day((x.bucket AT TIME ZONE $3)::date)
                                     AS school) y
          WHERE s.county_code = ANY($1) AND x.bucket >= $2 GROUP BY 1, 2, 3) d
    LEFT JOIN LATERAL (SELECT * FROM county_daily_cum c WHERE c.county_code = d.county_code AND c.kind = d.kind
                       AND c.bucket < $2 ORDER BY c.bucket DESC LIMIT 1) b ON true
    WINDOW w AS (PARTITION BY d.county_code, d.kind ORDER BY d.bucket);
$$;

-- Counties whose totals must be recomputed from a local day on, because something other than
-- the rollups changed what they sum: a school moved county, or the calendar changed. The rollups
-- service recomputes them on its next refresh (it knows the schools' time zone); until then the
-- API answers from the per-school rows (api/metrics/service.py).
CREATE TABLE county_cum_stale (
    county_code text PRIMARY KEY,
    from_date   date NOT NULL
);

CREATE FUNCTION county_cum_mark(counties text[], from_date date) RETURNS void LANGUAGE sql AS $$
    INSERT INTO county_cum_stale AS x (county_code, from_date) SELECT unnest($1), $2
    ON CONFLICT (county_code) DO UPDATE SET from_date = least(x.from_date, EXCLUDED.from_date);
$$;

-- A school moving to another county takes its devices and its history along.
CREATE FUNCTION county_school_moved() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved text[];
BEGIN
    SELECT array_agg(DISTINCT c) INTO moved
    FROM (SELECT o.county_code AS c FROM old_rows o JOIN new_rows n USING (code) WHERE o.county_code <> n.county_code
          UNION SELECT n.county_code FROM old_rows o JOIN new_rows n USING (code) WHERE o.county_code <> n.county_code) m;
    IF moved IS NOT NULL THEN
        PERFORM county_fleet_rebuild();
        PERFORM county_cum_mark(moved, '-infinity');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER county_school_moved AFTER UPDATE ON school REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION county_school_moved();

-- A school day declared or undone changes the lens totals from that day on, in every county.
CREATE FUNCTION county_calendar_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM county_cum_mark(ARRAY(SELECT code FROM county),
                            CASE WHEN TG_OP = 'TRUNCATE' THEN '-infinity'::date
                                 WHEN TG_OP = 'INSERT' THEN NEW.day WHEN TG_OP = 'DELETE' THEN OLD.day
                                 ELSE least(OLD.day, NEW.day) END);
    RETURN NULL;
END
$$;
CREATE TRIGGER county_calendar_changed AFTER INSERT OR UPDATE OR DELETE ON calendar_day
    FOR EACH ROW EXECUTE FUNCTION county_calendar_changed();
CREATE TRIGGER county_calendar_truncated AFTER TRUNCATE ON calendar_day
    FOR EACH STATEMENT EXECUTE FUNCTION county_calendar_changed();

-- Every county, from the start: the rollups service fills the totals on its first refresh.
SELECT county_fleet_rebuild();
SELECT county_cum_mark(ARRAY(SELECT code FROM county), '-infinity');
