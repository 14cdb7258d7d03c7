-- A gateway hour's mean latency and loss are means over the readings that carry a value; the day
-- weighs each hour by that count, not by all its readings (a reading without a latency said
-- nothing about latency). Plain tables only: with TimescaleDB the continuous aggregates keep sums
-- and counts already.

DO $$
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'device_hourly'::regclass) = 'r' THEN
        ALTER TABLE device_hourly ADD COLUMN latency_readings integer, ADD COLUMN loss_readings integer;
    END IF;
END
$$;
