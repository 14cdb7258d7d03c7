"""Write one batch of decoded messages in one transaction.

Rows are COPYed into per-connection staging tables and moved with
INSERT ... ON CONFLICT DO NOTHING, so a redelivered message is never stored twice.
Unknown devices are dead-lettered, never created. The current state of every device
in the batch is upserted with one statement per channel.
"""

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from ingest.decode import ACK_TABLE, COLUMNS, Record, Rejected

_STATE_FROM_TELEMETRY = """
INSERT INTO device_state AS s (device_id, online, last_seen, last_seq, power_on, in_use,
                               recording, streaming, last_values, updated_at)
SELECT b.device_id, true, b.time, b.seq, b.power_on,
       (b.last_values ->> 'active_use_s')::bigint > b.prior_use, b.recording, b.streaming,
       b.last_values, now()
FROM unnest(%(device_id)s::text[], %(time)s::timestamptz[], %(seq)s::bigint[],
            %(power_on)s::boolean[], %(recording)s::boolean[], %(streaming)s::boolean[],
            %(last_values)s::jsonb[], %(prior_use)s::bigint[])
     AS b(device_id, time, seq, power_on, recording, streaming, last_values, prior_use)
ON CONFLICT (device_id) DO UPDATE SET
    last_seen = EXCLUDED.last_seen,
    last_seq = EXCLUDED.last_seq,
    power_on = coalesce(EXCLUDED.power_on, s.power_on),
    recording = coalesce(EXCLUDED.recording, s.recording),
    streaming = coalesce(EXCLUDED.streaming, s.streaming),
    -- a board is in use when its active-use counter moved since the previous reading
    -- (the stored one, or the batch's earliest when the batch holds several)
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


def _order(r: Record) -> tuple:
    return (r.time, r.seq or 0)


def _latest_per_device(records: list[Record]) -> tuple[list[Record], dict[str, Record]]:
    """The newest record of each device, and the oldest where the batch holds several."""
    latest: dict[str, Record] = {}
    earliest: dict[str, Record] = {}
    for r in records:
        if r.device_id not in latest or _order(r) > _order(latest[r.device_id]):
            latest[r.device_id] = r
        if r.device_id not in earliest or _order(r) < _order(earliest[r.device_id]):
            earliest[r.device_id] = r
    return list(latest.values()), {k: v for k, v in earliest.items() if v is not latest[k]}


def _update_state(conn: psycopg.Connection, records: list[Record]) -> None:
    telemetry, earliest = _latest_per_device([r for r in records if r.table.endswith("_telemetry")])
    if telemetry:
        conn.execute(_STATE_FROM_TELEMETRY, {
            "device_id": [r.device_id for r in telemetry],
            "time": [r.time for r in telemetry],
            "seq": [r.seq for r in telemetry],
            "power_on": [r.state.get("power_on") for r in telemetry],
            "recording": [r.state.get("recording") for r in telemetry],
            "streaming": [r.state.get("streaming") for r in telemetry],
            "last_values": [json.dumps(r.state) for r in telemetry],
            "prior_use": [earliest[r.device_id].state.get("active_use_s") if r.device_id in earliest else None
                          for r in telemetry],
        })
    status, _ = _latest_per_device([r for r in records if r.table == "device_status_change"])
    if status:
        conn.execute(_STATE_FROM_STATUS, {
            "device_id": [r.device_id for r in status],
            "online": [r.state["online"] for r in status],
            "time": [r.time for r in status],
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
    _update_state(conn, records)
    if rejected:
        _dead_letter(conn, rejected)
        outcome.dead_letters.update(r.reason.split(":")[0] for r in rejected)
    return outcome
