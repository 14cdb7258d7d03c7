"""The broker's accounts follow the registry at once (ops/broker_sync.py): a device registered
while everything runs may connect, a retired one is refused on its next connect, a device that
comes back may connect again, and nothing is restarted. A retired device still connected is
dropped when the broker re-reads its password file. The password file is rewritten without
hashing again the devices it already holds."""

import threading

import pytest

from ops.broker_auth import SECRET_FINGERPRINT_FILE, write_files
from ops.broker_sync import BrokerSync
from ops.embedded import EmbeddedMosquitto
from tests.fixtures.devices import wait_for
from tests.security.test_broker_auth import PLATFORM_PASSWORD, SECRET, Peer, password


@pytest.fixture
def synced(tmp_path, db, registry, database_url):
    """A broker whose files a running BrokerSync keeps in step with the registry."""
    registry.area()
    school = registry.school()
    auth = tmp_path / "auth"

    def write(conn):
        return write_files(conn, auth, SECRET, PLATFORM_PASSWORD, ingest_workers=["1"])

    passwords, acl = write(db)
    broker = EmbeddedMosquitto(tmp_path / "mq", password_file=passwords, acl_file=acl,
                               include_dir=auth / "conf.d").start()
    sync = BrokerSync(database_url, write, broker.reload, settle_s=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=sync.run, args=(stop,), daemon=True)
    thread.start()
    wait_for(lambda: sync.rewrites >= 1)  # listening from here on
    peers: list[Peer] = []
    yield broker, school, sync, peers
    for peer in peers:
        peer.close()
    stop.set()
    thread.join(10)
    broker.stop()


def _connects(broker, device_id: str, peers: list) -> bool:
    peer = Peer(broker.port, device_id, password(device_id), client_id=device_id)
    peers.append(peer)
    return peer.refused is None


def test_a_registered_device_connects_and_a_retired_one_is_refused_without_a_restart(synced, db, registry):
    broker, school, sync, peers = synced
    pid = broker.process.pid
    assert not _connects(broker, "late-board-1", peers)  # not registered yet

    registry.device(school, device_id="late-board-1")
    wait_for(lambda: _connects(broker, "late-board-1", peers), timeout=30)
    connected = peers[-1]

    db.execute("UPDATE device_all SET retired_at = now(), retired_reason = 'broken' WHERE id = 'late-board-1'")
    wait_for(lambda: not _connects(broker, "late-board-1", peers), timeout=30)
    # the broker also drops the session it had open when it re-reads a file without the account
    wait_for(lambda: not connected.client.is_connected(), timeout=30)

    db.execute("UPDATE device_all SET retired_at = NULL, retired_reason = NULL WHERE id = 'late-board-1'")
    wait_for(lambda: _connects(broker, "late-board-1", peers), timeout=30)
    assert broker.process.pid == pid  # the same broker process throughout


def test_a_burst_of_registrations_is_one_rewrite(synced, db, registry):
    broker, school, sync, peers = synced
    before = sync.rewrites
    with db.transaction():
        for n in range(50):
            registry.device(school, device_id=f"burst-{n:02d}")
    wait_for(lambda: _connects(broker, "burst-49", peers), timeout=30)
    assert sync.rewrites == before + 1


def test_a_rewrite_keeps_the_hashes_it_has_and_a_new_secret_replaces_them(tmp_path, db, registry):
    registry.area()
    school = registry.school()
    kept = registry.device(school)
    passwords, _ = write_files(db, tmp_path, SECRET, PLATFORM_PASSWORD)
    lines = dict(line.split(":", 1) for line in passwords.read_text().splitlines())

    added = registry.device(school)
    write_files(db, tmp_path, SECRET, PLATFORM_PASSWORD)
    again = dict(line.split(":", 1) for line in passwords.read_text().splitlines())
    assert again[kept] == lines[kept]  # the same salted hash: not hashed again
    assert added in again

    write_files(db, tmp_path, "another-provisioning-secret-0123", PLATFORM_PASSWORD)
    rotated = dict(line.split(":", 1) for line in passwords.read_text().splitlines())
    assert rotated[kept] != lines[kept]

    # a fingerprint file that went missing (a rewrite cut short) means: hash everything again
    (tmp_path / SECRET_FINGERPRINT_FILE).unlink()
    write_files(db, tmp_path, "another-provisioning-secret-0123", PLATFORM_PASSWORD)
    assert dict(line.split(":", 1) for line in passwords.read_text().splitlines())[kept] != rotated[kept]


def test_a_device_registered_while_the_listener_was_cut_off_still_gets_in(synced, db, registry):
    """Notices sent while the listener has no connection are lost; its reconnect rewrites everything."""
    broker, school, sync, peers = synced
    before = sync.rewrites
    cut = db.execute("SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity "
                     "WHERE application_name = 'broker-sync'").fetchall()
    assert cut and all(r["done"] for r in cut)
    registry.device(school, device_id="while-away-1")  # nobody listens at this moment
    wait_for(lambda: _connects(broker, "while-away-1", peers), timeout=30)
    assert sync.rewrites > before
