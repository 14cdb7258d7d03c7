"""The link's bulk reader and bulk acknowledgement, and the ingest's bounded inbox.

The bulk reader splits PUBLISH packets off the socket itself instead of letting paho build
each message; these tests hold it to what paho delivered: every message once, in order, with
its topic, payload, QoS and retain flag, whatever its size or MQTT 5 properties, and what it
acknowledged in bulk never comes back.
"""

import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.mqtt import LinkOptions, MqttLink, Received, release
from core.settings import parse_mqtt_url
from ingest.service import Inbox
from tests.fixtures.devices import wait_for


class Collector:
    """An on_publishes handler that keeps what arrives and acknowledges it at once, in bulk."""

    def __init__(self) -> None:
        self.link: MqttLink | None = None
        self.received: list[Received] = []
        self.reads = 0

    def __call__(self, messages: list[Received], generation: int) -> None:
        self.reads += 1
        self.received.extend(messages)
        self.link.ack_many([m[2] for m in messages if m[3] == 1], generation)


def bulk_link(broker_url: str, client_id: str, collector: Collector) -> MqttLink:
    link = MqttLink(parse_mqtt_url(broker_url), LinkOptions(client_id=client_id, persistent=True, manual_ack=True,
                                                            receive_maximum=500, subscriptions=[("bulk/#", 1)]),
                    on_publishes=collector)
    collector.link = link
    return link


def publisher(broker_url: str) -> mqtt.Client:
    address = parse_mqtt_url(broker_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bulk-pub-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(address.host, address.port)
    client.loop_start()
    return client


def test_the_bulk_reader_delivers_every_message_once_as_published(broker):
    collector = Collector()
    client_id = f"bulk-{uuid.uuid4().hex[:6]}"
    pub = publisher(broker.url)
    link = bulk_link(broker.url, client_id, collector)
    expected: list[tuple[str, bytes, int]] = []
    try:
        retained = (f"bulk/{client_id}/retained", b"kept by the broker")
        pub.publish(*retained, qos=1, retain=True).wait_for_publish(5)
        link.start()
        wait_for(lambda: collector.received)
        assert collector.received[0][:2] == retained
        assert collector.received[0][4] is True  # replayed on subscribe: retained
        collector.received.clear()
        infos = []
        for i in range(3000):
            size = (i * 7919) % 20_000 if i % 50 else 0  # empty, small, and larger than one read's share
            payload = bytes((i + k) % 256 for k in range(size % 300)) * (size // 300 + 1)
            props = None
            if i % 3 == 0:  # properties the reader must skip over, of every length
                props = Properties(PacketTypes.PUBLISH)
                props.MessageExpiryInterval = 600
                if i % 9 == 0:
                    props.UserProperty = ("note", "x" * (i % 200))
            topic = f"bulk/{i % 7}/é{'长' * (i % 3)}"
            infos.append(pub.publish(topic, payload, qos=i % 2, properties=props))
            expected.append((topic, payload, i % 2))
        for info in infos:
            info.wait_for_publish(30)
        wait_for(lambda: len(collector.received) >= len(expected), timeout=30)
        got = [(t, p, q) for t, p, _mid, q, _retained in collector.received]
        # once each, byte for byte, and in order within each QoS (MQTT orders a publisher's messages
        # per QoS: a QoS 0 message may pass QoS 1 ones waiting for the receiver's in-flight window)
        for qos in (0, 1):
            assert [m for m in got if m[2] == qos] == [m for m in expected if m[2] == qos]
        assert len(got) == len(expected)
        assert not any(m[4] for m in collector.received)  # live messages are not retained ones
        assert collector.reads < len(expected) / 2  # read in bulk, not one by one
        assert link.callback_errors == 0
        link.stop()

        # everything was acknowledged in bulk: the session holds nothing to send again
        again = Collector()
        link = bulk_link(broker.url, client_id, again)
        link.start()
        pub.publish("bulk/marker", b"after", qos=1).wait_for_publish(5)
        wait_for(lambda: again.received)
        assert [m[1] for m in again.received if not m[4]] == [b"after"]
    finally:
        pub.publish(retained[0], b"", qos=1, retain=True).wait_for_publish(5)
        link.stop(end_session=True)
        pub.disconnect()
        release(pub)


def test_the_inbox_holds_at_most_its_bound_and_hands_over_whole_reads():
    inbox, stop = Inbox(max_messages=10), threading.Event()
    inbox.put(1, [("t", b"a", 1, 1, False)] * 6, stop)
    inbox.put(1, [("t", b"b", 2, 1, False)] * 4, stop)
    late = threading.Thread(target=inbox.put, args=(1, [("t", b"c", 3, 1, False)] * 5, stop))
    late.start()
    late.join(0.3)
    assert late.is_alive() and inbox.qsize() == 10  # full: the network thread waits, the broker keeps the rest
    first = inbox.take(max_messages=7, wait_s=0, timeout=1)
    assert [len(read[2]) for read in first] == [6]  # whole reads, never split, up to the batch size
    late.join(5)
    assert not late.is_alive() and inbox.qsize() == 9
    rest = inbox.take(max_messages=100, wait_s=0, timeout=1)
    assert [m[1] for read in rest for m in read[2]] == [b"b"] * 4 + [b"c"] * 5 and inbox.empty()
    assert inbox.take(max_messages=100, wait_s=0, timeout=0.05) == []


def _publish_packet(topic: str, payload: bytes, qos: int, mid: int, properties: bytes) -> bytes:
    """A PUBLISH packet as a broker writes it (MQTT 5: a properties length, then the properties)."""
    body = len(topic.encode()).to_bytes(2, "big") + topic.encode()
    if qos:
        body += mid.to_bytes(2, "big")
    body += _varint_bytes(len(properties)) + properties + payload
    return bytes([0x30 | qos << 1]) + _varint_bytes(len(body)) + body


def _varint_bytes(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 127, n >> 7
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def test_a_read_cut_anywhere_gives_the_same_messages_and_an_overlong_length_is_refused():
    """However the socket cuts the stream (inside a fixed header, a length, the properties or a
    payload), what the reader takes from two reads is what it takes from one; a remaining length
    of more than four bytes is a protocol error, not a wait for more."""
    from paho.mqtt.enums import MQTTErrorCode

    from core.mqtt import _Client

    packets = [("edu/dev/甲-1/telemetry", b"x" * 200, 1, 7, b""),
               ("edu/dev/B-2/telemetry", b"", 0, 0, b"\x02\x00\x00\x00\x3c"),  # message expiry
               ("edu/dev/C-3/telemetry", bytes(range(256)) * 80, 1, 65535, b"\x26\x00\x01k\x00\x01v" * 30)]
    stream = b"".join(_publish_packet(*p) for p in packets)
    expected = [(t, p, mid, qos, False) for t, p, qos, mid, _ in packets]
    client = _Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    whole: list[Received] = []
    assert client._split(stream, whole) == (len(stream), MQTTErrorCode.MQTT_ERR_SUCCESS)
    assert whole == expected
    for cut in range(1, len(stream)):
        received: list[Received] = []
        at, rc = client._split(stream[:cut], received)
        assert rc == MQTTErrorCode.MQTT_ERR_SUCCESS and at <= cut
        at2, rc2 = client._split(stream[at:], received)
        assert (rc2, at + at2) == (MQTTErrorCode.MQTT_ERR_SUCCESS, len(stream)), cut
        assert received == expected, cut
    overlong = bytes([0x32, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]) + b"\x00" * 16
    assert client._split(overlong, [])[1] == MQTTErrorCode.MQTT_ERR_PROTOCOL
    assert client._split(overlong[:4], []) == (0, MQTTErrorCode.MQTT_ERR_SUCCESS)  # not yet known: wait
