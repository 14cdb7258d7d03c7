"""Patrol test fixtures: a clock on a school day, device state and readings written straight to the tables."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.calendar import load_calendar
from patrol.engine import CycleResult, run_cycle

TZ = ZoneInfo("Asia/Shanghai")
# Wednesday 26 November 2025, 10:20 local: the third lesson period (10:00-10:40) is running.
LESSON_TIME = datetime(2025, 11, 26, 10, 20, tzinfo=TZ)


@dataclass
class PatrolWorld:
    """Writes device state and readings for one test and runs cycles at chosen moments."""

    db: object
    registry: object

    def school(self, **kw) -> str:
        """A school in the default area."""
        self.registry.area()
        return self.registry.school(**kw)

    def state(self, device: str, *, online: bool = True, status_time: datetime | None = None,
              last_seen: datetime | None = None, streaming: bool | None = None, recording: bool | None = None,
              last_values: dict | None = None) -> None:
        """Set a device's current state."""
        self.db.execute(
            """INSERT INTO device_state (device_id, online, status_time, last_seen, streaming, recording, last_values)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (device_id) DO UPDATE SET online = EXCLUDED.online, status_time = EXCLUDED.status_time,
                   last_seen = EXCLUDED.last_seen, streaming = EXCLUDED.streaming, recording = EXCLUDED.recording,
                   last_values = EXCLUDED.last_values""",
            (device, online, status_time or LESSON_TIME - timedelta(hours=2), last_seen or LESSON_TIME,
             streaming, recording, json.dumps(last_values or {})))

    def offline(self, device: str, since: datetime) -> None:
        """The device went offline at `since`."""
        self.state(device, online=False, status_time=since, last_seen=since)

    def event(self, device: str, type_: str, at: datetime, lesson_id: str | None = None) -> None:
        """A device event."""
        self.db.execute("INSERT INTO device_event (device_id, time, seq, type, lesson_id) VALUES (%s, %s, %s, %s, %s)",
                        (device, at, int(at.timestamp() * 1000), type_, lesson_id))

    def lesson(self, lesson_id: str, main: str, receivers: list[str], starts="10:00", ends="10:40",
               weekday: int = 3) -> None:
        """A weekly remote lesson with its receiving classrooms."""
        self.db.execute(
            """INSERT INTO remote_lesson (id, kind, subject, main_device_id, weekday, starts_at, ends_at, valid_from,
                                          valid_until) VALUES (%s, 'dedicated', '英语', %s, %s, %s, %s,
                                          '2025-09-01', '2026-01-31')""", (lesson_id, main, weekday, starts, ends))
        for i, board in enumerate(receivers):
            self.db.execute("INSERT INTO remote_lesson_receiver VALUES (%s, %s, %s)", (lesson_id, board, f"{i + 1}班"))

    def cycle(self, now: datetime, only: set[str] | None = None) -> CycleResult:
        """One patrol cycle at `now`."""
        return run_cycle(self.db, now, load_calendar(self.db), only=only)

    def alerts(self, rule: str | None = None) -> list[dict]:
        """Every alert (of one rule) as users see it, oldest first."""
        return self.db.execute("SELECT * FROM alert_seen WHERE %(r)s::text IS NULL OR rule_id = %(r)s ORDER BY id",
                               {"r": rule}).fetchall()

    def alert(self, rule: str, device: str) -> dict | None:
        """The newest alert of a rule on a device, as users see it."""
        return self.db.execute(
            "SELECT * FROM alert_seen WHERE rule_id = %s AND device_id = %s ORDER BY id DESC LIMIT 1",
            (rule, device)).fetchone()


@pytest.fixture
def world(db, registry) -> PatrolWorld:
    """The patrol test world, writing through the test database connection, with the default rules."""
    db.execute("SELECT patrol_seed_default_rules()")  # every test's tables are emptied after it
    return PatrolWorld(db, registry)
