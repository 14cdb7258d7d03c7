"""Keep `school_now` — the current state counted per school and device kind — fresh.

One set-based statement recomputes every school from `device_state`. Whoever finds the
table older than the allowed age refreshes it (the background job every few seconds,
or an API request in between); a try-lock makes concurrent askers read the current
table instead of queueing behind the refresh.
"""

from datetime import datetime

from psycopg import Connection
from psycopg.rows import dict_row

_LOCK = 742_002

_REFRESH = """
WITH counted AS (
    SELECT d.school_code, d.kind, count(*) AS devices,
           count(*) FILTER (WHERE st.online) AS online,
           count(*) FILTER (WHERE st.online AND st.in_use) AS in_use,
           count(*) FILTER (WHERE st.online AND st.recording) AS recording,
           count(*) FILTER (WHERE st.online AND st.streaming) AS streaming
    FROM device d LEFT JOIN device_state st ON st.device_id = d.id
    GROUP BY 1, 2),
gone AS (
    DELETE FROM school_now n WHERE NOT EXISTS (
        SELECT 1 FROM counted c WHERE c.school_code = n.school_code AND c.kind = n.kind))
INSERT INTO school_now AS n (school_code, kind, devices, online, in_use, recording, streaming)
SELECT * FROM counted
ON CONFLICT (school_code, kind) DO UPDATE SET
    devices = EXCLUDED.devices, online = EXCLUDED.online, in_use = EXCLUDED.in_use,
    recording = EXCLUDED.recording, streaming = EXCLUDED.streaming
WHERE (n.devices, n.online, n.in_use, n.recording, n.streaming)
      IS DISTINCT FROM (EXCLUDED.devices, EXCLUDED.online, EXCLUDED.in_use, EXCLUDED.recording, EXCLUDED.streaming)
"""

_STAMP = """
INSERT INTO school_now_refresh (id, refreshed_at) VALUES (true, now())
ON CONFLICT (id) DO UPDATE SET refreshed_at = EXCLUDED.refreshed_at
RETURNING refreshed_at
"""


def refresh(conn: Connection) -> datetime:
    """Recompute every school's counts now; return the refresh time."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_REFRESH)
        return cur.execute(_STAMP).fetchone()["refreshed_at"]


def ensure_fresh(conn: Connection, max_age_s: float) -> datetime | None:
    """Refresh when older than max_age_s, unless another session is refreshing; return the data's time."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT refreshed_at, now() - refreshed_at <= make_interval(secs => %s) AS fresh "
                          "FROM school_now_refresh", (max_age_s,)).fetchone()
        if row is not None and row["fresh"]:
            return row["refreshed_at"]
        if not cur.execute("SELECT pg_try_advisory_xact_lock(%s) AS ok", (_LOCK,)).fetchone()["ok"]:
            return row["refreshed_at"] if row else None  # someone else is refreshing: read what is there
        cur.execute(_REFRESH)
        return cur.execute(_STAMP).fetchone()["refreshed_at"]
