"""智能巡课 through the API: the wall of classrooms in session and its signed stills, inspection records
and their figures, scoped like everything else; vendors' stills over the HTTP push, their own only."""

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from api.ingest_push import service as push_service
from api.ingest_push import snapshots as push_snapshots
from api.inspection import links
from core import contract
from core.contract import CameraSnapshot, Channel
from devices.frames import FrameRenderer
from patrol.snapshots import Intake, SnapshotSettings
from tests.fixtures.app import login

FRAMES = FrameRenderer()


def payload(device: str, camera: str, at: datetime, faults=frozenset(), frame: int = 1) -> bytes:
    jpeg = FRAMES.still(device, camera, frame, set(faults))
    return contract.encode(CameraSnapshot(v=1, ts=at, seq=frame, camera=camera, jpeg=base64.b64encode(jpeg).decode()))


@pytest.fixture
def session(db, registry):
    """A remote lesson being streamed now in 曾都区 (main recorder, one receiving board whose camera is covered),
    a recorder in another county streaming a lesson of its own, their fresh stills, and the users."""
    registry.area()
    registry.area(city="420100", county="420102", names=("湖北省", "武汉市", "江岸区"))
    main_school, far_school = registry.school(name="城关小学"), registry.school(name="乡村教学点")
    recorder = registry.device(main_school, "recorder", room="录播室")
    board = registry.device(far_school, room="3班")
    gateway = registry.device(far_school, "gateway")
    lesson = registry.lesson(recorder, {board: "三年级1班"}, kind="dedicated", subject="音乐")
    registry.device_state(recorder, streaming=True, last_values={"lesson_id": lesson})
    registry.device_state(board)
    elsewhere = registry.device(registry.school(county="420102", city="420100"), "recorder")
    registry.device_state(elsewhere, streaming=True, last_values={})
    now = datetime.now(UTC)
    stills = [(recorder, "students", ()), (recorder, "teacher", ()), (board, "panorama", {"covered_camera"}),
              (elsewhere, "teacher", ())]
    intake = Intake(SnapshotSettings(rate_per_s=0))
    with db.transaction():
        intake.store(db, intake.judge(db, [(contract.topic(d, Channel.SNAPSHOT), payload(d, c, now, f), now)
                                           for d, c, f in stills]))
    for user, level, code, role in (("zd", "county", "421303", "manager"), ("zd-viewer", "county", "421303", "viewer"),
                                    ("wuhan", "city", "420100", "manager")):
        registry.user(user, level, code, role=role)
    ids = {(r["device_id"], r["camera"]): r["snapshot_id"] for r in db.execute("SELECT * FROM snapshot_camera")}
    return {"recorder": recorder, "board": board, "gateway": gateway, "lesson": lesson, "elsewhere": elsewhere, "ids": ids,
            "main_school": main_school, "far_school": far_school}


def test_the_wall_shows_the_classrooms_in_session_and_their_stills_behind_signed_links(api, session):
    zd = login(api, "zd")
    r = api.get("/api/v1/scopes/county/421303/inspection/wall", headers=zd)
    assert r.status_code == 200, r.text
    wall = r.json()
    rooms = {c["device_id"]: c for c in wall["classrooms"]}
    assert set(rooms) == {session["recorder"], session["board"]}  # not the other county's
    assert (wall["in_session"], wall["by_health"]) == (2, {"ok": 1, "problem": 1, "no_picture": 0})
    main, far = rooms[session["recorder"]], rooms[session["board"]]
    assert (main["role"], main["kind"], main["subject"], main["health"]) == ("main", "dedicated", "音乐", "ok")
    assert (far["role"], far["health"], far["problems"]) == ("receiving", "problem", ["covered"])
    assert main["snapshot_id"] == session["ids"][(session["recorder"], "students")]  # the class, not the teacher
    assert [s["code"] for s in wall["schools"]] == sorted([session["main_school"], session["far_school"]])
    filtered = api.get("/api/v1/scopes/county/421303/inspection/wall", headers=zd,
                       params={"health": "covered", "kind": "dedicated", "subject": "音乐"}).json()
    assert [c["device_id"] for c in filtered["classrooms"]] == [session["board"]] and filtered["in_session"] == 2
    assert api.get("/api/v1/scopes/county/421303/inspection/wall", headers=zd,
                   params={"school": session["main_school"], "health": "problem"}).json()["classrooms"] == []

    image = api.get(far["image"])  # a signed link: no token needed, none given
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    full = api.get(links.link(far["snapshot_id"], "full", datetime.now(UTC)))
    assert image.content[:2] == full.content[:2] == b"\xff\xd8" and len(image.content) < len(full.content)
    assert "immutable" in image.headers["cache-control"]
    assert api.get(far["image"], headers={"If-None-Match": image.headers["etag"]}).status_code == 304
    assert api.get(far["image"].replace("size=thumb", "size=full")).status_code == 404  # signed for the thumb
    assert api.get(far["image"][:-4] + "0000").status_code == 404  # tampered
    stale = links.link(far["snapshot_id"], "thumb", datetime.now(UTC) - timedelta(minutes=11))
    assert api.get(stale).status_code == 404  # expired
    assert api.get(far["image"].replace(f"/{far['snapshot_id']}/", f"/{main['snapshot_id']}/")).status_code == 404

    wuhan = login(api, "wuhan")  # another city: neither the scope nor the classroom exists for it
    assert api.get("/api/v1/scopes/county/421303/inspection/wall", headers=wuhan).status_code == 404
    assert api.get(f"/api/v1/inspection/classrooms/{session['board']}", headers=wuhan).status_code == 404
    view = api.get(f"/api/v1/inspection/classrooms/{session['board']}", headers=zd).json()
    assert view["in_session"] and view["lesson"]["main"]["device_id"] == session["recorder"]
    assert [r["class_name"] for r in view["lesson"]["receivers"]] == ["三年级1班"]
    assert [c["camera"] for c in view["cameras"]] == ["panorama"] and view["devices"][0]["online"]
    full = api.get(view["cameras"][0]["stills"][0]["image"])
    assert full.status_code == 200 and full.content.startswith(b"\xff\xd8")


def test_an_inspection_is_recorded_linked_counted_and_exported_within_the_scope(api, db, session):
    zd, board, recorder = login(api, "zd"), session["board"], session["recorder"]

    def inspect(device: str, body: dict, headers: dict):
        return api.post(f"/api/v1/inspection/classrooms/{device}/inspections", json=body, headers=headers)

    body = {"lesson_id": session["lesson"], "snapshot_id": session["ids"][(board, "panorama")],
            "teacher_present": True, "students_present": True, "receiving_connected": True, "picture_ok": False,
            "sound_ok": True, "board_in_use": True, "note": "镜头被遮挡"}
    first = inspect(board, body, zd)
    assert first.status_code == 201, first.text
    made = first.json()
    assert (made["has_problem"], made["role"], made["lesson_kind"], made["inspector"]) == (True, "receiving",
                                                                                           "dedicated", "zd")
    fine = {**body, "snapshot_id": session["ids"][(recorder, "teacher")], "picture_ok": True, "note": ""}
    assert inspect(recorder, fine, zd).json()["has_problem"] is False
    assert inspect(recorder, {**fine, "board_in_use": False}, zd).status_code == 201

    figures = api.get("/api/v1/scopes/county/421303/inspections/figures", headers=zd).json()
    direct = db.execute("SELECT count(DISTINCT device_id) AS rooms, count(*) AS n, count(*) FILTER (WHERE has_problem) "
                        "AS bad FROM inspection WHERE school_code IN (SELECT code FROM school WHERE county_code = "
                        "'421303')").fetchone()
    assert (figures["classrooms_inspected"], figures["inspections"], figures["with_problems"]) == (
        direct["rooms"], direct["n"], direct["bad"]) == (2, 3, 2)
    assert figures["problem_share"] == pytest.approx(2 / 3) and figures["classrooms_with_problems"] == 2
    kinds = {k["kind"]: k for k in figures["by_kind"]}
    assert kinds["dedicated"]["inspections"] == 3 and kinds["local"]["problem_share"] is None
    assert {c["code"]: c["inspections"] for c in figures["children"] if c["inspections"]} == {
        session["main_school"]: 2, session["far_school"]: 1}
    last_week = api.get("/api/v1/scopes/county/421303/inspections/figures", headers=zd, params={"period": "last_week"})
    assert last_week.json()["inspections"] == 0

    listed = api.get("/api/v1/scopes/county/421303/inspections", headers=zd, params={"has_problem": True}).json()
    assert [r["device_id"] for r in listed] == [recorder, board]  # newest first
    exported = api.get("/api/v1/scopes/county/421303/inspections", headers=zd, params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 3 and rows[-1]["note"] == "镜头被遮挡"
    book = load_workbook(io.BytesIO(api.get("/api/v1/scopes/county/421303/inspections", headers=zd,
                                            params={"format": "xlsx"}).content))
    assert book.active.max_row == 4
    view = api.get(f"/api/v1/inspection/classrooms/{board}", headers=zd).json()
    assert [i["id"] for i in view["inspections"]] == [made["id"]]
    audit = db.execute("SELECT target FROM audit_log WHERE action = 'inspection.create' ORDER BY id").fetchall()
    assert [a["target"] for a in audit][0] == str(made["id"])

    wuhan = login(api, "wuhan")
    assert api.get("/api/v1/scopes/county/421303/inspections", headers=wuhan).status_code == 404
    assert inspect(board, body, wuhan).status_code == 404
    assert api.get("/api/v1/scopes/city/420100/inspections/figures", headers=wuhan).json()["inspections"] == 0
    assert inspect(board, body, login(api, "zd-viewer")).status_code == 403
    refused = {
        "outside the scope": (session["elsewhere"], body, 404),  # another county's classroom
        "a gateway is no classroom": (session["gateway"], body, 404),
        "not its lesson": (board, {**body, "lesson_id": "L-none"}, 422),
        "another's still": (board, {**body, "snapshot_id": session["ids"][(recorder, "students")]}, 422),
        "local lesson": (board, {**body, "lesson_id": None}, 422),
        "long note": (board, {**body, "note": "很" * 501}, 422),
        "a string for a box": (board, {**body, "picture_ok": "false"}, 422),
        "an unknown field": (board, {**body, "device_id": board}, 422),
    }
    for why, (device, wrong, code) in refused.items():
        answer = inspect(device, wrong, zd)
        assert answer.status_code == code, (why, answer.text)
    assert db.execute("SELECT count(*) AS n FROM inspection").fetchone()["n"] == 3


def test_a_vendor_pushes_stills_of_its_own_devices_only_and_within_the_bounds(api, db, registry, monkeypatch):
    monkeypatch.setattr(push_snapshots, "_INTAKE", [Intake(SnapshotSettings(burst=3, rate_per_s=0.2))])
    registry.area()
    school = registry.school()
    mine, theirs = registry.device(school), registry.device(school)
    db.execute("UPDATE device SET vendor = 'other' WHERE id = %s", (theirs,))
    key = push_service.issue_key(db, "vendor", "test")
    now = datetime.now(UTC)

    def reading(device: str, frame: int, **changes) -> dict:
        return {"device_id": device, **json.loads(payload(device, "panorama", now - timedelta(seconds=frame),
                                                          frame=frame)), **changes}

    batch = [reading(theirs, 1), reading(mine, 1), reading(mine, 2, jpeg=base64.b64encode(b"not a jpeg").decode()),
             reading(mine, 3), reading(mine, 4)]
    r = api.post("/api/v1/ingest/snapshot", json={"readings": batch}, headers={"X-Vendor-Key": key})
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["stored"], body["refused"], body["dead_lettered"]) == (2, 1, 2)
    assert [(x["index"], x["reason"].split(":")[0]) for x in body["rejected"]] == [
        (0, "unknown device id"), (2, "invalid snapshot.jpeg"), (4, "flood limit")]
    assert db.execute("SELECT count(*) AS n FROM snapshot WHERE device_id = %s", (theirs,)).fetchone()["n"] == 0
    reasons = [row["reason"].split(":")[0] for row in db.execute("SELECT reason FROM dead_letter ORDER BY id")]
    assert sorted(reasons) == ["flood limit", "invalid snapshot.jpeg", "vendor mismatch"]
    again = api.post("/api/v1/ingest/snapshot", json={"readings": batch[1:2]}, headers={"X-Vendor-Key": key})
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 1)  # a retry stores nothing twice
