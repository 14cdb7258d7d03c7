"""Write one batch of decoded messages in one transaction.

Rows are COPYed into per-connection staging tables and moved with
INSERT ... ON CONFLICT DO NOTHING, so a redelivered message is never stored twice.
Unknown and retired devices, and readings of a kind other than the device's registered one, are
dead-lettered, never stored. The current state of every device in the batch is upserted
with one statement per channel. A batch the database refuses for a data reason is split
until the refused rows stand alone (`store_batch`), so no value can stop the writer.
"""

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from core import device_state
from core.db import transaction
from core.storable import storable
from core.telemetry_decode import ACK_TABLE, COLUMNS, Record, Rejected

log = logging.getLogger(__name__)

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
    """What one batch did: rows stored per table, duplicates skipped, dead letters, splits."""

    stored: Counter = field(default_factory=Counter)
    duplicates: int = 0
    dead_letters: Counter = field(default_factory=Counter)
    splits: int = 0  # transactions retried in halves to isolate rows the database refused

    def add(self, other: "BatchOutcome") -> "BatchOutcome":
        """This outcome and another one's, added up."""
        self.stored.update(other.stored)
        self.duplicates += other.duplicates
        self.dead_letters.update(other.dead_letters)
        self.splits += other.splits
        return self


def ensure_staging(conn: psycopg.Connection) -> None:
    """Create this connection's staging tables (temporary, emptied at every commit)."""
    for table in COLUMNS:
        conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} "  # noqa: S608 - fixed table names
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )


# Which registered kind may write which telemetry table: a board cannot pose as its
# school's gateway.
_KIND_OF_TABLE = {"board_telemetry": "board", "recorder_telemetry": "recorder",
                  "gateway_telemetry": "gateway"}
# Errors that say the database is away or busy: the batch is kept and tried again.
# Any other database error is about the data, and the batch is split to find the rows.
RETRYABLE = (psycopg.OperationalError, psycopg.InterfaceError)
DATA_ERRORS = (psycopg.Error, UnicodeError, OverflowError, ValueError)


RETIRED = "retired"  # in place of a kind: the device was retired (sql/029) and may no longer report


def _registered_kinds(conn: psycopg.Connection, ids: set[str]) -> dict[str, str]:
    rows = conn.cursor(row_factory=tuple_row).execute(
        f"SELECT id, CASE WHEN retired_at IS NULL THEN kind ELSE '{RETIRED}' END "  # noqa: S608 (a constant)
        "FROM device_all WHERE id = ANY(%s)", (list(ids),)).fetchall()
    return dict(rows)


def refusal(record: Record, kinds: dict[str, str]) -> str | None:
    """Why a decoded record may not be stored for its device, or None."""
    kind = kinds.get(record.device_id)
    if kind is None:
        return "unknown device id"
    if kind == RETIRED:
        return f"retired device: {record.device_id} was retired and may no longer report"
    expected = _KIND_OF_TABLE.get(record.table)
    if expected and expected != kind:
        return f"kind mismatch: {record.device_id} is registered as a {kind}, not a {expected}"
    return None


class _JsonText(Dumper):
    """A JSON document already serialised (str) as binary jsonb: psycopg's own jsonb dumper would
    serialise the str again, as a JSON string."""

    format = Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()  # jsonb's binary format: a version byte, then the text


# What a value must be to fit a column sent in binary. PostgreSQL checks text input itself (a real
# past ±3.4e38 or below 1.2e-38, an integer past 2^31 are refused), but binary input is taken as
# the client packed it: psycopg packs such a real as infinity and wraps such an integer.
_REAL_MIN, _REAL_MAX = 1.1754943508222875e-38, 3.4028234663852886e38
_FITS = {
    "real": lambda v: v == 0 or _REAL_MIN <= abs(v) <= _REAL_MAX,
    "smallint": lambda v: -2**15 <= v < 2**15,
    "integer": lambda v: -2**31 <= v < 2**31,
}


class OutOfRange(ValueError):
    """A value past its column type's range, found before the binary COPY (a data error)."""


def _column_types(conn: psycopg.Connection, tables: list[str]) -> dict[str, list[tuple[str, int, str]]]:
    """(name, type oid, type name) of each written column of these tables, in COLUMNS order, read
    from the catalog in the batch's own transaction (a migration may change a type)."""
    rows = conn.cursor(row_factory=tuple_row).execute(
        "SELECT attrelid::regclass::text, attname, atttypid, format_type(atttypid, NULL) FROM pg_attribute "
        "WHERE attrelid = ANY(%s::regclass[]) AND attnum > 0 AND NOT attisdropped", (tables,)).fetchall()
    found = {(table, name): (name, oid, type_name) for table, name, oid, type_name in rows}
    return {table: [found[(table, name)] for name in COLUMNS[table]] for table in tables}


def _check_ranges(table: str, types: list[tuple[str, int, str]], rows: list[tuple]) -> None:
    checks = [(i, name, type_name, _FITS[type_name]) for i, (name, _oid, type_name) in enumerate(types)
              if type_name in _FITS]
    for row in rows:
        for i, name, type_name, fits in checks:
            value = row[i]
            if value is not None and not fits(value):
                raise OutOfRange(f"{table}.{name}: {value!r} is out of range for type {type_name}")


def _copy_rows(conn: psycopg.Connection, table: str, types: list[tuple[str, int, str]], rows: list[tuple]) -> int:
    cols = ", ".join(COLUMNS[table])
    _check_ranges(table, types, rows)
    with conn.cursor() as cur:
        cur.adapters.register_dumper(None, _JsonText)
        # binary: psycopg formats a row in binary several times faster than in text
        with cur.copy(f"COPY stage_{table} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([oid for _name, oid, _type_name in types])
            for row in rows:
                copy.write_row(row)
        # in device time order: the database judges each reading's counter increase against the
        # device's previous reading (sql/020_counter_increase.sql), in the batch or stored
        order = "device_id, time, seq" if "seq" in COLUMNS[table] else "device_id, time"
        cur.execute(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM stage_{table} "  # noqa: S608
            f"ORDER BY {order} ON CONFLICT DO NOTHING"
        )
        return cur.rowcount


def _dead_letter(conn: psycopg.Connection, rejected: Sequence[Rejected]) -> None:
    with conn.cursor() as cur:
        with cur.copy("COPY dead_letter (topic, payload, reason, device_id) FROM STDIN") as copy:
            for r in rejected:
                # a reason may quote the refused input: keep it storable whatever it holds
                copy.write_row((r.topic, r.payload, storable(r.reason)[:1000], r.device_id))


def _database_reason(exc: BaseException) -> str:
    sqlstate = getattr(exc, "sqlstate", None)
    first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
    return f"database refused: {first_line}" + (f" (SQLSTATE {sqlstate})" if sqlstate else "")


def _update_state(conn: psycopg.Connection, tables: set[str], status: list[Record]) -> None:
    for table in tables & _LATEST.keys():
        device_state.from_readings(conn, _LATEST[table])
    latest: dict[str, Record] = {}
    for r in status:
        if r.device_id not in latest or r.time >= latest[r.device_id].time:
            latest[r.device_id] = r
    rows = list(latest.values())
    device_state.from_status(conn, [r.device_id for r in rows], [r.state["online"] for r in rows],
                             [r.time for r in rows])


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
    kinds = _registered_kinds(conn, {r.device_id for r in records}) if records else {}
    refusals = [(r, refusal(r, kinds)) for r in records]
    records = [r for r, why in refusals if why is None]
    rejected = list(rejected) + [Rejected(r.topic, r.payload, why, r.device_id) for r, why in refusals if why]
    acks = [r for r in records if r.table == ACK_TABLE]
    records = [r for r in records if r.table != ACK_TABLE]
    rejected += _apply_acks(conn, acks)
    by_table: dict[str, list[tuple]] = {}
    for r in records:
        by_table.setdefault(r.table, []).append(r.row)
    types = _column_types(conn, list(by_table)) if by_table else {}
    for table, rows in by_table.items():
        stored = _copy_rows(conn, table, types[table], rows)
        outcome.stored[table] += stored
        outcome.duplicates += len(rows) - stored
    _update_state(conn, set(by_table), [r for r in records if r.table == "device_status_change"])
    if rejected:
        _dead_letter(conn, rejected)
        # the part before the colon is a fixed label (metrics); the rest names the case
        outcome.dead_letters.update(r.reason.split(":")[0] for r in rejected)
    return outcome


def store_batch(pool: ConnectionPool, records: list[Record], rejected: list[Rejected]) -> BatchOutcome:
    """Store a batch in one transaction, or, when the database refuses some of its data, in halves.

    Connection-class errors (RETRYABLE) propagate for the caller to retry the whole batch.
    Any other refusal splits the batch until each refused record stands alone; that one is
    dead-lettered with the database's reason and the rest commit, so no value can stop the
    writer. Each part commits before the caller acknowledges anything; a crash in between
    redelivers the batch, and the idempotent writes store nothing twice.
    """
    try:
        with transaction(pool) as conn:
            ensure_staging(conn)
            return write_batch(conn, records, rejected)
    except RETRYABLE:
        raise
    except DATA_ERRORS as exc:
        if not records:
            raise  # the dead letters alone were refused: nothing left to isolate
        if len(records) == 1:
            r = records[0]
            refused = Rejected(r.topic, r.payload, _database_reason(exc), r.device_id)
            log.warning("database refused a record of %s: %s", r.device_id, exc)
            return store_batch(pool, [], [*rejected, refused])
    middle = len(records) // 2
    outcome = store_batch(pool, records[:middle], rejected)
    outcome.add(store_batch(pool, records[middle:], []))
    outcome.splits += 1
    return outcome
