"""How simulated devices behave over a school day. Pure state machines, no I/O.

A board is on in school hours and used in lessons (some schools use theirs little, a
few boards never); a recorder streams the remote lessons it is the main classroom of;
a gateway's traffic follows the school day. Faults are injected by the simulator.
"""

import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from core.calendar import SCHOOL_CLOSES, SCHOOL_OPENS, SchoolCalendar
from core.contract import (
    BoardTelemetry,
    Camera,
    CameraRole,
    DeviceEvent,
    EventType,
    GatewayTelemetry,
    RecorderTelemetry,
)

USE_BY_LOCALE = {"urban": 0.75, "town": 0.6, "rural": 0.45}  # share of lessons a board is used in


@dataclass(frozen=True)
class LessonSlot:
    """A remote lesson occurrence on the timetable, seen from one device."""

    lesson_id: str
    weekday: int
    starts_at: time
    ends_at: time
    role: str  # "main" or "receiving"


@dataclass
class SimDevice:
    """One simulated device and the counters it reports cumulatively."""

    id: str
    kind: str
    school_code: str
    locale: str
    uplink_mbps: float = 100.0
    lessons: list[LessonSlot] = field(default_factory=list)
    seq: int = 0
    active_use_s: int = 0
    dropped_frames: int = 0
    storage_free_gb: float = 800.0
    propensity: float = 0.5
    opens_late_min: int = 0
    closes_early_min: int = 0
    in_lesson: str | None = None
    faults: set[str] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def create(cls, id: str, kind: str, school_code: str, locale: str, uplink_mbps: float,
               lessons: list[LessonSlot], start_seq: int) -> "SimDevice":
        """A device with its own deterministic randomness derived from its id."""
        rng = random.Random(zlib.crc32(id.encode()))
        base = USE_BY_LOCALE.get(locale, 0.5)
        never_used = rng.random() < 0.04
        return cls(
            id=id, kind=kind, school_code=school_code, locale=locale, uplink_mbps=uplink_mbps,
            lessons=lessons, seq=start_seq, rng=rng,
            propensity=0.0 if never_used else min(1.0, max(0.05, rng.gauss(base, 0.15))),
            opens_late_min=rng.randint(0, 30), closes_early_min=rng.randint(0, 30),
            active_use_s=rng.randint(0, 3_000_000) if not never_used else 0,
            storage_free_gb=rng.uniform(200, 1500),
        )

    def next_seq(self) -> int:
        """The next sequence number; never reused."""
        self.seq += 1
        return self.seq

    def lesson_now(self, local: datetime) -> LessonSlot | None:
        """The remote lesson this device takes part in right now, if any."""
        for slot in self.lessons:
            if slot.weekday == local.isoweekday() and slot.starts_at <= local.time() < slot.ends_at:
                return slot
        return None


def wants_connection(dev: SimDevice, moment: datetime, cal: SchoolCalendar) -> bool:
    """Whether the device is powered and connected at this moment (before faults)."""
    if "offline" in dev.faults or "network_down" in dev.faults:
        return False
    if dev.kind != "board":
        return True
    local = cal.local(moment)
    if not cal.is_school_day(local.date()):
        return False
    opens = datetime.combine(local.date(), SCHOOL_OPENS, local.tzinfo) + timedelta(minutes=dev.opens_late_min)
    closes = datetime.combine(local.date(), SCHOOL_CLOSES, local.tzinfo) - timedelta(minutes=dev.closes_early_min)
    return opens <= local < closes


def _board(dev: SimDevice, moment: datetime, cal: SchoolCalendar, interval_s: float) -> BoardTelemetry:
    local = cal.local(moment)
    slot = dev.lesson_now(local)
    lesson = cal.lesson_period(moment) is not None
    used = "unused" not in dev.faults and (
        slot is not None or (lesson and dev.rng.random() < dev.propensity))
    if used:
        dev.active_use_s += round(interval_s)
    hot = "overheat" in dev.faults
    disk = 97.5 if "disk_full" in dev.faults else 40 + (zlib.crc32(dev.id.encode()) % 30)
    return BoardTelemetry(
        v=1, ts=moment, seq=dev.next_seq(), kind="board", power_on=True, screen_on=used,
        active_use_s=dev.active_use_s,
        cpu_temp_c=round((88 if hot else 48) + dev.rng.uniform(-4, 6) + (8 if used else 0), 1),
        cpu_load=round(dev.rng.uniform(0.3, 0.7) if used else dev.rng.uniform(0.02, 0.1), 2),
        mem_load=round(dev.rng.uniform(0.35, 0.8), 2), disk_used_pct=disk,
        foreground_app=("远程互动课堂" if slot else dev.rng.choice(["希沃白板5", "PowerPoint", "浏览器"]))
        if used else "桌面",
        os_version="Android 11 / Windows 10 双系统", error_codes=["E_DISK"] if disk > 95 else [],
    )


def _recorder(dev: SimDevice, moment: datetime, cal: SchoolCalendar, interval_s: float) -> RecorderTelemetry:
    slot = dev.lesson_now(cal.local(moment))
    live = slot is not None and "stream_dropped" not in dev.faults
    if live:
        dev.dropped_frames += dev.rng.randint(0, 3) + (400 if "frames_dropping" in dev.faults else 0)
        dev.storage_free_gb = max(0.0, dev.storage_free_gb - 0.02 * interval_s / 60)
    if "storage_low" in dev.faults:
        dev.storage_free_gb = min(dev.storage_free_gb, 8.0)
    cams = [
        Camera(role=role, online=not (role is CameraRole.STUDENTS and "camera_lost" in dev.faults),
               brightness=round(dev.rng.uniform(90, 160) if "black_picture" not in dev.faults else 4.0, 1),
               frozen_frames=25 if "frozen_picture" in dev.faults else dev.rng.randint(0, 2))
        for role in (CameraRole.TEACHER, CameraRole.STUDENTS, CameraRole.BLACKBOARD)
    ]
    return RecorderTelemetry(
        v=1, ts=moment, seq=dev.next_seq(), kind="recorder", recording=live, streaming=live,
        bitrate_kbps=round(dev.rng.uniform(3500, 4200), 0) if live else 0.0,
        dropped_frames=dev.dropped_frames, cameras=cams,
        storage_free_gb=round(dev.storage_free_gb, 1), lesson_id=slot.lesson_id if live else None,
    )


def _gateway(dev: SimDevice, moment: datetime, cal: SchoolCalendar, interval_s: float) -> GatewayTelemetry:
    hours = cal.in_school_hours(moment)
    load = dev.rng.uniform(0.25, 0.6) if hours else dev.rng.uniform(0.01, 0.05)
    if "saturated" in dev.faults:
        load = dev.rng.uniform(0.93, 0.99)
    poor = "lossy" in dev.faults
    aps = max(1, int(dev.uplink_mbps // 50))
    return GatewayTelemetry(
        v=1, ts=moment, seq=dev.next_seq(), kind="gateway", uplink_mbps=dev.uplink_mbps,
        rx_mbps=round(dev.uplink_mbps * load, 1), tx_mbps=round(dev.uplink_mbps * load * 0.3, 1),
        latency_ms=round(dev.rng.uniform(80, 200) if poor else dev.rng.uniform(4, 25), 1),
        loss_pct=round(dev.rng.uniform(5, 9) if poor else dev.rng.uniform(0, 0.8), 2),
        aps_total=aps, aps_online=aps - (aps // 2 if "aps_down" in dev.faults else 0),
        wifi_clients=int(aps * (dev.rng.uniform(8, 25) if hours else dev.rng.uniform(0, 2))),
    )


READING = {"board": _board, "recorder": _recorder, "gateway": _gateway}


def reading(dev: SimDevice, moment: datetime, cal: SchoolCalendar, interval_s: float):
    """The device's periodic telemetry at this moment, advancing its counters."""
    return READING[dev.kind](dev, moment, cal, interval_s)


def lesson_events(dev: SimDevice, moment: datetime, cal: SchoolCalendar) -> list[DeviceEvent]:
    """lesson_start / lesson_end (and stream events for a main room) when a remote lesson begins or ends."""
    slot = dev.lesson_now(cal.local(moment))
    current = slot.lesson_id if slot and "stream_dropped" not in dev.faults else None
    if current == dev.in_lesson:
        return []
    events: list[DeviceEvent] = []
    if dev.in_lesson:
        events.append(_event(dev, moment, EventType.LESSON_END, dev.in_lesson, dev.lessons))
        if dev.kind == "recorder":
            events.append(_event(dev, moment, EventType.STREAM_STOP, dev.in_lesson, dev.lessons))
    if current:
        if dev.kind == "recorder":
            events.append(_event(dev, moment, EventType.STREAM_START, current, dev.lessons))
        events.append(_event(dev, moment, EventType.LESSON_START, current, dev.lessons))
    dev.in_lesson = current
    return events


def _event(dev: SimDevice, moment: datetime, type_: EventType, lesson_id: str,
           lessons: list[LessonSlot]) -> DeviceEvent:
    role = next((s.role for s in lessons if s.lesson_id == lesson_id), None)
    return DeviceEvent(v=1, ts=moment, seq=dev.next_seq(), type=type_, lesson_id=lesson_id, lesson_role=role)


def power_event(dev: SimDevice, moment: datetime, on: bool) -> DeviceEvent:
    """A board's power-on or power-off event."""
    return DeviceEvent(v=1, ts=moment, seq=dev.next_seq(),
                       type=EventType.POWER_ON if on else EventType.POWER_OFF)
