"""The province simulator: every registered device, following the school day.

Devices are read from the registry, connect over MQTT with their own identity,
report every `interval_s` seconds (spread over the interval; in load mode the interval
follows from a target rate), emit lesson and power events, and suffer the faults of
devices.faults: off the network, a school's network down, overheating, a camera lost,
a stream dropped mid-lesson… A few have a wrong clock, and now and then a message is
sent twice or arrives late, so the cockpit, the ingest and the patrol have something
real to deal with. During its remote lessons each camera of a recording classroom, and of a
receiving classroom's board, sends a still about once a minute (devices/frames.py), black,
frozen, blurred or covered when the device suffers that fault.
"""

import base64
import heapq
import logging
import random
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from core.calendar import SchoolCalendar, load_calendar
from core.contract import CameraSnapshot, Channel, Command, CommandAck, CommandResult
from core.credentials import device_password
from devices.behaviour import (
    LessonSlot,
    SimDevice,
    UseModel,
    lesson_events,
    power_event,
    reading,
    wants_connection,
)
from devices.faults import FAULTS, FaultSchedule, Misbehaviour
from devices.fleet import DeviceConnection, Fleet
from devices.frames import CAMERAS, FrameRenderer
from devices.settings import SimulatorSettings

log = logging.getLogger(__name__)

_DEVICES = """
SELECT d.id, d.kind, d.school_code, s.locale, s.uplink_mbps
FROM device d JOIN school s ON s.code = d.school_code
ORDER BY d.id
"""

_LESSON_SLOTS = """
SELECT l.id, l.weekday, l.starts_at, l.ends_at, l.main_device_id AS device_id, 'main' AS role
FROM remote_lesson l WHERE current_date BETWEEN l.valid_from AND l.valid_until
UNION ALL
SELECT l.id, l.weekday, l.starts_at, l.ends_at, r.device_id, 'receiving'
FROM remote_lesson l JOIN remote_lesson_receiver r ON r.lesson_id = l.id
WHERE current_date BETWEEN l.valid_from AND l.valid_until
"""


# Each board's newest stored reading: its counter goes on from there (one index probe a board).
_LAST_USE = """
SELECT d.id, b.time, b.active_use_s
FROM device d CROSS JOIN LATERAL (
    SELECT t.time, t.active_use_s FROM board_telemetry t WHERE t.device_id = d.id ORDER BY t.time DESC LIMIT 1) b
WHERE d.kind = 'board' AND d.id = ANY(%s)
"""


def load_devices(conn: psycopg.Connection, limit: int | None = None) -> list[SimDevice]:
    """Every registered device with its timetable, as simulator state; a board also with its
    newest stored reading (`last_use`), which `resume_counters` continues."""
    slots: dict[str, list[LessonSlot]] = {}
    for r in conn.execute(_LESSON_SLOTS):
        slots.setdefault(r["device_id"], []).append(
            LessonSlot(r["id"], r["weekday"], r["starts_at"], r["ends_at"], r["role"]))
    start_seq = int(time.time() * 1000)  # monotonic across simulator restarts
    rows = conn.execute(_DEVICES).fetchall()[:limit]
    devices = [SimDevice.create(r["id"], r["kind"], r["school_code"], r["locale"], r["uplink_mbps"],
                                slots.get(r["id"], []), start_seq) for r in rows]
    boards = [d.id for d in devices if d.kind == "board"]
    last = {r["id"]: (r["time"], r["active_use_s"]) for r in conn.execute(_LAST_USE, (boards,))} if boards else {}
    for d in devices:
        d.last_use = last.get(d.id)
    return devices


def resume_counters(devices: list[SimDevice], calendar: SchoolCalendar, now: datetime,
                    clock_offset: dict[str, float] | None = None) -> None:
    """Start every board's active-use counter at `now` (on each device's own clock) where the
    typical-use model, from the board's last stored reading if it has one, puts it: the first live
    reading continues the simulated past (or the previous run) without a jump."""
    model = UseModel(calendar)
    for d in devices:
        if d.kind == "board":
            moment = now + timedelta(seconds=(clock_offset or {}).get(d.id, 0.0))
            d.resume_use(model, moment, d.last_use)


class Simulator:
    """Drives a fleet of simulated devices against a broker."""

    def __init__(self, fleet: Fleet, devices: list[SimDevice], calendar: SchoolCalendar,
                 settings: SimulatorSettings) -> None:
        self.fleet = fleet
        self.devices = {d.id: d for d in devices}
        self.calendar = calendar
        self.settings = settings
        self.rng = random.Random(7)
        self.interval_s = len(devices) / settings.rate if settings.rate else settings.interval_s
        self.faults = FaultSchedule(random.Random(11), {d.id: d.kind for d in devices}, settings.fault_scale)
        self.misbehaviour = Misbehaviour(settings.skewed_share, duplicate_share=settings.duplicate_share,
                                         late_share=settings.late_share)
        self.clock_offset = {d.id: offset for d in devices if (offset := self.misbehaviour.clock_offset(self.rng))}
        resume_counters(devices, calendar, datetime.now(UTC), self.clock_offset)
        self.schools: dict[str, list[str]] = {}
        self._held: dict[str, tuple[Channel, object]] = {}  # a message each that will arrive late
        self._due: list[tuple[float, str]] = []
        self._last_tick = time.time()
        self.frames = FrameRenderer()
        # recording classrooms and receiving classrooms' boards film their lessons: when each sends its next stills
        self._stills_due = {d.id: 0.0 for d in devices
                            if d.kind == "recorder" or any(s.role == "receiving" for s in d.lessons)}
        fleet.on_connected = self._on_connected
        fleet.on_command = self._on_command
        now = time.time()
        for d in devices:
            self.schools.setdefault(d.school_code, []).append(d.id)
            fleet.add(d.id, device_password(settings.device_secret, d.id) if settings.device_secret else None)
            heapq.heappush(self._due, (now + self.rng.uniform(0, self.interval_s), d.id))

    def _on_connected(self, conn: DeviceConnection) -> None:
        dev = self.devices[conn.device_id]
        if dev.kind == "board":
            conn.publish(Channel.EVENT, power_event(dev, datetime.now(UTC), on=True))

    def _on_command(self, conn: DeviceConnection, payload: bytes) -> None:
        try:
            cmd = Command.model_validate_json(payload)
        except ValueError:
            log.warning("device %s got an unreadable command", conn.device_id)
            return
        now = datetime.now(UTC)
        result = CommandResult.REJECTED if cmd.expires_at < now else CommandResult.OK
        note = "expired before delivery" if result is CommandResult.REJECTED else f"{cmd.name.value} done"
        conn.publish(Channel.ACK, CommandAck(v=1, id=cmd.id, ts=now, result=result, message=note))

    def step(self, now: float) -> None:
        """Publish what is due and move devices on or off the network."""
        moment = datetime.fromtimestamp(now, UTC)
        while self._due and self._due[0][0] <= now:
            due, device_id = heapq.heappop(self._due)
            heapq.heappush(self._due, (due + self.interval_s, device_id))
            conn = self.fleet.connections[device_id]
            if conn.connected:
                dev = self.devices[device_id]
                clock = moment + timedelta(seconds=self.clock_offset.get(device_id, 0.0))  # the device's own
                for event in lesson_events(dev, clock, self.calendar):
                    self._send(conn, Channel.EVENT, event)
                self._send(conn, Channel.TELEMETRY, reading(dev, clock, self.calendar, self.interval_s))

    def _send(self, conn: DeviceConnection, channel: Channel, message) -> None:
        """Publish, now and then twice, or late: after the device's next message."""
        if conn.device_id not in self._held and self.rng.random() < self.misbehaviour.late_share:
            self._held[conn.device_id] = (channel, message)
            return
        conn.publish(channel, message)
        if self.rng.random() < self.misbehaviour.duplicate_share:
            conn.publish(channel, message)
        if (late := self._held.pop(conn.device_id, None)) is not None:
            conn.publish(*late)

    def stills(self, now: float) -> None:
        """A still of each camera of every room in a remote lesson whose stills are due (about once a
        `snapshot_interval_s`, the first ones soon after the lesson begins)."""
        interval = self.settings.snapshot_interval_s
        if interval <= 0:
            return
        moment = datetime.fromtimestamp(now, UTC)
        for device_id, due in self._stills_due.items():
            dev, conn = self.devices[device_id], self.fleet.connections[device_id]
            if not conn.connected or dev.lesson_now(self.calendar.local(moment)) is None:
                self._stills_due[device_id] = 0.0
                continue
            if due == 0.0:  # the lesson has just begun (or the device came back): soon, spread out
                self._stills_due[device_id] = now + self.rng.uniform(1, min(20.0, interval))
                continue
            if now < due:
                continue
            self._stills_due[device_id] = due + interval if now - due < interval else now + interval
            for message in camera_stills(self.frames, dev, moment + timedelta(
                    seconds=self.clock_offset.get(device_id, 0.0)), int(now // interval), self.calendar):
                conn.publish(Channel.SNAPSHOT, message)

    def inject(self, device_id: str, fault: str, minutes: float, now: float | None = None) -> None:
        """Make a device suffer a fault now, for some minutes (a school's network for network_down)."""
        if device_id not in self.devices:
            raise KeyError(f"device {device_id} is not simulated here")
        self.faults.inject(device_id, fault, now or time.time(), minutes)
        self._apply(device_id, fault, on=True)

    def _apply(self, device_id: str, fault: str, on: bool) -> None:
        school = self.devices[device_id].school_code
        struck = self.schools[school] if fault == "network_down" else [device_id]
        log.info("fault %s %s on %s", fault, "starts" if on else "ends", device_id)
        for struck_id in struck:
            dev, conn = self.devices[struck_id], self.fleet.connections[struck_id]
            if not on:
                dev.faults.discard(fault)
                continue
            dev.faults.add(fault)
            if FAULTS[fault].cuts_connection:
                conn.wanted = False
                conn.cut()

    def housekeeping(self, now: float) -> None:
        """Once a second: start and end faults, power boards on and off."""
        moment = datetime.fromtimestamp(now, UTC)
        started, ended = self.faults.tick(now, now - self._last_tick)
        self._last_tick = now
        for device_id, fault in ended:
            self._apply(device_id, fault, on=False)
        for device_id, fault in started:
            self._apply(device_id, fault, on=True)
        for device_id, dev in self.devices.items():
            conn = self.fleet.connections[device_id]
            wanted = wants_connection(dev, moment, self.calendar)
            if conn.wanted and not wanted and conn.connected:  # powered off at the end of the day
                conn.publish(Channel.EVENT, power_event(dev, moment, on=False))
                conn.shutdown(moment)
            conn.wanted = wanted
        self.stills(now)

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set."""
        last_housekeeping = 0.0
        while not stop.is_set():
            now = time.time()
            if now - last_housekeeping >= 1.0:
                last_housekeeping = now
                self.housekeeping(now)
            self.step(now)
            self.fleet.poll(0.05)
        self.fleet.close()


# Which camera a fault of one lens strikes: the students' camera of a recording classroom (as a
# camera lost does), the board's only one. A black or frozen picture is the whole device's.
_ONE_LENS = {"recorder": "students", "board": "panorama"}
_WHOLE_DEVICE = {"black_picture", "frozen_picture"}
_ONE_LENS_FAULTS = {"blurred_picture", "covered_camera"}
DARK_ROOMS = 0.1  # rooms that are dark (lights off, curtains drawn) yet perfectly fine: light at a third


def camera_stills(frames: FrameRenderer, dev: SimDevice, moment: datetime, frame: int,
                  calendar: SchoolCalendar) -> list[CameraSnapshot]:
    """A still of each working camera of the device at this moment (its own clock), with its faults."""
    slot = dev.lesson_now(calendar.local(moment))
    light = 0.33 if zlib.crc32(f"{dev.id}:light".encode()) % 1000 < DARK_ROOMS * 1000 else 1.0
    stills = []
    for role in CAMERAS.get(dev.kind, ()):
        if role == "students" and "camera_lost" in dev.faults:
            continue  # an offline camera sends nothing
        faults = {f for f in dev.faults
                  if f in _WHOLE_DEVICE or (f in _ONE_LENS_FAULTS and role == _ONE_LENS.get(dev.kind))}
        jpeg = frames.still(dev.id, role, frame, faults, light)
        stills.append(CameraSnapshot(v=1, ts=moment, seq=dev.next_seq(), camera=role,
                                     lesson_id=slot.lesson_id if slot else None,
                                     jpeg=base64.b64encode(jpeg).decode()))
    return stills


def build(database_url: str, fleet: Fleet, settings: SimulatorSettings, tz: str) -> Simulator:
    """A simulator over the registry in the given database."""
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        devices = load_devices(conn, settings.limit)
        calendar = load_calendar(conn, tz)
    log.info("simulating %d devices", len(devices))
    return Simulator(fleet, devices, calendar, settings)



