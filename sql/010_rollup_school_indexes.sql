-- Trends of a county or a city read a few hundred schools' rows: index them by school
-- and time, whatever the device kind (the primary key has kind in between).
CREATE INDEX school_daily_school_bucket_idx ON school_daily (school_code, bucket);
CREATE INDEX school_hourly_school_bucket_idx ON school_hourly (school_code, bucket);
