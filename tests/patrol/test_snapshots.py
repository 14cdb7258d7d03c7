"""The snapshot intake: stills judged, measured, stored with a bounded history, bad ones dead-lettered;
a device publishes only its own stills (the real broker's access list and guard); and the patrol raises
a remote lesson whose receiving camera is frozen, unless the school's network is down."""

import base64
import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from core import contract
from core.contract import MAX_SNAPSHOT_PAYLOAD_BYTES, CameraSnapshot, Channel
from core.credentials import SNAPSHOTS
from devices.frames import FrameRenderer
from patrol.snapshot_service import SnapshotService
from patrol.snapshots import Intake, SnapshotSettings
from tests.fixtures.devices import wait_for
from tests.patrol.conftest import LESSON_TIME
from tests.security.test_broker_auth import INGEST, NOT_AUTHORIZED, _secured

FRAMES = FrameRenderer()
_seq = itertools.count(1)


def still(device: str, camera: str, frame: int, at: datetime, faults=frozenset(), lesson_id=None) -> bytes:
    """A still's payload as a device publishes it."""
    jpeg = FRAMES.still(device, camera, frame, set(faults))
    return contract.encode(CameraSnapshot(v=1, ts=at, seq=next(_seq), camera=camera, lesson_id=lesson_id,
                                          jpeg=base64.b64encode(jpeg).decode()))


def take(db, intake: Intake, messages: list[tuple[str, bytes]], at: datetime):
    """Judge and store one batch, arriving at `at`, in one transaction."""
    with db.transaction():
        return intake.store(db, intake.judge(db, [(topic, payload, at) for topic, payload in messages]))


def topic(device: str) -> str:
    return contract.topic(device, Channel.SNAPSHOT)


@pytest.fixture
def rooms(registry):
    """A recording classroom and a board, and the school's gateway."""
    registry.area()
    school = registry.school()
    return {"school": school, "recorder": registry.device(school, "recorder"), "board": registry.device(school, room="201"),
            "gateway": registry.device(school, "gateway")}


def test_stills_are_stored_with_their_health_and_each_camera_keeps_a_short_history(db, rooms):
    intake, now = Intake(SnapshotSettings(history=3, rate_per_s=0)), datetime.now(UTC)
    recorder, board = rooms["recorder"], rooms["board"]
    first = take(db, intake, [(topic(recorder), still(recorder, "students", i, now - timedelta(minutes=9 - i)))
                              for i in range(5)]
                 + [(topic(board), still(board, "panorama", i, now - timedelta(minutes=9 - i), {"frozen_picture"}))
                    for i in range(4)]
                 + [(topic(recorder), still(recorder, "teacher", i, now - timedelta(minutes=2 - i), {"black_picture"}))
                    for i in range(3)], now)
    assert (first.stored, first.duplicates, first.dead_letters) == (12, 0, {})
    kept = db.execute("SELECT device_id, camera, count(*) AS n, max(taken_at) AS newest FROM snapshot "
                      "GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    assert [(r["camera"], r["n"]) for r in kept] == [("panorama", 3), ("students", 3), ("teacher", 3)]
    latest = {r["camera"]: r for r in db.execute("SELECT * FROM snapshot_camera")}
    assert latest["panorama"]["problems"] == ["frozen"] and latest["panorama"]["alike"] == 4
    assert latest["students"]["problems"] == [] and latest["teacher"]["problems"] == ["black"]  # alike, yet not
    # called frozen besides: a black picture repeats by nature
    assert latest["students"]["taken_at"] == now - timedelta(minutes=5)  # the newest, not the last stored
    assert first.problems == {"frozen": 2, "black": 3}  # the third and fourth alike stills are frozen

    oldest = db.execute("SELECT min(id) AS id FROM snapshot WHERE camera = 'students'").fetchone()["id"]
    db.execute("INSERT INTO inspection (inspector, device_id, school_code, room, day, lesson_kind, role, snapshot_id, "
               "teacher_present, students_present, picture_ok, sound_ok, board_in_use) "
               "VALUES ('t', %s, %s, '101', current_date, 'local', 'main', %s, true, true, true, true, true)",
               (recorder, rooms["school"], oldest))
    late = take(db, intake, [(topic(recorder), still(recorder, "students", 9 + i, now + timedelta(seconds=i)))
                             for i in range(4)], now)
    assert late.stored == 4
    students = [r["id"] for r in db.execute("SELECT id FROM snapshot WHERE camera = 'students' ORDER BY taken_at")]
    assert len(students) == 4 and students[0] == oldest  # three newest, and the one an inspection points at
    again = take(db, intake, [(topic(recorder), still(recorder, "teacher", 2, now, {"black_picture"}))], now)
    assert (again.stored, again.duplicates) == (0, 1)  # redelivered: the same row


def test_bad_stills_are_dead_lettered_with_the_reason(db, rooms):
    intake, now = Intake(SnapshotSettings(burst=12, rate_per_s=0.2)), datetime.now(UTC)
    recorder, board = rooms["recorder"], rooms["board"]
    good = json.loads(still(board, "panorama", 1, now))
    not_jpeg = {**good, "jpeg": base64.b64encode(b"GIF89a not a jpeg").decode()}
    oversized = {**good, "jpeg": base64.b64encode(b"\xff" * (MAX_SNAPSHOT_PAYLOAD_BYTES * 3 // 4)).decode()}
    outcome = take(db, intake, [
        (topic(board), json.dumps(not_jpeg).encode()),
        (topic(board), json.dumps({**good, "jpeg": "not base64!"}).encode()),
        (topic(board), json.dumps(oversized).encode()),
        (topic(board), json.dumps({**good, "ts": (now - timedelta(hours=2)).isoformat()}).encode()),
        (topic(rooms["gateway"]), json.dumps(good).encode()),
        (topic("X4200000000-0001"), json.dumps(good).encode()),
    ] + [(topic(recorder), still(recorder, "students", i, now - timedelta(seconds=14 - i))) for i in range(14)], now)
    letters = db.execute("SELECT device_id, reason, length(payload) AS size FROM dead_letter ORDER BY id").fetchall()
    reasons = [r["reason"].split(":")[0] for r in letters]
    assert reasons[:6] == ["invalid snapshot.jpeg", "invalid snapshot.jpeg", "payload too large", "clock",
                           "kind mismatch", "unknown device id"]
    assert "not a JPEG image" in letters[0]["reason"] and "should match pattern" in letters[1]["reason"]
    # one device over its rate: twelve at once, the rest dead-lettered without their image
    assert reasons[6:] == ["flood limit", "flood limit"] and outcome.stored == 12
    assert all(r["size"] < 400 for r in letters[6:]) and "left out" in letters[6]["reason"]
    assert outcome.dead_letters == {"invalid snapshot.jpeg": 2, "payload too large": 1, "clock": 1,
                                    "kind mismatch": 1, "unknown device id": 1, "flood limit": 2}


@pytest.fixture
def secured_intake(tmp_path, db, registry, database_url):
    """The secured broker (passwords, access list, guard) and the snapshot intake on its own account."""
    for secured in _secured(tmp_path, db, registry, None):
        service = SnapshotService(secured.platform(SNAPSHOTS, database_url=database_url),
                                  SnapshotSettings(batch_wait_ms=20))
        service.start()
        try:
            yield secured, service
        finally:
            service.stop()
        assert service.link.callback_errors == 0


def test_a_device_publishes_stills_only_as_itself_and_within_the_snapshot_bound(secured_intake, db):
    secured, service = secured_intake
    a, b = secured.devices
    refusals = secured.peer(INGEST)
    refusals.subscribe(contract.subscription(Channel.REFUSED))
    device = secured.peer(a)
    at = datetime.now(UTC)
    forged = still(b, "panorama", 1, at)
    assert device.publish(topic(b), forged) == NOT_AUTHORIZED  # another device's topic: delivered nowhere
    own = still(a, "panorama", 1, at)
    assert 20 * 1024 < len(own) < MAX_SNAPSHOT_PAYLOAD_BYTES  # over the readings' 16 KiB, within the stills' bound
    assert device.publish(topic(a), own) == 0
    assert device.publish(contract.topic(a, Channel.TELEMETRY), own) == NOT_AUTHORIZED  # 16 KiB there
    too_big = b"x" * (MAX_SNAPSHOT_PAYLOAD_BYTES + 1)
    assert device.publish(topic(a), too_big) == NOT_AUTHORIZED
    notices = [json.loads(refusals.next()[1]) for _ in range(3)]
    assert sorted((n["topic"], n["bytes"], n["limit"]) for n in notices) == sorted([
        (topic(b), len(forged), contract.MAX_PAYLOAD_BYTES),  # only a device's own snapshot topic has the larger bound
        (contract.topic(a, Channel.TELEMETRY), len(own), contract.MAX_PAYLOAD_BYTES),
        (topic(a), len(too_big), MAX_SNAPSHOT_PAYLOAD_BYTES)])
    wait_for(lambda: db.execute("SELECT count(*) AS n FROM snapshot").fetchone()["n"] == 1, timeout=20)
    assert db.execute("SELECT device_id FROM snapshot").fetchone()["device_id"] == a
    assert service.metrics.registry.get_sample_value("snapshot_stored_total") == 1


def test_a_frozen_receiving_camera_raises_the_lesson_unless_the_school_is_offline(world, db):
    school = world.school()
    main = world.registry.device(school, "recorder")
    far = world.school()
    receiver, gateway = world.registry.device(far, room="3班"), world.registry.device(far, "gateway")
    world.lesson("L-video", main, [receiver])  # Wednesdays 10:00-10:40; LESSON_TIME is 10:20
    world.state(main, streaming=True)
    intake = Intake(SnapshotSettings(rate_per_s=0))
    stills = [(topic(receiver), still(receiver, "panorama", i, LESSON_TIME - timedelta(minutes=3 - i),
                                      {"frozen_picture"}, "L-video")) for i in range(4)]
    stills += [(topic(main), still(main, "teacher", i, LESSON_TIME - timedelta(minutes=3 - i), (), "L-video"))
               for i in range(4)]
    take(db, intake, stills, LESSON_TIME)

    world.cycle(LESSON_TIME, only={"lesson_video_bad"})
    world.cycle(LESSON_TIME + timedelta(minutes=3), only={"lesson_video_bad"})
    alerts = world.alerts("lesson_video_bad")
    assert [(a["device_id"], a["state"], a["severity"]) for a in alerts] == [(receiver, "firing", "major")]
    assert alerts[0]["detail"]["role"] == "receiving" and alerts[0]["detail"]["cameras"][0]["problems"] == ["frozen"]

    world.offline(gateway, LESSON_TIME)
    world.cycle(LESSON_TIME + timedelta(minutes=4), only={"lesson_video_bad", "gateway_offline"})
    cause = world.alert("gateway_offline", gateway)
    assert world.alert("lesson_video_bad", receiver)["inhibited_by"] == cause["id"]  # one incident: the school

    world.cycle(LESSON_TIME + timedelta(minutes=25), only={"lesson_video_bad"})  # the lesson is over
    assert world.alert("lesson_video_bad", receiver)["state"] == "resolved"
