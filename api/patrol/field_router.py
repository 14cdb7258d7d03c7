"""Work-order routes for the team in the field: the work queue, one order in detail, take, notes, photos.

Beside the patrol router (api/patrol/router.py), and as there, a writer's role is checked first
(403), then the order's school against the user's scope (404 outside it); every write is audited.
A photo's body is read before the login is checked (so a slow upload from a phone holds no
database connection), bounded as it arrives, and judged only once the caller is known: an
anonymous upload is refused 401 like any other request.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import Response

from api.deps import Conn, CurrentUser, PathScope, role
from api.errors import problems
from api.patrol import notes, service
from api.patrol.models import Note, NoteIn, Photo, QueueItem, WorkOrder, WorkOrderDetail
from patrol.workorders import WorkOrderError

router = APIRouter(prefix="/api/v1", tags=["patrol"])

Id = Annotated[int, Path(ge=1, le=2**62)]
PHOTO_MEDIA = {"image/jpeg", "image/png"}
BINARY = {"schema": {"type": "string", "format": "binary"}}


def _writer(action: str):
    return role(service.WRITE_ROLES, action)


def _conflict(exc: WorkOrderError) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, str(exc))


@dataclass(frozen=True)
class Upload:
    """A request body as it arrived: its media type, and its bytes unless it exceeded the bound."""

    media_type: str
    content: bytes | None  # None: more than notes.MAX_UPLOAD_BYTES


async def photo_upload(request: Request) -> Upload:
    """The body, read as it arrives and no further than one byte past `notes.MAX_UPLOAD_BYTES`."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > notes.MAX_UPLOAD_BYTES:
        return Upload(media_type, None)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > notes.MAX_UPLOAD_BYTES:
            return Upload(media_type, None)
        chunks.append(chunk)
    return Upload(media_type, b"".join(chunks))


@router.get("/scopes/{level}/{code}/work-queue", response_model=list[QueueItem],
            summary="The work still to do in a scope, worst and newest first (the field page's list)")
def work_queue(scope: PathScope, conn: Conn,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict]:
    """Open work orders (open, in progress, rejected) with their alert's severity, and open alerts that
    are not grouped under a root cause and have no order yet: by severity, then newest first."""
    return notes.work_queue(conn, scope.level, scope.code, limit)


@router.get("/work-orders/{order_id}", response_model=WorkOrderDetail,
            summary="A work order with its notes and photos")
def get_work_order(order_id: Id, conn: Conn, user: CurrentUser) -> dict:
    """The order if its school is in the user's scope (404 otherwise)."""
    return notes.detail(conn, service.visible_order(conn, user, order_id))


@router.post("/work-orders/{order_id}/take", response_model=WorkOrder,
             summary="Take a work order: assign it to yourself and start it", responses=problems(403, 409))
def take_work_order(order_id: Id, conn: Conn, user: _writer("take work orders")) -> dict:
    """Open or rejected: in progress and yours; in progress with someone else: yours. 409 once it is done,
    accepted or cancelled. Taking an order that is already yours and in progress changes nothing."""
    service.visible_order(conn, user, order_id)
    try:
        before, after = notes.take(conn, order_id, user.username, service.now())
    except WorkOrderError as exc:
        raise _conflict(exc) from None
    if after is not before:
        service.audited(conn, user, "work_order.take", str(order_id),
                        {"status": before["status"], "assignee": before["assignee"]})
    return after


@router.post("/work-orders/{order_id}/notes", response_model=Note, status_code=201,
             summary="Add a note to a work order", responses=problems(403, 409))
def add_note(order_id: Id, body: NoteIn, conn: Conn, user: _writer("add notes to work orders")) -> dict:
    """A note of up to 2,000 characters; 409 when the order is accepted or cancelled, or holds 200 notes."""
    service.visible_order(conn, user, order_id)
    try:
        note = notes.add_note(conn, order_id, user.username, body.text, service.now())
    except WorkOrderError as exc:
        raise _conflict(exc) from None
    service.audited(conn, user, "work_order.note", str(order_id), {"note": note["id"], "text": body.text})
    return note


@router.post("/work-orders/{order_id}/photos", response_model=Photo, status_code=201,
             summary="Add a photo of the repair to a work order (the JPEG or PNG picture is the body)",
             responses=problems(403, 409, 413, 415, 503),
             openapi_extra={"requestBody": {"required": True,
                                            "content": {"image/jpeg": BINARY, "image/png": BINARY}}})
def add_photo(upload: Annotated[Upload, Depends(photo_upload)], order_id: Id, conn: Conn,
              user: _writer("add photos to work orders")) -> dict:
    """The body is the picture (Content-Type image/jpeg or image/png, at most 10 MiB and 25 megapixels);
    it is decoded, turned upright, scaled to 1280 pixels a side and stored as JPEG without its metadata.
    415 for another type, 413 when too large, 422 when it is not a picture that decodes whole, 409 when
    the order is accepted or cancelled or holds 12 photos."""
    service.visible_order(conn, user, order_id)
    if upload.media_type not in PHOTO_MEDIA:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the picture as image/jpeg or image/png")
    if upload.content is None:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            f"a photo is limited to {notes.MAX_UPLOAD_BYTES} bytes")
    try:
        notes.check_photo_room(conn, order_id)  # before spending the decoding on it
        picture = notes.reencode(upload.content)
        photo = notes.add_photo(conn, order_id, user.username, picture, service.now())
    except WorkOrderError as exc:
        raise _conflict(exc) from None
    except notes.PictureError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except notes.DecoderBusy as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "5"}) from None
    service.audited(conn, user, "work_order.photo", str(order_id),
                    {"photo": photo["id"], "uploaded": {"type": upload.media_type, "bytes": len(upload.content)},
                     "stored": {"width": photo["width"], "height": photo["height"], "bytes": photo["bytes"]}})
    return photo


@router.get("/work-orders/{order_id}/photos/{photo_id}", response_class=Response,
            summary="A photo of a work order (JPEG)",
            responses={200: {"description": "the photo as stored", "content": {"image/jpeg": BINARY}}})
def get_photo(order_id: Id, photo_id: Id, conn: Conn, user: CurrentUser) -> Response:
    """The JPEG, if the order is in the user's scope and has that photo (404 otherwise)."""
    service.visible_order(conn, user, order_id)
    jpeg = notes.photo(conn, order_id, photo_id)
    if jpeg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such photo")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})
