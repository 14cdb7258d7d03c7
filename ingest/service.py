"""The ingest worker: MQTT in, a durable journal, batches to the database.

Three stages, each bounded. The network thread reads the broker's messages in bulk (the
link's bulk reader) and hands each read to a bounded inbox. The journal thread writes them
in batches to the worker's spool on disk (fsynced) and only then acknowledges them to the
broker, all of a batch in one write, so the broker never holds a backlog that its crash
could lose. The writer thread stores the spool's oldest segments in the database and
deletes them after the commit. When the database is away the spool grows, up to its size
bound; past that the journal stops taking messages and the broker keeps them.
"""

import logging
import queue
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from psycopg_pool import ConnectionPool

from core import contract, device_state
from core.contract import Channel
from core.db import open_pool, transaction
from core.flood_limit import DeviceRateLimit
from core.health import HealthServer
from core.mqtt import LinkOptions, MqttLink, Received
from core.process import wait_for_shutdown
from core.settings import PlatformSettings
from core.telemetry_decode import ClockPolicy, Record, Rejected, decode
from core.telemetry_write import RETRYABLE, store_batch
from ingest.settings import IngestSettings
from ingest.spool import Spool, Spooled

log = logging.getLogger(__name__)

# One read of the network thread: (connection generation, arrival time, its messages).
Read = tuple[int, float, list[Received]]
# The channel a stored row came in on, for the messages metric.
_CHANNEL_OF_TABLE = {"board_telemetry": "telemetry", "recorder_telemetry": "telemetry",
                     "gateway_telemetry": "telemetry", "device_event": "event",
                     "device_status_change": "status", "device_command": "ack"}
_CHANNELS = frozenset(c.value for c in Channel)


class Inbox:
    """The bounded hand-off from the network thread to the journal thread: whole reads, one lock
    and one wake-up per read, not per message."""

    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self._reads: deque[Read] = deque()
        self._size = 0
        self._changed = threading.Condition()

    def put(self, generation: int, messages: list[Received], stop: threading.Event) -> None:
        """Hand over one read; blocks while the inbox holds `max_messages` or more (unless stopping)."""
        with self._changed:
            while self._size >= self.max_messages and not stop.is_set():
                self._changed.wait(0.5)
            self._reads.append((generation, time.time(), messages))
            self._size += len(messages)
            self._changed.notify_all()

    def take(self, max_messages: int, wait_s: float, timeout: float) -> list[Read]:
        """Whole reads, oldest first, holding up to `max_messages` (at least one read): waits up to
        `timeout` for a first, then up to `wait_s` for the batch to fill. [] if none came."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._reads, timeout):
                return []
            deadline = time.monotonic() + wait_s
            while self._size < max_messages and (remaining := deadline - time.monotonic()) > 0:
                self._changed.wait(remaining)
            taken, count = [], 0
            while self._reads and (not taken or count + len(self._reads[0][2]) <= max_messages):
                read = self._reads.popleft()
                taken.append(read)
                count += len(read[2])
            self._size -= count
            self._changed.notify_all()  # room again for the network thread
            return taken

    def qsize(self) -> int:
        """Messages waiting for the journal."""
        return self._size

    def empty(self) -> bool:
        """True when no message waits for the journal."""
        return self._size == 0


class IngestMetrics:
    """The worker's own Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("ingest_messages", "Messages received", ["channel"], registry=r)
        self.stored = Counter("ingest_rows_stored", "Rows stored", ["table"], registry=r)
        self.duplicates = Counter("ingest_duplicates", "Redelivered messages skipped", registry=r)
        self.dead_letters = Counter("ingest_dead_letters", "Messages dead-lettered", ["reason"], registry=r)
        self.batch_size = Histogram("ingest_batch_size", "Messages per batch", registry=r,
                                    buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000))
        self.commit_seconds = Histogram("ingest_commit_seconds", "Batch write and commit time", registry=r)
        self.lag_seconds = Gauge("ingest_lag_seconds", "Receive-to-commit time of the last batch", registry=r)
        self.queue_depth = Gauge("ingest_queue_depth", "Messages waiting for the writer", registry=r)
        self.reconnects = Gauge("ingest_broker_connects", "Broker connections made", registry=r)
        self.db_errors = Counter("ingest_db_errors", "Failed batch attempts", registry=r)
        self.callback_errors = Gauge("ingest_callback_errors", "Exceptions in MQTT callbacks", registry=r)
        self.retained_skipped = Counter("ingest_retained_skipped", "Retained replays not ingested", registry=r)
        self.spool_segments = Gauge("ingest_spool_segments", "Journal segments waiting for the database",
                                    registry=r)
        self.spool_bytes = Gauge("ingest_spool_bytes", "Journal bytes waiting for the database", registry=r)
        self.journal_errors = Counter("ingest_journal_errors", "Failed journal writes", registry=r)
        self.journal_quarantined = Gauge("ingest_journal_quarantined", "Unreadable journal segments set aside",
                                         registry=r)
        self.flood_limited = Counter("ingest_flood_limited", "Messages over a device's flood limit", registry=r)
        self.splits = Counter("ingest_batch_splits", "Batches split to isolate rows the database refused",
                              registry=r)


class IngestService:
    """One ingest worker process's moving parts."""

    def __init__(self, platform: PlatformSettings, settings: IngestSettings) -> None:
        self.platform = platform
        self.settings = settings
        self.metrics = IngestMetrics()
        self.policy = ClockPolicy(
            skew_flag=timedelta(seconds=settings.skew_flag_s),
            max_future=timedelta(seconds=settings.max_future_s),
            max_past=timedelta(seconds=settings.max_past_s),
        )
        self.limit = DeviceRateLimit(settings.device_rate_per_s, settings.device_burst,
                                     settings.device_backlog_s)
        # Set when the writer thread died: the process exits so its supervisor restarts it.
        self.failed = threading.Event()
        self._retrying = False  # a batch is waiting for the database to come back
        self._journal_failing = False  # a batch is waiting for the journal's disk
        self._inbox = Inbox(settings.queue_max)
        # the decoder's batch for the writer: (segments, messages, records, rejected), one at most
        self._decoded: queue.Queue[tuple] = queue.Queue(maxsize=1)
        self.spool = Spool(settings.spool_dir or platform.data_dir / "ingest-spool" / settings.worker_id,
                           settings.spool_max_bytes)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_commit = time.time()
        self._lag = 0.0
        self.pool: ConnectionPool | None = None
        self.link = MqttLink(
            platform.require_broker(),
            LinkOptions(
                client_id=f"ingest-{settings.worker_id}",
                persistent=True,
                manual_ack=True,
                receive_maximum=settings.receive_maximum,
                subscriptions=[(contract.subscription(c, settings.share_group or None), contract.QOS)
                               for c in contract.INGESTED],
                skip_retained=True,
                ca_file=str(platform.mqtt_ca_file) if platform.mqtt_ca_file else None,
            ),
            on_publishes=self._receive,
        )
        self.health: HealthServer | None = None

    def _receive(self, messages: list[Received], generation: int) -> None:
        # Runs on the network thread. Blocking here when the inbox is full is the
        # backpressure: the broker keeps what we do not read.
        self._inbox.put(generation, messages, self._stop)

    def start(self) -> None:
        """Open the pool, connect to the broker and start the writer and sweeper."""
        self.pool = open_pool(self.platform.require_database_url(), min_size=1, max_size=3,
                              name=f"ingest-{self.settings.worker_id}")
        for name, target in (("journal", self._journal_loop), ("decoder", self._decode_loop), ("writer", self._write_loop),
                             ("sweeper", self._sweep_loop)):
            t = threading.Thread(target=target, name=f"ingest-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        if self.settings.health_port:
            self.health = HealthServer(self.settings.health_host, self.settings.health_port,
                                       self.metrics.registry, self.readiness)
            self.health.start()
        self.link.start(timeout=30)

    def stop(self, *, end_session: bool = False) -> None:
        """Stop reading, finish the batch in hand, and close everything.

        The persistent session is kept (the broker queues for this worker) unless
        `end_session` is set, as when a worker is retired for good.
        """
        self._stop.set()
        self.link.stop(end_session=end_session)
        for t in self._threads:
            t.join(timeout=10)
        if self.health:
            self.health.stop()
        if self.pool:
            self.pool.close()

    def readiness(self) -> dict:
        """What /readyz reports: broker connected and batches committing."""
        m = self.metrics
        m.callback_errors.set(self.link.callback_errors)
        idle = self._inbox.empty() and self.spool.segments == 0
        fresh = time.time() - self._last_commit < 60
        writing = not self.failed.is_set() and all(t.is_alive() for t in self._threads)
        ready = writing and self.link.connected.is_set() and (idle or fresh)
        return {"ready": ready, "writer_alive": writing, "broker_connected": self.link.connected.is_set(),
                "queue_depth": self._inbox.qsize(), "spool_segments": self.spool.segments,
                "lag_s": round(self._lag, 3),
                "seconds_since_commit": round(time.time() - self._last_commit, 1)}

    def _journal_loop(self) -> None:
        wait_s = self.settings.batch_wait_ms / 1000
        try:
            while not (self._stop.is_set() and self._inbox.empty()):
                reads = self._inbox.take(self.settings.batch_size, wait_s, timeout=0.5)
                if reads:
                    self._journal_with_retry(reads)
                self.metrics.queue_depth.set(self._inbox.qsize())
        except BaseException:
            log.critical("ingest journal failed; the worker stops so that it is restarted", exc_info=True)
            self.failed.set()

    def _journal_with_retry(self, reads: list[Read]) -> None:
        # A retained message is a replay of stored state on (re)subscribe, not something that
        # just happened: live status changes reach our persistent session anyway (some brokers
        # replay to shared subscriptions despite the subscribe option). Acknowledged, not kept.
        kept = [(topic, payload, received) for _, received, messages in reads
                for topic, payload, _mid, _qos, retained in messages if not retained]
        skipped = sum(len(messages) for _, _, messages in reads) - len(kept)
        delay = 0.5
        self.spool.wait_for_room(self._stop)  # full: stop reading, the broker keeps the rest
        while kept:
            try:
                self.spool.append(kept)
                self._journal_failing = False
                break
            except OSError as exc:  # a full or failing disk: keep the batch, acknowledge nothing
                self._journal_failing = True
                self.metrics.journal_errors.inc()
                log.warning("journal write of %d failed (%s); retrying in %.1fs", len(kept), exc, delay)
                if self._stop.wait(delay):
                    return  # unacknowledged: the broker redelivers them
                delay = min(delay * 2, self.settings.db_retry_max_s)
        for generation, _, messages in reads:  # journaled: now the broker may forget them
            self.link.ack_many([m[2] for m in messages if m[3] == 1], generation)
            for _, _, mid, qos, _ in messages:
                if qos == 2:  # never at our subscriptions' QoS 1, but never left unanswered
                    self.link.ack(mid, qos, generation)
        if skipped:
            self.metrics.retained_skipped.inc(skipped)
        self.metrics.spool_segments.set(self.spool.segments)
        self.metrics.spool_bytes.set(self.spool.bytes)

    def _decode_loop(self) -> None:
        # Decodes the journal's next batch while the writer's is in the database: the two overlap
        # (the writer waits on PostgreSQL without the GIL). One batch ahead at most.
        after = None
        try:
            while not self._stop.is_set():
                segments, batch = self.spool.oldest(self.settings.batch_size, timeout=0.5, after=after)
                self.metrics.journal_quarantined.set(self.spool.quarantined)
                if not batch:
                    continue
                decoded = (segments, batch, *self._decode(batch))
                while not self._stop.is_set():
                    try:
                        self._decoded.put(decoded, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                after = segments[-1]
        except BaseException:
            log.critical("ingest decoder failed; the worker stops so that it is restarted", exc_info=True)
            self.failed.set()

    def _write_loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    segments, batch, records, rejected = self._decoded.get(timeout=0.5)
                except queue.Empty:
                    continue
                if self._commit_with_retry(batch, records, rejected):
                    self.spool.remove(segments)  # committed: only now out of the journal
                    self.metrics.spool_segments.set(self.spool.segments)
                    self.metrics.spool_bytes.set(self.spool.bytes)
        except BaseException:
            # The batch in hand is still in the journal: the restarted worker stores it. A
            # worker without its writer must not live on looking healthy.
            log.critical("ingest writer failed; the worker stops so that it is restarted", exc_info=True)
            self.failed.set()

    def _decode(self, batch: list[Spooled]) -> tuple[list[Record], list[Rejected]]:
        records: list[Record] = []
        rejected: list[Rejected] = []
        channels: dict[str, int] = {}
        limited = 0
        limit = self.limit if self.limit.enabled else None
        moments: dict[float, datetime] = {}  # a read's messages share their arrival time
        for topic, payload, received in batch:
            now = moments.get(received)
            if now is None:
                now = moments[received] = datetime.fromtimestamp(received, UTC)
            # judged and dated as of its arrival (a last will is the moment the loss was noticed)
            result = decode(topic, payload, now, self.policy)
            if limit is not None and result.device_id is not None and self._over_limit(result, received):
                result = Rejected(topic, payload, limit.reason, result.device_id)
                limited += 1
            if type(result) is Record:
                records.append(result)
                channel = _CHANNEL_OF_TABLE[result.table]
            else:
                rejected.append(result)
                channel = topic[topic.rfind("/") + 1:]
                channel = channel if channel in _CHANNELS else "other"
            channels[channel] = channels.get(channel, 0) + 1
        for channel, n in channels.items():  # once per batch, not per message: this is the hot path
            self.metrics.messages.labels(channel).inc(n)
        if limited:
            self.metrics.flood_limited.inc(limited)
        return records, rejected

    def _over_limit(self, result: Record | Rejected, received: float) -> bool:
        """True when this message is over its device's flood limit (counted by device time)."""
        # only readings' and events' own times count; a status or an acknowledgement carries none
        timed = type(result) is Record and result.seq is not None
        device_time = result.time.timestamp() if timed else None
        return not self.limit.allow(result.device_id, device_time, received)

    def _commit_with_retry(self, batch: list[Spooled], records: list[Record], rejected: list[Rejected]) -> bool:
        """Store a decoded batch, waiting out database outages; False if stopped before it was stored."""
        delay = 0.5
        while True:
            try:
                started = time.perf_counter()
                outcome = store_batch(self.pool, records, rejected)
                self.metrics.commit_seconds.observe(time.perf_counter() - started)
                self._retrying = False
                break
            except RETRYABLE as exc:
                # The database is away: keep the batch, acknowledge nothing, try again.
                self._retrying = True
                self.metrics.db_errors.inc()
                log.warning("batch of %d not stored (%s); retrying in %.1fs", len(batch), exc, delay)
                if self._stop.wait(delay):
                    return False  # still in the spool: stored after the restart
                delay = min(delay * 2, self.settings.db_retry_max_s)
        self._record(batch, outcome)
        return True

    def _record(self, batch: list[Spooled], outcome) -> None:
        m = self.metrics
        now = time.time()
        self._last_commit = now
        self._lag = now - min(i.received for i in batch)
        m.lag_seconds.set(self._lag)
        m.batch_size.observe(len(batch))
        for table, n in outcome.stored.items():
            m.stored.labels(table).inc(n)
        m.duplicates.inc(outcome.duplicates)
        m.splits.inc(outcome.splits)
        for reason, n in outcome.dead_letters.items():
            m.dead_letters.labels(reason).inc(n)
        m.reconnects.set(self.link.connects)

    def _sweep_loop(self) -> None:
        generation, steady_since = -1, time.monotonic()
        while not self._stop.wait(self.settings.heartbeat_sweep_s):
            if self.link.generation != generation or not self.link.connected.is_set():
                generation, steady_since = self.link.generation, time.monotonic()
            if not self._silence_is_evidence(steady_since):
                continue
            try:
                with transaction(self.pool) as conn:
                    device_state.sweep_silent(conn, self.settings.heartbeat_timeout_s)
            except psycopg.Error as exc:
                log.warning("heartbeat sweep failed: %s", exc)

    def _silence_is_evidence(self, steady_since: float) -> bool:
        """True when a device's silence means the device, not this worker, stopped.

        Only while this worker has been connected for a whole heartbeat timeout (a device
        had time to get a reading through), its writer lives and is not waiting for the
        database, and it is not catching up on a backlog.
        """
        steady = time.monotonic() - steady_since >= self.settings.heartbeat_timeout_s
        writing = not (self.failed.is_set() or self._retrying or self._journal_failing)
        caught_up = self._lag <= 5 and self.spool.segments <= 1 and self._inbox.qsize() <= self.settings.batch_size
        return steady and writing and caught_up and self.link.connected.is_set()


def run(platform: PlatformSettings, settings: IngestSettings) -> None:
    """Run one ingest worker until interrupted."""
    service = IngestService(platform, settings)
    service.start()
    log.info("ingest worker %s running", settings.worker_id)
    try:
        wait_for_shutdown(service.failed)
    finally:
        service.stop()
    if service.failed.is_set():
        raise SystemExit("ingest writer failed")
