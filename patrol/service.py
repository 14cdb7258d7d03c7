"""The patrol service: a cycle every few seconds, last wills handled at once, notices, daily rounds.

One worker thread does all the database work: it waits for a last will from the
network thread (an offline device must not wait for the next cycle) or for the next
cycle, whichever comes first. Notices go out after each cycle's transaction commits.
"""

import logging
import queue
import threading
import time
from datetime import UTC, datetime

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from core import contract
from core.calendar import load_calendar
from core.contract import Channel, DeviceStatus, StatusReason
from core.db import open_pool
from core.health import HealthServer
from core.mqtt import LinkOptions, MqttLink
from core.process import wait_for_shutdown
from core.settings import PlatformSettings
from patrol.engine import CycleResult, device_went_offline, run_cycle
from patrol.notify import Notifier, dispatch
from patrol.report import daily_rounds
from patrol.settings import PatrolSettings

log = logging.getLogger(__name__)


class PatrolMetrics:
    """The service's own Prometheus metrics."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.cycle_seconds = Histogram("patrol_cycle_seconds", "Evaluation cycle time", registry=r,
                                       buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10))
        self.cycles = Counter("patrol_cycles", "Evaluation cycles run", registry=r)
        self.cycle_errors = Counter("patrol_cycle_errors", "Cycles that failed", registry=r)
        self.open_alerts = Gauge("patrol_open_alerts", "Alerts not resolved", registry=r)
        self.hits = Gauge("patrol_conditions", "Conditions true in the last cycle", registry=r)
        self.wills = Counter("patrol_last_wills", "Last wills handled at once", registry=r)
        self.notices = Counter("patrol_notified_alerts", "Alerts notified", ["kind"], registry=r)
        self.send_failures = Gauge("patrol_send_failures", "Channel sends that failed", registry=r)
        self.callback_errors = Gauge("patrol_callback_errors", "Exceptions in MQTT callbacks", registry=r)
        self.invalid_status = Counter("patrol_invalid_status", "Status messages not in the contract", registry=r)


class PatrolService:
    """One patrol process's moving parts."""

    def __init__(self, platform: PlatformSettings, settings: PatrolSettings) -> None:
        self.platform = platform
        self.settings = settings
        self.metrics = PatrolMetrics()
        self._wills: queue.Queue[tuple[str, datetime]] = queue.Queue(maxsize=100_000)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._last_cycle = 0.0
        self._last_full: float | None = None  # monotonic time of the last whole-fleet cycle
        self.pool: ConnectionPool | None = None
        self.link = MqttLink(
            platform.require_broker(),
            LinkOptions(client_id="patrol", subscriptions=[(contract.subscription(Channel.STATUS), contract.QOS)],
                        skip_retained=True,
                        ca_file=str(platform.mqtt_ca_file) if platform.mqtt_ca_file else None),
            on_message=self._receive,
        )
        self.notifier = Notifier(settings, link=self.link, tz=platform.timezone)
        self.health: HealthServer | None = None

    def _receive(self, message) -> None:
        # Network thread: only a last will (the broker saying the connection died) matters here.
        if message.retain:
            return
        try:
            device_id, _ = contract.parse_topic(message.topic)
            status = DeviceStatus.model_validate_json(message.payload, strict=True)
        except (ValueError, ValidationError):
            # the ingest dead-letters it with the reason; here it is simply not a will
            self.metrics.invalid_status.inc()
            return
        if not status.online and status.reason == StatusReason.WILL:
            # a last will carries the time the device connected; the loss happened now (as the ingest dates it)
            self._wills.put_nowait((device_id, datetime.now(UTC)))

    def start(self) -> None:
        """Open the pool, connect to the broker and start the worker."""
        self.pool = open_pool(self.platform.require_database_url(), min_size=1, max_size=2, name="patrol")
        with self.pool.connection() as conn:
            conn.execute("SELECT patrol_seed_default_rules()")
        self.link.start(timeout=30)
        self._worker = threading.Thread(target=self._loop, name="patrol-cycle", daemon=True)
        self._worker.start()
        if self.settings.health_port:
            self.health = HealthServer(self.settings.health_host, self.settings.health_port,
                                       self.metrics.registry, self.readiness)
            self.health.start()

    def stop(self) -> None:
        """Finish the cycle in hand and close everything."""
        self._stop.set()
        if self._worker:
            self._worker.join(timeout=30)
        self.link.stop()
        if self.health:
            self.health.stop()
        if self.pool:
            self.pool.close()

    def readiness(self) -> dict:
        """What /readyz reports: broker connected and cycles running."""
        self.metrics.callback_errors.set(self.link.callback_errors)
        since = time.time() - self._last_cycle
        ready = self.link.connected.is_set() and since < max(60, 4 * self.settings.cycle_s)
        return {"ready": ready, "broker_connected": self.link.connected.is_set(),
                "seconds_since_cycle": round(since, 1), "wills_waiting": self._wills.qsize()}

    def _loop(self) -> None:
        next_cycle = time.monotonic()
        while not self._stop.is_set():
            try:
                device_id, at = self._wills.get(timeout=max(0.0, min(next_cycle - time.monotonic(), 1.0)))
                self._guarded(self._handle_will, device_id, at)
                continue
            except queue.Empty:
                pass
            if time.monotonic() >= next_cycle:
                next_cycle = time.monotonic() + self.settings.cycle_s
                self._guarded(self.cycle, datetime.now(UTC))

    def _guarded(self, fn, *args) -> None:
        try:
            fn(*args)
        except psycopg.Error as exc:
            self.metrics.cycle_errors.inc()
            log.warning("patrol %s failed: %s", fn.__name__, exc)
        except Exception:
            self.metrics.cycle_errors.inc()
            log.exception("patrol %s failed", fn.__name__)

    def _handle_will(self, device_id: str, at: datetime) -> None:
        now = datetime.now(UTC)
        with self.pool.connection() as conn:
            conn.autocommit = True
            device_went_offline(conn, device_id, at, now, load_calendar(conn, self.platform.timezone),
                                self.platform.timezone)
            self._notify(conn, now)
        self.metrics.wills.inc()

    def cycle(self, now: datetime) -> CycleResult:
        """One evaluation (over the whole fleet on the first and every `full_every_s`), the notices it
        calls for, and the daily rounds when due."""
        started = time.perf_counter()
        tz = self.platform.timezone
        full = self._last_full is None or (
            self.settings.full_every_s > 0 and time.monotonic() - self._last_full >= self.settings.full_every_s)
        with self.pool.connection() as conn:
            conn.autocommit = True
            result = run_cycle(conn, now, load_calendar(conn, tz), tz, full=full)
            if full:
                self._last_full = time.monotonic()
            self.metrics.cycle_seconds.observe(time.perf_counter() - started)
            self.metrics.hits.set(result.hits)
            self.metrics.open_alerts.set(result.open_alerts)
            self._notify(conn, now)
            local = now.astimezone(load_calendar(conn, tz).tz)
            if local.strftime("%H:%M") >= self.settings.daily_round_at:
                daily_rounds(conn, now, tz=tz)
        self.metrics.cycles.inc()
        self._last_cycle = time.time()
        return result

    def _notify(self, conn, now: datetime) -> None:
        for kind, n in dispatch(conn, self.notifier, now).items():
            self.metrics.notices.labels(kind).inc(n)
        self.metrics.send_failures.set(self.notifier.failed)


def run(platform: PlatformSettings, settings: PatrolSettings) -> None:
    """Run the patrol until interrupted."""
    service = PatrolService(platform, settings)
    service.start()
    log.info("patrol running, a cycle every %.0f s", settings.cycle_s)
    try:
        wait_for_shutdown()
    finally:
        service.stop()
