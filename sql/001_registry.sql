-- Registry: the four administrative levels, schools, communities, devices, users.
-- The hierarchy is denormalised onto schools so any level's aggregate is one GROUP BY.

CREATE TABLE province (
    code        text PRIMARY KEY,
    name        text NOT NULL
);

CREATE TABLE city (
    code          text PRIMARY KEY,
    province_code text NOT NULL REFERENCES province(code),
    name          text NOT NULL
);

CREATE TABLE county (
    code          text PRIMARY KEY,
    city_code     text NOT NULL REFERENCES city(code),
    province_code text NOT NULL REFERENCES province(code),
    name          text NOT NULL
);
CREATE INDEX county_city_idx ON county (city_code);

CREATE TABLE school (
    code          char(10) PRIMARY KEY CHECK (code ~ '^[0-9]{10}$'),
    name          text NOT NULL,
    county_code   text NOT NULL REFERENCES county(code),
    city_code     text NOT NULL REFERENCES city(code),
    province_code text NOT NULL REFERENCES province(code),
    locale        text NOT NULL CHECK (locale IN ('urban', 'town', 'rural')),
    stage         text NOT NULL CHECK (stage IN ('primary', 'junior', 'nine_year', 'senior', 'teaching_point')),
    classes       integer NOT NULL CHECK (classes >= 0),
    students      integer NOT NULL CHECK (students >= 0),
    teachers      integer NOT NULL CHECK (teachers >= 0),
    uplink_mbps   integer NOT NULL DEFAULT 100 CHECK (uplink_mbps > 0),
    latitude      double precision,
    longitude     double precision
);
CREATE INDEX school_county_idx ON school (county_code);
CREATE INDEX school_city_idx ON school (city_code);

CREATE TABLE community (
    code             text PRIMARY KEY,
    name             text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('merged', 'co_built', 'collaborative', 'mixed')),
    lead_school_code char(10) NOT NULL REFERENCES school(code),
    county_code      text NOT NULL REFERENCES county(code),
    founded_on       date
);

CREATE TABLE community_member (
    community_code text NOT NULL REFERENCES community(code) ON DELETE CASCADE,
    school_code    char(10) NOT NULL REFERENCES school(code),
    role           text NOT NULL CHECK (role IN ('lead', 'member')),
    joined_on      date,
    PRIMARY KEY (community_code, school_code)
);
CREATE INDEX community_member_school_idx ON community_member (school_code);

CREATE TABLE device (
    id            text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{3,64}$'),
    kind          text NOT NULL CHECK (kind IN ('board', 'recorder', 'gateway')),
    school_code   char(10) NOT NULL REFERENCES school(code),
    room          text NOT NULL,
    vendor        text NOT NULL,
    model         text NOT NULL,
    installed_on  date,
    secret_hash   text,
    registered_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_school_idx ON device (school_code, kind);

CREATE TABLE app_user (
    username      text PRIMARY KEY,
    display_name  text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'manager', 'operations', 'viewer')),
    scope_level   text NOT NULL CHECK (scope_level IN ('province', 'city', 'county', 'school', 'community')),
    scope_code    text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- School calendar: days without lessons beyond weekends (holidays, vacations) and
-- weekend days that are school days (make-up days, 调休).
CREATE TABLE calendar_day (
    day        date PRIMARY KEY,
    is_school_day boolean NOT NULL,
    name       text NOT NULL
);

-- The three classrooms: a timetable of remote lessons. A lesson has one main
-- classroom (a recorder) and N receiving classrooms (boards at other schools).
CREATE TABLE remote_lesson (
    id                 text PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('dedicated', 'master', 'elite')),
    subject            text NOT NULL,
    main_device_id     text NOT NULL REFERENCES device(id),
    community_code     text REFERENCES community(code),
    weekday            smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    starts_at          time NOT NULL,
    ends_at            time NOT NULL CHECK (ends_at > starts_at),
    valid_from         date NOT NULL,
    valid_until        date NOT NULL CHECK (valid_until >= valid_from)
);
CREATE INDEX remote_lesson_main_idx ON remote_lesson (main_device_id);

CREATE TABLE remote_lesson_receiver (
    lesson_id   text NOT NULL REFERENCES remote_lesson(id) ON DELETE CASCADE,
    device_id   text NOT NULL REFERENCES device(id),
    class_name  text NOT NULL,
    PRIMARY KEY (lesson_id, device_id)
);
CREATE INDEX remote_lesson_receiver_device_idx ON remote_lesson_receiver (device_id);
