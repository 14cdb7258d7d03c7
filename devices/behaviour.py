"""How simulated devices behave over a school day. Pure state machines, no I/O.

A board is on in school hours and used in lessons (some schools use theirs little, a
few boards never); a recorder streams the remote lessons it is the main classroom of;
a gateway's traffic follows the school day. Faults are injected by the simulator.

A board's habits (how much it is used, when it is switched on and off) and its typical
active-use counter at any time come from one deterministic model (`habits`, `UseModel`):
the simulated past (ops/seed/history.py) writes its rollups and raw readings from it, and
the simulator starts each board's counter where the model (or the board's last stored
reading) leaves it, so the live readings continue the past without a jump.
"""

import hashlib
import random
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from core.calendar import LESSON_PERIODS, SCHOOL_CLOSES, SCHOOL_OPENS, SchoolCalendar
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
NEVER_USED_SHARE = 0.04  # boards nobody uses at all

# --- The typical-use model -------------------------------------------------------------------
# A board is used in lesson time only, up to USE_ENDS (boards are switched off between 17:01 and 17:30),
# on school days only. Boards of one "use class" (USE_CLASSES of them, drawn per board) share
# a day-to-day rhythm: `UseModel.full_use` is what a board of the class used all the time it
# could would use on a day (the term's first weeks less, Fridays less, a random day factor).
# A board uses its propensity (in thousandths) of that, so its counter is
#     base + propensity * F(class, t) // 1000
# where F is the class's cumulative full use since USE_EPOCH, at minute resolution. Every
# figure of a day or an hour is a difference of that counter, so hours add up to their day,
# and the counter never grows faster than time passes.
USE_EPOCH = date(2026, 1, 1)  # the first day of the seeded calendar; use before it is in each board's base
USE_CLASSES = 64
USE_ENDS = time(17, 0)
USE_PERIODS = tuple((start, min(end, USE_ENDS)) for start, end in LESSON_PERIODS if start < USE_ENDS)
OPENS_LATE_MAX_MIN = 29  # a board is on from 07:30 + 0..29 min …
CLOSES_EARLY_MAX_MIN = 29  # … to 17:30 - 0..29 min, so from before the first lesson to after USE_ENDS
RAMP_BREAK_DAYS = 10  # a run of this many days without school (a vacation) starts a term afresh


def _minute(t: time) -> int:
    return t.hour * 60 + t.minute


def _use_seconds_before() -> tuple[int, ...]:
    """Lesson seconds of USE_PERIODS before each minute of the day (index 0..1440)."""
    out = []
    for minute in range(1441):
        out.append(60 * sum(max(0, min(minute, _minute(end)) - _minute(start)) for start, end in USE_PERIODS))
    return tuple(out)


USE_SECONDS_BEFORE = _use_seconds_before()  # by minute of the day
USE_DAY_S = USE_SECONDS_BEFORE[-1]  # 18,600 s: 310 minutes of lessons up to USE_ENDS


def unit(*parts: object) -> float:
    """A number in [0, 1) fixed by the parts: the same on every run, in Python and in SQL (UNIT_SQL)."""
    digest = hashlib.md5(":".join(map(str, parts)).encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


# unit(...) in PostgreSQL: UNIT_SQL.format("concat_ws(':', a, b)") gives the same number.
UNIT_SQL = "(('x' || left(md5({}), 8))::bit(32)::bigint / 4294967296.0)"


@dataclass(frozen=True)
class Habits:
    """How one board is used, fixed by its id: what the simulated past and the simulator share."""

    propensity_milli: int  # share of lesson time it is used in, in thousandths (0: never used)
    use_class: int  # whose day-to-day rhythm it follows (0..USE_CLASSES-1)
    base_s: int  # its active-use counter at USE_EPOCH
    opens_late_min: int  # switched on at 07:30 plus this
    closes_early_min: int  # switched off at 17:30 minus this

    @property
    def propensity(self) -> float:
        """The share of lesson time the board is used in."""
        return self.propensity_milli / 1000

    @property
    def opens_minute(self) -> int:
        """Minute of the day it is switched on (its first reading)."""
        return _minute(SCHOOL_OPENS) + self.opens_late_min

    @property
    def closes_minute(self) -> int:
        """Minute of the day it is switched off (its last reading is the minute before)."""
        return _minute(SCHOOL_CLOSES) - self.closes_early_min


def habits(device_id: str, locale: str) -> Habits:
    """A board's habits: schools use theirs more in town than in the villages, and a few boards never."""
    never = unit(device_id, "never") < NEVER_USED_SHARE
    share = USE_BY_LOCALE.get(locale, 0.5) + 0.5 * (unit(device_id, "propensity") - 0.5)
    return Habits(
        propensity_milli=0 if never else round(1000 * min(1.0, max(0.05, share))),
        use_class=int(unit(device_id, "class") * USE_CLASSES),
        base_s=0 if never else int(unit(device_id, "base") * 3_000_000),
        opens_late_min=int(unit(device_id, "opens") * (OPENS_LATE_MAX_MIN + 1)),
        closes_early_min=int(unit(device_id, "closes") * (CLOSES_EARLY_MAX_MIN + 1)),
    )


WEEKDAY_USE = {1: 1.0, 2: 1.02, 3: 1.0, 4: 0.98, 5: 0.9, 6: 0.95, 7: 0.95}  # isoweekday (6, 7: make-up days)


class UseModel:
    """Typical board use over the school calendar, per use class; cumulative sums kept as they are asked for."""

    def __init__(self, calendar: SchoolCalendar, epoch: date = USE_EPOCH) -> None:
        self.calendar = calendar
        self.epoch = epoch
        self._days: list[date] = []  # epoch, epoch + 1, … as far as computed
        self._school: list[bool] = []
        self._term_day: list[int] = []  # school days since the term began (0 on its first)
        self._full: list[list[int]] = [[] for _ in range(USE_CLASSES)]
        self._before: list[list[int]] = [[] for _ in range(USE_CLASSES)]
        self._off_run = 0
        self._term_count = RAMP_BREAK_DAYS  # the epoch is mid-year: no ramp

    def _extend(self, day: date) -> None:
        while not self._days or self._days[-1] < day:
            d = self._days[-1] + timedelta(days=1) if self._days else self.epoch
            school = self.calendar.is_school_day(d)
            if school:
                if self._off_run >= RAMP_BREAK_DAYS:
                    self._term_count = 0
                n, self._off_run = self._term_count, 0
                self._term_count += 1
            else:
                n, self._off_run = -1, self._off_run + 1
            self._days.append(d)
            self._school.append(school)
            self._term_day.append(n)
            for k in range(USE_CLASSES):
                before = self._before[k][-1] + self._full[k][-1] if self._full[k] else 0
                self._before[k].append(before)
                self._full[k].append(self._day_full_use(k, d, n) if school else 0)

    @staticmethod
    def _day_full_use(use_class: int, day: date, term_day: int) -> int:
        ramp = min(1.0, 0.7 + 0.03 * term_day) * (0.92 + 0.08 * min(1.0, term_day / 80))
        factor = 0.7 + 0.6 * unit("use", use_class, day.isoformat())
        return min(USE_DAY_S, int(USE_DAY_S * ramp * WEEKDAY_USE[day.isoweekday()] * factor))

    def _index(self, day: date) -> int | None:
        if day < self.epoch:
            return None
        self._extend(day)
        return (day - self.epoch).days

    def full_use(self, use_class: int, day: date) -> int:
        """Seconds a board of the class using every lesson minute up to USE_ENDS would use that day."""
        i = self._index(day)
        return 0 if i is None else self._full[use_class][i]

    def full_use_before(self, use_class: int, day: date) -> int:
        """The class's full use from the epoch up to the start of the day."""
        i = self._index(day)
        return 0 if i is None else self._before[use_class][i]

    def is_school_day(self, day: date) -> bool:
        """Whether the model counts the day as a school day (the calendar's answer)."""
        return self.calendar.is_school_day(day)

    def counter(self, h: Habits, moment: datetime) -> int:
        """The board's typical active-use counter at the moment (constant within a minute)."""
        local = self.calendar.local(moment)
        day, minute = local.date(), local.hour * 60 + local.minute
        full = self.full_use_before(h.use_class, day) + \
            self.full_use(h.use_class, day) * USE_SECONDS_BEFORE[minute] // USE_DAY_S
        return h.base_s + h.propensity_milli * full // 1000

    def day_table(self, first: date, last: date) -> dict[str, list]:
        """Columns (day, use_class, full_before, full_use) for every day from `first` to `last` and
        every use class: the model as SQL reads it (ops/seed/history.py)."""
        table: dict[str, list] = {"day": [], "use_class": [], "full_before": [], "full_use": []}
        for i in range((last - first).days + 1):
            d = first + timedelta(days=i)
            for k in range(USE_CLASSES):
                table["day"].append(d)
                table["use_class"].append(k)
                table["full_before"].append(self.full_use_before(k, d))
                table["full_use"].append(self.full_use(k, d))
        return table


def active_hours_upto() -> tuple[int, ...]:
    """For each last-reading minute of a day (0..1439): the hours whose use a board reading every
    minute up to it reports, i.e. the hours h with lesson time in [60h - 1, min(60h + 59, minute)]."""
    out = []
    for last in range(1440):
        hours = 0
        for h in range(24):
            hi = min(60 * h + 59, last)
            if hi >= 60 * h and USE_SECONDS_BEFORE[hi] > USE_SECONDS_BEFORE[max(0, 60 * h - 1)]:
                hours += 1
        out.append(hours)
    return tuple(out)


ACTIVE_HOURS_UPTO = active_hours_upto()


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
    counter_at: datetime | None = None  # the (device) time up to which active_use_s has counted use
    habits: Habits | None = None
    last_use: tuple[datetime, int] | None = None  # a board's newest stored reading: time, active_use_s
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
        """A device with its own deterministic randomness derived from its id, and a board's habits
        from the typical-use model (its counter starts at its base until `resume_use`)."""
        rng = random.Random(zlib.crc32(id.encode()))
        h = habits(id, locale)
        return cls(
            id=id, kind=kind, school_code=school_code, locale=locale, uplink_mbps=uplink_mbps,
            lessons=lessons, seq=start_seq, rng=rng, habits=h, propensity=h.propensity,
            opens_late_min=h.opens_late_min, closes_early_min=h.closes_early_min,
            active_use_s=h.base_s, storage_free_gb=rng.uniform(200, 1500),
        )

    def resume_use(self, model: UseModel, moment: datetime, last: tuple[datetime, int] | None = None) -> None:
        """Start the active-use counter where it stands at `moment` (device time): on from the board's
        last stored reading (`last`: its time and value) by the model's typical use since, or at the
        model's value when nothing is stored. The first reading then adds no more than the time
        since the stored one allows (sql/020_counter_increase.sql)."""
        h = self.habits or habits(self.id, self.locale)
        value = model.counter(h, moment)
        if last is not None:
            at, stored = last
            value = stored + max(0, value - model.counter(h, at))
            moment = max(moment, at)
        self.active_use_s, self.counter_at = value, moment

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
    if used:  # the use since the counter last counted, at most an interval
        since = interval_s if dev.counter_at is None else (moment - dev.counter_at).total_seconds()
        dev.active_use_s += round(min(interval_s, max(0.0, since)))
    if dev.counter_at is None or moment > dev.counter_at:
        dev.counter_at = moment
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
