"""Device routes: lists (with export), detail, history, events, commands."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.deps import Conn, CurrentUser, PathScope, role
from api.devices import service
from api.devices.models import (
    BatchOut,
    CommandIn,
    CommandOut,
    DeviceDetail,
    DeviceEventOut,
    DeviceKind,
    DevicePage,
    ScopeCommandIn,
)
from api.errors import problems
from api.export import EXPORT_RESPONSES, ExportFormat, table_response
from api.inputs import DbText

router = APIRouter(prefix="/api/v1", tags=["devices"])

DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{3,64}$", examples=["B4213030001-001"])]
Commander = role(service.COMMAND_ROLES, "send commands")
EXPORT_COLUMNS = ("id", "kind", "school_code", "school_name", "county_name", "room", "vendor", "model", "online",
                  "last_seen")


@router.get("/scopes/{level}/{code}/devices", response_model=DevicePage,
            summary="Devices of a scope, filtered and paged (format=csv|xlsx exports all matches)",
            responses=EXPORT_RESPONSES)
def list_devices(scope: PathScope, conn: Conn, user: CurrentUser,
                 kind: DeviceKind | None = None, online: bool | None = None,
                 search: Annotated[DbText | None, Query(max_length=64)] = None,
                 page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                 page_size: Annotated[int, Query(ge=1, le=500)] = 50,
                 format: ExportFormat = "json") -> DevicePage | Response:  # noqa: A002 - query name
    """Devices with their state now."""
    exporting = format != "json"
    result = service.list_devices(conn, scope, user, kind=kind, online=online, search=search,
                                  page=1 if exporting else page, page_size=None if exporting else page_size)
    if exporting:
        return table_response([i.model_dump() for i in result.items], EXPORT_COLUMNS, format, f"devices-{scope.code}")
    return result


@router.get("/devices/{device_id}", response_model=DeviceDetail, summary="A device and its state now")
def get_device(device_id: DeviceId, conn: Conn, user: CurrentUser) -> DeviceDetail:
    """The device, if it is inside the user's scope."""
    return service.get_device(conn, user, device_id)


@router.get("/devices/{device_id}/history", summary="A device's readings over the last hours")
def get_history(device_id: DeviceId, conn: Conn, user: CurrentUser,
                hours: Annotated[int, Query(ge=1, le=24 * 7)] = 24) -> list[dict]:
    """Readings, oldest first (at most 5,000)."""
    return service.history(conn, service.get_device(conn, user, device_id), hours)


@router.get("/devices/{device_id}/events", response_model=list[DeviceEventOut], summary="A device's latest events")
def get_events(device_id: DeviceId, conn: Conn, user: CurrentUser,
               limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict]:
    """Events, newest first."""
    return service.events(conn, service.get_device(conn, user, device_id), limit)


@router.get("/devices/{device_id}/commands", response_model=list[CommandOut], summary="A device's latest commands")
def list_commands(device_id: DeviceId, conn: Conn, user: CurrentUser) -> list[CommandOut]:
    """Commands with their outcome, newest first."""
    return service.commands_of(conn, service.get_device(conn, user, device_id).id)


@router.post("/devices/{device_id}/commands", response_model=CommandOut, status_code=202,
             summary="Send a command to a device", responses=problems(403))
def send_command(device_id: DeviceId, body: CommandIn, request: Request, conn: Conn, user: Commander) -> CommandOut:
    """Record, publish and audit a command; the device's acknowledgement arrives later."""
    device = service.get_device(conn, user, device_id)
    created, _ = service.send_commands(conn, request.app.state.publisher, user, [device.id], body)
    return service.get_command(conn, user, created[0])


@router.post("/scopes/{level}/{code}/commands", response_model=BatchOut, status_code=202,
             summary="Send a command to every device of a kind in a scope", responses=problems(403))
def send_scope_command(scope: PathScope, body: ScopeCommandIn, request: Request, conn: Conn,
                       user: Commander) -> BatchOut:
    """One command per device, sharing a batch id."""
    ids = service.scope_device_ids(conn, scope, user, body.kind)
    batch_id = uuid.uuid4().hex
    published = service.send_commands(conn, request.app.state.publisher, user, ids, body, batch_id)[1] if ids else 0
    return BatchOut(batch_id=batch_id, devices=len(ids), published=published)


@router.get("/commands/{command_id}", response_model=CommandOut, summary="A command and its outcome")
def get_command(command_id: Annotated[str, Path(pattern=r"^[a-f0-9]{32}$")], conn: Conn,
                user: CurrentUser) -> CommandOut:
    """What became of one command."""
    return service.get_command(conn, user, command_id)
