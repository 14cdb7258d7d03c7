"""The field side of work orders (工单): the team's work queue, taking an order, notes and photos.

An operations team works from a phone (the cockpit's /field page): its open alerts and work
orders, worst and newest first; an order taken (assigned to the caller and started); notes and
photos of the repair added while the order is not closed. Every bound is a constant here and a
check constraint in sql/033_workorder_notes.sql.

A photo is read by its content, never by its name or declared type: Pillow must recognise a JPEG
or PNG, its header must claim at most `MAX_PIXELS` pixels (a small file can claim billions: a
decompression bomb), and it must decode whole. What is stored is re-encoded: turned upright by
its EXIF orientation, scaled to at most `MAX_SIDE` pixels a side, saved as JPEG without any of
the camera's metadata (no GPS position of the person who took it).
"""

import io
import threading
from dataclasses import dataclass
from datetime import datetime

from PIL import Image, ImageOps, UnidentifiedImageError
from psycopg import Connection

from patrol.alerts import acknowledge
from patrol.workorders import WorkOrderError

MAX_NOTE_CHARS = 2000
MAX_NOTES = 200  # per work order
MAX_PHOTOS = 12  # per work order
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # a phone camera's JPEG is 2–6 MB
MAX_PIXELS = 25_000_000  # a 24-megapixel camera's photo; decoded as RGBA that is 100 MB
MAX_SIDE = 1280  # stored photos: enough to read a serial plate on a phone's screen
MAX_STORED_BYTES = 2 * 1024 * 1024
# Pillow names a JPEG that carries a second picture (a phone's HDR or depth map) MPO; its first
# picture is the photo.
PHOTO_TYPES = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png"}
# One photo decodes at a time in a process: a 100 kB PNG can claim 25 megapixels and take ~200 MB
# while it decodes, so parallel uploads would multiply that. A caller waits this long for its turn.
_DECODING = threading.BoundedSemaphore(1)
DECODE_WAIT_S = 30
_QUALITIES = (82, 60, 40)  # JPEG qualities tried until the photo fits MAX_STORED_BYTES
CLOSED = ("accepted", "cancelled")  # no more notes, photos or takers
QUEUED_ORDERS = ["open", "in_progress", "rejected"]  # work still to do: in the queue
# Orders that stand for their alert: an alert with one of these is listed as the order, not again.
ALERT_HANDLED = ["open", "in_progress", "done", "rejected"]


class PictureError(ValueError):
    """An upload that is not a picture this API stores, with the reason."""


class DecoderBusy(RuntimeError):
    """Another photo has been decoding for longer than `DECODE_WAIT_S`: try again."""


@dataclass(frozen=True)
class Picture:
    """A photo as stored: JPEG bytes and their size in pixels, and the type that was uploaded."""

    jpeg: bytes
    width: int
    height: int
    uploaded_type: str


def _opened(content: bytes) -> Image.Image:
    """The picture's header, read by Pillow as a JPEG or PNG; its pixel count checked before decoding."""
    try:
        image = Image.open(io.BytesIO(content), formats=("JPEG", "PNG"))  # an MPO is read by the JPEG plugin
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own bound (~89 MP)
        raise PictureError(f"the picture has more than {MAX_PIXELS} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise PictureError("the body is not a JPEG or PNG picture") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise PictureError(f"the picture has {width}×{height} pixels, more than {MAX_PIXELS}")
    return image


def _flattened(image: Image.Image) -> Image.Image:
    """RGB, transparent parts on white (JPEG has no transparency)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        ground = Image.new("RGB", rgba.size, "white")
        ground.paste(rgba, mask=rgba.getchannel("A"))
        return ground
    return image.convert("RGB")


def _upright(image: Image.Image) -> Image.Image:
    """Turned by its EXIF orientation; as it is when the camera wrote a tag Pillow cannot read (a tag of
    the wrong type breaks the whole EXIF parse): a repair photo is not refused for its metadata."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser raises TypeError, KeyError, struct.error…
        return image


def reencode(content: bytes) -> Picture:
    """The upload decoded, turned upright, scaled to `MAX_SIDE` and saved as JPEG without metadata;
    PictureError saying why when it is not a JPEG or PNG that decodes whole within the bounds."""
    image = _opened(content)
    uploaded_type = PHOTO_TYPES[image.format]
    if not _DECODING.acquire(timeout=DECODE_WAIT_S):
        raise DecoderBusy("other photos are being stored; try again")
    try:
        image.thumbnail((MAX_SIDE, MAX_SIDE))  # decodes the whole picture (a JPEG at a reduced scale)
        image = _flattened(_upright(image))
    except Exception:  # noqa: BLE001 - any failure of the decoder on this untrusted file means the same
        raise PictureError("the picture's data is broken or incomplete") from None  # to the sender
    finally:
        _DECODING.release()
    for quality in _QUALITIES:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True)  # no exif= : the camera's metadata stays behind
        if out.tell() <= MAX_STORED_BYTES:
            return Picture(out.getvalue(), image.width, image.height, uploaded_type)
    raise PictureError(f"the picture cannot be stored within {MAX_STORED_BYTES} bytes")


# -- the work queue ---------------------------------------------------------------------------------
_QUEUE = """
WITH item AS (
    SELECT 'order' AS kind, w.id AS order_id, w.alert_id, a.severity, a.state AS alert_state,
           w.status AS order_status, w.title, r.title AS rule_title, w.school_code, w.device_id,
           w.assignee, coalesce(a.fired_at, a.first_seen, w.created_at) AS since, w.deadline,
           (w.deadline IS NOT NULL AND w.deadline < now()) AS overdue,
           (SELECT count(*) FROM work_order_note n WHERE n.work_order_id = w.id) AS notes,
           (SELECT count(*) FROM work_order_photo p WHERE p.work_order_id = w.id) AS photos
    FROM work_order w LEFT JOIN alert a ON a.id = w.alert_id LEFT JOIN patrol_rule r ON r.id = a.rule_id
    WHERE w.status = ANY(%(orders)s) AND school_in_scope(%(level)s, %(code)s, w.school_code)
    UNION ALL
    SELECT 'alert', NULL, a.id, a.severity, a.state, NULL, a.summary, r.title, a.school_code, a.device_id,
           NULL, coalesce(a.fired_at, a.first_seen), NULL, false, 0, 0
    FROM alert a JOIN patrol_rule r ON r.id = a.rule_id
    WHERE a.state IN ('firing', 'acknowledged') AND a.inhibited_by IS NULL
      AND school_in_scope(%(level)s, %(code)s, a.school_code)
      AND NOT EXISTS (SELECT 1 FROM work_order w WHERE w.alert_id = a.id AND w.status = ANY(%(handled)s))
)
SELECT i.*, s.name AS school_name, d.room
FROM item i JOIN school s ON s.code = i.school_code LEFT JOIN device_all d ON d.id = i.device_id
ORDER BY CASE i.severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 WHEN 'warning' THEN 2 WHEN 'info' THEN 3
         ELSE 4 END, i.since DESC, i.order_id DESC NULLS LAST, i.alert_id DESC
LIMIT %(limit)s
"""


def work_queue(conn: Connection, level: str, code: str, limit: int) -> list[dict]:
    """A scope's work still to do, worst and newest first: every open work order (with its alert's
    severity), and every open alert that is not grouped under a root cause and has no order yet."""
    return conn.execute(_QUEUE, {"level": level, "code": code, "orders": QUEUED_ORDERS,
                                 "handled": ALERT_HANDLED, "limit": limit}).fetchall()


def alert_context(conn: Connection, alert_id: int) -> dict:
    """Where an alert is (school name, room) and the work order standing for it, if any."""
    return conn.execute(
        """SELECT s.name AS school_name, d.room,
                  (SELECT w.id FROM work_order w WHERE w.alert_id = a.id AND w.status = ANY(%s)
                   ORDER BY w.id DESC LIMIT 1) AS work_order_id
           FROM alert a JOIN school s ON s.code = a.school_code LEFT JOIN device_all d ON d.id = a.device_id
           WHERE a.id = %s""", (ALERT_HANDLED, alert_id)).fetchone()


# -- one work order ---------------------------------------------------------------------------------
def detail(conn: Connection, order: dict) -> dict:
    """A work order with where it is, its alert's severity and state, its notes and its photos."""
    extra = conn.execute(
        """SELECT s.name AS school_name, d.room, a.severity, a.state AS alert_state, r.title AS rule_title
           FROM work_order w JOIN school s ON s.code = w.school_code LEFT JOIN device_all d ON d.id = w.device_id
           LEFT JOIN alert a ON a.id = w.alert_id LEFT JOIN patrol_rule r ON r.id = a.rule_id
           WHERE w.id = %s""", (order["id"],)).fetchone()
    notes = conn.execute(
        "SELECT id, author, created_at, body AS text FROM work_order_note WHERE work_order_id = %s ORDER BY id",
        (order["id"],)).fetchall()
    photos = conn.execute(
        """SELECT id, author, created_at, width, height, octet_length(jpeg) AS bytes FROM work_order_photo
           WHERE work_order_id = %s ORDER BY id""", (order["id"],)).fetchall()
    for p in photos:
        p["url"] = f"/api/v1/work-orders/{order['id']}/photos/{p['id']}"
    return {**order, **extra, "notes": notes, "photos": photos}


def _locked(conn: Connection, order_id: int) -> dict:
    """The order's row, locked until the transaction ends (counts and moves of one order go one at a time)."""
    order = conn.execute("SELECT * FROM work_order WHERE id = %s FOR UPDATE", (order_id,)).fetchone()
    if order is None:
        raise WorkOrderError(f"no work order {order_id}")
    return order


def _open_for_writing(order: dict) -> None:
    if order["status"] in CLOSED:
        raise WorkOrderError(f"work order {order['id']} is {order['status']}: it takes no more notes or photos")


def take(conn: Connection, order_id: int, username: str, now: datetime) -> tuple[dict, dict]:
    """Assign the order to `username` and start it (open or rejected → in progress; an order in progress
    changes hands), acknowledging its alert if that still fires (someone is on it: no more reminders or
    escalation); the order before and after. WorkOrderError when it is done, accepted or cancelled."""
    with conn.transaction():
        before = _locked(conn, order_id)
        if before["status"] not in QUEUED_ORDERS:
            raise WorkOrderError(f"work order {order_id} is {before['status']}: it cannot be taken")
        if before["status"] == "in_progress" and before["assignee"] == username:
            return before, before
        if before["alert_id"] is not None:
            acknowledge(conn, before["alert_id"], username, now)  # nothing when it is not firing
        after = conn.execute(
            """UPDATE work_order SET status = 'in_progress', assignee = %(user)s, updated_at = %(now)s,
                   started_at = coalesce(started_at, %(now)s)
               WHERE id = %(id)s RETURNING *""", {"user": username, "now": now, "id": order_id}).fetchone()
        return before, after


def add_note(conn: Connection, order_id: int, author: str, text: str, now: datetime) -> dict:
    """Add a note to an order that is not closed and has fewer than `MAX_NOTES`; the note."""
    with conn.transaction():
        order = _locked(conn, order_id)
        _open_for_writing(order)
        count = conn.execute("SELECT count(*) AS n FROM work_order_note WHERE work_order_id = %s",
                             (order_id,)).fetchone()["n"]
        if count >= MAX_NOTES:
            raise WorkOrderError(f"work order {order_id} has {MAX_NOTES} notes already, the most it may hold")
        return conn.execute(
            """INSERT INTO work_order_note (work_order_id, author, created_at, body) VALUES (%s, %s, %s, %s)
               RETURNING id, author, created_at, body AS text""", (order_id, author, now, text)).fetchone()


def check_photo_room(conn: Connection, order_id: int) -> None:
    """WorkOrderError when the order is closed or holds `MAX_PHOTOS` photos (checked before decoding an
    upload, and again under the lock when it is stored)."""
    order = conn.execute("SELECT * FROM work_order WHERE id = %s", (order_id,)).fetchone()
    if order is None:
        raise WorkOrderError(f"no work order {order_id}")
    _open_for_writing(order)
    _room_for_photo(conn, order_id)


def _room_for_photo(conn: Connection, order_id: int) -> None:
    count = conn.execute("SELECT count(*) AS n FROM work_order_photo WHERE work_order_id = %s",
                         (order_id,)).fetchone()["n"]
    if count >= MAX_PHOTOS:
        raise WorkOrderError(f"work order {order_id} has {MAX_PHOTOS} photos already, the most it may hold")


def add_photo(conn: Connection, order_id: int, author: str, picture: Picture, now: datetime) -> dict:
    """Store a re-encoded photo with an order that is not closed and has fewer than `MAX_PHOTOS`; the
    photo's description."""
    with conn.transaction():
        _open_for_writing(_locked(conn, order_id))
        _room_for_photo(conn, order_id)
        row = conn.execute(
            """INSERT INTO work_order_photo (work_order_id, author, created_at, uploaded_type, width, height, jpeg)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               RETURNING id, author, created_at, width, height, octet_length(jpeg) AS bytes""",
            (order_id, author, now, picture.uploaded_type, picture.width, picture.height, picture.jpeg)).fetchone()
    return {**row, "url": f"/api/v1/work-orders/{order_id}/photos/{row['id']}"}


def photo(conn: Connection, order_id: int, photo_id: int) -> bytes | None:
    """A stored photo's JPEG bytes, if the order has that photo."""
    row = conn.execute("SELECT jpeg FROM work_order_photo WHERE id = %s AND work_order_id = %s",
                       (photo_id, order_id)).fetchone()
    return None if row is None else bytes(row["jpeg"])
