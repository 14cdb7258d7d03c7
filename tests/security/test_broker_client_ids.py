"""A client id belongs to one account: a device logged in with its own password cannot connect
under another device's id or a service's id, kick that client off, fire its last will, read its
queued commands or wipe its persistent session (the broker makes every client id the username)."""

import itertools
from datetime import UTC, datetime

import psycopg

from core import contract
from core.contract import Channel
from core.credentials import API, PATROL
from ingest.service import IngestService
from ingest.settings import IngestSettings
from tests.fixtures.devices import board_reading, wait_for
from tests.security.test_broker_auth import INGEST, secured  # noqa: F401 - the fixture

NO_MATCHING_SUBSCRIBERS = 0x10
_seq = itertools.count(1)


def test_a_device_cannot_take_over_another_devices_client_id(secured):  # noqa: F811
    a, b = secured.devices
    status_b, commands_b, commands_a = (contract.topic(b, Channel.STATUS), contract.topic(b, Channel.COMMAND),
                                        contract.topic(a, Channel.COMMAND))
    now = datetime.now(UTC)
    watcher = secured.peer(PATROL)  # the patrol sees every status, last wills included
    watcher.subscribe(contract.subscription(Channel.STATUS))
    victim = secured.peer(b, client_id=b, clean_start=False, session_expiry_s=86400,
                          will=(status_b, contract.encode(contract.will(now))))
    victim.subscribe(commands_b)
    victim.publish(status_b, contract.encode(contract.birth(now)), retain=True)
    api = secured.peer(API)

    attacker = secured.peer(a, client_id=b, clean_start=False, session_expiry_s=86400)  # its own password, B's id
    assert attacker.refused is None  # let in, as itself
    attacker.subscribe(commands_b, commands_a)  # granted, and empty for it (test_broker_subscriptions.py)
    # B was not kicked: a round trip on its connection, which never dropped
    assert victim.publish(contract.topic(b, Channel.TELEMETRY), b"still here") == NO_MATCHING_SUBSCRIBERS
    assert victim.connects == 1 and victim.disconnects == []
    api.publish(commands_b, b"for b, online")
    assert victim.until((commands_b, b"for b, online")) == []

    # B away (a clean disconnect keeps its session): its commands queue for B and for nobody else
    victim.close()
    api.publish(commands_b, b"for b, queued")
    attacker.close()
    attacker = secured.peer(a, client_id=b, clean_start=False, session_expiry_s=86400)
    api.publish(commands_a, b"for a")
    assert attacker.until((commands_a, b"for a")) == []  # A's own session: nothing of B's came first
    back = secured.peer(b, client_id=b, clean_start=False, session_expiry_s=86400)
    assert back.next() == (commands_b, b"for b, queued")

    # and no last will of B's fired at any point
    sentinel = contract.encode(contract.birth(datetime.now(UTC)))
    back.publish(status_b, sentinel, retain=True)
    seen = watcher.until((status_b, sentinel))
    assert [payload for topic, payload in seen if b'"reason":"will"' in payload] == []


def _ingest(secured, database_url: str, tmp_path) -> IngestService:  # noqa: F811
    platform = secured.platform(INGEST, database_url=database_url).model_copy(update={"data_dir": tmp_path})
    service = IngestService(platform, IngestSettings(worker_id="1", batch_wait_ms=50, device_rate_per_s=0))
    service.start()
    return service


def _stored(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM board_telemetry").fetchone()[0]


def test_a_device_cannot_touch_the_ingests_session(secured, database_url, db, tmp_path):  # noqa: F811
    a, b = secured.devices

    def reading(device: str) -> tuple[str, bytes]:
        return contract.topic(device, Channel.TELEMETRY), contract.encode(board_reading(next(_seq)))

    service = _ingest(secured, database_url, tmp_path)
    device_b = secured.peer(b)
    try:
        # the ingest connected: devices pose as it (its old and its new client id) and as B
        for target in ("ingest-1", INGEST, b):
            attacker = secured.peer(a, client_id=target)  # clean start
            assert attacker.refused is None
            assert attacker.publish(*reading(a)) == 0  # its own reading, to the ingest's session
            attacker.close()
        assert device_b.publish(*reading(b)) == 0
        assert service.link.connects == 1  # never kicked off

        # the ingest away, its persistent session queueing: a clean start with session expiry 0
        # under its id would wipe that session and everything in it
        service.stop()
        assert device_b.publish(*reading(b)) == 0  # queued (0x10: no session subscribed any more)
        for target in ("ingest-1", INGEST):
            attacker = secured.peer(a, client_id=target, clean_start=True, session_expiry_s=0)
            assert attacker.publish(*reading(a)) == 0
            attacker.close()
        assert device_b.publish(*reading(b)) == 0

        service = _ingest(secured, database_url, tmp_path)  # the same account: the same session
        wait_for(lambda: _stored(database_url) >= 8, timeout=30)
        assert _stored(database_url) == 8
        assert service.link.connects == 1
    finally:
        service.stop(end_session=True)
