"""Work orders in the field through the API: the team's queue, taking an order, notes and photos of the
repair, and every refusal with its reason (role 403, outside the scope 404, closed or full 409, too large
413, not a picture 415/422, a decompression bomb 422)."""

import io
import struct
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from api.patrol import notes
from tests.fixtures.app import login

AN_HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def _jpeg(width: int, height: int, **exif_tags) -> bytes:
    """A JPEG with EXIF tags, named by their hexadecimal number (x0112 the orientation, x010f the maker…)."""
    exif = Image.Exif()
    for tag, value in exif_tags.items():
        exif[int(tag[1:], 16)] = value
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def _png_of(width: int, height: int) -> bytes:
    """A real, valid black-and-white PNG of any size, compressed to almost nothing: a decompression bomb
    when the size is large (Pillow would need a byte per pixel to decode it)."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + one bit per pixel
    packer = zlib.compressobj(1)
    idat = b"".join(packer.compress(row * min(2000, height - done)) for done in range(0, height, 2000))
    idat += packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def field(db, registry):
    """A Zengdu school with its network down (no order yet) and a board whose alert has an order; an
    order without an alert; a grouped alert, a finished order; an order in Wuhan; the people."""
    registry.area()
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    school = registry.school(name="曾都一小")
    gateway, board, other = registry.device(school, "gateway"), registry.device(school, room="三(2)班"), \
        registry.device(school)
    root = registry.alert(gateway, rule="gateway_offline", severity="critical", first_seen=AN_HOUR_AGO)
    registry.alert(other, inhibited_by=root)  # grouped under the network: not a piece of work of its own
    board_alert = registry.alert(board, rule="board_overheat", severity="warning")
    order = registry.work_order(school, board, alert=board_alert, title="一体机过热")
    plain = registry.work_order(school, title="巡检发现:机柜未上锁")
    registry.work_order(school, title="上周的工单", status="done")
    wuhan = registry.school(county="420102", city="420100")
    foreign = registry.work_order(wuhan, registry.device(wuhan), title="武汉的工单")
    registry.user("ops", "county", "421303", role="operations")
    registry.user("ops-2", "county", "421303", role="operations")
    registry.user("viewer", "county", "421303", role="viewer")
    registry.user("manager", "county", "421303", role="manager")
    registry.user("ops-wuhan", "county", "420102", role="operations")
    return {"root": root, "board_alert": board_alert, "order": order, "plain": plain, "foreign": foreign}


def test_the_queue_is_the_teams_work_worst_and_newest_first(api, field):
    ops = login(api, "ops")
    queue = api.get("/api/v1/scopes/county/421303/work-queue", headers=ops).json()
    assert [(i["kind"], i["alert_id"], i["order_id"], i["severity"]) for i in queue] == [
        ("alert", field["root"], None, "critical"),  # worst first, though the oldest
        ("order", field["board_alert"], field["order"], "warning"),  # the alert stands as its order, once
        ("order", None, field["plain"], None),  # no alert, no severity: last
    ]
    assert queue[1]["room"] == "三(2)班" and queue[1]["school_name"] == "曾都一小" and queue[1]["rule_title"]
    assert api.get("/api/v1/scopes/county/421303/work-queue?limit=1", headers=ops).json()[0]["alert_id"] == \
        field["root"]
    assert api.get("/api/v1/scopes/county/421303/work-queue?limit=501", headers=ops).status_code == 422
    wuhan = login(api, "ops-wuhan")
    assert api.get("/api/v1/scopes/county/421303/work-queue", headers=wuhan).status_code == 404
    assert [i["order_id"] for i in api.get("/api/v1/scopes/county/420102/work-queue", headers=wuhan).json()] == \
        [field["foreign"]]
    alert = api.get(f"/api/v1/alerts/{field['board_alert']}", headers=ops).json()
    assert (alert["work_order_id"], alert["school_name"], alert["room"]) == (field["order"], "曾都一小", "三(2)班")
    assert api.get(f"/api/v1/alerts/{field['root']}", headers=ops).json()["work_order_id"] is None


def test_take_note_and_resolve_with_every_refusal(api, db, field):
    ops, order = login(api, "ops"), field["order"]
    url = f"/api/v1/work-orders/{order}"
    taken = api.post(f"{url}/take", headers=ops)
    assert taken.status_code == 200
    assert (taken.json()["status"], taken.json()["assignee"], taken.json()["started_at"] is not None) == \
        ("in_progress", "ops", True)
    assert api.post(f"{url}/take", headers=ops).json()["updated_at"] == taken.json()["updated_at"]  # no change
    assert api.post(f"{url}/take", headers=login(api, "ops-2")).json()["assignee"] == "ops-2"  # taken over
    assert api.post(f"{url}/take", headers=ops).json()["assignee"] == "ops"

    added = api.post(f"{url}/notes", json={"text": "  风扇积灰, 已清理  "}, headers=ops)
    assert added.status_code == 201 and added.json()["text"] == "风扇积灰, 已清理"  # blanks trimmed
    longest = "很" * notes.MAX_NOTE_CHARS  # the longest note goes through the real write
    assert api.post(f"{url}/notes", json={"text": longest}, headers=ops).status_code == 201
    for bad in ({"text": "   "}, {"text": longest + "很"}, {"text": "a\x00b"}, {}):
        refused = api.post(f"{url}/notes", json=bad, headers=ops)
        assert refused.status_code == 422 and refused.json()["errors"][0]["loc"][:2] == ["body", "text"], bad
    assert api.post(f"{url}/notes", json={"text": "x"}, headers=login(api, "viewer")).status_code == 403
    wuhan = login(api, "ops-wuhan")
    for method, path, kwargs in (("get", url, {}), ("post", f"{url}/take", {}),
                                 ("post", f"{url}/notes", {"json": {"text": "x"}})):
        outside = getattr(api, method)(path, headers=wuhan, **kwargs)
        assert outside.status_code == 404 and outside.json()["detail"], path

    detail = api.get(url, headers=ops).json()
    assert [(n["author"], len(n["text"])) for n in detail["notes"]] == [("ops", 9), ("ops", 2000)]
    assert (detail["severity"], detail["alert_state"], detail["room"]) == ("warning", "acknowledged", "三(2)班")
    done = api.patch(url, json={"status": "done", "note": "清理风扇, 温度恢复正常"}, headers=ops)
    assert done.status_code == 200 and done.json()["resolution"] == "清理风扇, 温度恢复正常"
    assert api.post(f"{url}/take", headers=ops).status_code == 409  # done: nothing left to take
    assert api.post(f"{url}/notes", json={"text": "验收前补充"}, headers=ops).status_code == 201
    assert api.patch(url, json={"status": "accepted", "note": "ok"}, headers=login(api, "manager")).status_code == 200
    closed = api.post(f"{url}/notes", json={"text": "too late"}, headers=ops)
    assert closed.status_code == 409 and "accepted" in closed.json()["detail"]
    assert [i["order_id"] for i in api.get("/api/v1/scopes/county/421303/work-queue", headers=ops).json()
            if i["kind"] == "order"] == [field["plain"]]  # resolved: out of the queue

    audit = [(r["username"], r["action"]) for r in db.execute(
        "SELECT username, action FROM audit_log WHERE target = %s ORDER BY id", (str(order),))]
    assert audit == [("ops", "work_order.take"), ("ops-2", "work_order.take"), ("ops", "work_order.take"),
                     ("ops", "work_order.note"), ("ops", "work_order.note"), ("ops", "work_order.update"),
                     ("ops", "work_order.note"), ("manager", "work_order.update")]


def _upload(api, order: int, content: bytes, headers: dict, media_type: str = "image/jpeg"):
    return api.post(f"/api/v1/work-orders/{order}/photos", content=content,
                    headers={**headers, "Content-Type": media_type})


def test_a_photo_round_trips_upright_small_and_without_its_metadata_and_the_rest_is_refused(api, field):
    ops = login(api, "ops")
    sent = _jpeg(2000, 1500, x0112=6, x010f="PhoneMaker", x0131="camera app 1.0")  # taken sideways
    added = _upload(api, field["order"], sent, ops)
    assert added.status_code == 201, added.text
    photo = added.json()
    assert (photo["width"], photo["height"]) == (960, 1280)  # turned upright, scaled to 1280 a side
    got = api.get(photo["url"], headers=ops)
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    stored = Image.open(io.BytesIO(got.content))
    assert (stored.format, stored.size, dict(stored.getexif())) == ("JPEG", (960, 1280), {})
    assert len(got.content) == photo["bytes"] < len(sent)

    transparent = io.BytesIO()
    Image.new("RGBA", (300, 200), (0, 0, 0, 0)).save(transparent, "PNG")
    png = _upload(api, field["order"], transparent.getvalue(), ops, "image/png")
    assert png.status_code == 201 and (png.json()["width"], png.json()["height"]) == (300, 200)
    white = Image.open(io.BytesIO(api.get(png.json()["url"], headers=ops).content))
    assert min(white.getpixel((150, 100))) > 240  # transparency on white, not black

    assert [p["id"] for p in api.get(f"/api/v1/work-orders/{field['order']}", headers=ops).json()["photos"]] == \
        [photo["id"], png.json()["id"]]
    assert api.get(f"/api/v1/work-orders/{field['plain']}/photos/{photo['id']}", headers=ops).status_code == 404

    # a phone's JPEG with a second picture in it (Pillow: MPO) is a JPEG; an EXIF tag of the wrong type
    # (the white point as text) breaks Pillow's EXIF parse: the photo is kept, as the camera took it
    mpo = io.BytesIO()
    Image.new("RGB", (64, 48)).save(mpo, "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48), "red")])
    assert _upload(api, field["order"], mpo.getvalue(), ops).status_code == 201
    ifd = (struct.pack(">H", 2) + struct.pack(">HHI4s", 0x013E, 2, 4, b"cam\0")
           + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack(">I", 0))
    odd_exif = io.BytesIO()
    Image.new("RGB", (200, 150)).save(odd_exif, "JPEG", exif=b"Exif\0\0MM\0\x2a" + struct.pack(">I", 8) + ifd)
    kept = _upload(api, field["order"], odd_exif.getvalue(), ops)
    assert kept.status_code == 201, kept.text

    wuhan = login(api, "ops-wuhan")
    assert api.get(photo["url"], headers=wuhan).status_code == 404
    assert _upload(api, field["order"], sent, wuhan).status_code == 404
    assert _upload(api, field["order"], sent, login(api, "viewer")).status_code == 403
    assert _upload(api, field["order"], sent, {}).status_code == 401

    # what is not a picture this API stores is refused with the reason (on the order without an alert)
    order = field["plain"]

    def refused(content: bytes, media_type: str = "image/png") -> tuple[int, str]:
        r = _upload(api, order, content, ops, media_type)
        return r.status_code, r.json()["detail"]

    assert refused(b"GIF89a" + b"\0" * 64, "image/gif") == (415, "send the picture as image/jpeg or image/png")
    assert refused(b"%PDF-1.4 not a picture") == (422, "the body is not a JPEG or PNG picture")
    assert refused(b"") == (422, "the body is not a JPEG or PNG picture")
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    assert refused(gif.getvalue()) == (422, "the body is not a JPEG or PNG picture")  # read by content, not type
    noisy = io.BytesIO()
    Image.effect_noise((400, 300), 60).convert("RGB").save(noisy, "JPEG")
    cut_short = noisy.getvalue()[:noisy.tell() // 2]  # a connection dropped halfway
    assert refused(cut_short, "image/jpeg") == (422, "the picture's data is broken or incomplete")
    too_large = refused(b"\xff" * (notes.MAX_UPLOAD_BYTES + 1), "image/jpeg")
    assert too_large == (413, f"a photo is limited to {notes.MAX_UPLOAD_BYTES} bytes")

    bomb = _png_of(20_000, 20_000)  # 400 megapixels in about 200 kB
    assert len(bomb) < 250_000
    assert refused(bomb) == (422, f"the picture has more than {notes.MAX_PIXELS} pixels")
    assert refused(_png_of(5_000, 5_001)) == (422, f"the picture has 5000×5001 pixels, more than {notes.MAX_PIXELS}")
    at_the_limit = _upload(api, order, _png_of(5_000, 5_000), ops, "image/png")  # 25 megapixels: stored
    assert at_the_limit.status_code == 201 and (at_the_limit.json()["width"], at_the_limit.json()["height"]) == \
        (1280, 1280)

    small = _jpeg(16, 16)
    for _ in range(notes.MAX_PHOTOS - 1):
        assert _upload(api, order, small, ops).status_code == 201
    full = _upload(api, order, small, ops)
    assert full.status_code == 409 and f"{notes.MAX_PHOTOS} photos" in full.json()["detail"]
    photos = api.get(f"/api/v1/work-orders/{order}", headers=ops).json()["photos"]
    assert len(photos) == notes.MAX_PHOTOS
