"""Nothing the broker acknowledged is lost when a process crashes with a backlog queued.

The ingest takes each message off the broker into its own fsynced journal before
acknowledging it, so a backlog (PostgreSQL away here) waits on the worker's disk, not in
the broker's memory. The broker and the ingest are each killed -9 with that backlog
queued; a ledger of the publisher's PUBACKs is checked against what is stored.
"""

import os
import pwd
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from core import contract
from core.contract import BoardTelemetry, Channel
from core.credentials import derived_password, device_password, ingest_account
from core.db import migrate
from core.settings import PROJECT_ROOT, PlatformSettings
from ingest.service import IngestService
from ingest.settings import IngestSettings
from ingest.spool import Spool, Spooled, read_segment
from ops.broker_auth import write_files
from ops.embedded import EmbeddedMosquitto, EmbeddedPostgres, guard_plugin
from tests.fixtures.devices import wait_for
from tests.fixtures.factories import Registry
from tests.ingest.test_reliability import Publisher

pytestmark = pytest.mark.slow

DEVICES = [f"DUR-{i:03d}" for i in range(10)]
# Above a whole province's average (~3,500 readings/s).
RATE = 5000
PRODUCTION_CONF = PROJECT_ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
SECRET, PLATFORM_SECRET = "durability-device-secret-0123456789", "durability-platform-secret-0123456789"


def _register(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        registry = Registry(conn)
        registry.area()
        school = registry.school()
        for device in DEVICES:
            registry.device(school, device_id=device)


def _stored(url: str) -> set[tuple[str, int]]:
    with psycopg.connect(url) as conn:
        return set(conn.execute("SELECT device_id, seq FROM board_telemetry").fetchall())


def _acknowledged(publisher: Publisher, sent: dict[int, tuple[str, int]]) -> set[tuple[str, int]]:
    return {sent[mid] for mid in publisher.acked if mid in sent}


def _publish(publisher: Publisher, per_device: int, rate: float = 0,
             sent: dict[int, tuple[str, int]] | None = None, devices: list[str] = DEVICES,
             first_seq: int = 1) -> dict[int, tuple[str, int]]:
    """Readings round-robin over the devices, one second of device time apart, at up to `rate`
    messages a second (0: as fast as possible); fills and returns mid -> (device, seq)."""
    sent = {} if sent is None else sent
    base = datetime.now(UTC) - timedelta(seconds=first_seq + per_device)
    started = time.monotonic()
    for seq in range(first_seq, first_seq + per_device):
        if rate and (ahead := (seq - first_seq) * len(devices) / rate - (time.monotonic() - started)) > 0:
            time.sleep(ahead)
        for device in devices:
            reading = BoardTelemetry(v=1, ts=base + timedelta(seconds=seq), seq=seq, kind="board", power_on=True,
                                     screen_on=True, active_use_s=seq)
            info = publisher.client.publish(contract.topic(device, Channel.TELEMETRY), contract.encode(reading), qos=1)
            publisher.infos.append(info)
            sent[info.mid] = (device, seq)
    return sent


@pytest.fixture
def stack(tmp_path):
    """Own PostgreSQL and broker, so both can be stopped and killed."""
    pg = EmbeddedPostgres(tmp_path / "pg").start()
    url = pg.create_database("durability")
    migrate(url)
    _register(url)
    broker = EmbeddedMosquitto(tmp_path / "broker").start()
    yield pg, url, broker
    broker.kill()
    pg.stop("immediate")


def _worker(url: str, mqtt_url: str, spool_dir, worker_id: str, rate: float = 2) -> IngestService:
    platform = PlatformSettings(database_url=url, mqtt_url=mqtt_url, env="test")
    return IngestService(platform, IngestSettings(worker_id=worker_id, batch_wait_ms=50, spool_dir=spool_dir,
                                                  device_rate_per_s=rate, db_retry_max_s=1))


class ProductionBroker(EmbeddedMosquitto):
    """The broker run with production's own `deploy/mosquitto/mosquitto.conf` (autosave every
    10 s, passwords, ACLs, client id = username), its container paths mapped to folders here."""

    def __init__(self, root, auth_dir) -> None:
        super().__init__(root)
        self.auth_dir = auth_dir

    def _write_conf(self) -> None:
        text = PRODUCTION_CONF.read_text()
        for production, here in (("listener 1883", f"listener {self.port} 127.0.0.1"),
                                 ("/mosquitto/auth", str(self.auth_dir)), ("/mosquitto/data/", f"{self.root}/"),
                                 ("log_dest stdout", f"log_dest file {self.log}"),
                                 ("/mosquitto/plugins/guard.so", str(guard_plugin()))):
            assert production in text, f"production config changed: {production!r} is gone"
            text = text.replace(production, here)
        self.conf.write_text(text + f"user {pwd.getpwuid(os.geteuid()).pw_name}\n")


def _journaled(service: IngestService) -> int:
    return sum(len(read_segment(p)) for p in service.spool.directory.glob("*.seg"))


def _kill_broker_with_a_backlog(pg, url: str, broker: EmbeddedMosquitto, service: IngestService,
                                publisher_url: str, devices: list[str]) -> None:
    """With PostgreSQL away, publish 10,000 readings at RATE; as soon as the ingest has taken them
    (well within the broker's autosave interval, so the broker has not saved them), kill -9 the
    broker and restart it; publish 10,000 more; every one acknowledged is stored, once."""
    service.start()
    subscribed = time.time()
    # The broker's own sessions (the ingest's subscription) are durable from its next save on.
    saved = broker.root / "mosquitto.db"
    wait_for(lambda: saved.exists() and saved.stat().st_mtime > subscribed + 0.1, timeout=30)
    pg.stop()  # the database is away: the backlog builds up
    publisher = Publisher(publisher_url)
    unrouted: list[int] = []  # PUBACK 0x10 "no matching subscribers": dropped, not acknowledged as stored
    publisher.client.on_publish = lambda _c, _u, mid, rc, _p: (
        publisher.acked.add(mid) if rc == 0 else unrouted.append(mid))
    half = 10_000 // len(devices)
    try:
        sent: dict[int, tuple[str, int]] = {}
        _publish(publisher, half, RATE, sent, devices)
        publisher.flush(60)
        wait_for(lambda: _journaled(service) >= len(sent), timeout=60)
        broker.kill()  # kill -9 with the backlog queued; its last save is older than the backlog
        acked_before_crash = _acknowledged(publisher, sent)
        broker.start()  # same port and data
        _publish(publisher, half, RATE, sent, devices, first_seq=half + 1)
        publisher.flush(120)
        pg.start()
        every = _acknowledged(publisher, sent)
        try:
            wait_for(lambda: every <= _stored(url), timeout=120)
        finally:
            stored = _stored(url)
            print(f"broker killed -9 with {len(acked_before_crash)} acknowledged readings queued: "
                  f"{len(acked_before_crash - stored)} of them lost; {len(stored)} of {len(sent)} stored; "
                  f"{len(unrouted)} unrouted")
        assert not unrouted, f"{len(unrouted)} readings found no subscriber"
        assert acked_before_crash <= stored
        assert len(stored) == len(sent) == 20_000
    finally:
        publisher.close()
        service.stop(end_session=True)


def test_broker_killed_with_a_backlog_queued_loses_no_acknowledged_reading(stack, tmp_path):
    pg, url, broker = stack
    service = _worker(url, broker.url, tmp_path / "spool", f"dur-{uuid.uuid4().hex[:6]}")
    _kill_broker_with_a_backlog(pg, url, broker, service, broker.url, DEVICES)


def test_the_production_broker_killed_with_a_backlog_loses_no_acknowledged_reading(stack, tmp_path):
    """The same with production's broker configuration, accounts and access list."""
    pg, url, embedded = stack
    embedded.kill()
    worker_id = f"dur-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(url) as conn:
        passwords, _acl = write_files(conn, tmp_path / "auth", SECRET, PLATFORM_SECRET, None,
                                      ingest_workers=[worker_id])
    broker = ProductionBroker(tmp_path / "production", passwords.parent).start()
    try:
        account = ingest_account(worker_id)
        ingest_url = f"mqtt://{account}:{derived_password(PLATFORM_SECRET, account)}@127.0.0.1:{broker.port}"
        device = DEVICES[0]  # a device may publish only as itself: one device, one reading a second
        device_url = f"mqtt://{device}:{device_password(SECRET, device)}@127.0.0.1:{broker.port}"
        service = _worker(url, ingest_url, tmp_path / "spool", worker_id, rate=0)
        _kill_broker_with_a_backlog(pg, url, broker, service, device_url, [device])
    finally:
        broker.kill()


def test_ingest_killed_with_its_journal_full_stores_everything_after_restart(stack, tmp_path):
    """kill -9 of the worker while its journal holds the backlog: the next run stores it, once."""
    pg, url, broker = stack
    worker_id = f"dur-{uuid.uuid4().hex[:6]}"
    spool = tmp_path / "spool"
    env = {**os.environ, "COCKPIT_DATABASE_URL": url, "COCKPIT_MQTT_URL": broker.url, "COCKPIT_ENV": "test",
           "INGEST_SPOOL_DIR": str(spool), "INGEST_BATCH_WAIT_MS": "50", "INGEST_DB_RETRY_MAX_S": "1"}
    args = [sys.executable, "-m", "ops.cli", "ingest", "--worker-id", worker_id]
    worker = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publisher = Publisher(broker.url)
    try:
        wait_for(lambda: _stored(url) if _publish_one(publisher) else False, timeout=30)  # subscribed, writing
        pg.stop()
        sent = _publish(publisher, 500)
        publisher.flush(60)
        wait_for(lambda: sum(len(read_segment(p)) for p in spool.glob("*.seg")) >= 5000, timeout=60)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        pg.start()
        worker = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        expected = set(sent.values())
        wait_for(lambda: expected <= _stored(url), timeout=120)
        with psycopg.connect(url) as conn:
            rows, distinct = conn.execute("SELECT count(*), count(DISTINCT (device_id, seq)) FROM board_telemetry "
                                          "WHERE seq < 1000000000").fetchone()
        assert rows == distinct == 5000, "everything stored, nothing twice"
        wait_for(lambda: not list(spool.glob("*.seg")), timeout=30)
    finally:
        publisher.close()
        worker.kill()
        worker.wait(10)


def _publish_one(publisher: Publisher) -> bool:
    reading = BoardTelemetry(v=1, ts=datetime.now(UTC), seq=10**9, kind="board", power_on=True, screen_on=True,
                             active_use_s=1)
    publisher.client.publish(contract.topic(DEVICES[0], Channel.TELEMETRY), contract.encode(reading), qos=1)
    return True


def test_a_torn_journal_write_is_discarded_and_whole_segments_kept(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append([Spooled("edu/dev/A01/telemetry", b"{}", 1.0), Spooled("edu/dev/A02/event", b"\x00\xff", 2.0)])
    (tmp_path / "000000000002.tmp").write_bytes(b"half a segm")  # a crash during the next write
    again = Spool(tmp_path, max_bytes=1 << 20)
    paths, messages = again.oldest(100, timeout=0)
    assert [m.payload for m in messages] == [b"{}", b"\x00\xff"] and len(paths) == 1
    assert not list(tmp_path.glob("*.tmp"))
    again.append([Spooled("edu/dev/A03/status", b"x", 3.0)])
    assert again.segments == 2 and sorted(p.name for p in tmp_path.glob("*.seg"))[-1] == "000000000002.seg"


def test_an_unreadable_segment_is_set_aside_and_the_rest_read(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append([Spooled("edu/dev/A01/telemetry", b"first", 1.0)])
    spool.append([Spooled("edu/dev/A01/telemetry", b"second", 2.0)])
    damaged = sorted(tmp_path.glob("*.seg"))[0]
    damaged.write_bytes(damaged.read_bytes()[:-3])  # the disk lost its tail
    paths, messages = spool.oldest(100, timeout=0)
    assert [m.payload for m in messages] == [b"second"] and spool.quarantined == 1
    assert damaged.with_suffix(".bad").exists() and spool.segments == 1


def test_the_decoder_reads_ahead_without_skipping_or_repeating_a_segment(tmp_path):
    """The decoder takes the segments after the ones the writer still holds; nothing leaves the
    journal until the writer removes it, so a restart starts again from the oldest."""
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for n in range(3):
        spool.append([Spooled("edu/dev/A01/telemetry", b"%d" % n, float(n))])
    first, held = spool.oldest(1, timeout=0)
    ahead, read_ahead = spool.oldest(1, timeout=0, after=first[-1])
    last, read_last = spool.oldest(5, timeout=0, after=ahead[-1])
    assert [m.payload for m in held + read_ahead + read_last] == [b"0", b"1", b"2"]
    assert spool.oldest(5, timeout=0, after=last[-1]) == ([], [])
    assert spool.segments == 3 and Spool(tmp_path, max_bytes=1 << 20).oldest(5, timeout=0)[1][0].payload == b"0"
    spool.remove(first)
    assert [m.payload for m in spool.oldest(5, timeout=0)[1]] == [b"1", b"2"]
