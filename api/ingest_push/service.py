"""Vendor keys, and a pushed batch judged and stored as the MQTT ingest stores a batch.

The readings go through the same decoding (core/telemetry_decode.py), the same flood limit
(core/flood_limit.py) and the same idempotent write (core/telemetry_write.py) as MQTT messages,
in one transaction that commits before the route answers. A vendor's batches are taken one at a
time (a transaction-scoped advisory lock): a retry waits for the attempt still running, then finds
its readings stored, so they count as duplicates and not against the flood limit.
"""

import hashlib
import json
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from api.ingest_push.models import PushChannel, PushOutcome, Refusal
from core import contract
from core.contract import Channel
from core.db import transaction
from core.flood_limit import DeviceRateLimit
from core.storable import storable
from core.telemetry_decode import ClockPolicy, Record, Rejected, decode
from core.telemetry_write import DATA_ERRORS, ensure_staging, refusal, store_batch, write_batch

KEY_PREFIX = "vk_"
_DEVICE_ID = re.compile(contract.DEVICE_ID_PATTERN)
_PUSH_LOCK = 742_027  # advisory lock class of the vendors' pushes (the key is the vendor's hash)

# The contract's clock and rate rules, as the ingest applies them by default (ingest/settings.py):
# flagged 5 minutes ahead, refused an hour ahead or 7 days back; 1,200 at once, then 2 a second.
POLICY = ClockPolicy(skew_flag=timedelta(seconds=300), max_future=timedelta(seconds=3600),
                     max_past=timedelta(days=7))
# One flood limit per API process, as each ingest worker keeps its own.
_LIMIT = DeviceRateLimit(rate_per_s=2.0, burst=1200, horizon_s=3600.0)
_LIMIT_LOCK = threading.Lock()


def key_hash(key: str) -> str:
    """The stored form of a vendor key: its SHA-256 (the key is 32 random bytes)."""
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(conn: psycopg.Connection, vendor: str, issued_by: str) -> str:
    """Create a key for the vendor's platform, record it in the audit log, and return it (shown once)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = conn.execute("INSERT INTO vendor_key (vendor, key_hash) VALUES (%s, %s) RETURNING id",
                       (vendor, key_hash(key))).fetchone()
    key_id = row["id"] if isinstance(row, dict) else row[0]
    _audit(conn, issued_by, "vendor_key.issue", vendor, {"key_id": key_id})
    return key


def revoke_keys(conn: psycopg.Connection, vendor: str, revoked_by: str) -> int:
    """Revoke every live key of the vendor (audited); the number revoked."""
    n = conn.execute("UPDATE vendor_key SET revoked_at = now() WHERE vendor = %s AND revoked_at IS NULL",
                     (vendor,)).rowcount
    _audit(conn, revoked_by, "vendor_key.revoke", vendor, {"revoked": n})
    return n


def _audit(conn: psycopg.Connection, who: str, action: str, vendor: str, detail: dict) -> None:
    conn.execute("INSERT INTO audit_log (username, action, target, detail) VALUES (%s, %s, %s, %s)",
                 (who, action, f"vendor:{vendor}", json.dumps(detail)))


def vendor_of(conn: psycopg.Connection, key: str) -> str | None:
    """The vendor a live key belongs to; None for an unknown or revoked key."""
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT vendor FROM vendor_key WHERE key_hash = %s AND revoked_at IS NULL", (key_hash(key),)).fetchone()
    return row[0] if row else None


@dataclass
class _Judged:
    """A batch judged: records to store, dead letters, and which reading each refusal was."""

    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    refused: int = 0  # readings for devices that are not the vendor's


def push(pool: ConnectionPool, vendor: str, channel: PushChannel, readings: Sequence[dict[str, Any]]) -> PushOutcome:
    """Judge and store one batch in one transaction; the outcome once it is committed.

    Connection-class errors propagate (the caller answers 503: nothing was stored). A value the
    database refuses although the contract let it through is isolated by the ingest's own
    `store_batch`, whose parts all commit before this returns.
    """
    now = datetime.now(UTC)
    judged = None
    try:
        with transaction(pool) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_PUSH_LOCK, vendor))
            judged = _judge(conn, vendor, Channel(channel), readings, now)
            ensure_staging(conn)
            outcome = write_batch(conn, judged.records, judged.rejected)
    except DATA_ERRORS as exc:
        if judged is None or isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            raise
        outcome = store_batch(pool, judged.records, judged.rejected)
    return PushOutcome(stored=sum(outcome.stored.values()), duplicates=outcome.duplicates,
                       dead_lettered=len(judged.rejected) - judged.refused, refused=judged.refused,
                       rejected=judged.refusals)


def _judge(conn: psycopg.Connection, vendor: str, channel: Channel, readings: Sequence[dict[str, Any]],
           now: datetime) -> _Judged:
    judged = _Judged()
    ids = {i for r in readings if isinstance(i := r.get("device_id"), str) and _well_formed(i)}
    devices = _devices(conn, list(ids))
    own = {d: kind for d, (owner, kind) in devices.items() if owner == vendor}
    decoded: list[tuple[int, Record | Rejected]] = []
    for index, reading in enumerate(readings):
        device_id = reading.get("device_id")
        if not (isinstance(device_id, str) and _well_formed(device_id) and device_id in own):
            _refuse(judged, index, device_id, channel, reading, devices, vendor)
            continue
        result = decode(contract.topic(device_id, channel), _payload(reading), now, POLICY)
        if isinstance(result, Record) and (why := refusal(result, own)):
            result = Rejected(result.topic, result.payload, why, device_id)
        decoded.append((index, result))
    stored = _already_stored(conn, [r for _, r in decoded if isinstance(r, Record)])
    with _LIMIT_LOCK:
        for index, result in decoded:
            retry = isinstance(result, Record) and (result.device_id, result.seq, result.time) in stored
            if not retry and _over_limit(result, now):
                result = Rejected(result.topic, result.payload, _LIMIT.reason, result.device_id)
            if isinstance(result, Record):
                judged.records.append(result)
            else:
                judged.rejected.append(result)
                judged.refusals.append(Refusal(index=index, device_id=result.device_id,
                                               reason=storable(result.reason)))
    return judged


def _refuse(judged: _Judged, index: int, device_id: object, channel: Channel, reading: dict[str, Any],
            devices: dict[str, tuple[str, str]], vendor: str) -> None:
    """A reading for a device that is not the vendor's: dead-lettered, and listed without saying whose it is."""
    well_formed = isinstance(device_id, str) and _well_formed(device_id)
    if not isinstance(device_id, str):
        reason = "invalid device_id: a device id string is required"
    elif not well_formed:
        reason = f"invalid device_id: must match {contract.DEVICE_ID_PATTERN}"
    elif device_id in devices:
        reason = f"vendor mismatch: {device_id} is not a device of {vendor}"
    else:
        reason = "unknown device id"
    topic = contract.topic(device_id if well_formed else "-", channel)
    judged.rejected.append(Rejected(topic, _payload(reading), reason, device_id if well_formed else None))
    shown = f"unknown device id: not a device of {vendor}" if well_formed else reason
    judged.refusals.append(Refusal(index=index, device_id=device_id if well_formed else None, reason=shown))
    judged.refused += 1


def _well_formed(device_id: str) -> bool:
    return _DEVICE_ID.fullmatch(device_id) is not None


def _devices(conn: psycopg.Connection, ids: list[str]) -> dict[str, tuple[str, str]]:
    """Registered devices among `ids`: id -> (vendor, kind)."""
    rows = conn.cursor(row_factory=tuple_row).execute(
        "SELECT id, vendor, kind FROM device WHERE id = ANY(%s)", (ids,)).fetchall()
    return {device_id: (owner, kind) for device_id, owner, kind in rows}


def _payload(reading: dict[str, Any]) -> bytes:
    """The reading as the device would have published it: its JSON without the device id."""
    body = {k: v for k, v in reading.items() if k != "device_id"}
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate: escaped, so that decoding names the field
        return json.dumps(body, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        return b"{}"


def _already_stored(conn: psycopg.Connection, records: list[Record]) -> set[tuple]:
    """(device_id, seq, time) of the records whose rows are already stored (a retry's)."""
    found: set[tuple] = set()
    for table in {r.table for r in records}:
        keys = [r for r in records if r.table == table]
        query = sql.SQL(
            "SELECT t.device_id, t.seq, t.time FROM {} t JOIN unnest(%s::text[], %s::bigint[], "
            "%s::timestamptz[]) AS k(device_id, seq, time) USING (device_id, seq, time)").format(sql.Identifier(table))
        rows = conn.cursor(row_factory=tuple_row).execute(
            query, ([r.device_id for r in keys], [r.seq for r in keys], [r.time for r in keys])).fetchall()
        found.update((d, s, t) for d, s, t in rows)
    return found


def _over_limit(result: Record | Rejected, now: datetime) -> bool:
    """True when this reading is over its device's flood limit, judged as the ingest judges it."""
    if not _LIMIT.enabled or result.device_id is None:
        return False
    timed = isinstance(result, Record) and result.seq is not None
    return not _LIMIT.allow(result.device_id, result.time.timestamp() if timed else None, now.timestamp())
