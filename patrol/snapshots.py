"""Camera stills in: judged, checked for video health, the latest and a short history kept.

One path for the stills of the MQTT channel (`edu/dev/{id}/snapshot`, read by the snapshot intake
process, patrol/snapshot_service.py) and of the API's HTTP push for vendor platforms. A batch of
stills is judged in order — the device's rate first (before anything is decoded), the payload's
size, the contract, the clock, the registry, the JPEG itself — and the bad ones are dead-lettered
with a reason, as the ingest does for readings. The good ones are measured
(patrol/video_health.py), compared with the camera's previous still (frozen pictures), stored,
and the camera's history cut back to SNAPSHOT_HISTORY stills (and those an inspection record
points at), all in one transaction.

A still over its device's rate is dead-lettered without its image (the `jpeg` field replaced by
its length): a camera in a loop must not fill the dead-letter table with pictures.
"""

import io
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

import psycopg
from PIL import Image
from psycopg.rows import tuple_row
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import contract
from core.contract import CameraSnapshot, Channel
from core.flood_limit import DeviceRateLimit
from core.telemetry_decode import Rejected
from patrol.video_health import (
    ANALYSIS,
    FrozenRun,
    HealthThresholds,
    Measures,
    NotAStill,
    measure_image,
    open_still,
    problems,
)

THUMB = (240, 135)  # the wall's copy of a still
THUMB_QUALITY = 70
CAMERA_KINDS = ("recorder", "board")  # the kinds of device with a camera


class SnapshotSettings(BaseSettings):
    """The snapshot intake's bounds and thresholds (env prefix SNAPSHOT_; thresholds as
    SNAPSHOT_HEALTH__BLACK_MAX_MEAN and so on)."""

    model_config = SettingsConfigDict(env_prefix="SNAPSHOT_", env_nested_delimiter="__", extra="ignore")

    history: int = 6  # stills kept per camera (inspected ones besides)
    rate_per_s: float = 0.2  # per device: 12 a minute, three times a four-camera room's one each a minute
    burst: int = 12
    max_age_s: int = 3600  # an older still is of no use to anyone looking now: dead-lettered
    max_future_s: int = 3600
    batch_size: int = 100
    batch_wait_ms: int = 200
    queue_max: int = 2000  # stills waiting for the writer; past it new ones are dropped and counted
    health_host: str = "127.0.0.1"
    health_port: int = 0  # 0: no /healthz, /readyz, /metrics
    health: HealthThresholds = HealthThresholds()


@lru_cache
def snapshot_settings() -> SnapshotSettings:
    """The snapshot settings, read once from the environment."""
    return SnapshotSettings()


@dataclass(frozen=True)
class Still:
    """A valid still, measured, ready to store."""

    device_id: str
    message: CameraSnapshot
    jpeg: bytes
    thumb: bytes
    measures: Measures
    problems: list[str]
    topic: str

    @property
    def key(self) -> tuple[str, str]:
        """(device, camera)."""
        return self.device_id, self.message.camera.value


@dataclass
class Stored:
    """What a batch did."""

    stored: int = 0
    duplicates: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)  # new stills by problem (frozen judged too)
    ids: dict[int, int] = field(default_factory=dict)  # position in the batch -> snapshot id


def label(reason: str) -> str:
    """A dead-letter reason's fixed label (`flood limit`, `invalid snapshot.jpeg` …), for metrics."""
    return reason.split(":", 1)[0]


def _without_image(payload: bytes) -> bytes:
    """The payload with its image left out (a still over its device's rate)."""
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        return payload[:1024]
    if not isinstance(body, dict):
        return payload[:1024]
    if isinstance(body.get("jpeg"), str):
        body["jpeg"] = f"<{len(body['jpeg'])} base64 characters left out>"
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()[:4096]


def thumbnail(image: Image.Image) -> bytes:
    """The wall's small JPEG copy of a still (from its reduced decoding)."""
    out = io.BytesIO()
    image.convert("RGB").resize(THUMB, Image.Resampling.BOX).save(out, "JPEG", quality=THUMB_QUALITY)
    return out.getvalue()


class Intake:
    """Judges and stores batches of stills; keeps the per-device rate (one instance per process)."""

    def __init__(self, settings: SnapshotSettings | None = None) -> None:
        self.settings = settings or snapshot_settings()
        self.limit = DeviceRateLimit(self.settings.rate_per_s, self.settings.burst, horizon_s=60.0)
        self.limit.reason = (f"flood limit: more than {self.settings.burst} stills at once or "
                             f"{self.settings.rate_per_s:g} a second (image left out)")
        self._lock = threading.Lock()

    # -- judging -------------------------------------------------------------------------------------

    def judge(self, conn: psycopg.Connection, messages: Sequence[tuple[str, bytes, datetime]]) -> list[Still | Rejected]:
        """Each (topic, payload, arrival time) as a Still or a Rejected, in order.

        The device's rate is judged before anything costly (the picture) and before anything is
        dead-lettered whole, so a device in a loop costs neither; a still already stored (a retry)
        does not count against it.
        """
        parsed = [self._parse(*m) for m in messages]
        stored = _stored(conn, [p for p in parsed if isinstance(p, tuple) and isinstance(p[2], CameraSnapshot)])
        read = [p if isinstance(p, Rejected) else self._limited(p, payload, at, stored)
                for p, (_, payload, at) in zip(parsed, messages, strict=True)]
        kinds = _kinds(conn, {r[0] for r in read if isinstance(r, tuple)})
        return [r if isinstance(r, Rejected) else self._look(*r, kinds.get(r[0]), messages[i][1])
                for i, r in enumerate(read)]

    def _parse(self, topic: str, payload: bytes, now: datetime) -> tuple[str, str, CameraSnapshot | Rejected] | Rejected:
        """(device, topic, the message or why it is not one); Rejected at once for a topic that is not a still's."""
        try:
            device_id, channel = contract.parse_topic(topic)
        except ValueError as exc:
            return Rejected(topic, payload, f"invalid topic: {exc}", None)
        if channel is not Channel.SNAPSHOT:
            return Rejected(topic, payload, f"invalid topic: channel {channel.value} is not a snapshot", device_id)
        if len(payload) > contract.MAX_SNAPSHOT_PAYLOAD_BYTES:
            return device_id, topic, Rejected(topic, payload, f"payload too large: {len(payload)} bytes exceeds "
                                              f"{contract.MAX_SNAPSHOT_PAYLOAD_BYTES}", device_id)
        try:
            message = CameraSnapshot.model_validate_json(payload, strict=True)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "payload"
            return device_id, topic, Rejected(topic, payload, f"invalid snapshot.{where}: {first['msg']}"[:500],
                                              device_id)
        return device_id, topic, self._clock(topic, payload, device_id, message, now)

    def _limited(self, parsed: tuple, payload: bytes, now: datetime,
                 stored: set) -> tuple[str, str, CameraSnapshot] | Rejected:
        """The parsed still, or its dead letter: over the device's rate (image left out), or as parsing found."""
        device_id, topic, message = parsed
        retry = isinstance(message, CameraSnapshot) and (device_id, message.camera.value, message.ts) in stored
        if self.limit.enabled and not retry:
            with self._lock:
                allowed = self.limit.allow(device_id, now.timestamp(), now.timestamp())
            if not allowed:
                return Rejected(topic, _without_image(payload), self.limit.reason, device_id)
        return message if isinstance(message, Rejected) else (device_id, topic, message)

    def _clock(self, topic: str, payload: bytes, device_id: str, message: CameraSnapshot,
               now: datetime) -> CameraSnapshot | Rejected:
        if message.ts - now > timedelta(seconds=self.settings.max_future_s):
            return Rejected(topic, payload, f"clock: device time {message.ts.isoformat()} is too far in the future",
                            device_id)
        if now - message.ts > timedelta(seconds=self.settings.max_age_s):
            return Rejected(topic, payload, f"clock: device time {message.ts.isoformat()} is too far in the past",
                            device_id)
        return message

    def _look(self, device_id: str, topic: str, message: CameraSnapshot, kind: str | None,
              payload: bytes) -> Still | Rejected:
        if kind is None:
            return Rejected(topic, payload, "unknown device id", device_id)
        if kind == "retired":
            return Rejected(topic, payload, f"retired device: {device_id} was retired and may no longer report",
                            device_id)
        if kind not in CAMERA_KINDS:
            return Rejected(topic, payload, f"kind mismatch: {device_id} is a {kind}, which has no camera", device_id)
        jpeg = message.image()
        try:
            image = open_still(jpeg, THUMB)  # decoded no smaller than the wall's copy
            measures = measure_image(image)
        except NotAStill as exc:
            return Rejected(topic, payload, f"invalid snapshot.jpeg: {exc}", device_id)
        return Still(device_id, message, jpeg, thumbnail(image), measures, problems(measures, self.settings.health),
                     topic)

    # -- storing -------------------------------------------------------------------------------------

    def store(self, conn: psycopg.Connection, judged: Sequence[Still | Rejected]) -> Stored:
        """Store the stills and dead-letter the rest in the caller's transaction."""
        outcome = Stored()
        rejected = [r for r in judged if isinstance(r, Rejected)]
        if rejected:
            conn.cursor().executemany(
                "INSERT INTO dead_letter (topic, payload, reason, device_id) VALUES (%s, %s, %s, %s)",
                [(r.topic, r.payload, r.reason, r.device_id) for r in rejected])
            for r in rejected:
                outcome.dead_letters[label(r.reason)] = outcome.dead_letters.get(label(r.reason), 0) + 1
        stills = sorted(((i, s) for i, s in enumerate(judged) if isinstance(s, Still)),
                        key=lambda p: (p[1].key, p[1].message.ts))
        if stills:
            self._store_stills(conn, stills, outcome)
        return outcome

    def _store_stills(self, conn: psycopg.Connection, stills: list[tuple[int, Still]], outcome: Stored) -> None:
        t = self.settings.health
        keys = sorted({s.key for _, s in stills})
        latest = {(d, c): row for d, c, *row in conn.cursor(row_factory=tuple_row).execute(
            """SELECT c.device_id, c.camera, c.taken_at, c.grid, c.alike, c.problems, c.problem_since
               FROM snapshot_camera c JOIN unnest(%s::text[], %s::text[]) AS k(device_id, camera)
                    USING (device_id, camera)
               ORDER BY c.device_id, c.camera FOR UPDATE OF c""",
            ([k[0] for k in keys], [k[1] for k in keys]))}
        rows, cameras = [], {}
        for index, still in stills:
            found = list(still.problems)
            prev = cameras.get(still.key) or latest.get(still.key)
            newest = prev is None or still.message.ts > prev[0]
            if newest:
                run = (FrozenRun(prev[1], prev[0], prev[2]) if prev else None)
                run = run.then(still.measures.grid, still.message.ts, t) if run else \
                    FrozenRun(still.measures.grid, still.message.ts)
                if run.frozen(t) and not found:  # a black or covered picture repeats by nature: that is its problem
                    found.append("frozen")
                since = (prev[4] if prev and prev[3] else still.message.ts) if found else None
                cameras[still.key] = (still.message.ts, run.grid, run.alike, found, since, index)
            rows.append((index, still, found))
        ids = self._insert(conn, rows)
        outcome.stored += len(ids)
        outcome.duplicates += len(rows) - len(ids)
        outcome.ids.update(ids)
        for index, _still, found in rows:
            if index in ids:
                for problem in found:
                    outcome.problems[problem] = outcome.problems.get(problem, 0) + 1
        self._keep_latest(conn, cameras, ids, stills)
        self._trim(conn, keys)

    @staticmethod
    def _insert(conn: psycopg.Connection, rows: list[tuple[int, Still, list[str]]]) -> dict[int, int]:
        """Insert the stills (a redelivered one is skipped); position in the batch -> new snapshot id."""
        columns = [list(c) for c in zip(*[(i, s.device_id, s.message.camera.value, s.message.ts, s.message.seq,
                              s.message.lesson_id, s.measures.width, s.measures.height, s.jpeg, s.thumb,
                              "{" + ",".join(found) + "}", json.dumps(s.measures.as_dict()))
                             for i, s, found in rows], strict=True)]
        result = conn.cursor(row_factory=tuple_row).execute(  # %b: the pictures go binary, not escaped as text
            """INSERT INTO snapshot (device_id, camera, taken_at, seq, lesson_id, width, height, jpeg, thumb,
                                     problems, measures)
               SELECT device_id, camera, taken_at, seq, lesson_id, width, height, jpeg, thumb, problems::text[],
                      measures::jsonb
               FROM unnest(%b::int[], %b::text[], %b::text[], %b::timestamptz[], %b::bigint[], %b::text[],
                           %b::int[], %b::int[], %b::bytea[], %b::bytea[], %b::text[], %b::text[])
                    AS b(i, device_id, camera, taken_at, seq, lesson_id, width, height, jpeg, thumb, problems,
                         measures)
               ORDER BY i
               ON CONFLICT (device_id, camera, taken_at) DO NOTHING
               RETURNING id, device_id, camera, taken_at""", columns).fetchall()
        placed = {(s.device_id, s.message.camera.value, s.message.ts): i for i, s, _ in rows}
        return {placed[(d, c, at)]: snapshot_id for snapshot_id, d, c, at in result}

    @staticmethod
    def _keep_latest(conn: psycopg.Connection, cameras: dict, ids: dict[int, int],
                     stills: list[tuple[int, Still]]) -> None:
        by_index = dict(stills)
        rows = [(key[0], key[1], ids[index], at, by_index[index].message.lesson_id, "{" + ",".join(found) + "}",
                 since, grid, alike)
                for key, (at, grid, alike, found, since, index) in cameras.items() if index in ids]
        if rows:
            conn.cursor().executemany(
                """INSERT INTO snapshot_camera AS c (device_id, camera, snapshot_id, taken_at, lesson_id, problems,
                                                     problem_since, grid, alike)
                   VALUES (%s, %s, %s, %s, %s, %s::text[], %s, %s, %s)
                   ON CONFLICT (device_id, camera) DO UPDATE SET
                       snapshot_id = EXCLUDED.snapshot_id, taken_at = EXCLUDED.taken_at,
                       lesson_id = EXCLUDED.lesson_id, problems = EXCLUDED.problems,
                       problem_since = EXCLUDED.problem_since, grid = EXCLUDED.grid, alike = EXCLUDED.alike
                   WHERE c.taken_at < EXCLUDED.taken_at""", rows)

    def _trim(self, conn: psycopg.Connection, keys: list[tuple[str, str]]) -> None:
        """Cut each camera's history back to the newest `history` stills, keeping inspected ones."""
        conn.execute(
            """DELETE FROM snapshot s USING (
                   SELECT r.id FROM (
                       SELECT x.id, row_number() OVER (PARTITION BY x.device_id, x.camera
                                                       ORDER BY x.taken_at DESC, x.id DESC) AS n
                       FROM snapshot x JOIN unnest(%s::text[], %s::text[]) AS k(device_id, camera)
                            USING (device_id, camera)) r
                   WHERE r.n > %s) old
               WHERE s.id = old.id AND NOT EXISTS (SELECT 1 FROM inspection i WHERE i.snapshot_id = s.id)""",
            ([k[0] for k in keys], [k[1] for k in keys], self.settings.history))


def _stored(conn: psycopg.Connection, parsed: list[tuple[str, str, CameraSnapshot]]) -> set[tuple[str, str, datetime]]:
    """(device, camera, taken at) of the parsed stills already stored: retries."""
    if not parsed:
        return set()
    rows = conn.cursor(row_factory=tuple_row).execute(
        """SELECT s.device_id, s.camera, s.taken_at FROM snapshot s
           JOIN unnest(%s::text[], %s::text[], %s::timestamptz[]) AS k(device_id, camera, taken_at)
                USING (device_id, camera, taken_at)""",
        ([d for d, _, _ in parsed], [m.camera.value for _, _, m in parsed], [m.ts for _, _, m in parsed])).fetchall()
    return {(d, c, at) for d, c, at in rows}


def _kinds(conn: psycopg.Connection, ids: set[str]) -> dict[str, str]:
    """Registered devices among `ids`: id -> kind ('retired' for a retired one)."""
    if not ids:
        return {}
    rows = conn.cursor(row_factory=tuple_row).execute(
        "SELECT id, CASE WHEN retired_at IS NULL THEN kind ELSE 'retired' END FROM device_all WHERE id = ANY(%s)",
        (list(ids),)).fetchall()
    return dict(rows)


__all__ = ["ANALYSIS", "Intake", "SnapshotSettings", "Still", "Stored", "snapshot_settings", "thumbnail"]
