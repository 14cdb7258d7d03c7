-- The three classrooms (三个课堂): each timetabled occurrence of a remote lesson, matched
-- against what the main classroom streamed and which receiving classrooms joined.
-- Rebuilt set-based for a range of days by api/lessons/service.py `match_sessions`.

CREATE TABLE lesson_session (
    lesson_id             text NOT NULL REFERENCES remote_lesson(id) ON DELETE CASCADE,
    day                   date NOT NULL,
    scheduled_start       timestamptz NOT NULL,
    scheduled_end         timestamptz NOT NULL CHECK (scheduled_end > scheduled_start),
    status                text NOT NULL CHECK (status IN ('scheduled', 'held', 'partial', 'interrupted', 'missed')),
    started_at            timestamptz,
    ended_at              timestamptz,
    main_streamed_minutes integer NOT NULL DEFAULT 0 CHECK (main_streamed_minutes >= 0),
    receivers_expected    integer NOT NULL DEFAULT 0,
    receivers_joined      integer NOT NULL DEFAULT 0,
    interruptions         integer NOT NULL DEFAULT 0,
    matched_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lesson_id, day)
);
CREATE INDEX lesson_session_day_idx ON lesson_session (day, status);
CREATE INDEX lesson_session_start_idx ON lesson_session (scheduled_start);

-- Which receiving classrooms joined each session: "received" figures (schools, classes,
-- teaching points reached, pairs meeting their quota) read this.
CREATE TABLE lesson_session_receiver (
    lesson_id  text NOT NULL,
    day        date NOT NULL,
    device_id  text NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    joined_at  timestamptz,
    PRIMARY KEY (lesson_id, day, device_id),
    FOREIGN KEY (lesson_id, day) REFERENCES lesson_session (lesson_id, day) ON DELETE CASCADE
);
CREATE INDEX lesson_session_receiver_device_idx ON lesson_session_receiver (device_id, day);
