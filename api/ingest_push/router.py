"""POST /api/v1/ingest/{channel}: vendor platforms push readings over HTTP, answered after the commit."""

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Security, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader
from psycopg_pool import PoolTimeout
from pydantic import ValidationError

from api.errors import problems
from api.ingest_push import service, snapshots
from api.ingest_push.models import (
    MAX_BODY_BYTES,
    PUSH_BATCH_SCHEMA,
    PushBatch,
    PushChannel,
    PushOutcome,
)
from core.telemetry_write import RETRYABLE

router = APIRouter(prefix="/api/v1", tags=["ingest"])

vendor_key_header = APIKeyHeader(name="X-Vendor-Key", auto_error=False,
                                 description="the vendor platform's key, issued by `cockpit vendor-key VENDOR`")


def current_vendor(request: Request, key: Annotated[str | None, Security(vendor_key_header)]) -> str:
    """The vendor whose live key the request carries; 401 otherwise."""
    vendor = None
    if key and len(key) <= 256:
        with request.app.state.pool.connection() as conn:  # released at once: the push takes its own
            vendor = service.vendor_of(conn, key)
    if vendor is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid X-Vendor-Key is needed",
                            {"WWW-Authenticate": "X-Vendor-Key"})
    return vendor


async def _body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed the bound."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the body exceeds {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _batch(body: bytes) -> PushBatch:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not a JSON document") from None
    try:
        return PushBatch.model_validate(document)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from None


@router.post("/ingest/{channel}", status_code=status.HTTP_202_ACCEPTED, response_model=PushOutcome,
             summary="Push a batch of readings (vendor platforms; stored once each, answered after the commit)",
             responses=problems(413),
             openapi_extra={"requestBody": {"required": True,
                                            "content": {"application/json": {"schema": PUSH_BATCH_SCHEMA}}}})
async def push_readings(channel: PushChannel, vendor: Annotated[str, Security(current_vendor)],
                        request: Request) -> PushOutcome:
    """Judge each reading as the MQTT ingest would and store the valid ones in one transaction.

    202 only once committed: a retry of the same batch stores nothing twice (duplicates).
    """
    batch = _batch(await _body(request))
    try:
        if channel is PushChannel.SNAPSHOT:  # camera stills: the snapshot intake's path (api/ingest_push/snapshots.py)
            return await run_in_threadpool(snapshots.push, request.app.state.pool, vendor, batch.readings)
        return await run_in_threadpool(service.push, request.app.state.pool, vendor, channel, batch.readings)
    except (*RETRYABLE, PoolTimeout):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the database is unavailable; nothing was "
                            "stored, try again", {"Retry-After": "5"}) from None
