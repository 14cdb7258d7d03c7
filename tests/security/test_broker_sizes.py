"""Oversized publishes on the real broker: up to its limit they reach the ingest (which dead-letters
anything over the contract's 16 KiB); over it an MQTT 5 device gets reason code 0x95 and stays
connected; over the packet limit the broker does not read the packet and disconnects.

The device here is a minimal MQTT client over a raw socket, so the test sees exactly the bytes
the broker sends. Which client libraries cope with those bytes is pinned below as well.
"""

import socket
import struct
import threading
from importlib.metadata import version

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core import contract
from core.contract import MAX_PAYLOAD_BYTES, Channel
from core.embedded import MAX_PACKET_SIZE, MESSAGE_SIZE_LIMIT
from core.mqtt import release
from tests.fixtures.devices import wait_for
from tests.security.test_broker_auth import INGEST, _secured, password

PACKET_TOO_LARGE = 0x95
KIB = 1024


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    return struct.pack("!H", len(text.encode())) + text.encode()


class RawClient:
    """An MQTT 5 (or 3.1.1) client that shows the broker's answers byte for byte."""

    def __init__(self, port: int, username: str, secret: str, version: int = 5) -> None:
        self.version = version
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        properties = b"\x00" if version == 5 else b""
        self._send(0x10, _string("MQTT") + bytes([version, 0xC2]) + struct.pack("!H", 60) + properties
                   + _string(username) + _string(username) + _string(secret))
        kind, body = self.read()
        assert kind == 0x20 and body[1] == 0, f"CONNACK refused: {body!r}"

    def _send(self, header: int, body: bytes) -> None:
        self.sock.sendall(bytes([header]) + _varint(len(body)) + body)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return data

    def read(self) -> tuple[int, bytes]:
        """The next packet: (first byte, body)."""
        header = self._exactly(1)[0]
        length, shift = 0, 0
        while True:
            byte = self._exactly(1)[0]
            length += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return header, self._exactly(length)

    def publish(self, topic: str, payload: bytes, mid: int) -> int:
        """Publish at QoS 1; the PUBACK's reason code (a 3.1.1 PUBACK has none: 0)."""
        properties = b"\x00" if self.version == 5 else b""
        self._send(0x32, _string(topic) + struct.pack("!H", mid) + properties + payload)
        kind, body = self.read()
        assert kind == 0x40 and struct.unpack("!H", body[:2])[0] == mid, (kind, body)
        return body[2] if len(body) > 2 else 0

    def alive(self) -> bool:
        """A PINGREQ answered by a PINGRESP."""
        self._send(0xC0, b"")
        return self.read() == (0xD0, b"")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def sized(tmp_path, db, registry):
    """The secured broker, logging at debug level: the only place Mosquitto 2.0 notes a refused size."""
    yield from _secured(tmp_path, db, registry, None, log_types=("error", "warning", "notice", "debug"))


def test_an_oversized_publish_is_refused_with_0x95_and_the_device_stays_connected(sized):
    a, _b = sized.devices
    topic = contract.topic(a, Channel.TELEMETRY)
    ingest = sized.peer(INGEST)
    ingest.subscribe(contract.subscription(Channel.TELEMETRY))
    device = RawClient(sized.broker.port, a, password(a))
    try:
        over_contract = b"x" * (200 * KIB)  # over 16 KiB, within the broker's limit
        assert MAX_PAYLOAD_BYTES < len(over_contract) <= MESSAGE_SIZE_LIMIT
        assert device.publish(topic, over_contract, 1) == 0
        assert ingest.next() == (topic, over_contract)  # the ingest gets it, and dead-letters it

        assert device.publish(topic, b"x" * (300 * KIB), 2) == PACKET_TOO_LARGE
        assert device.alive()
        assert device.publish(topic, b"small", 3) == 0
        assert ingest.until((topic, b"small")) == []  # the refused one went nowhere
    finally:
        device.close()
    # counted: one debug line per refused message, naming the device (the broker makes the id the username)
    refusals = [line for line in sized.broker.log.read_text().splitlines() if "Dropped too large PUBLISH" in line]
    assert len(refusals) == 1 and f"from {a} " in refusals[0] and "(307200 bytes)" in refusals[0]


def test_over_the_limit_an_mqtt311_device_gets_a_plain_puback_and_nothing_is_delivered(sized):
    a, _b = sized.devices
    topic = contract.topic(a, Channel.TELEMETRY)
    ingest = sized.peer(INGEST)
    ingest.subscribe(contract.subscription(Channel.TELEMETRY))
    device = RawClient(sized.broker.port, a, password(a), version=4)
    try:
        assert device.publish(topic, b"x" * (300 * KIB), 1) == 0  # MQTT 3.1.1 has no reason codes
        assert device.publish(topic, b"small", 2) == 0
        assert ingest.until((topic, b"small")) == []
    finally:
        device.close()


def test_over_the_packet_limit_the_broker_disconnects_without_reading(sized):
    a, _b = sized.devices
    device = RawClient(sized.broker.port, a, password(a))
    try:
        # a PUBLISH header announcing more than the limit: the broker answers before any of the rest comes
        device.sock.sendall(bytes([0x32]) + _varint(MAX_PACKET_SIZE + 1))
        kind, body = device.read()
        assert (kind, body[:1]) == (0xE0, bytes([PACKET_TOO_LARGE]))  # DISCONNECT, "packet too large"
        with pytest.raises((ConnectionError, OSError)):
            device.alive()
    finally:
        device.close()


def test_paho_treats_mosquittos_0x95_as_a_malformed_packet(sized):
    """Pins the client side the tester met: MQTT 5 allows 0x95 in a DISCONNECT, not in a PUBACK,
    so paho-mqtt drops the connection on it, and resends the message after reconnecting. The
    contract tells vendors to check the size before publishing (docs/mqtt-contract.md)."""
    a, _b = sized.devices
    dropped = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=a, protocol=mqtt.MQTTv5)
    client.username_pw_set(a, password(a))
    client.on_disconnect = lambda *_args: dropped.set()
    client.connect("127.0.0.1", sized.broker.port)
    client.loop_start()
    try:
        wait_for(client.is_connected, timeout=10)
        info = client.publish(contract.topic(a, Channel.TELEMETRY), b"x" * (300 * KIB), qos=1)
        assert dropped.wait(30), f"paho-mqtt {version('paho-mqtt')} now accepts 0x95 in a PUBACK: update the contract"
        assert not info.is_published()
    finally:
        client.disconnect()
        release(client)
