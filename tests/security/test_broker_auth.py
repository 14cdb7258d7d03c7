"""The broker lets no one in anonymously, confines each device and each service to its own topics,
and speaks TLS when configured.

The fixtures and the `Peer` client here are shared by the other test_broker_*.py files.
"""

import queue
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core import contract, credentials
from core.contract import Channel
from core.credentials import API, MONITOR, PATROL, derived_password, device_password, ingest_account
from core.mqtt import AuthenticationFailed, LinkOptions, MqttLink, release
from core.settings import PlatformSettings, parse_mqtt_url
from ops.broker_auth import MONITOR_PASSWORD_FILE, TlsListener, service_rules, write_files
from ops.embedded import EmbeddedMosquitto, free_port
from tests.fixtures.devices import wait_for

SECRET = "provisioning-secret-for-tests-0123456789"
PLATFORM_PASSWORD = "platform-password-for-tests"
INGEST = ingest_account("1")
NOT_AUTHORIZED = 0x87


def password(username: str) -> str:
    """The password a device or a service account logs in with under the test secrets."""
    if credentials.is_service_account(username):
        return derived_password(PLATFORM_PASSWORD, username)
    return device_password(SECRET, username)


class Peer:
    """One MQTT client: connects with a name and password and keeps what it receives and what happens to it."""

    def __init__(self, port: int, username: str | None, password: str | None, trust: Path | None = None, *,
                 client_id: str | None = None, protocol: int = mqtt.MQTTv5, clean_start: bool = True,
                 session_expiry_s: int = 0, will: tuple[str, bytes] | None = None) -> None:
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connack = threading.Event()
        self.refused = None
        self.connects = 0
        self.disconnects: list[object] = []
        self.acks: dict[int, int] = {}  # message id -> PUBACK reason code
        self.protocol = protocol
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"peer-{username}",
                                  protocol=protocol)
        if trust:
            self.client.tls_set(ca_certs=str(trust))
        if username:
            self.client.username_pw_set(username, password)
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_connect = self._connected
        self.client.on_disconnect = lambda _c, _u, _f, reason, _p: self.disconnects.append(reason)
        self.client.on_publish = self._acknowledged
        self.client.on_message = lambda _c, _u, m: self.received.put((m.topic, m.payload))
        if protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry_s
            self.client.connect_async("127.0.0.1", port, clean_start=clean_start, properties=props)
        else:
            self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        assert self.connack.wait(10), "no CONNACK"

    def _connected(self, client, _userdata, _flags, reason, _props) -> None:
        self.refused = reason if reason.is_failure else None
        if reason.is_failure:
            client.disconnect()
        else:
            self.connects += 1
        self.connack.set()

    def _acknowledged(self, _client, _userdata, mid, reason, _props) -> None:
        self.acks[mid] = reason.value if hasattr(reason, "value") else int(reason)

    def subscribe(self, *topics: str) -> list[int]:
        """Subscribe and wait for the SUBACK; return its reason codes (granted QoS, or >= 0x80 refused)."""
        done = threading.Event()
        granted: list[int] = []

        def subscribed(_client, _userdata, _mid, reasons, _props) -> None:
            granted.extend(r.value if hasattr(r, "value") else int(r) for r in reasons)
            done.set()

        self.client.on_subscribe = subscribed
        self.client.subscribe([(topic, 1) for topic in topics])
        assert done.wait(10), "no SUBACK"
        return granted

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish at QoS 1, wait for the broker's acknowledgement and return its reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        wait_for(lambda: info.mid in self.acks, timeout=10)
        return self.acks[info.mid]

    def next(self, timeout: float = 10) -> tuple[str, bytes]:
        """The next message received (fails the test when none comes within `timeout`)."""
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"nothing received within {timeout}s")

    def until(self, wanted: tuple[str, bytes]) -> list[tuple[str, bytes]]:
        """Everything received before `wanted` (a sentinel published last), once it has arrived."""
        before = []
        while (message := self.next()) != wanted:
            before.append(message)
        return before

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


@dataclass
class Secured:
    """A broker with the registry's passwords and access list, and the clients a test opened on it."""

    broker: EmbeddedMosquitto
    devices: list[str]
    auth_dir: Path
    tls: TlsListener | None = None
    peers: list[Peer] = field(default_factory=list)

    def peer(self, username: str | None, secret: str | None = None, *, over_tls: bool = False, **options) -> Peer:
        """A client logged in as `username`, with its own password unless another is given."""
        if username and secret is None:
            secret = password(username)
        port = self.tls.port if over_tls else self.broker.port
        self.peers.append(p := Peer(port, username, secret, self.tls.cert_file if over_tls else None, **options))
        return p

    def platform(self, account: str, *, database_url: str | None = None) -> PlatformSettings:
        """A service's settings: the broker URL without credentials, its account, the shared secret."""
        return PlatformSettings(mqtt_url=self.broker.url, mqtt_username=account,
                                mqtt_platform_password=PLATFORM_PASSWORD, database_url=database_url, env="test")


def _secured(tmp_path, db, registry, tls: TlsListener | None, *, conf: str = "", **broker_options):
    registry.area()
    school = registry.school()
    devices = [registry.device(school), registry.device(school)]
    passwords, acl = write_files(db, tmp_path / "auth", SECRET, PLATFORM_PASSWORD, tls, ingest_workers=["1"])
    if conf:  # more of the broker's own options, beside the included listeners
        (passwords.parent / "conf.d" / "options.conf").write_text(conf)
    broker = EmbeddedMosquitto(tmp_path / "mq", password_file=passwords, acl_file=acl,
                               include_dir=passwords.parent / "conf.d", **broker_options).start()
    if tls:
        wait_for(lambda: listening(tls.port), timeout=10)
    secured = Secured(broker, devices, passwords.parent, tls)
    yield secured
    for p in secured.peers:
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
    a, _b = secured.devices
    assert secured.peer(None).refused is not None
    assert secured.peer(a, "wrong").refused is not None
    assert secured.peer(a, device_password("another-secret", a)).refused is not None
    assert secured.peer(INGEST, device_password(SECRET, INGEST)).refused is not None  # a device's secret
    assert secured.peer(a, derived_password(PLATFORM_PASSWORD, a)).refused is not None  # the services' secret
    assert secured.peer(a).refused is None
    for account in service_rules(["1"]):
        assert secured.peer(account).refused is None, account


def test_a_service_with_a_wrong_password_stops_with_a_clear_error(secured):
    link = MqttLink(parse_mqtt_url(f"mqtt://{PATROL}:not-the-password@127.0.0.1:{secured.broker.port}"),
                    LinkOptions(client_id="patrol"))
    with pytest.raises(AuthenticationFailed, match="broker refused patrol"):
        link.start(timeout=30)
    assert not link.connected.is_set()


def test_a_service_finds_its_own_account_from_the_settings(secured):
    """COCKPIT_MQTT_USERNAME names the account; its password derives from the platform's secret."""
    address = secured.platform(API).require_broker()
    assert (address.username, address.password) == (API, password(API))
    link = MqttLink(address, LinkOptions(client_id="api-host-123"))
    link.start(timeout=10)
    link.stop()
    with pytest.raises(RuntimeError, match="COCKPIT_MQTT_PLATFORM_PASSWORD"):
        PlatformSettings(mqtt_url=secured.broker.url, mqtt_username=API).require_broker()


def test_a_device_publishes_only_as_itself(secured):
    a, b = secured.devices
    ingest = secured.peer(INGEST)
    ingest.subscribe(contract.subscription(Channel.TELEMETRY))
    device = secured.peer(a)
    assert device.publish(contract.topic(b, Channel.TELEMETRY), b"forged") == NOT_AUTHORIZED  # delivered to no one
    assert device.publish(contract.topic(a, Channel.COMMAND), b"to itself") == NOT_AUTHORIZED
    device.publish(contract.topic(a, Channel.TELEMETRY), b"own")
    assert ingest.until((contract.topic(a, Channel.TELEMETRY), b"own")) == []


def test_a_device_reads_only_its_own_commands(secured):
    """Mosquitto 2.0 grants every subscription in the SUBACK (test_broker_subscriptions.py) and
    delivers only what the access list lets the device read."""
    a, b = secured.devices
    device = secured.peer(a)
    device.subscribe(contract.topic(b, Channel.COMMAND), contract.topic(a, Channel.COMMAND))
    api = secured.peer(API)
    api.publish(contract.topic(b, Channel.COMMAND), b"for b")
    api.publish(contract.topic(a, Channel.COMMAND), b"for a")
    assert device.until((contract.topic(a, Channel.COMMAND), b"for a")) == []
    snooping = secured.peer(b)
    snooping.subscribe(contract.subscription(Channel.TELEMETRY), contract.topic(b, Channel.COMMAND))
    device.publish(contract.topic(a, Channel.TELEMETRY), b"private")
    api.publish(contract.topic(b, Channel.COMMAND), b"sentinel")
    assert snooping.until((contract.topic(b, Channel.COMMAND), b"sentinel")) == []


def test_each_service_account_does_only_its_own_job(secured):
    a, _b = secured.devices
    device = secured.peer(a)
    device.subscribe(contract.topic(a, Channel.COMMAND))
    ingest, patrol, monitor = secured.peer(INGEST), secured.peer(PATROL), secured.peer(MONITOR)
    for service in (ingest, patrol, monitor):  # only the API sends commands
        assert service.publish(contract.topic(a, Channel.COMMAND), b"not yours") == NOT_AUTHORIZED
    assert secured.peer(API).publish(contract.topic(a, Channel.COMMAND), b"from the api") == 0
    assert device.until((contract.topic(a, Channel.COMMAND), b"from the api")) == []

    patrol.subscribe(contract.subscription(Channel.STATUS), contract.subscription(Channel.TELEMETRY))
    monitor.subscribe("edu/ops/#", contract.subscription(Channel.TELEMETRY))
    device.publish(contract.topic(a, Channel.TELEMETRY), b"reading")  # the ingest's, nobody else's
    device.publish(contract.topic(a, Channel.STATUS), b"status")
    assert patrol.until((contract.topic(a, Channel.STATUS), b"status")) == []
    assert ingest.publish("edu/ops/alerts", b"not the ingest's") == NOT_AUTHORIZED
    assert patrol.publish("edu/ops/alerts", b"notice") == 0  # the patrol's notices reach the monitor
    assert monitor.until(("edu/ops/alerts", b"notice")) == []


def test_the_monitor_password_file_is_the_monitor_accounts(secured):
    monitor_password = (secured.auth_dir / MONITOR_PASSWORD_FILE).read_text().strip()
    assert (secured.auth_dir / MONITOR_PASSWORD_FILE).stat().st_mode & 0o777 == 0o600
    monitor = secured.peer(MONITOR, monitor_password)
    assert monitor.refused is None
    monitor.subscribe("$SYS/broker/version")
    assert monitor.next()[1].startswith(b"mosquitto version")


def test_empty_or_short_secrets_and_unfit_names_are_refused(db, registry, tmp_path):
    for secret, platform in (("", PLATFORM_PASSWORD), (SECRET, "short")):
        with pytest.raises(ValueError, match="must not be empty or shorter"):
            write_files(db, tmp_path, secret, platform)
    with pytest.raises(ValueError, match="service account name"):
        write_files(db, tmp_path, SECRET, PLATFORM_PASSWORD, ingest_workers=["1 #"])


def test_the_tls_listener_encrypts_and_still_checks_passwords(secured_tls, tls):
    a, _b = secured_tls.devices
    assert secured_tls.peer(a, "wrong", over_tls=True).refused is not None
    received: queue.Queue[bytes] = queue.Queue()
    ingest = MqttLink(parse_mqtt_url(f"mqtts://{INGEST}:{password(INGEST)}@127.0.0.1:{tls.port}"),
                      LinkOptions(client_id="tls-ingest", ca_file=str(tls.cert_file),
                                  subscriptions=[(contract.topic(a, Channel.TELEMETRY), 1)]),
                      on_message=lambda m: received.put(m.payload))
    ingest.start()
    try:
        secured_tls.peer(a, over_tls=True).publish(contract.topic(a, Channel.TELEMETRY), b"sealed")
        assert received.get(timeout=5) == b"sealed"
    finally:
        ingest.stop()


def test_the_tls_listener_also_makes_the_username_the_client_id(secured_tls):
    """A listener option: without it on the TLS listener a device could take over ids there."""
    a, b = secured_tls.devices
    victim = secured_tls.peer(b, over_tls=True, client_id=b)
    secured_tls.peer(a, over_tls=True, client_id=b)  # its own password, the other device's id
    assert victim.publish(contract.topic(b, Channel.TELEMETRY), b"still here") == 0x10  # no subscriber; connected
    assert victim.connects == 1 and victim.disconnects == []


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
