"""An audit of the figures that no single hand-built case can fool: random registries, random raw
telemetry with gaps, counter resets and jumps, late, repeated and duplicated readings, the real
rollups refresh, the real API — and every answer checked against a reference written here, straight
from the raw telemetry rows and the registry, from the meaning docs/metrics.md gives each figure.

The reference never reads device_hourly/device_daily/school_hourly/school_daily or the catalogue's
SQL: it replays the readings in the order they were stored, applies the documented counter rules
itself, and counts minutes, hours and days in Python. It runs unchanged on plain PostgreSQL and on
TimescaleDB: the rollups are only ever made by `rollups.service.refresh`, called the way the
rollups service calls it (every so often, each call taking what was received since the last one).

Each example (`worlds()`): a province of 1–3 cities of 1–3 counties of 1–4 schools (random uplink,
stage, students), each with up to 3 devices (board/recorder/gateway) registered and installed at
random moments, some inside the periods asked; 1–5 data days up to 95 days back (today, this Monday,
last Sunday, the 1st… among them); per device up to 3 sessions of readings (1–25, or 700 a minute
apart, 20 s to an hour apart, across midnight too) with events: counter resets, jumps, increases just
past the slack, the same reading again under another seq ("same_time"), redeliveries, late readings
(3 h to 5 days), powered off, gateway readings without latency/loss ("no_value"); holidays on weekdays
and make-up weekend days; 1–3 periods among today, yesterday, this/last week, this/last month and
from/to. The telemetry is stored in the order received, with a refresh after each day that received
any (late readings thus land after their day was rolled up) and a last one now. For the province,
every city and every county the API is asked for every figure that has an `over` formula, and:

(a) the scope's num/den/value (and previous) are its children's combined by the figure's aggregation,
    `change` is value − previous, and the children listed are exactly the scope's children;
(b) value, num/den, previous and previous num/den of the scope and of every child equal the reference,
    and the period's days, `until` (the watermark while running) and its previous period are the doc's;
(c) a city's (county's) figures as a child of its province (city) are its figures as a scope.

The same worlds, with random device_state rows, check the "now" figures (no period) the same way.
A failure lists every disagreement with the example that caused it (AUDIT_SHRINK=1 shrinks it first,
which takes minutes; AUDIT_EXAMPLES=N runs N examples, the "now" test N/2). The cases it found are
pinned, each minimal, as strict xfails at the end of the file.

Readings of the documentation this reference takes where docs/metrics.md leaves room:

* **Counters** (docs "Cumulative counters, guarded"). Each reading is judged when it is stored,
  against the device's previous stored reading in device time: it adds value − previous when that
  is ≥ 0 and ≤ elapsed × rate × 1.01 + 2 × rate (rate 1 s/s for active use); otherwise (reset or
  jump) it adds nothing and the next reading counts from it. A reading older than one already
  stored adds nothing. A reading at the *same* device time as one already stored is a duplicate of
  it and adds nothing ("duplicates count once"; its elapsed time is 0). A redelivery (same device,
  seq and time) is not stored twice. An hour counts at most 3,600 s per board; a day is its hours.
* **Online / powered-on / recording / streaming minutes** are distinct minutes with such a reading.
* **Population over a period.** A device is in service from min(registered_at, local midnight of
  installed_on); "devices" are those in service at `until`. The generator only makes readings at or
  after a device's in-service moment (the ingest refuses unregistered devices, and in-service is at
  the latest the registration), so every reading in a period belongs to a device in service at its
  `until`, and "whose readings count" needs no further reading of the doc. (Readings from before a
  device came into service are checked by one case below, with an assertion true under any reading.)
* **No data.** A child scope with no device in service at `until` has no figures over the period
  (null, not 0), except the registry figures (gigabit share, schools below 100 Mbit/s). A ratio is
  null when its denominator is 0.
* **powered_on_rate_school_hours** over a period: Σ powered-on minutes (around the clock, as the
  doc's source column `device_daily.powered_on_minutes` says) / (boards in service at the end × 600
  × school days begun), each school's numerator capped at its own denominator, so that a figure never
  disagrees with itself across levels (`test_the_powered_on_rate_agrees_with_itself_across_levels`).
* **network_latency_ms / network_poor_loss_share** over a period: each gateway-day's mean is the mean
  of that day's readings that carry the value (duplicates once), weighted by the gateway's online
  minutes that day; days without the value do not weigh. The generator gives a school at most one
  gateway (its uplink): with two, "the gateways' mean" of a school-day is not defined by the doc.
  A gateway's loss stays on one side of METRICS_POOR_LOSS_PCT (all ≤ 3 % or all ≥ 6 %), so the
  share is never decided by float rounding at exactly 5 %.
* **school days** are Monday–Friday, minus `calendar_day` holidays, plus `calendar_day` make-up days;
  "school days of the period begun" runs up to `until`'s day while the period runs.
* **"now"** figures read device_state and the registry as the doc's "formula (now)" column says;
  `silent_devices` counts "no message for more than 24 hours, or never" literally: a device that
  never sent anything is silent; `recorded_hours_7d`/`streamed_hours_7d` are null only without
  recorders (as over a period); use figures look at the last 7 local days including today, over
  the registered boards × the school days among them; a count is null for a scope without devices
  (of that kind), as over a period.

Not covered: the lesson-hours lens (`hours=lessons`), `this_term` (its start needs 240 days of
calendar), rankings/trends/exports (other views of the same numbers), the three classrooms,
communities and equity.
"""

import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from psycopg import sql

from api.metrics import service as metrics_service
from api.metrics.catalogue import FIGURES
from rollups.service import refresh
from tests.fixtures.app import login
from tests.fixtures.services import _REFERENCE

LOCAL = ZoneInfo("Asia/Shanghai")
PROVINCE = "420000"
KEYS = [k for k, f in FIGURES.items() if f.over is not None]  # every figure that has an `over` formula
POOR_LOSS = 5.0  # METRICS_POOR_LOSS_PCT
SILENT_H = 24  # METRICS_SILENT_HOURS
USE_WINDOW = 7  # METRICS_USE_WINDOW_DAYS
EXAMPLES = int(os.environ.get("AUDIT_EXAMPLES", "20"))  # the "now" test runs half as many

# -- what an example is made of ---------------------------------------------------------------------------

STEPS = (20, 45, 60, 61, 90, 150, 600, 1800, 3700)  # seconds between a session's readings
EVENTS = ("reset", "jump", "over", "same_time", "redelivered", "late", "off", "no_value")
# What a gateway's mean latency and loss still get wrong, pinned by its own strict xfail below (a
# repeat at the same instant weighs twice): the property tests leave it out of gateways' readings so
# that the rest stays checked.
GATEWAY_KNOWN = ("same_time",)
LATE = (timedelta(hours=3), timedelta(days=1), timedelta(days=2), timedelta(days=5))  # < 7 days: see rollups


@dataclass(frozen=True)
class Session:
    """A run of readings: `n` readings `step_s` apart from `start_s` into the `day`-th data day."""

    day: int
    start_s: int
    n: int
    step_s: int
    use: float  # share of the elapsed time a board was in use
    flags: int  # recording/streaming pattern (recorders), loss profile (gateways)
    events: tuple[tuple[int, str, int], ...] = ()  # (reading index, event, parameter)


@dataclass(frozen=True)
class State:
    """A device's current state row (the "now" figures)."""

    online: bool
    seen_h: int | None  # last_seen, hours ago (never: None)
    in_use: bool
    recording: bool
    streaming: bool
    latency: float | None
    loss: float | None


@dataclass(frozen=True)
class DeviceSpec:
    kind: str
    registered_h: int  # registered_at, hours before the example began
    installed_d: int | None  # installed_on, days before today (negative: planned), or none
    sessions: tuple[Session, ...]
    state: State | None


@dataclass(frozen=True)
class SchoolSpec:
    uplink: int
    stage: str
    students: int
    devices: tuple[DeviceSpec, ...]


@dataclass(frozen=True)
class World:
    cities: tuple[tuple[tuple[SchoolSpec, ...], ...], ...]  # city → county → schools
    days: tuple[int, ...]  # the data days, as days before today
    holidays: tuple[tuple[int, int], ...]  # (weeks back, weekday 1–5): a weekday without school
    makeups: tuple[tuple[int, int], ...]  # (weeks back, weekday 6–7): a weekend day with school
    periods: tuple[tuple, ...]  # ("yesterday",) … or ("custom", days back of from, days back of to)


def _today() -> date:
    return datetime.now(LOCAL).date()


@st.composite
def sessions(draw, days: int, events: tuple[str, ...] = EVENTS) -> Session:
    long = draw(st.integers(0, 9)) == 9  # now and then a board on all day: 700 readings a minute apart
    n = 700 if long else draw(st.integers(1, 25))
    return Session(
        day=draw(st.integers(0, days - 1)),
        start_s=draw(st.one_of(st.sampled_from((0, 59, 3540, 28_800, 86_340, 86_399)), st.integers(0, 86_399))),
        n=n, step_s=60 if long else draw(st.sampled_from(STEPS)), use=draw(st.sampled_from((0.0, 0.5, 1.0))),
        flags=draw(st.integers(0, 15)),
        events=tuple(draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(events), st.integers(0, 3)),
                                   max_size=4))))


def states() -> st.SearchStrategy[State]:
    hours = st.one_of(st.none(), st.sampled_from((0, 1, 5, 20, 30, 50, 400)))
    value = st.one_of(st.none(), st.sampled_from((1.0, 4.5, 5.0, 8.25, 30.0)))
    return st.builds(State, st.booleans(), hours, st.booleans(), st.booleans(), st.booleans(), value, value)


@st.composite
def devices(draw, days: int, kind: str) -> DeviceSpec:
    registered_h = draw(st.one_of(st.sampled_from((2, 30, 24 * 3, 24 * 40, 24 * 100)), st.integers(1, 24 * 100)))
    if 22 <= registered_h <= 26:  # away from the 24 h of "silent": a request takes time
        registered_h = 27
    events = tuple(e for e in EVENTS if not (kind == "gateway" and e in GATEWAY_KNOWN))
    return DeviceSpec(kind, registered_h, draw(st.one_of(st.none(), st.integers(-3, 100))),
                      tuple(draw(st.lists(sessions(days, events), max_size=3))), draw(st.one_of(st.none(), states())))


@st.composite
def schools(draw, days: int) -> SchoolSpec:
    kinds = draw(st.lists(st.sampled_from(("board", "recorder", "gateway")), max_size=3))
    if kinds.count("gateway") > 1:  # one uplink gateway a school (see the module's docstring)
        kinds = [k for k in kinds if k != "gateway"] + ["gateway"]
    return SchoolSpec(draw(st.sampled_from((50, 100, 300, 1000, 2000))),
                      draw(st.sampled_from(("primary", "junior", "nine_year", "senior", "teaching_point"))),
                      draw(st.integers(0, 2000)), tuple(draw(devices(days, k)) for k in kinds))


@st.composite
def worlds(draw) -> World:
    today = _today()
    edges = sorted({0, 1, 2, today.isoweekday() - 1, today.isoweekday(), today.isoweekday() + 6,
                    today.day - 1, today.day, today.day + 3})  # today, this Monday, last Sunday, the 1st…
    days = tuple(draw(st.lists(st.one_of(st.sampled_from(edges), st.integers(0, 95)), min_size=1, max_size=5)))
    counties = st.lists(st.lists(schools(len(days)), min_size=1, max_size=4), min_size=1, max_size=3)
    cities = tuple(tuple(tuple(c) for c in city) for city in draw(st.lists(counties, min_size=1, max_size=3)))
    named = st.sampled_from(("today", "yesterday", "this_week", "last_week", "this_month", "last_month"))
    custom = st.tuples(st.just("custom"), st.integers(0, 70), st.integers(0, 40)).map(
        lambda t: ("custom", t[1] + t[2], t[1]))
    periods = tuple(draw(st.lists(st.one_of(named.map(lambda p: (p,)), custom), min_size=1, max_size=3,
                                  unique=True)))
    holidays = tuple(draw(st.lists(st.tuples(st.integers(0, 13), st.integers(1, 5)), max_size=2)))
    makeups = tuple(draw(st.lists(st.tuples(st.integers(0, 13), st.integers(6, 7)), max_size=2)))
    return World(cities, days, holidays, makeups, periods)


# -- the readings -------------------------------------------------------------------------------------------

@dataclass
class Reading:
    """One row as written (an INSERT; a redelivery is written again and not stored)."""

    table: str
    device: str
    time: datetime
    seq: int
    received: datetime
    values: dict
    order: int = 0


@dataclass
class Device:
    id: str
    kind: str
    school: str
    registered_at: datetime
    since: datetime  # in service from
    state: State | None


@dataclass
class School:
    code: str
    county: str
    city: str
    uplink: int


@dataclass
class DayStats:
    """What one device did on one local day, worked out here from its stored readings."""

    minutes: set = field(default_factory=set)
    on_minutes: set = field(default_factory=set)
    rec_minutes: set = field(default_factory=set)
    stream_minutes: set = field(default_factory=set)
    hour_use: dict = field(default_factory=lambda: defaultdict(int))
    latency: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    util: float | None = None
    readings: int = 0

    @property
    def use_s(self) -> int:
        return sum(min(u, 3600) for u in self.hour_use.values())  # an hour counts at most an hour


@dataclass
class Built:
    """The registry and telemetry an example wrote, and what each device did each day."""

    now: datetime
    schools: dict[str, School]
    devices: dict[str, Device]
    cities: dict[str, list[str]]
    counties: dict[str, list[str]]
    calendar: dict[date, bool]
    rows: list[Reading]
    stats: dict[str, dict[date, DayStats]] = field(default_factory=dict)

    def is_school_day(self, day: date) -> bool:
        return self.calendar.get(day, day.isoweekday() <= 5)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), LOCAL).astimezone(UTC)


def in_service_since(registered_at: datetime, installed_on: date | None) -> datetime:
    """docs/metrics.md "In service": from the day it was installed (local midnight) or its registration,
    whichever came first, to the hour (its hour counts whole)."""
    since = registered_at if installed_on is None else min(registered_at, midnight(installed_on))
    return since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _readings(dev: Device, spec: DeviceSpec, school: School, days: tuple[int, ...], today: date,
              now: datetime) -> list[Reading]:
    """The rows a device sends: its sessions' readings in device time, with the events applied."""
    planned: dict[datetime, tuple[Session, int]] = {}
    for s in spec.sessions:
        first = midnight(today - timedelta(days=days[s.day])) + timedelta(seconds=s.start_s)
        for i in range(s.n):
            at = first + timedelta(seconds=i * s.step_s)
            if dev.since <= at <= now - timedelta(minutes=5):  # never before in service, never in the future
                planned.setdefault(at, (s, i))  # two sessions at one instant: the first one's reading
    table = f"{dev.kind}_telemetry"
    poor = bool(spec.sessions and spec.sessions[0].flags & 8)  # a gateway's loss: always ≥ 6 % or always ≤ 3 %
    counter, frames = 5_000 + len(dev.id) * 97, 1_000
    out: list[Reading] = []
    previous: datetime | None = None
    for seq, at in enumerate(sorted(planned), start=1):
        s, i = planned[at]
        events = {e: p for j, e, p in s.events if j == i}
        elapsed = 0 if previous is None else int((at - previous).total_seconds())
        previous = at
        if "reset" in events:
            counter, frames = min(max(counter - 1, 0), 100 * events["reset"]), 10 * events["reset"]
        elif "jump" in events:
            counter, frames = counter + 10**6 * (events["jump"] + 1), frames + 10**9
        elif "over" in events:  # just past what the time allows (1 % and two seconds of slack)
            counter += int(elapsed * 1.01) + 3 + events["over"]
        else:
            counter += int(elapsed * s.use)
            frames += (i * 13) % 50
        if dev.kind == "board":
            on = "off" not in events
            values = {"power_on": on, "screen_on": on, "active_use_s": counter}
        elif dev.kind == "recorder":
            values = {"recording": bool(s.flags & 1) and not (i % 4 == 3 and s.flags & 2),
                      "streaming": bool(s.flags & 4) and i % 3 != 2, "dropped_frames": frames,
                      "cameras_total": 2, "cameras_online": 2}
        else:
            blank = "no_value" in events
            values = {"uplink_mbps": float(school.uplink), "rx_mbps": float((i * 37 + s.flags * 13) % 120 * 10),
                      "tx_mbps": 1.0, "latency_ms": None if blank else float(5 + (i * 7 + s.flags) % 60),
                      "loss_pct": None if blank else (6.0 + (i % 5) * 2.0 if poor else float((i + s.flags) % 4)),
                      "aps_total": 4, "aps_online": 4, "wifi_clients": 10}
        delay = LATE[events["late"]] if "late" in events else timedelta(seconds=(i * 7) % 20)
        received = min(at + delay, now - timedelta(minutes=1))
        out.append(Reading(table, dev.id, at, seq, received, values))
        if "same_time" in events:  # the same reading again under another sequence number
            out.append(Reading(table, dev.id, at, seq + 1_000_000, min(received + timedelta(seconds=5 + events[
                "same_time"] * 3600), now - timedelta(seconds=30)), dict(values)))
        if "redelivered" in events:  # the same message again: the same row
            out.append(Reading(table, dev.id, at, seq, min(received + timedelta(hours=1 + events["redelivered"]),
                                                           now - timedelta(seconds=30)), dict(values)))
    return out


def build(db, registry, world: World) -> Built:
    """Write the registry and the calendar, then the telemetry in the order it was received, with the
    rollups refreshed after each day that received any (and once more now), as the service would."""
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.astimezone(LOCAL).date()
    built = Built(now, {}, {}, {}, {}, {}, [])
    specs: dict[str, DeviceSpec] = {}
    for ci, city in enumerate(world.cities):
        city_code = f"42{ci + 1:02d}00"
        built.cities[city_code] = []
        for ki, county in enumerate(city):
            county_code = f"42{ci + 1:02d}{ki + 1:02d}"
            registry.area(PROVINCE, city_code, county_code, names=("湖北省", f"城市{ci}", f"区县{ci}-{ki}"))
            built.cities[city_code].append(county_code)
            built.counties[county_code] = []
            for school_spec in county:
                code = registry.school(county_code, city_code, PROVINCE, stage=school_spec.stage,
                                       students=school_spec.students, uplink_mbps=school_spec.uplink)
                built.schools[code] = School(code, county_code, city_code, school_spec.uplink)
                built.counties[county_code].append(code)
                for spec in school_spec.devices:
                    device_id = registry.device(code, spec.kind)
                    registered = now - timedelta(hours=spec.registered_h, minutes=17)
                    installed = None if spec.installed_d is None else today - timedelta(days=spec.installed_d)
                    db.execute("UPDATE device SET registered_at = %s, installed_on = %s WHERE id = %s",
                               (registered, installed, device_id))
                    built.devices[device_id] = Device(device_id, spec.kind, code, registered,
                                                      in_service_since(registered, installed), spec.state)
                    specs[device_id] = spec
    monday = today - timedelta(days=today.isoweekday() - 1)
    for weeks, weekday in world.holidays + world.makeups:
        day = monday - timedelta(weeks=weeks) + timedelta(days=weekday - 1)
        if day not in built.calendar:
            registry.calendar_day(day, school_day=weekday > 5)
            built.calendar[day] = weekday > 5
    for dev in built.devices.values():
        built.rows += _readings(dev, specs[dev.id], built.schools[dev.school], world.days, today, now)
    for i, r in enumerate(built.rows):
        r.order = i
    arrival = sorted(built.rows, key=lambda r: (r.received, r.order))
    for i, r in enumerate(arrival):
        r.order = i  # the order they are stored in, which the counters are judged in
    pending = list(arrival)
    points = _refresh_points(arrival, datetime.now(UTC) - timedelta(minutes=1))
    for point in [*points, None]:
        batch = [r for r in pending if point is None or r.received <= point]
        pending = pending[len(batch):]
        _insert(db, batch)
        refresh(db, margin="0 seconds", now=point)  # what was received up to then, since the last refresh
    for dev in built.devices.values():
        if dev.state is not None:
            s = dev.state
            last_values = {"kind": dev.kind} | ({k: v for k, v in (("latency_ms", s.latency), ("loss_pct", s.loss))
                                                 if v is not None} if dev.kind == "gateway" else {})
            registry.device_state(dev.id, online=s.online, in_use=s.in_use, recording=s.recording,
                                  streaming=s.streaming, last_values=last_values,
                                  last_seen=None if s.seen_h is None else now - timedelta(hours=s.seen_h, minutes=7))
    registry.user("auditor", "province", PROVINCE, role="admin")
    built.stats = replay(built)
    return built


def _refresh_points(arrival: list[Reading], last: datetime) -> list[datetime]:
    """When the rollups are refreshed (the rows received by then, since the previous refresh): after a day
    that received rows, but only as often as needed — before a late reading arrives, so that it lands on a
    day already rolled up, and often enough that no refresh takes a row older than a week (with TimescaleDB
    a refresh does not look further back: rollups/service.py COMPRESS_AFTER). Fewer refreshes keep an
    example quick where each one refreshes ten continuous aggregates."""
    candidates = sorted({midnight(r.received.astimezone(LOCAL).date() + timedelta(days=1)) + timedelta(minutes=1)
                         for r in arrival} | {last})
    candidates = [c for c in candidates if c <= last]
    late = [r for r in arrival if r.received - r.time >= timedelta(hours=3)]
    week = timedelta(days=7) - timedelta(minutes=5)
    kept: list[datetime] = []
    for i, c in enumerate(candidates[:-1]):
        since = kept[-1] if kept else datetime.min.replace(tzinfo=UTC)
        following = candidates[i + 1]
        oldest = min((r.time for r in arrival if since < r.received <= following), default=following)
        needed = any(r.time < c < r.received and not any(r.time < k for k in kept) for r in late)
        if needed or oldest < following - week:
            kept.append(c)
    return kept


_COLUMNS = {"board_telemetry": ("power_on", "screen_on", "active_use_s"),
            "recorder_telemetry": ("recording", "streaming", "dropped_frames", "cameras_total", "cameras_online"),
            "gateway_telemetry": ("uplink_mbps", "rx_mbps", "tx_mbps", "latency_ms", "loss_pct", "aps_total",
                                  "aps_online", "wifi_clients")}


def _insert(db, rows: list[Reading]) -> None:
    """Rows in the order given, one INSERT each (as the ingest's writer: a redelivery is dropped)."""
    with db.cursor() as cur:
        for table, columns in _COLUMNS.items():
            mine = [r for r in rows if r.table == table]
            if not mine:
                continue
            statement = sql.SQL("INSERT INTO {} (device_id, time, seq, received_at, {}) VALUES ({}) "
                                "ON CONFLICT DO NOTHING").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.Placeholder() * (4 + len(columns))))
            cur.executemany(statement, [(r.device, r.time, r.seq, r.received, *(r.values[c] for c in columns))
                                        for r in mine])


# -- the reference: raw rows → what each device did each day ------------------------------------------------

def replay(built: Built) -> dict[str, dict[date, DayStats]]:
    """Store the rows again in Python, in the order they were stored, judging each counter reading by the
    documented rules; then count each device's minutes, use, values per local day."""
    stored: dict[str, list[Reading]] = defaultdict(list)
    keys: set[tuple] = set()
    increase: dict[int, int] = {}
    for r in sorted(built.rows, key=lambda r: r.order):
        key = (r.device, r.seq, r.time)
        if key in keys:
            continue  # a redelivery: the same row
        keys.add(key)
        mine = stored[r.device]
        if r.table == "board_telemetry":
            increase[id(r)] = _increase(mine, r)
        mine.append(r)
    stats: dict[str, dict[date, DayStats]] = {d: defaultdict(DayStats) for d in built.devices}
    for device, rows in stored.items():
        seen_times: set[datetime] = set()
        for r in rows:
            day = stats[device][r.time.astimezone(LOCAL).date()]
            minute = int(r.time.timestamp()) // 60
            day.readings += 1
            day.minutes.add(minute)
            v = r.values
            if r.table == "board_telemetry":
                if v["power_on"]:
                    day.on_minutes.add(minute)
                day.hour_use[minute // 60] += increase[id(r)]
            elif r.table == "recorder_telemetry":
                if v["recording"]:
                    day.rec_minutes.add(minute)
                if v["streaming"]:
                    day.stream_minutes.add(minute)
            else:
                util = v["rx_mbps"] / v["uplink_mbps"]
                day.util = util if day.util is None else max(day.util, util)
                if r.time not in seen_times:  # a duplicate counts once in a mean
                    if v["latency_ms"] is not None:
                        day.latency.append(v["latency_ms"])
                    if v["loss_pct"] is not None:
                        day.loss.append(v["loss_pct"])
            seen_times.add(r.time)
    return stats


def _increase(stored: list[Reading], r: Reading) -> int:
    """What a board reading adds to its counter, judged against what is stored already."""
    if any(s.time >= r.time for s in stored):
        return 0  # older than a stored reading, or the same instant again: that one counted the span
    before = [s for s in stored if s.time < r.time]
    if not before:
        return 0  # the device's first reading is its base
    prev = max(before, key=lambda s: s.time)
    elapsed = (r.time - prev.time).total_seconds()
    diff = r.values["active_use_s"] - prev.values["active_use_s"]
    return diff if 0 <= diff <= max(elapsed, 0.0) * 1.0 * 1.01 + 2 * 1.0 else 0


# -- the reference: a figure over a period ------------------------------------------------------------------

@dataclass(frozen=True)
class Asked:
    """A period: its days, its instants and how far its figures run."""

    label: str
    first: date
    last: date
    start: datetime
    end: datetime
    until: datetime
    running: bool

    def school_days(self, built: Built) -> int:
        last = min(self.last, self.until.astimezone(LOCAL).date()) if self.running else self.last
        return sum(built.is_school_day(self.first + timedelta(days=i)) for i in range((last - self.first).days + 1))

    @property
    def dates(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def over_period(built: Built, schools: list[str], p: Asked, groups: list[list[str]]) -> dict[str, tuple]:
    """(value, num, den) of every figure over a period for these schools; `groups` are the children
    whose powered-on minutes are capped each on its own ("capped at 1 per child")."""
    devs = [d for d in built.devices.values() if d.school in schools]
    live = [d for d in devs if d.since < p.until]  # in service at until
    minutes = (p.until - p.start).total_seconds() / 60
    school_days = p.school_days(built)

    def days(d: Device) -> list[DayStats]:
        return [built.stats[d.id][day] for day in p.dates if day in built.stats[d.id]]

    def total(d: Device, what) -> float:
        return sum(what(s) for s in days(d))

    def in_service_minutes(d: Device) -> float:
        return (p.until - max(p.start, d.since)).total_seconds() / 60

    online_capped: dict[str, float] = defaultdict(float)  # per kind, capped per school and kind
    device_minutes: dict[str, float] = defaultdict(float)
    for school in schools:
        for kind in ("board", "recorder", "gateway"):
            mine = [d for d in live if d.school == school and d.kind == kind]
            if not mine:
                continue
            dm = sum(in_service_minutes(d) for d in mine)
            om = sum(total(d, lambda s: len(s.minutes)) for d in devs if d.school == school and d.kind == kind)
            online_capped[kind] += min(om, dm)
            device_minutes[kind] += dm
    if not live:  # no device in service: no figures, save the registry's
        out = dict.fromkeys(REFERENCED, (None, None, None))
    else:
        out = {}
        boards = [d for d in live if d.kind == "board"]
        recorders = [d for d in live if d.kind == "recorder"]
        used = sum(total(d, lambda s: s.use_s) > 0 for d in boards)
        on = sum(online_capped.values())
        out["devices"] = _sum(len(live))
        out["online"] = _sum(on / minutes if minutes else None)
        out["online_rate"] = _ratio(on, sum(device_minutes.values()))
        for kind in ("board", "recorder", "gateway"):
            out[f"{kind}_online_rate"] = (_ratio(online_capped[kind], device_minutes[kind]) if kind in device_minutes
                                          else (None, None, None))
        out["silent_devices"] = _sum(sum(total(d, lambda s: s.readings) == 0 for d in live))
        out["boards_in_use_now"] = _sum(used)
        out["recorders_live_now"] = _sum(sum(total(d, lambda s: len(s.stream_minutes)) > 0 for d in recorders))
        out["recorders_recording_now"] = _sum(sum(total(d, lambda s: len(s.rec_minutes)) > 0 for d in recorders))
        use = sum(total(d, lambda s: s.use_s) for d in devs if d.kind == "board")
        out["use_hours_per_board_day"] = _ratio(use / 3600, len(boards) * school_days)
        out["boards_used_today_share"] = _ratio(used, len(boards))
        out["boards_unused_share"] = _ratio(len(boards) - used, len(boards))
        num = den = 0.0
        for school in schools:  # capped school by school: the same at every level
            cap = sum(d.school == school for d in boards) * 600 * school_days
            num += min(sum(total(d, lambda s: len(s.on_minutes)) for d in devs
                           if d.kind == "board" and d.school == school), cap)
            den += cap
        out["powered_on_rate_school_hours"] = _ratio(num, den)
        for key, what in (("recorded_hours_7d", lambda s: len(s.rec_minutes)),
                          ("streamed_hours_7d", lambda s: len(s.stream_minutes))):
            out[key] = _sum(sum(total(d, what) for d in devs if d.kind == "recorder") / 60 if recorders else None)
        gateway_days = [(d, s) for d in devs if d.kind == "gateway" for s in days(d)]
        lat = [(sum(s.latency) / len(s.latency), len(s.minutes)) for _, s in gateway_days if s.latency]
        out["network_latency_ms"] = _ratio(sum(m * w for m, w in lat), sum(w for _, w in lat))
        poor = reporting = 0
        for school in schools:
            loss = [(sum(s.loss) / len(s.loss), len(s.minutes)) for d, s in gateway_days if d.school == school
                    and s.loss]
            weight = sum(w for _, w in loss)
            if weight > 0:
                reporting += 1
                poor += sum(m * w for m, w in loss) / weight >= POOR_LOSS
        out["network_poor_loss_share"] = _ratio(poor, reporting)
        utils = [s.util for _, s in gateway_days if s.util is not None]
        out["peak_utilisation_today"] = _sum(max(utils) if utils else None)
    uplinks = [built.schools[s].uplink for s in schools]
    out["schools_gigabit_share"] = _ratio(sum(u >= 1000 for u in uplinks), len(uplinks))
    out["schools_below_100m"] = _sum(sum(u < 100 for u in uplinks))
    return out


REFERENCED = {"devices", "online", "online_rate", "board_online_rate", "recorder_online_rate", "gateway_online_rate",
              "silent_devices", "boards_in_use_now", "recorders_live_now", "recorders_recording_now",
              "use_hours_per_board_day", "boards_used_today_share", "boards_unused_share",
              "powered_on_rate_school_hours", "recorded_hours_7d", "streamed_hours_7d", "schools_gigabit_share",
              "schools_below_100m", "network_latency_ms", "network_poor_loss_share", "peak_utilisation_today"}


def _sum(num) -> tuple:
    return (None if num is None else round(num, 4), num, None)


def _ratio(num, den) -> tuple:
    return (round(num / den, 4) if num is not None and den else None, num, den)


# -- the reference: a figure now ----------------------------------------------------------------------------

def right_now(built: Built, schools: list[str], now: datetime, groups: list[list[str]]) -> dict[str, tuple]:
    """(value, num, den) of every figure now for these schools, from the registry, the states written and
    the raw readings of the last USE_WINDOW local days."""
    devs = [d for d in built.devices.values() if d.school in schools]
    today = now.astimezone(LOCAL).date()
    window = [today - timedelta(days=i) for i in range(USE_WINDOW)]
    school_days = sum(built.is_school_day(d) for d in window)

    def of(kind=None):
        return [d for d in devs if kind is None or d.kind == kind]

    def state(d: Device) -> State:
        return d.state or State(False, None, False, False, False, None, None)

    def over(d: Device, what, on: list[date]) -> float:
        return sum(what(built.stats[d.id][day]) for day in on if day in built.stats[d.id])

    def count(kind, what) -> tuple:
        return _sum(sum(bool(what(d)) for d in of(kind))) if of(kind) else (None, None, None)

    out: dict[str, tuple] = {}
    out["devices"] = count(None, lambda d: True)
    out["online"] = count(None, lambda d: state(d).online)
    online = sum(state(d).online for d in devs)
    out["online_rate"] = _ratio(online, len(devs)) if devs else (None, None, None)
    for kind in ("board", "recorder", "gateway"):
        out[f"{kind}_online_rate"] = (_ratio(sum(state(d).online for d in of(kind)), len(of(kind))) if of(kind)
                                      else (None, None, None))
    silent = now - timedelta(hours=SILENT_H)
    # no message for more than 24 h: counted from its registration for a device that never sent one
    out["silent_devices"] = count(None, lambda d: d.registered_at < silent if state(d).seen_h is None
                                  else built.now - timedelta(hours=state(d).seen_h, minutes=7) < silent)
    out["boards_in_use_now"] = count("board", lambda d: state(d).online and state(d).in_use)
    out["recorders_live_now"] = count("recorder", lambda d: state(d).online and state(d).streaming)
    out["recorders_recording_now"] = count("recorder", lambda d: state(d).online and state(d).recording)
    boards = of("board")
    if boards:
        use = sum(over(d, lambda s: s.use_s, window) for d in boards)
        out["use_hours_per_board_day"] = _ratio(use / 3600, len(boards) * school_days)
        out["boards_used_today_share"] = _ratio(sum(over(d, lambda s: s.use_s, [today]) > 0 for d in boards),
                                                len(boards))
        out["boards_unused_share"] = _ratio(sum(over(d, lambda s: s.use_s, window) == 0 for d in boards), len(boards))
        num = den = 0.0
        for school in schools:  # capped school by school: the same at every level
            cap = sum(d.school == school for d in boards) * 600 * school_days
            num += min(sum(over(d, lambda s: len(s.on_minutes), window) for d in boards if d.school == school), cap)
            den += cap
        out["powered_on_rate_school_hours"] = _ratio(num, den)
    else:
        for key in ("use_hours_per_board_day", "boards_used_today_share", "boards_unused_share",
                    "powered_on_rate_school_hours"):
            out[key] = (None, None, None)
    recorders = of("recorder")
    out["recorded_hours_7d"] = _sum(sum(over(d, lambda s: len(s.rec_minutes), window) for d in recorders) / 60
                                    if recorders else None)
    out["streamed_hours_7d"] = _sum(sum(over(d, lambda s: len(s.stream_minutes), window) for d in recorders) / 60
                                    if recorders else None)
    uplinks = [built.schools[s].uplink for s in schools]
    out["schools_gigabit_share"] = _ratio(sum(u >= 1000 for u in uplinks), len(uplinks))
    out["schools_below_100m"] = _sum(sum(u < 100 for u in uplinks))
    gateways = of("gateway")
    latency = [state(d).latency for d in gateways if state(d).latency is not None]
    out["network_latency_ms"] = _ratio(sum(latency), len(latency))
    loss = [state(d).loss for d in gateways if state(d).loss is not None]
    out["network_poor_loss_share"] = _ratio(sum(x >= POOR_LOSS for x in loss), len(loss))
    utils = [built.stats[d.id][today].util for d in gateways if today in built.stats[d.id]
             and built.stats[d.id][today].util is not None]
    out["peak_utilisation_today"] = _sum(max(utils) if utils else None)
    return out


# -- asking the API and comparing ---------------------------------------------------------------------------

def expected_days(label: str, today: date, spec: tuple) -> tuple[date, date, date, date]:
    """first, last, and the previous period's first and last, by docs/metrics.md's table."""
    if label in ("today", "yesterday"):
        day = today - timedelta(days=0 if label == "today" else 1)
        return day, day, day - timedelta(days=1), day - timedelta(days=1)
    if label in ("this_week", "last_week"):
        monday = today - timedelta(days=today.isoweekday() - 1 + (0 if label == "this_week" else 7))
        return monday, monday + timedelta(days=6), monday - timedelta(days=7), monday - timedelta(days=1)
    if label in ("this_month", "last_month"):
        first = today.replace(day=1) if label == "this_month" else (today.replace(day=1) - timedelta(days=1)).replace(
            day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        before = (first - timedelta(days=1)).replace(day=1)
        return first, nxt - timedelta(days=1), before, first - timedelta(days=1)
    first, last = today - timedelta(days=spec[1]), today - timedelta(days=spec[2])
    n = (last - first).days + 1
    return first, last, first - timedelta(days=n), first - timedelta(days=1)


def asked(label: str, first: date, last: date, today: date, watermark: datetime) -> Asked:
    start, end = midnight(first), midnight(last + timedelta(days=1))
    running = first <= today <= last
    until = max(start, min(end, watermark)) if running else end  # the moment asked is later than the watermark
    return Asked(label, first, last, start, end, until, running)


def params_of(spec: tuple) -> dict:
    if spec[0] == "custom":
        today = _today()
        return {"from": (today - timedelta(days=spec[1])).isoformat(), "to": (today - timedelta(days=spec[2])).isoformat()}
    return {"period": spec[0]}


def same(got, want, tolerance: float = 1e-6) -> bool:
    if got is None or want is None:
        return got is None and want is None
    return abs(got - want) <= tolerance * max(1.0, abs(want))


def same_value(got, want) -> bool:
    """Values are rounded to 4 decimals by both sides: allow one unit of the last place (float sums)."""
    if got is None or want is None:
        return got is None and want is None
    return abs(got - want) <= 1.0001e-4 + 1e-6 * abs(want)


def compare(where: str, got: dict, want: dict[str, tuple], problems: list[str], prefix: str = "") -> None:
    """One scope's (or child's) answer for every figure against the reference."""
    for key in (k for k in KEYS if k in want):  # a figure without a reference fails the coverage test
        g = got[key]
        value, num, den = want[key]
        what = f"{where} {key}{' ' + prefix if prefix else ''}"
        gv, gn, gd = (g["previous"], g["previous_num"], g["previous_den"]) if prefix else (g["value"], g["num"], g["den"])
        if not same_value(gv, value):
            problems.append(f"{what}: value {gv} (num {gn}, den {gd}), expected {value} (num {num}, den {den})")
        elif value is not None and not (same(gn, num) and (FIGURES[key].aggregation != "ratio" or same(gd, den))):
            problems.append(f"{what}: num/den {gn}/{gd}, expected {num}/{den}")


def combined(got: dict, kids: list[dict], where: str, problems: list[str], period: bool = True) -> None:
    """(a): a scope's value is the combination of its children's numerators and denominators (over a
    period, its previous value too, and change = value − previous)."""
    for key in KEYS:
        f, g = FIGURES[key], got[key]
        pairs = (("value", "num", "den"),) + ((("previous", "previous_num", "previous_den"),) if period else ())
        for value, num, den in pairs:
            nums = [k[key][num] for k in kids if k[key][num] is not None]
            if f.aggregation == "max":
                want_num, want_den = (max(nums) if nums else None), None
            else:
                want_num = sum(nums) if nums else None
                want_den = sum(k[key][den] for k in kids if k[key][den] is not None) if f.aggregation == "ratio" else None
            want = (round(want_num / want_den, 4) if want_num is not None and want_den else None) \
                if f.aggregation == "ratio" else (None if want_num is None else round(want_num, 4))
            if not (same(g[num], want_num) and same(g[den], want_den) and same_value(g[value], want)):
                problems.append(f"{where} {key} {value}: {g[value]} ({g[num]}/{g[den]}) is not the combination of its "
                                f"children's {want} ({want_num}/{want_den})")
        if period and g["change"] != (None if g["value"] is None or g["previous"] is None
                                      else round(g["value"] - g["previous"], 4)):
            problems.append(f"{where} {key}: change {g['change']} ≠ value − previous")


def scopes(built: Built) -> list[tuple[str, str, list[str], dict[str, list[str]]]]:
    """(level, code, its schools, {child code: the child's schools}) of the province, each city and county."""
    out = [("province", PROVINCE, sorted(built.schools),
            {c: [s for k in ks for s in built.counties[k]] for c, ks in built.cities.items()})]
    for city, counties in built.cities.items():
        out.append(("city", city, [s for k in counties for s in built.counties[k]],
                    {k: built.counties[k] for k in counties}))
    for county, schools_ in built.counties.items():
        out.append(("county", county, schools_, {s: [s] for s in schools_}))
    return out


def figures(api, headers, level: str, code: str, **params) -> dict:
    r = api.get(f"/api/v1/scopes/{level}/{code}/figures", params={"keys": ",".join(KEYS), **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def period_problems(api, built: Built, world: World) -> list[str]:
    """Every figure over every period of the example, for the province, each city and each county."""
    headers = login(api, "auditor")
    problems: list[str] = []
    for spec in world.periods:
        answers: dict[tuple, dict] = {}
        for level, code, schools_, kids in scopes(built):
            before = _today()
            body = figures(api, headers, level, code, **params_of(spec))
            after = _today()
            where = f"{level} {code} {spec}"
            mark = watermark(api)
            period = body["period"]
            got_days = (date.fromisoformat(period["from"]), date.fromisoformat(period["to"]),
                        date.fromisoformat(period["previous"]["from"]), date.fromisoformat(period["previous"]["to"]))
            options = {day: expected_days(spec[0], day, spec) for day in (before, after)}
            today = next((day for day, want in options.items() if want == got_days), None)
            if today is None:
                problems.append(f"{where}: days {got_days}, expected {options[before]}")
                continue
            p = asked(spec[0], got_days[0], got_days[1], today, mark)
            q = asked("previous", got_days[2], got_days[3], today, mark)
            if datetime.fromisoformat(period["until"]) != p.until or period["running"] != p.running:
                problems.append(f"{where}: until {period['until']} running {period['running']}, expected {p.until} "
                                f"{p.running}")
            if datetime.fromisoformat(period["previous"]["until"]) != q.until:
                problems.append(f"{where}: previous until {period['previous']['until']}, expected {q.until}")
            kid_codes = sorted(k["code"] for k in body["children"])
            if kid_codes != sorted(kids):
                problems.append(f"{where}: children {kid_codes}, expected {sorted(kids)}")
                continue
            groups = list(kids.values())
            compare(where, body["figures"], over_period(built, schools_, p, groups), problems)
            compare(where, body["figures"], over_period(built, schools_, q, groups), problems, "previous")
            for kid in body["children"]:
                mine = kids[kid["code"]]
                compare(f"{where} child {kid['code']}", kid["figures"], over_period(built, mine, p, [mine]), problems)
                compare(f"{where} child {kid['code']}", kid["figures"], over_period(built, mine, q, [mine]), problems,
                        "previous")
            combined(body["figures"], [k["figures"] for k in body["children"]], where, problems)
            answers[(level, code)] = body
        across_levels(answers, str(spec), problems)
    return problems


def across_levels(answers: dict[tuple, dict], when: str, problems: list[str]) -> None:
    """(c): a city's (county's) figures as a child of its province (city) are its figures as a scope:
    "a figure never disagrees with itself across levels"."""
    for (level, code), body in answers.items():
        below = {"province": "city", "city": "county"}.get(level)
        for kid in body["children"] if below else ():
            own = answers.get((below, kid["code"]))
            for key in KEYS if own else ():
                for value in ("value", "previous") if "previous" in own["figures"][key] else ("value",):
                    as_child, as_scope = kid["figures"][key][value], own["figures"][key][value]
                    if not same_value(as_child, as_scope):
                        problems.append(f"{below} {kid['code']} {when} {key} {value}: {as_child} as a child of {level} "
                                        f"{code}, {as_scope} as a scope")


def watermark(api) -> datetime:
    """How far the rollups have got (rollup_watermark): a running period's figures run up to there."""
    with api.app.state.pool.connection() as conn:
        row = conn.execute("SELECT received_upto FROM rollup_watermark WHERE name = 'telemetry'").fetchone()
    return row["received_upto"] if isinstance(row, dict) else row[0]


def now_problems(api, built: Built) -> list[str]:
    """Every figure now (no period), for the province, each city and each county: (a), (b) and (c)."""
    headers = login(api, "auditor")
    problems: list[str] = []
    answers: dict[tuple, dict] = {}
    for level, code, schools_, kids in scopes(built):
        body = figures(api, headers, level, code)
        where = f"{level} {code} now"
        now = datetime.fromisoformat(body["as_of"])
        kid_codes = sorted(k["code"] for k in body["children"])
        if kid_codes != sorted(kids):
            problems.append(f"{where}: children {kid_codes}, expected {sorted(kids)}")
            continue
        compare(where, body["figures"], right_now(built, schools_, now, list(kids.values())), problems)
        for kid in body["children"]:
            mine = kids[kid["code"]]
            compare(f"{where} child {kid['code']}", kid["figures"], right_now(built, mine, now, [mine]), problems)
        combined(body["figures"], [k["figures"] for k in body["children"]], where, problems, period=False)
        answers[(level, code)] = body
    across_levels(answers, "now", problems)
    return problems


# -- the tests ----------------------------------------------------------------------------------------------

def _clean(db) -> None:
    """Empty every table but those the migrations fill (what an example wrote, and whatever the product
    derived from it: rollups, county totals, current state…), as the `db` fixture does after a test, and
    forget the calendar the API keeps for a few minutes. With TimescaleDB device_* are views: not listed."""
    tables = [r["relname"] for r in db.execute(
        "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace "
        "AND NOT relispartition AND relname <> ALL(%s)", (["schema_migration", *_REFERENCE],))]
    filled = [sql.Identifier(r["t"]) for r in db.execute(sql.SQL(" UNION ALL ").join(  # TRUNCATE costs per table
        sql.SQL("SELECT {} AS t WHERE EXISTS (SELECT 1 FROM {})").format(sql.Literal(t), sql.Identifier(t))
        for t in tables))] if tables else []
    if filled:
        db.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(filled)))
    metrics_service._calendar.clear()  # noqa: SLF001 - forget_calendar() where it exists does just this


# Shrinking a failure can take Hypothesis minutes (it stops after 300 s): the file must stay within its
# time, so a failure is reported as found, with the whole example and every disagreement in the message.
# AUDIT_SHRINK=1 shrinks it; AUDIT_EXAMPLES=N runs more examples.
_PHASES = (Phase.explicit, Phase.reuse, Phase.generate) + ((Phase.shrink,) if os.environ.get("AUDIT_SHRINK") else ())
_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


def _report(problems: list[str], world: World) -> str:
    return f"{len(problems)} disagreement(s) in {world!r}:\n" + "\n".join(problems[:60])


def test_the_reference_covers_every_figure_with_a_period_formula():
    """A figure added to the catalogue needs its reference here before the audit can vouch for it."""
    assert set(KEYS) <= REFERENCED, f"no reference in this file for {sorted(set(KEYS) - REFERENCED)}"


@settings(max_examples=EXAMPLES, deadline=None, phases=_PHASES, suppress_health_check=_HEALTH)
@given(world=worlds())
def test_every_figure_over_a_period_is_what_the_raw_readings_say(db, registry, api, world):
    """(a) each scope is its children combined, (b) every figure, its previous value and the change agree
    with the reference, for the province, each city and each county, (c) no figure disagrees with itself
    across levels."""
    _clean(db)
    built = build(db, registry, world)
    problems = period_problems(api, built, world)
    assert not problems, _report(problems, world)


@settings(max_examples=max(EXAMPLES // 2, 1), deadline=None, phases=_PHASES, suppress_health_check=_HEALTH)
@given(world=worlds())
def test_every_figure_now_is_what_the_states_and_readings_say(db, registry, api, world):
    _clean(db)
    built = build(db, registry, world)
    problems = now_problems(api, built)
    assert not problems, _report(problems, world)


# -- what the audit found: one minimal case each (strict xfails until the product is fixed) ---------------

def _weekday_back() -> int:
    """Days back to the latest weekday at least two days ago (a school day: these tests write no calendar)."""
    today = _today()
    return next(k for k in range(2, 9) if (today - timedelta(days=k)).isoweekday() <= 5)


def _one_county(*schools_: tuple[DeviceSpec, ...], back: int) -> World:
    """A province with one city, one county and these schools' devices, asked about the day `back` days ago."""
    county = tuple(SchoolSpec(1000, "primary", 500, devices) for devices in schools_)
    return World(((county,),), (back,), (), (), (("custom", back, back),))


def _board(*sessions_: Session, registered_h: int = 24 * 200, kind: str = "board", state: State | None = None):
    return DeviceSpec(kind, registered_h, None, sessions_, state)


def _asked(api, world: World, level: str = "county", code: str = "420101") -> dict:
    params = params_of(world.periods[0]) if world.periods else {}
    return figures(api, login(api, "auditor"), level, code, **params)


def test_a_duplicate_at_the_same_instant_adds_no_active_use(db, registry, api):
    """10:00 counter c, 10:01 counter c + 60, and the 10:01 reading again (seq + 1,000,000, 5 s later):
    one minute of use, not two."""
    back = _weekday_back()
    world = _one_county((_board(Session(0, 36_000, 2, 60, 1.0, 0, ((1, "same_time", 0),))),), back=back)
    _clean(db)
    build(db, registry, world)
    use = _asked(api, world)["figures"]["use_hours_per_board_day"]
    assert use["num"] == pytest.approx(60 / 3600)  # got 120 s


@pytest.mark.xfail(strict=True, reason="a reading repeated at the same device time under another seq is stored "
                   "twice and weighs twice in the gateway's mean latency (rollups/service.py _GATEWAY avg(), "
                   "the caggs' sum/count likewise)")
def test_a_duplicate_at_the_same_instant_counts_once_in_a_mean_latency(db, registry, api):
    """Latency 5 ms at 10:00:00 (sent twice) and 12 ms at 10:00:20: the mean is 8.5 ms, not 7.33."""
    back = _weekday_back()
    world = _one_county((_board(Session(0, 36_000, 2, 20, 0.0, 0, ((0, "same_time", 0),)), kind="gateway"),),
                        back=back)
    _clean(db)
    build(db, registry, world)
    assert _asked(api, world)["figures"]["network_latency_ms"]["value"] == 8.5


def test_a_reading_without_latency_does_not_weigh_on_the_mean(db, registry, api):
    """00:59 5 ms; 01:29 no latency; 01:59 19 ms: the day's mean is 12 ms. Plain PostgreSQL used to weigh each
    hour's mean by all its readings, those without a latency too: (5 × 1 + 19 × 2) / 3 = 14.33
    (sql/028_latency_readings.sql)."""
    back = _weekday_back()
    world = _one_county((_board(Session(0, 3540, 3, 1800, 0.0, 0, ((1, "no_value", 0),)), kind="gateway"),),
                        back=back)
    _clean(db)
    build(db, registry, world)
    latency = _asked(api, world)["figures"]["network_latency_ms"]
    assert (latency["value"], latency["den"]) == (12.0, 3)


def test_the_powered_on_rate_agrees_with_itself_across_levels(db, registry, api):
    """One county, two schools, a board each, one school day: one board on 700 minutes (capped at 600), the
    other 10. As a scope the county has (600 + 10) / 1200 = 0.5083; as its city's child, 710 / 1200 = 0.5917."""
    back = _weekday_back()
    world = _one_county((_board(Session(0, 28_800, 700, 60, 0.0, 0)),), (_board(Session(0, 28_800, 10, 60, 0.0, 0)),),
                        back=back)
    _clean(db)
    build(db, registry, world)
    county = _asked(api, world)["figures"]["powered_on_rate_school_hours"]["value"]
    as_child = _asked(api, world, "city", "420100")["children"][0]["figures"]["powered_on_rate_school_hours"]["value"]
    assert county == as_child


@pytest.mark.parametrize(("registered_h", "silent"), [(2, 0), (30, 1)])
def test_a_device_that_never_reported_is_silent_a_day_after_its_registration(db, registry, api, registered_h, silent):
    world = World((((SchoolSpec(1000, "primary", 500, (_board(registered_h=registered_h),)),),),), (0,), (), (), ())
    _clean(db)
    build(db, registry, world)
    assert _asked(api, world)["figures"]["silent_devices"]["value"] == silent


def test_recorders_that_recorded_nothing_recorded_zero_hours_now(db, registry, api):
    world = World((((SchoolSpec(1000, "primary", 500, (_board(kind="recorder"),)),),),), (0,), (), (), ())
    _clean(db)
    build(db, registry, world)
    figures_now = _asked(api, world)["figures"]
    assert (figures_now["recorded_hours_7d"]["value"], figures_now["streamed_hours_7d"]["value"]) == (0.0, 0.0)


def test_a_device_not_in_service_weighs_the_same_whatever_its_neighbours(db, registry, api):
    """Board A in service for months; board B registered 2 h ago, to be installed tomorrow, yet with 11
    readings (10 minutes of use) on the day asked. School 1 has A, school 2 has B, school 3 has A and B.
    Whether B's readings count (docs/metrics.md does not say) or not, they must count the same at school 3
    as at school 2: school 3 − school 1 = school 2. (The committed _PERIOD_SCHOOLS counted them at school 3
    only — `FROM sc JOIN reg n … LEFT JOIN roll r` over all of school_daily; the rollups now count
    in-service hours only.)"""
    back = _weekday_back()
    a = _board(Session(0, 36_000, 11, 60, 1.0, 0))
    b = DeviceSpec("board", 2, -1, (), None)
    world = _one_county((a,), (b,), (a, b), back=back)
    _clean(db)
    built = build(db, registry, world)
    t0 = midnight(_today() - timedelta(days=back)) + timedelta(hours=11)
    not_yet = [d for d in built.devices.values() if d.since > datetime.now(UTC) - timedelta(days=1)]
    for dev in not_yet:
        for i in range(11):
            db.execute("INSERT INTO board_telemetry (device_id, time, seq, received_at, power_on, screen_on, "
                       "active_use_s) VALUES (%s, %s, %s, now(), true, true, %s)",
                       (dev.id, t0 + timedelta(minutes=i), i + 1, 1000 + 60 * i))
    refresh(db, margin="0 seconds")
    kids = {c["code"]: c["figures"] for c in _asked(api, world)["children"]}
    one, two, three = (kids[code] for code in sorted(kids))
    for key in ("use_hours_per_board_day", "board_online_rate", "powered_on_rate_school_hours"):
        assert three[key]["num"] - one[key]["num"] == pytest.approx(two[key]["num"] or 0), key
