"""Oversized publishes on the real broker: the guard (deploy/mosquitto/guard.c) refuses a device's
payload over the contract's 16 KiB (MQTT 5: PUBACK 0x87; the device stays connected) and reports
it on the device's `refused` topic, which the ingest dead-letters and counts; over the packet
limit the broker does not read the packet and disconnects.

The device here is mostly a minimal MQTT client over a raw socket, so the test sees exactly the
bytes the broker sends; paho-mqtt, the client the contract's examples use, is checked as well.
"""

import json
import socket
import struct
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core import contract
from core.contract import MAX_PAYLOAD_BYTES, Channel
from core.mqtt import release
from ingest.service import IngestService
from ingest.settings import IngestSettings
from ops.embedded import MAX_PACKET_SIZE
from tests.fixtures.devices import wait_for
from tests.security.test_broker_auth import INGEST, _secured, password

NOT_AUTHORIZED = 0x87
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
    """The secured broker (passwords, access list, guard) with two devices of one school."""
    yield from _secured(tmp_path, db, registry, None)


def _notice(device: str, topic: str, size: int) -> tuple[str, bytes]:
    return (contract.topic(device, Channel.REFUSED),
            json.dumps({"topic": topic, "bytes": size, "limit": MAX_PAYLOAD_BYTES}, separators=(",", ":"), ensure_ascii=False).encode())


def test_over_the_contract_a_device_gets_0x87_stays_connected_and_the_ingest_dead_letters_it(
        sized, database_url, db):
    a, _b = sized.devices
    topic = contract.topic(a, Channel.TELEMETRY)
    service = IngestService(sized.platform(INGEST, database_url=database_url),
                            IngestSettings(worker_id="1", batch_wait_ms=50, heartbeat_sweep_s=3600))
    service.start()
    device = RawClient(sized.broker.port, a, password(a))
    try:
        assert device.publish(topic, b"x" * MAX_PAYLOAD_BYTES, 1) == 0  # at the limit: passed on
        assert device.publish(topic, b"x" * (MAX_PAYLOAD_BYTES + 1), 2) == NOT_AUTHORIZED
        assert device.publish(topic, b"x" * (300 * KIB), 3) == NOT_AUTHORIZED
        assert device.alive()
        assert device.publish(topic, b"small", 4) == 0

        def letters():
            return db.execute("SELECT device_id, topic, reason FROM dead_letter ORDER BY id").fetchall()
        wait_for(lambda: len(letters()) == 4, timeout=30)
        rows = letters()
        refused = [r for r in rows if r["reason"].startswith("payload too large")]
        assert [(r["device_id"], r["topic"], r["reason"]) for r in refused] == [
            (a, topic, f"payload too large: {n} bytes exceeds {MAX_PAYLOAD_BYTES} (refused by the broker)")
            for n in (MAX_PAYLOAD_BYTES + 1, 300 * KIB)]
        assert all(r["reason"].startswith("invalid") for r in rows if r not in refused)  # the two not JSON
        counted = service.metrics.registry.get_sample_value("ingest_dead_letters_total",
                                                            {"reason": "payload too large"})
        assert counted == 2
    finally:
        device.close()
        service.stop(end_session=True)


def test_an_mqtt311_device_gets_a_plain_puback_and_the_refusal_is_still_reported(sized):
    a, _b = sized.devices
    topic = contract.topic(a, Channel.TELEMETRY)
    ingest = sized.peer(INGEST)
    ingest.subscribe(*(contract.subscription(c) for c in contract.INGESTED))
    device = RawClient(sized.broker.port, a, password(a), version=4)
    try:
        assert device.publish(topic, b"x" * (300 * KIB), 1) == 0  # MQTT 3.1.1 has no reason codes
        assert device.publish(topic, b"small", 2) == 0
        # the notice and the next reading, in either order; the refused payload itself went nowhere
        assert sorted([ingest.next(), ingest.next()]) == sorted([_notice(a, topic, 300 * KIB), (topic, b"small")])
    finally:
        device.close()


def test_a_device_cannot_forge_a_refusal_or_bypass_the_guard_with_odd_topics(sized):
    a, b = sized.devices
    ingest = sized.peer(INGEST)
    ingest.subscribe(*(contract.subscription(c) for c in contract.INGESTED))
    device = RawClient(sized.broker.port, a, password(a))
    try:
        forged = _notice(b, contract.topic(b, Channel.TELEMETRY), 99)[1]
        assert device.publish(contract.topic(a, Channel.REFUSED), forged, 1) == NOT_AUTHORIZED
        assert device.publish(contract.topic(b, Channel.REFUSED), forged, 2) == NOT_AUTHORIZED
        # an oversized publish to a topic it may not write, with characters JSON must escape:
        # refused, and reported under the refusing device, never the one the topic names
        odd = f'{contract.topic(b, Channel.TELEMETRY)}/"\\/中'
        assert device.publish(odd, b"x" * (20 * KIB), 3) == NOT_AUTHORIZED
        assert device.publish(contract.topic(a, Channel.EVENT), b"last", 4) == 0
        assert sorted([ingest.next(), ingest.next()]) == sorted([_notice(a, odd, 20 * KIB),
                                                                 (contract.topic(a, Channel.EVENT), b"last")])
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


def test_paho_gets_the_refusal_as_a_reason_code_and_stays_connected(sized):
    """What a device built on paho-mqtt sees: on_publish with 0x87, no reconnect, no resend."""
    a, _b = sized.devices
    sized.peer(INGEST).subscribe(contract.subscription(Channel.TELEMETRY))  # so the small one is routed: 0
    dropped = threading.Event()
    results: dict[int, int] = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=a, protocol=mqtt.MQTTv5)
    client.username_pw_set(a, password(a))
    client.on_disconnect = lambda *_args: dropped.set()
    client.on_publish = lambda _c, _u, mid, reason, _p: results.__setitem__(mid, reason.value)
    client.connect("127.0.0.1", sized.broker.port)
    client.loop_start()
    try:
        wait_for(client.is_connected, timeout=10)
        big = client.publish(contract.topic(a, Channel.TELEMETRY), b"x" * (200 * KIB), qos=1)
        small = client.publish(contract.topic(a, Channel.TELEMETRY), b"{}", qos=1)
        wait_for(lambda: small.mid in results, timeout=30)
        assert results == {big.mid: NOT_AUTHORIZED, small.mid: 0}
        assert client.is_connected() and not dropped.is_set()
    finally:
        client.disconnect()
        release(client)


def test_production_loads_the_same_guard():
    """deploy/mosquitto/mosquitto.conf says what core/broker_auth.guard_conf says, and sets no
    message_size_limit (whose PUBACK 0x95 drops Paho's connection)."""
    from ops.broker_auth import guard_conf
    from tests.ingest.test_durability import PRODUCTION_CONF

    lines = PRODUCTION_CONF.read_text().splitlines()
    assert set(guard_conf("/mosquitto/plugins/guard.so").splitlines()) <= set(lines)
    assert not [line for line in lines if line.startswith("message_size_limit")]
