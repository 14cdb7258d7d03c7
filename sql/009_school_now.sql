-- Current state per school and device kind: "now" figures at province scale read
-- ~30,000 rows here instead of aggregating every device's state on each request.
-- Refreshed set-based from device_state at most every few seconds (core/school_now.py).

CREATE TABLE school_now (
    school_code  char(10) NOT NULL REFERENCES school(code) ON DELETE CASCADE,
    kind         text NOT NULL,
    devices      integer NOT NULL,
    online       integer NOT NULL,
    in_use       integer NOT NULL,
    recording    integer NOT NULL,
    streaming    integer NOT NULL,
    PRIMARY KEY (school_code, kind)
);

CREATE TABLE school_now_refresh (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    refreshed_at timestamptz NOT NULL
);
