"""The broker lets no one in anonymously, confines each device to its own topics, and speaks TLS when configured."""

import queue
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core import contract
from core.broker_auth import PLATFORM_USER, TlsListener, write_files
from core.contract import Channel
from core.credentials import device_password
from core.embedded import EmbeddedMosquitto, free_port
from core.mqtt import AuthenticationFailed, LinkOptions, MqttLink, release
from core.settings import parse_mqtt_url
from tests.fixtures.devices import wait_for

SECRET = "provisioning-secret-for-tests-0123456789"
PLATFORM_PASSWORD = "platform-password-for-tests"


class Peer:
    """One MQTT client: connects with a name and password and keeps what it receives."""

    def __init__(self, port: int, username: str | None, password: str | None, trust: Path | None = None) -> None:
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connack = threading.Event()
        self.refused = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"peer-{username}")
        if trust:
            self.client.tls_set(ca_certs=str(trust))
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._connected
        self.client.on_message = lambda _c, _u, m: self.received.put((m.topic, m.payload))
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        assert self.connack.wait(10), "no CONNACK"

    def _connected(self, client, _userdata, _flags, reason, _props) -> None:
        self.refused = reason if reason.is_failure else None
        if reason.is_failure:
            client.disconnect()
        self.connack.set()

    def subscribe(self, topic: str) -> None:
        """Subscribe and wait for the SUBACK."""
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe(topic, 1)
        assert done.wait(10)

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the broker's acknowledgement."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        release(self.client)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key; the certificate is its own CA."""
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def tls(tmp_path) -> TlsListener:
    """A TLS listener on a free port with a fresh self-signed certificate."""
    cert, key = self_signed(tmp_path)
    return TlsListener(free_port(), cert, key, bind="127.0.0.1")


def _secured(tmp_path, db, registry, tls: TlsListener | None):
    registry.area()
    school = registry.school()
    devices = [registry.device(school), registry.device(school)]
    passwords, acl = write_files(db, tmp_path / "auth", SECRET, PLATFORM_PASSWORD, tls)
    broker = EmbeddedMosquitto(tmp_path / "mq", password_file=passwords, acl_file=acl,
                               include_dir=passwords.parent / "conf.d").start()
    if tls:
        wait_for(lambda: listening(tls.port), timeout=10)
    peers: list[Peer] = []

    def peer(username: str | None, password: str | None, *, over_tls: bool = False) -> Peer:
        peers.append(p := Peer(tls.port if over_tls else broker.port, username, password,
                               tls.cert_file if over_tls else None))
        return p

    yield peer, devices
    for p in peers:
        p.close()
    broker.stop()


@pytest.fixture
def secured(tmp_path, db, registry):
    """A broker with the registry's passwords and access list; two devices of one school."""
    yield from _secured(tmp_path, db, registry, None)


@pytest.fixture
def secured_tls(tmp_path, db, registry, tls):
    """The same broker with a TLS listener as well."""
    yield from _secured(tmp_path, db, registry, tls)


def test_anonymous_and_wrong_passwords_are_refused(secured):
    peer, (a, _b) = secured
    assert peer(None, None).refused is not None
    assert peer(a, "wrong").refused is not None
    assert peer(a, device_password("another-secret", a)).refused is not None
    assert peer(a, device_password(SECRET, a)).refused is None
    assert peer(PLATFORM_USER, PLATFORM_PASSWORD).refused is None


def test_a_service_with_a_wrong_password_stops_with_a_clear_error(secured, tmp_path):
    _peer, _devices = secured
    port = int((tmp_path / "mq" / "port").read_text())
    link = MqttLink(parse_mqtt_url(f"mqtt://{PLATFORM_USER}:not-the-password@127.0.0.1:{port}"),
                    LinkOptions(client_id="wrong-password"))
    with pytest.raises(AuthenticationFailed, match="broker refused wrong-password"):
        link.start(timeout=30)
    assert not link.connected.is_set()


def test_a_device_publishes_only_as_itself(secured):
    peer, (a, b) = secured
    platform = peer(PLATFORM_USER, PLATFORM_PASSWORD)
    platform.subscribe(contract.subscription(Channel.TELEMETRY))
    device = peer(a, device_password(SECRET, a))
    device.publish(contract.topic(b, Channel.TELEMETRY), b"forged")  # accepted by the broker, delivered to no one
    device.publish(contract.topic(a, Channel.TELEMETRY), b"own")
    assert platform.received.get(timeout=5) == (contract.topic(a, Channel.TELEMETRY), b"own")
    assert platform.received.empty()


def test_a_device_reads_only_its_own_commands(secured):
    peer, (a, b) = secured
    device = peer(a, device_password(SECRET, a))
    device.subscribe(contract.topic(b, Channel.COMMAND))  # refused in the SUBACK
    device.subscribe(contract.topic(a, Channel.COMMAND))
    platform = peer(PLATFORM_USER, PLATFORM_PASSWORD)
    platform.publish(contract.topic(b, Channel.COMMAND), b"for b")
    platform.publish(contract.topic(a, Channel.COMMAND), b"for a")
    assert device.received.get(timeout=5) == (contract.topic(a, Channel.COMMAND), b"for a")
    assert device.received.empty()
    snooping = peer(b, device_password(SECRET, b))
    snooping.subscribe(contract.subscription(Channel.TELEMETRY))  # everyone's telemetry: refused
    device.publish(contract.topic(a, Channel.TELEMETRY), b"private")
    with pytest.raises(queue.Empty):
        snooping.received.get(timeout=1)


def test_empty_or_short_secrets_are_refused(db, tmp_path):
    for secret, password in (("", PLATFORM_PASSWORD), (SECRET, "short")):
        with pytest.raises(ValueError, match="must not be empty or shorter"):
            write_files(db, tmp_path, secret, password)


def test_the_tls_listener_encrypts_and_still_checks_passwords(secured_tls, tls):
    peer, (a, _b) = secured_tls
    assert peer(a, "wrong", over_tls=True).refused is not None
    received: queue.Queue[bytes] = queue.Queue()
    platform = MqttLink(parse_mqtt_url(f"mqtts://{PLATFORM_USER}:{PLATFORM_PASSWORD}@127.0.0.1:{tls.port}"),
                        LinkOptions(client_id="tls-platform", ca_file=str(tls.cert_file),
                                    subscriptions=[(contract.topic(a, Channel.TELEMETRY), 1)]),
                        on_message=lambda m: received.put(m.payload))
    platform.start()
    try:
        peer(a, device_password(SECRET, a), over_tls=True).publish(contract.topic(a, Channel.TELEMETRY), b"sealed")
        assert received.get(timeout=5) == b"sealed"
    finally:
        platform.stop()


def test_the_tls_listener_speaks_only_tls_with_its_own_certificate(secured_tls, tls):
    untrusting = ssl.create_default_context()  # the system's CAs, which never signed this certificate
    with socket.create_connection(("127.0.0.1", tls.port), timeout=5) as raw, \
            pytest.raises(ssl.SSLCertVerificationError):
        untrusting.wrap_socket(raw, server_hostname="127.0.0.1")
    trusting = ssl.create_default_context(cafile=str(tls.cert_file))
    with socket.create_connection(("127.0.0.1", tls.port), timeout=5) as raw, \
            trusting.wrap_socket(raw, server_hostname="127.0.0.1") as sealed:
        assert sealed.version() in ("TLSv1.2", "TLSv1.3")
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="plain-on-tls")
    plain.connect("127.0.0.1", tls.port, keepalive=5)  # TCP is accepted; the CONNECT is not a TLS handshake
    for _ in range(20):
        plain.loop(0.1)
    assert not plain.is_connected()
    release(plain)


def test_no_certificate_no_tls_listener(db, tmp_path):
    write_files(db, tmp_path, SECRET, PLATFORM_PASSWORD)
    assert list((tmp_path / "conf.d").iterdir()) == []
