"""Write one batch of decoded messages in one transaction.

Rows are COPYed into per-connection staging tables and moved with
INSERT ... ON CONFLICT DO NOTHING, so a redelivered message is never stored twice.
Unknown devices are dead-lettered, never created. The current state of every device
in the batch is upserted with one statement per channel.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from ingest.decode import ACK_TABLE, COLUMNS, Record, Rejected

# The newest reading of each device in the batch, straight from the staging table it
# was just COPYed into. A board is in use when its active-use counter moved since the
# previous reading: the stored one, or the batch's earliest when the batch holds several.
_LATEST = {
    "board_telemetry": """
        SELECT DISTINCT ON (device_id) device_id, time, seq, power_on, NULL::boolean AS recording,
               NULL::boolean AS streaming,
               CASE WHEN count(*) OVER w > 1 THEN active_use_s > min(active_use_s) OVER w END AS in_use,
               jsonb_build_object('kind', 'board', 'power_on', power_on, 'screen_on', screen_on,
                                  'active_use_s', active_use_s) AS last_values
        FROM stage_board_telemetry WINDOW w AS (PARTITION BY device_id)
        ORDER BY device_id, time DESC, seq DESC""",
    "recorder_telemetry": """
        SELECT DISTINCT ON (device_id) device_id, time, seq, NULL::boolean AS power_on, recording, streaming,
               NULL::boolean AS in_use,
               jsonb_build_object('kind', 'recorder', 'recording', recording, 'streaming', streaming,
                                  'lesson_id', lesson_id, 'cameras', cameras,
                                  'storage_free_gb', storage_free_gb) AS last_values
        FROM stage_recorder_telemetry ORDER BY device_id, time DESC, seq DESC""",
    "gateway_telemetry": """
        SELECT DISTINCT ON (device_id) device_id, time, seq, NULL::boolean AS power_on, NULL::boolean AS recording,
               NULL::boolean AS streaming, NULL::boolean AS in_use,
               jsonb_build_object('kind', 'gateway', 'rx_mbps', rx_mbps, 'uplink_mbps', uplink_mbps,
                                  'latency_ms', latency_ms, 'loss_pct', loss_pct, 'aps_total', aps_total,
                                  'aps_online', aps_online) AS last_values
        FROM stage_gateway_telemetry ORDER BY device_id, time DESC, seq DESC""",
}

# last_seen is the device's time, capped at the server's: a fast device clock must not
# keep a dead device "seen" into the future, nor freeze its state once its clock is
# corrected (newer readings would look older than the stored one).
_STATE_FROM_TELEMETRY = """
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

_STATE_FROM_STATUS = """
INSERT INTO device_state AS s (device_id, online, status_time, updated_at)
SELECT b.device_id, b.online, b.time, now()
FROM unnest(%(device_id)s::text[], %(online)s::boolean[], %(time)s::timestamptz[])
     AS b(device_id, online, time)
ON CONFLICT (device_id) DO UPDATE SET
    online = EXCLUDED.online, status_time = EXCLUDED.status_time, updated_at = now()
WHERE s.status_time IS NULL OR EXCLUDED.status_time >= s.status_time
"""


_ACKS = """
UPDATE device_command c
SET result = b.result, result_message = b.message, acked_at = b.time
FROM unnest(%(id)s::text[], %(device_id)s::text[], %(time)s::timestamptz[], %(result)s::text[],
            %(message)s::text[]) AS b(id, device_id, time, result, message)
WHERE c.id = b.id AND c.device_id = b.device_id AND c.acked_at IS NULL
RETURNING c.id
"""


@dataclass
class BatchOutcome:
    """What one batch did: rows stored per table, duplicates skipped, dead letters."""

    stored: Counter = field(default_factory=Counter)
    duplicates: int = 0
    dead_letters: Counter = field(default_factory=Counter)


def ensure_staging(conn: psycopg.Connection) -> None:
    """Create this connection's staging tables (temporary, emptied at every commit)."""
    for table in COLUMNS:
        conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} "  # noqa: S608 - fixed table names
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )


def _known_devices(conn: psycopg.Connection, ids: set[str]) -> set[str]:
    rows = conn.execute("SELECT id FROM device WHERE id = ANY(%s)", (list(ids),)).fetchall()
    return {r["id"] if isinstance(r, dict) else r[0] for r in rows}


def _copy_rows(conn: psycopg.Connection, table: str, rows: list[tuple]) -> int:
    cols = ", ".join(COLUMNS[table])
    with conn.cursor() as cur:
        with cur.copy(f"COPY stage_{table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM stage_{table} ON CONFLICT DO NOTHING"  # noqa: S608
        )
        return cur.rowcount


def _dead_letter(conn: psycopg.Connection, rejected: Sequence[Rejected]) -> None:
    with conn.cursor() as cur:
        with cur.copy("COPY dead_letter (topic, payload, reason, device_id) FROM STDIN") as copy:
            for r in rejected:
                copy.write_row((r.topic, r.payload, r.reason, r.device_id))


def _update_state(conn: psycopg.Connection, tables: set[str], status: list[Record]) -> None:
    for table in tables & _LATEST.keys():
        conn.execute(_STATE_FROM_TELEMETRY.format(latest=_LATEST[table]))
    latest: dict[str, Record] = {}
    for r in status:
        if r.device_id not in latest or r.time >= latest[r.device_id].time:
            latest[r.device_id] = r
    if latest:
        rows = list(latest.values())
        conn.execute(_STATE_FROM_STATUS, {
            "device_id": [r.device_id for r in rows],
            "online": [r.state["online"] for r in rows],
            "time": [r.time for r in rows],
        })


def _apply_acks(conn: psycopg.Connection, acks: list[Record]) -> list[Rejected]:
    """Record command results; an ack of a command this device was never sent is dead-lettered."""
    if not acks:
        return []
    cols = list(zip(*(a.row for a in acks), strict=True))
    keys = ("id", "device_id", "time", "result", "message")
    done = {r["id"] if isinstance(r, dict) else r[0]
            for r in conn.execute(_ACKS, dict(zip(keys, (list(c) for c in cols), strict=True))).fetchall()}
    already = {r["id"] if isinstance(r, dict) else r[0] for r in conn.execute(
        "SELECT id FROM device_command WHERE id = ANY(%s) AND acked_at IS NOT NULL", ([a.row[0] for a in acks],))}
    return [Rejected(a.topic, a.payload, "acknowledges no command sent to this device", a.device_id)
            for a in acks if a.row[0] not in done and a.row[0] not in already]


def write_batch(conn: psycopg.Connection, records: list[Record], rejected: list[Rejected]) -> BatchOutcome:
    """Store a batch in the caller's transaction; the caller commits, then acknowledges."""
    outcome = BatchOutcome()
    known = _known_devices(conn, {r.device_id for r in records}) if records else set()
    unknown = [r for r in records if r.device_id not in known]
    records = [r for r in records if r.device_id in known]
    rejected = list(rejected) + [
        Rejected(r.topic, r.payload, "unknown device id", r.device_id) for r in unknown
    ]
    acks = [r for r in records if r.table == ACK_TABLE]
    records = [r for r in records if r.table != ACK_TABLE]
    rejected += _apply_acks(conn, acks)
    by_table: dict[str, list[tuple]] = {}
    for r in records:
        by_table.setdefault(r.table, []).append(r.row)
    for table, rows in by_table.items():
        stored = _copy_rows(conn, table, rows)
        outcome.stored[table] += stored
        outcome.duplicates += len(rows) - stored
    _update_state(conn, set(by_table), [r for r in records if r.table == "device_status_change"])
    if rejected:
        _dead_letter(conn, rejected)
        outcome.dead_letters.update(r.reason.split(":")[0] for r in rejected)
    return outcome
