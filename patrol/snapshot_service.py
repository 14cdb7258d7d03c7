"""The snapshot intake process (`cockpit snapshots`): camera stills from MQTT into the database.

Its own process with its own broker account (`svc.snapshots`, which may read `edu/dev/+/snapshot`
and nothing else), so decoding pictures never slows the ingest's readings or the patrol's
cycles, and the ingest never subscribes to stills. The network thread hands each still to a
bounded queue and never waits: a still is replaced by the next one a minute later, so when the
writer falls behind new ones are dropped and counted rather than held. The session is not
persistent either: while the intake is away the broker keeps no stills for it. The writer
judges and stores a batch at a time in one transaction (patrol/snapshots.py).
"""

import logging
import queue
import threading
import time
from datetime import UTC, datetime

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from psycopg_pool import ConnectionPool

from core import contract
from core.contract import Channel
from core.db import open_pool, transaction
from core.health import HealthServer
from core.mqtt import LinkOptions, MqttLink
from core.process import wait_for_shutdown
from core.settings import PlatformSettings
from patrol.snapshots import Intake, SnapshotSettings

log = logging.getLogger(__name__)


class SnapshotMetrics:
    """The intake's own Prometheus metrics."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.received = Counter("snapshot_received", "Stills received", registry=r)
        self.stored = Counter("snapshot_stored", "Stills stored", registry=r)
        self.duplicates = Counter("snapshot_duplicates", "Redelivered stills skipped", registry=r)
        self.dropped = Counter("snapshot_dropped", "Stills dropped because the writer was behind", registry=r)
        self.dead_letters = Counter("snapshot_dead_letters", "Stills dead-lettered", ["reason"], registry=r)
        self.problems = Counter("snapshot_problems", "Stored stills with a video problem", ["problem"], registry=r)
        self.batch_seconds = Histogram("snapshot_batch_seconds", "Judge, measure and store one batch", registry=r,
                                       buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5))
        self.queue_depth = Gauge("snapshot_queue_depth", "Stills waiting for the writer", registry=r)
        self.db_errors = Counter("snapshot_db_errors", "Batches the database did not take", registry=r)
        self.callback_errors = Gauge("snapshot_callback_errors", "Exceptions in MQTT callbacks", registry=r)


class SnapshotService:
    """One intake process's moving parts."""

    def __init__(self, platform: PlatformSettings, settings: SnapshotSettings) -> None:
        self.platform = platform
        self.settings = settings
        self.intake = Intake(settings)
        self.metrics = SnapshotMetrics()
        self._inbox: queue.Queue[tuple[str, bytes, datetime]] = queue.Queue(maxsize=settings.queue_max)
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._last_batch = time.time()
        self.pool: ConnectionPool | None = None
        self.health: HealthServer | None = None
        self.link = MqttLink(
            platform.require_broker(),
            LinkOptions(client_id="snapshots",
                        subscriptions=[(contract.subscription(Channel.SNAPSHOT), contract.QOS)],
                        skip_retained=True,
                        ca_file=str(platform.mqtt_ca_file) if platform.mqtt_ca_file else None),
            on_message=self._receive,
        )

    def _receive(self, message) -> None:
        # Network thread: hand over and return at once; a full queue drops the still (counted).
        if message.retain:
            return
        self.metrics.received.inc()
        try:
            self._inbox.put_nowait((message.topic, bytes(message.payload), datetime.now(UTC)))
        except queue.Full:
            self.metrics.dropped.inc()

    def start(self) -> None:
        """Open the pool, start the writer, connect to the broker."""
        self.pool = open_pool(self.platform.require_database_url(), min_size=1, max_size=2, name="snapshots")
        self._writer = threading.Thread(target=self._write_loop, name="snapshot-writer", daemon=True)
        self._writer.start()
        if self.settings.health_port:
            self.health = HealthServer(self.settings.health_host, self.settings.health_port,
                                       self.metrics.registry, self.readiness)
            self.health.start()
        self.link.start(timeout=30)

    def stop(self) -> None:
        """Stop reading, finish the batch in hand, close everything."""
        self.link.stop()
        self._stop.set()
        if self._writer:
            self._writer.join(timeout=30)
        if self.health:
            self.health.stop()
        if self.pool:
            self.pool.close()

    def readiness(self) -> dict:
        """What /readyz reports: broker connected, writer alive."""
        self.metrics.callback_errors.set(self.link.callback_errors)
        alive = self._writer is not None and self._writer.is_alive()
        ready = alive and self.link.connected.is_set()
        return {"ready": ready, "writer_alive": alive, "broker_connected": self.link.connected.is_set(),
                "queue_depth": self._inbox.qsize(), "seconds_since_batch": round(time.time() - self._last_batch, 1)}

    def _next_batch(self) -> list[tuple[str, bytes, datetime]]:
        try:
            batch = [self._inbox.get(timeout=0.5)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.settings.batch_wait_ms / 1000
        while len(batch) < self.settings.batch_size and (remaining := deadline - time.monotonic()) > 0:
            try:
                batch.append(self._inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self._inbox.empty()):
            batch = self._next_batch()
            self.metrics.queue_depth.set(self._inbox.qsize())
            if not batch:
                continue
            try:
                self.take(batch)
            except psycopg.Error as exc:  # the stills of this batch are lost; the next ones come in a minute
                self.metrics.db_errors.inc()
                log.warning("a batch of %d stills was not stored: %s", len(batch), exc)
            except Exception:
                self.metrics.db_errors.inc()
                log.exception("a batch of %d stills failed", len(batch))

    def take(self, batch: list[tuple[str, bytes, datetime]]) -> None:
        """Judge and store one batch in one transaction, and count what it did."""
        started = time.perf_counter()
        with transaction(self.pool) as conn:
            judged = self.intake.judge(conn, batch)
            outcome = self.intake.store(conn, judged)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.stored.inc(outcome.stored)
        self.metrics.duplicates.inc(outcome.duplicates)
        for reason, n in outcome.dead_letters.items():
            self.metrics.dead_letters.labels(reason).inc(n)
        for problem, n in outcome.problems.items():
            self.metrics.problems.labels(problem).inc(n)
        self._last_batch = time.time()


def run(platform: PlatformSettings, settings: SnapshotSettings) -> None:
    """Run the snapshot intake until interrupted."""
    service = SnapshotService(platform, settings)
    service.start()
    log.info("snapshot intake running")
    try:
        wait_for_shutdown()
    finally:
        service.stop()
