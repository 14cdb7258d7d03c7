-- 智能巡课 (lesson inspection): camera stills from the classrooms in session, the platform's own
-- look at each (video health), the latest still of every camera, the inspection records
-- (巡课记录) people make against them, and the patrol rule that raises a remote lesson whose
-- picture is bad. The snapshot intake (patrol/snapshots.py) writes the stills; docs/patrol.md.

-- The stills: a short history per camera, never more. The intake keeps the newest
-- SNAPSHOT_HISTORY of each camera (and any an inspection record points at) and deletes the rest
-- as each new one arrives. A still is at most 128 KiB (the contract's bound on its payload).
CREATE TABLE snapshot (
    id          bigserial PRIMARY KEY,
    device_id   text NOT NULL REFERENCES device_all(id) ON DELETE CASCADE,
    camera      text NOT NULL CHECK (camera IN ('teacher', 'students', 'blackboard', 'panorama')),
    taken_at    timestamptz NOT NULL,
    seq         bigint NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    lesson_id   text CHECK (length(lesson_id) <= 64),
    width       integer NOT NULL CHECK (width BETWEEN 1 AND 1920),
    height      integer NOT NULL CHECK (height BETWEEN 1 AND 1080),
    jpeg        bytea NOT NULL CHECK (octet_length(jpeg) <= 131072),
    thumb       bytea NOT NULL CHECK (octet_length(thumb) <= 32768),  -- the wall's small copy
    problems    text[] NOT NULL DEFAULT '{}',
    measures    jsonb NOT NULL DEFAULT '{}',
    UNIQUE (device_id, camera, taken_at)  -- a redelivered still is the same row
);
-- JPEG does not compress: store it out of line without trying.
ALTER TABLE snapshot ALTER COLUMN jpeg SET STORAGE EXTERNAL, ALTER COLUMN thumb SET STORAGE EXTERNAL;

-- The newest still of every camera, its problems and since when the camera has had one, and
-- the run of alike stills a frozen picture is judged by (patrol/video_health.py FrozenRun).
CREATE TABLE snapshot_camera (
    device_id     text NOT NULL REFERENCES device_all(id) ON DELETE CASCADE,
    camera        text NOT NULL CHECK (camera IN ('teacher', 'students', 'blackboard', 'panorama')),
    snapshot_id   bigint NOT NULL,
    taken_at      timestamptz NOT NULL,
    lesson_id     text,
    problems      text[] NOT NULL DEFAULT '{}',
    problem_since timestamptz,  -- the first still of the current run with a problem (NULL: none now)
    grid          bytea NOT NULL,
    alike         integer NOT NULL DEFAULT 1 CHECK (alike >= 1),
    PRIMARY KEY (device_id, camera)
);

-- 巡课记录: what an inspector saw in one classroom, against a rubric, linked to the session
-- (a remote lesson and its day; none for a lesson the room records on its own) and the still
-- looked at. Where, what kind and which subject are kept as they were at the time.
CREATE TABLE inspection (
    id                  bigserial PRIMARY KEY,
    inspected_at        timestamptz NOT NULL DEFAULT now(),
    inspector           text NOT NULL,
    device_id           text NOT NULL REFERENCES device_all(id),
    school_code         char(10) NOT NULL REFERENCES school(code),
    room                text NOT NULL,
    lesson_id           text REFERENCES remote_lesson(id) ON DELETE SET NULL,
    day                 date NOT NULL,
    lesson_kind         text NOT NULL CHECK (lesson_kind IN ('dedicated', 'master', 'elite', 'local')),
    role                text NOT NULL CHECK (role IN ('main', 'receiving')),
    subject             text CHECK (length(subject) <= 64),
    snapshot_id         bigint REFERENCES snapshot(id) ON DELETE SET NULL,
    teacher_present     boolean NOT NULL,
    students_present    boolean NOT NULL,
    receiving_connected boolean,  -- remote lessons only
    picture_ok          boolean NOT NULL,
    sound_ok            boolean NOT NULL,
    board_in_use        boolean NOT NULL,
    note                text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    has_problem         boolean GENERATED ALWAYS AS (NOT (teacher_present AND students_present
        AND coalesce(receiving_connected, true) AND picture_ok AND sound_ok AND board_in_use)) STORED
);
CREATE INDEX inspection_time_idx ON inspection (inspected_at);
CREATE INDEX inspection_school_idx ON inspection (school_code, inspected_at DESC);
CREATE INDEX inspection_device_idx ON inspection (device_id, inspected_at DESC);
CREATE INDEX inspection_snapshot_idx ON inspection (snapshot_id) WHERE snapshot_id IS NOT NULL;

-- The patrol rule: a remote lesson running by the timetable whose main or receiving classroom's
-- latest still (taken in the lesson, at most max_age_min old) has one of `problems`. A school's
-- network down or the device offline explains it (inhibition), as a lost camera does.
ALTER FUNCTION patrol_seed_default_rules() RENAME TO patrol_seed_rules_before_inspection;

CREATE FUNCTION patrol_seed_default_rules() RETURNS void
LANGUAGE sql AS $seed$
SELECT patrol_seed_rules_before_inspection();
INSERT INTO patrol_rule (id, title, kind, severity, params, for_s, every_s, active_in, page) VALUES
('lesson_video_bad', '课堂画面异常', 'lesson', 'major',
 '{"problems": ["black", "covered", "frozen", "blurred", "overexposed", "underexposed"],
   "major": ["black", "covered", "frozen"], "max_age_min": 5}', 120, 0, 'always', true)
ON CONFLICT (id) DO NOTHING;
INSERT INTO patrol_inhibition (source_rule, target_rule, same) VALUES
('gateway_offline', 'lesson_video_bad', 'school'),
('device_offline', 'lesson_video_bad', 'device'),
('camera_lost', 'lesson_video_bad', 'device')
ON CONFLICT DO NOTHING;
$seed$;

SELECT patrol_seed_default_rules();
