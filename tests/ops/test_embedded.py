"""The embedded services keep their promises: data and port survive a restart, no message is lost."""

import threading

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.mqtt import release
from ops.embedded import EmbeddedMosquitto, EmbeddedPostgres
from tests.fixtures.devices import wait_for

QUEUED = 1500  # more than Debian's default max_queued_messages (1000)


def test_session_postgres_answers_with_the_promised_settings(postgres):
    with psycopg.connect(postgres.url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("cockpit",)
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('synchronous_commit', 'listen_addresses', 'max_connections', 'server_encoding')").fetchall())
    assert settings == {"synchronous_commit": "on", "listen_addresses": "127.0.0.1",
                        "max_connections": "200", "server_encoding": "UTF8"}
    assert str(postgres.socket_dir).startswith(str(postgres.root))


@pytest.mark.slow
def test_postgres_restart_on_the_same_folder_keeps_rows_and_port(tmp_path):
    with EmbeddedPostgres(tmp_path / "pg") as first:
        with psycopg.connect(first.url) as conn:
            conn.execute("CREATE TABLE reading (id int PRIMARY KEY)")
            conn.execute("INSERT INTO reading SELECT generate_series(1, 100)")
        port = first.port
    with EmbeddedPostgres(tmp_path / "pg") as second, psycopg.connect(second.url) as conn:
        assert second.port == port
        assert conn.execute("SELECT count(*) FROM reading").fetchone() == (100,)


def test_postgres_start_failure_shows_the_log(tmp_path):
    blocker = EmbeddedPostgres(tmp_path / "first").start()
    try:
        with pytest.raises(RuntimeError, match="PostgreSQL did not start") as failure:
            EmbeddedPostgres(tmp_path / "second", port=blocker.port).start()
        assert "could not" in str(failure.value)  # the server's own words, from its log
    finally:
        blocker.stop("immediate")


def connect(client: mqtt.Client, port: int) -> mqtt.ConnectFlags:
    """Connect a threaded client and wait for the broker's CONNACK; return its flags."""
    connack: list[mqtt.ConnectFlags] = []
    done = threading.Event()

    def on_connect(_client, _userdata, flags, reason_code, _properties) -> None:
        assert not reason_code.is_failure, reason_code
        connack.append(flags)
        done.set()

    client.on_connect = on_connect
    client.connect_async("127.0.0.1", port)
    client.loop_start()
    assert done.wait(10), "no CONNACK"
    return connack[0]


def disconnect(client: mqtt.Client) -> None:
    """Leave cleanly (a persistent session stays on the broker) and stop the network thread."""
    client.disconnect()
    release(client)


@pytest.mark.slow
def test_mosquitto_keeps_an_offline_session_queue_across_a_restart(tmp_path):
    topic = "edu/dev/queue-test/telemetry"
    broker = EmbeddedMosquitto(tmp_path / "mq").start()

    def ingest_like() -> mqtt.Client:  # a new client each time, as a restarted ingest process has
        return mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ingest-like", clean_session=False,
                           protocol=mqtt.MQTTv311)

    ingest = ingest_like()
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="device-like")
    received: set[bytes] = set()
    everything = threading.Event()

    def on_message(_client, _userdata, message) -> None:
        received.add(message.payload)
        if len(received) >= QUEUED:
            everything.set()

    try:
        connect(ingest, broker.port)
        subscribed = threading.Event()
        ingest.on_subscribe = lambda *_args: subscribed.set()
        ingest.subscribe(topic, qos=1)
        assert subscribed.wait(10), "no SUBACK"
        disconnect(ingest)

        connect(device, broker.port)
        sent = [device.publish(topic, str(i).encode(), qos=1) for i in range(QUEUED)]
        for info in sent:
            info.wait_for_publish(timeout=30)  # PUBACK: the broker has it
        disconnect(device)

        port = broker.port
        broker.restart()
        assert broker.port == port

        ingest = ingest_like()
        ingest.on_message = on_message
        assert connect(ingest, broker.port).session_present, "the broker forgot the persistent session"
        assert everything.wait(30), f"only {len(received)} of {QUEUED} arrived"
        assert received == {str(i).encode() for i in range(QUEUED)}
    finally:
        disconnect(ingest)
        broker.stop()


def test_mosquitto_start_failure_shows_the_log(tmp_path):
    broker = EmbeddedMosquitto(tmp_path / "mq", password_file=tmp_path / "missing-passwords")
    with pytest.raises(RuntimeError, match="Mosquitto did not start") as failure:
        broker.start()
    assert "missing-passwords" in str(failure.value)  # the broker's own complaint


def test_mosquitto_refuses_a_port_already_in_use(broker, tmp_path):
    with pytest.raises(RuntimeError, match="already in use"):
        EmbeddedMosquitto(tmp_path / "mq", port=broker.port).start()


def test_mosquitto_saves_on_the_callers_interval(tmp_path):
    broker = EmbeddedMosquitto(tmp_path / "mq", autosave_interval_s=1).start()
    try:
        assert "\nautosave_interval 1\n" in broker.conf.read_text()
        wait_for((broker.root / "mosquitto.db").exists, timeout=30)  # saved by the timer, not by a stop
    finally:
        broker.stop()


def test_mosquitto_makes_each_client_id_its_username_once_there_are_passwords(tmp_path):
    anonymous = EmbeddedMosquitto(tmp_path / "open")
    secured = EmbeddedMosquitto(tmp_path / "closed", password_file=tmp_path / "passwords")
    for broker in (anonymous, secured):
        broker.root.mkdir()
        broker._write_conf()
    assert "use_username_as_clientid" not in anonymous.conf.read_text()  # it would refuse every anonymous client
    first, second = secured.conf.read_text().splitlines()[:2]
    assert first.startswith("listener ") and second == "use_username_as_clientid true"  # a listener option
    assert "message_size_limit" not in secured.conf.read_text()  # the guard limits sizes, with a valid PUBACK
    assert "plugin_opt_max_payload 16384" in secured.conf.read_text()
    assert f"max_packet_size {1024 * 1024}" in secured.conf.read_text()


def test_the_server_binaries_can_be_chosen(monkeypatch, tmp_path):
    """COCKPIT_PG_BINDIR picks another PostgreSQL build; a folder without a server is refused clearly."""
    from ops.embedded import pg_bindir

    default = pg_bindir()
    monkeypatch.setenv("COCKPIT_PG_BINDIR", str(default))
    assert pg_bindir() == default
    monkeypatch.setenv("COCKPIT_PG_BINDIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="holds no postgres binary"):
        pg_bindir()
