-- The lesson-hours lens: what a school's devices did in the hours its class periods run.
-- A lesson hour is a local hour that any class period of the school day overlaps
-- (core/calendar.py LESSON_HOURS: 08–12 and 14–18 with the standard timetable). Each
-- school day row keeps, beside its whole-day sums, the same sums over its lesson hours
-- only, summed from school_hourly by the rollups service (rollups/service.py) so that a
-- month or a term through the lens reads as few rows as the whole day does. Whether a day
-- is a school day is the calendar's business at query time, not stored here: a holiday
-- declared later changes the answer without a rebuild.

ALTER TABLE school_daily
    ADD COLUMN lesson_online_minutes     bigint,
    ADD COLUMN lesson_powered_on_minutes bigint,
    ADD COLUMN lesson_active_use_s       bigint,
    ADD COLUMN lesson_recording_minutes  bigint,
    ADD COLUMN lesson_streaming_minutes  bigint;
