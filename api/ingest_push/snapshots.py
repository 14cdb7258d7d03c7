"""Camera stills pushed over HTTP by a vendor platform (channel `snapshot`).

The vendor's key covers its own devices only: a still for any other device is refused and
dead-lettered, as a reading is (api/ingest_push/service.py). The rest take the snapshot intake's
one path (patrol/snapshots.py): the device's rate, the payload's bound, the contract, the clock,
the registry, the JPEG, the video-health check, the camera's short history. One transaction; the
answer comes after the commit, and a retried still already stored counts as a duplicate.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import ConnectionPool

from api.ingest_push import service
from api.ingest_push.models import PushOutcome, Refusal
from core import contract
from core.contract import Channel
from core.db import transaction
from core.storable import storable
from core.telemetry_decode import Rejected
from patrol.snapshots import Intake

_INTAKE: list[Intake] = []  # one per API process, made when first needed: its own per-device rate


def _intake() -> Intake:
    if not _INTAKE:
        _INTAKE.append(Intake())
    return _INTAKE[0]


def push(pool: ConnectionPool, vendor: str, readings: Sequence[dict[str, Any]]) -> PushOutcome:
    """Judge and store a batch of stills of the vendor's devices in one transaction; the outcome once
    committed. Connection-class errors propagate (the caller answers 503: nothing was stored)."""
    now = datetime.now(UTC)
    judged = service._Judged()
    with transaction(pool) as conn:
        ids = {i for r in readings if isinstance(i := r.get("device_id"), str) and service._well_formed(i)}
        devices = service._devices(conn, list(ids))
        own: list[tuple[int, tuple[str, bytes, datetime]]] = []
        for index, reading in enumerate(readings):
            device_id = reading.get("device_id")
            if isinstance(device_id, str) and service._well_formed(device_id) and devices.get(device_id, ("",))[0] == vendor:
                own.append((index, (contract.topic(device_id, Channel.SNAPSHOT), service._payload(reading), now)))
            else:
                service._refuse(judged, index, device_id, Channel.SNAPSHOT, reading, devices, vendor)
        results = _intake().judge(conn, [message for _, message in own])
        for (index, _), result in zip(own, results, strict=True):
            if isinstance(result, Rejected):
                judged.refusals.append(Refusal(index=index, device_id=result.device_id, reason=storable(result.reason)))
        outcome = _intake().store(conn, [*judged.rejected, *results])
    dead = sum(isinstance(r, Rejected) for r in results)
    return PushOutcome(stored=outcome.stored, duplicates=outcome.duplicates, dead_lettered=dead,
                       refused=judged.refused, rejected=judged.refusals)
