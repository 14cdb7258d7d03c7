"""Snapshot intake and the 巡课 wall: stills judged, measured and stored per second, and what a live
refresh of the wall sends to the browser for a county with 200 classrooms in session.

    python -m bench.snapshots                  # 200 classrooms, 300 cameras, 3 stills each
    python -m bench.snapshots --classrooms 400

A temporary PostgreSQL holds one county: half the classrooms are recording classrooms streaming a
remote lesson (two cameras each), half its receiving boards (one camera). The stills are rendered
ahead by the simulator's renderer (devices/frames.py; not timed), a few of them faulty.

Timed: the video-health check alone (decode, measure, judge: one still at a time), and the
intake's whole path — judge, check, store, cut the history — in batches of 100 (the intake's
default), as stills a second. Then the wall: the API's listing of the county (its JSON and its
time), and the cockpit's refresh as the browser receives it: the first draw, a tick when nothing
is new, and a tick in which 1/12 of the classrooms sent a new still (a still a minute, a tick
every 5 s); the state the page sends up with each tick; and the pictures, each fetched once.
"""

import argparse
import base64
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import plotly.utils
import psycopg
from psycopg.rows import dict_row

from core import contract
from core.calendar import load_calendar
from core.contract import CameraSnapshot, Channel
from core.db import migrate
from devices.frames import FrameRenderer
from ops.embedded import EmbeddedPostgres
from patrol.snapshots import Intake, SnapshotSettings
from patrol.video_health import HealthThresholds, measure, problems

COUNTY = "421303"
FAULTS = ({"covered_camera"}, {"frozen_picture"}, {"black_picture"}, {"blurred_picture"})


def county(conn: psycopg.Connection, classrooms: int) -> list[tuple[str, tuple[str, ...]]]:
    """A county whose classrooms are all in session: (device, its cameras) for each."""
    conn.execute("INSERT INTO province VALUES ('420000', '湖北省')")
    conn.execute("INSERT INTO city VALUES ('421300', '420000', '随州市')")
    conn.execute("INSERT INTO county VALUES (%s, '421300', '420000', '曾都区')", (COUNTY,))
    pairs = classrooms // 2
    rooms = []
    for i in range(pairs):
        main, far = f"42130{i:05d}", f"42131{i:05d}"
        for code, name in ((main, f"城区{i}小"), (far, f"乡村{i}教学点")):
            conn.execute("INSERT INTO school (code, name, county_code, city_code, province_code, locale, stage, "
                         "classes, students, teachers) VALUES (%s, %s, %s, '421300', '420000', 'urban', 'primary', "
                         "12, 500, 30)", (code, name, COUNTY))
        recorder, board = f"R{main}-01", f"B{far}-001"
        conn.execute("INSERT INTO device (id, kind, school_code, room, vendor, model) VALUES "
                     "(%s, 'recorder', %s, '录播室', 'v', 'm'), (%s, 'board', %s, '三年级1班', 'v', 'm')",
                     (recorder, main, board, far))
        lesson = f"L{i:05d}"
        conn.execute("INSERT INTO remote_lesson (id, kind, subject, main_device_id, weekday, starts_at, ends_at, "
                     "valid_from, valid_until) VALUES (%s, 'dedicated', '音乐', %s, 1, '08:00', '08:40', "
                     "'2020-01-01', '2030-12-31')", (lesson, recorder))
        conn.execute("INSERT INTO remote_lesson_receiver VALUES (%s, %s, '三年级1班')", (lesson, board))
        conn.execute("INSERT INTO device_state (device_id, online, streaming, last_values) VALUES "
                     "(%s, true, true, %s), (%s, true, NULL, '{}')",
                     (recorder, json.dumps({"lesson_id": lesson}), board))
        rooms += [(recorder, ("students", "teacher")), (board, ("panorama",))]
    return rooms


def render(rooms: list[tuple[str, tuple[str, ...]]], stills: int, now: datetime) -> list[list[tuple[str, bytes, datetime]]]:
    """Each round of stills (one per camera, a minute apart) as the intake receives them."""
    frames, rounds = FrameRenderer(), []
    for r in range(stills):
        at = now - timedelta(minutes=stills - 1 - r)
        batch = []
        for i, (device, cameras) in enumerate(rooms):
            faults = FAULTS[i // 10 % len(FAULTS)] if i % 10 == 0 else set()
            for camera in cameras:
                jpeg = frames.still(device, camera, r, faults)
                message = CameraSnapshot(v=1, ts=at, seq=r + 1, camera=camera, jpeg=base64.b64encode(jpeg).decode())
                batch.append((contract.topic(device, Channel.SNAPSHOT), contract.encode(message), now))
        rounds.append(batch)
    return rounds


def health_per_second(rounds: list) -> float:
    """The video-health check alone: stills a second, one at a time."""
    jpegs = [CameraSnapshot.model_validate_json(p).image() for _, p, _ in rounds[0]]
    t = HealthThresholds()
    started = time.perf_counter()
    for jpeg in jpegs:
        problems(measure(jpeg), t)
    return len(jpegs) / (time.perf_counter() - started)


def intake_per_second(conn: psycopg.Connection, rounds: list, batch: int = 100) -> tuple[float, list[float], float]:
    """The intake's whole path, in batches: stills a second overall, each batch's seconds, and the share of
    the time spent judging (parsing, decoding, measuring: CPU) rather than storing (the database)."""
    intake = Intake(SnapshotSettings(rate_per_s=0, history=6))
    times, judging = [], 0.0
    messages = [m for r in rounds for m in r]
    for i in range(0, len(messages), batch):
        started = time.perf_counter()
        with conn.transaction():
            judged = intake.judge(conn, messages[i:i + batch])
            judging += time.perf_counter() - started
            intake.store(conn, judged)
        times.append(time.perf_counter() - started)
    return len(messages) / sum(times), times, judging / sum(times)


def _bytes(value) -> int:
    return len(json.dumps(value, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False).encode())


def wall(conn: psycopg.Connection, now: datetime) -> dict:
    """The API's listing and the cockpit's refresh, in bytes."""
    from api.inspection import service
    from api.inspection.models import Wall
    from dashboard.app import create_app

    create_app()  # registers the pages
    from dashboard import inspection_figures as fig
    from dashboard.pages.inspection import wall_tiles

    calendar = load_calendar(conn)
    started = time.perf_counter()
    listing = service.wall(conn, "county", COUNTY, calendar, now)
    seconds = time.perf_counter() - started
    api_json = Wall.model_validate(listing).model_dump_json().encode()
    figures = {"classrooms_inspected": 0, "inspections": 0, "problem_share": None}
    rooms = json.loads(api_json)["classrooms"]

    choices = (listing["subjects"], [{"code": s["code"], "name": s["name"]} for s in listing["schools"]])

    def response(grid, shown, before=None) -> int:
        """What Dash sends for one tick of the page's refresh callback (dashboard/pages/inspection.py)."""
        options = {"inspection-subject": {"options": [{"label": s, "value": s} for s in listing["subjects"]]},
                   "inspection-school": {"options": [{"label": s["name"], "value": s["code"]}
                                                     for s in listing["schools"]]}}
        return _bytes({"multi": True, "response": {
            "inspection-tiles": {"children": wall_tiles(json.loads(api_json), figures, "zh")},
            **({} if grid is None else {"inspection-grid": {"children": grid}}),
            "inspection-shown": {"data": shown},
            **(options if fig.choices_changed(before, shown) else {}),
            "inspection-count": {"children": "显示 200 间,共 200 间"},
            "inspection-as-of": {"children": "数据时间 2026-11-30 10:20:00"}, "inspection-error": {"children": None}}})

    first, shown = fig.refresh(rooms, "zh", None, choices)
    still, same = fig.refresh(rooms, "zh", shown, choices)
    changed = [{**r, "snapshot_id": r["snapshot_id"] + 10**6, "image": r["image"].replace("size=thumb", "size=thumb&n=1")}
               if i % 12 == 0 else r for i, r in enumerate(rooms)]
    patch, _ = fig.refresh(changed, "zh", same, choices)
    pictures = conn.execute("SELECT avg(octet_length(thumb)) AS thumb, avg(octet_length(jpeg)) AS full "
                            "FROM snapshot").fetchone()
    return {"classrooms": len(rooms), "api_bytes": len(api_json), "api_seconds": seconds,
            "first_draw": response(first, shown), "quiet_tick": response(still, same, shown),
            "tick_with_new": response(patch, same, same), "new_in_tick": sum(1 for i in range(len(rooms)) if i % 12 == 0),
            "state_up": _bytes(same), "thumb": pictures["thumb"], "full": pictures["full"]}


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classrooms", type=int, default=200)
    parser.add_argument("--stills", type=int, default=3, help="stills per camera")
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="bench-snapshots-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        try:
            migrate(pg.url)
            with psycopg.connect(pg.url, row_factory=dict_row, autocommit=True) as conn:
                rooms = county(conn, args.classrooms)
                rounds = render(rooms, args.stills, now)
                size = statistics.mean(len(p) for r in rounds for _, p, _ in r)
                print(f"{len(rooms)} classrooms, {sum(len(c) for _, c in rooms)} cameras, "
                      f"{sum(len(r) for r in rounds)} stills of {size / 1024:.0f} KiB (payload, base64) on average")
                print(f"video-health check alone: {health_per_second(rounds):.0f} stills/s (one core)")
                rate, times, judging = intake_per_second(conn, rounds)
                print(f"intake (judge, check, store, cut history; batches of 100): {rate:.0f} stills/s; "
                      f"batch median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
                      f"{judging:.0%} of it judging and checking, the rest storing")
                w = wall(conn, now)
            print(f"wall of {w['classrooms']} classrooms: API listing {w['api_bytes'] / 1024:.1f} KiB "
                  f"in {w['api_seconds'] * 1000:.0f} ms")
            print(f"cockpit refresh to the browser: first draw {w['first_draw'] / 1024:.1f} KiB, a tick with nothing "
                  f"new {w['quiet_tick'] / 1024:.1f} KiB, a tick with {w['new_in_tick']} new stills "
                  f"{w['tick_with_new'] / 1024:.1f} KiB; state sent up each tick {w['state_up'] / 1024:.1f} KiB")
            print(f"pictures, each fetched once: the wall's copy {w['thumb'] / 1024:.1f} KiB, "
                  f"the still {w['full'] / 1024:.1f} KiB on average")
        finally:
            pg.stop("immediate")


if __name__ == "__main__":
    main()
