"""`device_state`, the one row per device that says what it is doing now, and every write to it.

The ingest brings it forward from each batch of readings and status messages and marks silent
devices offline; the patrol marks a device offline at once when its last will arrives (before
the ingest has stored it). Each write only moves the state forward: news older than what is
stored changes nothing.
"""

from collections.abc import Sequence
from datetime import datetime

import psycopg

# last_seen is the device's time, capped at the server's: a fast device clock must not
# keep a dead device "seen" into the future, nor freeze its state once its clock is
# corrected (newer readings would look older than the stored one).
_FROM_READINGS = """
INSERT INTO device_state AS s (device_id, online, last_seen, last_seq, power_on, in_use,
                               recording, streaming, last_values, updated_at)
SELECT b.device_id, true, least(b.time, now()), b.seq, b.power_on, coalesce(b.in_use, false), b.recording,
       b.streaming, b.last_values, now()
FROM ({latest}) b
ON CONFLICT (device_id) DO UPDATE SET
    last_seen = EXCLUDED.last_seen,
    last_seq = EXCLUDED.last_seq,
    power_on = coalesce(EXCLUDED.power_on, s.power_on),
    recording = coalesce(EXCLUDED.recording, s.recording),
    streaming = coalesce(EXCLUDED.streaming, s.streaming),
    in_use = coalesce((EXCLUDED.last_values ->> 'active_use_s')::bigint
                      > (s.last_values ->> 'active_use_s')::bigint, EXCLUDED.in_use, false),
    online = s.online OR s.status_time IS NULL OR EXCLUDED.last_seen > s.status_time,
    status_time = CASE WHEN NOT s.online AND (s.status_time IS NULL OR EXCLUDED.last_seen > s.status_time)
                       THEN EXCLUDED.last_seen ELSE s.status_time END,
    last_values = s.last_values || EXCLUDED.last_values,
    updated_at = now()
WHERE s.last_seen IS NULL OR EXCLUDED.last_seen >= s.last_seen
"""

_FROM_STATUS = """
INSERT INTO device_state AS s (device_id, online, status_time, updated_at)
SELECT b.device_id, b.online, b.time, now()
FROM unnest(%(device_id)s::text[], %(online)s::boolean[], %(time)s::timestamptz[])
     AS b(device_id, online, time)
ON CONFLICT (device_id) DO UPDATE SET
    online = EXCLUDED.online, status_time = EXCLUDED.status_time, updated_at = now()
WHERE s.status_time IS NULL OR EXCLUDED.status_time >= s.status_time
"""

_SWEEP = """
WITH gone AS (
    UPDATE device_state SET online = false, status_time = now(), updated_at = now()
    -- updated_at is the server's time of the last message that changed the state: a device
    -- whose clock runs slow is still heard from, whatever time its readings carry
    WHERE online AND updated_at < now() - make_interval(secs => %s)
    RETURNING device_id)
INSERT INTO device_status_change (device_id, time, online, reason)
SELECT device_id, now(), false, 'heartbeat' FROM gone
"""

_WENT_OFFLINE = """
UPDATE device_state SET online = false, status_time = %(at)s, updated_at = now()
WHERE device_id = %(id)s AND (status_time IS NULL OR status_time < %(at)s)
"""


def from_readings(conn: psycopg.Connection, latest: str) -> None:
    """Bring devices forward from their newest readings: `latest` is a query giving one row per
    device (device_id, time, seq, power_on, recording, streaming, in_use, last_values)."""
    conn.execute(_FROM_READINGS.format(latest=latest))


def from_status(conn: psycopg.Connection, device_ids: Sequence[str], online: Sequence[bool],
                times: Sequence[datetime]) -> None:
    """Apply each device's newest status message (one per device)."""
    if device_ids:
        conn.execute(_FROM_STATUS, {"device_id": list(device_ids), "online": list(online), "time": list(times)})


def sweep_silent(conn: psycopg.Connection, timeout_s: float) -> None:
    """Mark offline every online device not heard from for `timeout_s`, recording the change."""
    conn.execute(_SWEEP, (timeout_s,))


def went_offline(conn: psycopg.Connection, device_id: str, at: datetime) -> None:
    """A device's last will, dated `at`: offline, unless newer news is already stored."""
    conn.execute(_WENT_OFFLINE, {"id": device_id, "at": at})
