"""The one owner of a service's MQTT connection.

`MqttLink` sets the last will before connecting, re-subscribes and publishes its
birth messages on every (re)connect, reconnects with a bounded back-off and stops for
good on an authentication failure, and catches, logs and counts every exception
raised inside a callback so none vanishes.
"""

import logging
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from core.settings import BrokerAddress

log = logging.getLogger(__name__)

# MQTT v5 reason codes (and v3.1.1 return codes 4/5) that mean "your credentials are wrong".
_AUTH_FAILURES = {134, 135, 4, 5}


@dataclass(frozen=True)
class Outgoing:
    """A message to publish: on every connect (birth) or as the last will."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    expiry_s: int | None = None  # the broker discards it if not delivered in time (MQTT 5)

    def properties(self) -> Properties | None:
        """PUBLISH properties carrying the message expiry, if any."""
        if self.expiry_s is None:
            return None
        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = self.expiry_s
        return props


@dataclass
class LinkOptions:
    """How a link connects: identity, session, will, subscriptions."""

    client_id: str
    persistent: bool = False  # keep the session (and its queued messages) across disconnects
    session_expiry_s: int = 7 * 24 * 3600
    receive_maximum: int = 1000  # unacknowledged QoS 1 messages the broker may have in flight
    keepalive_s: int = 30
    manual_ack: bool = False
    will: Outgoing | None = None
    births: list[Outgoing] = field(default_factory=list)
    subscriptions: list[tuple[str, int]] = field(default_factory=list)
    skip_retained: bool = False  # ask the broker not to replay retained messages on subscribe
    ca_file: str | None = None


class _BufferedSocket:
    """A socket read 64 KiB at a time, handing paho its many small reads from memory.

    Paho reads each packet with several tiny recv() calls and a select() per packet;
    at thousands of messages a second that was half the ingest's CPU. It skips the
    wait in select() while `pending()` reports buffered bytes, as it does for TLS.
    """

    _CHUNK = 65536

    def __init__(self, sock) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, bufsize: int) -> bytes:
        if self._pos >= len(self._buf):
            data = self._sock.recv(max(bufsize, self._CHUNK))  # may raise BlockingIOError, or b"" at EOF
            if len(data) <= bufsize:
                return data
            self._buf, self._pos = data, 0
        chunk = self._buf[self._pos:self._pos + bufsize]
        self._pos += len(chunk)
        return chunk

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buf) - self._pos + inner

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


# A received PUBLISH as the bulk reader hands it over: (topic, payload, packet id, QoS, retained).
Received = tuple[str, bytes, int, int, bool]

_PUBLISH = 0x30
_PUBACK = 0x40
_READ_SIZE = 256 * 1024


class _Client(mqtt.Client):
    """Paho's client over a buffered socket; with `on_publishes` set, PUBLISH packets are read in bulk.

    Paho turns every packet into a dict, an MQTTMessage and its Properties, takes three locks and
    matches the topic against its callbacks, and its loop returns to select() after each packet:
    at tens of thousands of messages a second that was most of the ingest's CPU. The bulk reader
    takes whatever the socket holds, splits off each whole PUBLISH of QoS 0 or 1 (topic, packet
    id, properties skipped, payload) and hands them all to `on_publishes` at once; every other
    packet (CONNACK, SUBACK, PINGRESP, DISCONNECT, QoS 2, an unreadable topic, a topic alias)
    goes to paho's own handling, unchanged. Connection, session, keepalive, subscriptions and
    writes stay paho's.
    """

    on_publishes: Callable[[list[Received]], None] | None = None
    _unread: tuple[object, bytes] = (None, b"")  # the socket and its bytes short of a whole packet

    def _create_socket(self):
        return _BufferedSocket(super()._create_socket())

    def _packet_read(self) -> MQTTErrorCode:
        if self.on_publishes is None:
            return super()._packet_read()
        try:
            data = self._sock_recv(_READ_SIZE)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError as err:  # TimeoutError and ConnectionError included
            self._easy_log(mqtt.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if not data:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        sock, rest = self._unread
        if sock is self._sock and rest:  # the start of a packet left from the last read
            data = rest + data
        received: list[Received] = []
        at, rc = self._split(data, received)
        self._unread = (self._sock, data[at:])
        if received:
            self.on_publishes(received)
        return rc

    def _split(self, data: bytes, received: list[Received]) -> tuple[int, MQTTErrorCode]:
        """Take the whole packets from `data`: publishes into `received`, the rest to paho. Returns
        where the unread part starts and paho's result."""
        at, end, v5 = 0, len(data), self._protocol == mqtt.MQTTv5
        while at + 1 < end:
            command = data[at]
            length, i = _varint(data, at + 1, end)  # the remaining length
            if length < 0:
                return at, MQTTErrorCode.MQTT_ERR_PROTOCOL if i < end else MQTTErrorCode.MQTT_ERR_SUCCESS
            nxt = i + length
            if nxt > end:
                return at, MQTTErrorCode.MQTT_ERR_SUCCESS
            message = _publish(command, data, i, nxt, v5) if command & 0xF0 == _PUBLISH else None
            if message is not None:
                received.append(message)
            else:
                rc = self._handle_whole(command, data[i:nxt])
                if rc or self._sock is None:
                    return nxt, rc
            at = nxt
        return at, MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_whole(self, command: int, body: bytes) -> MQTTErrorCode:
        """One whole packet handled by paho, as its own reader would have."""
        self._in_packet = {"command": command, "have_remaining": 1, "remaining_count": [], "remaining_mult": 1,
                           "remaining_length": len(body), "packet": bytearray(body), "to_process": 0, "pos": 0}
        try:
            return self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        finally:
            self._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
                               "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0}

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledge QoS 1 messages (manual acknowledgement) with one write for all of them."""
        if mids:
            self._packet_queue(_PUBACK, b"".join(_PUBACK_OF[mid] for mid in mids), 0, 0)


# PUBACK packets by packet id, made once: acknowledging is a lookup, not a struct.pack
_PUBACK_OF = [struct.pack("!BBH", _PUBACK, 2, mid) for mid in range(65536)]


def _varint(data: bytes, at: int, end: int) -> tuple[int, int]:
    """MQTT's variable byte integer at data[at:] (up to four bytes of seven bits): (value, where the
    next field starts). (-1, end) when data ends inside it; (-1, where it went wrong) when it runs
    past four bytes."""
    value, shift = 0, 0
    while True:
        if at >= end:
            return -1, end
        byte = data[at]
        value |= (byte & 127) << shift
        at += 1
        if byte < 128:
            return value, at
        shift += 7
        if shift > 21:
            return -1, at - 1


def _publish(command: int, data: bytes, start: int, end: int, v5: bool) -> Received | None:
    """The PUBLISH packet data[start:end] (after its fixed header) as a Received, or None for paho
    to handle: QoS 2, a malformed or empty topic (a topic alias), a topic not UTF-8."""
    qos = (command >> 1) & 3
    if qos > 1 or end - start < 2:
        return None
    at = start + 2 + ((data[start] << 8) | data[start + 1])
    if at == start + 2 or at + (2 if qos else 0) > end:
        return None
    try:
        topic = data[start + 2:at].decode()
    except UnicodeDecodeError:
        return None
    mid = 0
    if qos:
        mid = (data[at] << 8) | data[at + 1]
        at += 2
    if v5:  # skip the properties (message expiry, user properties…): the ingest reads none of them
        length, at = _varint(data, at, end)
        at += length
        if length < 0 or at > end:
            return None
    return topic, data[at:end], mid, qos, bool(command & 1)


def release(client: mqtt.Client) -> None:
    """Stop a client's network thread and close every socket it holds.

    paho's loop_start() opens a socket pair to wake its thread; neither loop_stop() nor
    disconnect() closes it, only the client's finaliser does. Callbacks bound to their
    owner put the client in a reference cycle, and the collector finalises such a cycle's
    sockets in no fixed order, so without this the pair is reported as leaked.
    """
    client.loop_stop()
    client._reset_sockets()  # paho's own cleanup, as its finaliser runs it


class AuthenticationFailed(RuntimeError):
    """The broker refused the link's credentials; it will not retry."""


class MqttLink:
    """A managed MQTT v5 connection for one service process."""

    def __init__(
        self,
        broker: BrokerAddress,
        options: LinkOptions,
        on_message: Callable[[mqtt.MQTTMessage], None] | None = None,
        on_publishes: Callable[[list[Received], int], None] | None = None,
    ) -> None:
        """`on_message` gets each message as paho made it; `on_publishes`, when given instead, gets
        the messages of each read at once with the connection's generation (the bulk reader)."""
        self.broker = broker
        self.options = options
        self._on_message = on_message
        self._on_publishes = on_publishes
        self.callback_errors = 0
        self.connects = 0
        self.connected = threading.Event()
        self.auth_error: str | None = None
        self.generation = 0  # bumped on every connect: acks of older messages are stale
        self.client = self._build_client()

    def _build_client(self) -> mqtt.Client:
        opts = self.options
        client = _Client(
            CallbackAPIVersion.VERSION2,
            # With an account, the session is the account's: the platform's broker replaces any
            # client id with the username (use_username_as_clientid), so send that very id.
            client_id=self.broker.username or opts.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=opts.manual_ack,
        )
        client.suppress_exceptions = True
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set(ca_certs=opts.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if opts.will:
            w = opts.will
            client.will_set(w.topic, w.payload, qos=w.qos, retain=w.retain)
        client.on_connect = self._guard(self._handle_connect)
        client.on_disconnect = self._guard(self._handle_disconnect)
        client.on_message = self._guard(self._handle_message)
        client.on_subscribe = self._guard(self._handle_subscribed)
        if self._on_publishes is not None:
            client.on_publishes = self._guard(self._handle_publishes)
        return client

    def _guard(self, fn: Callable[..., None]) -> Callable[..., None]:
        def guarded(*args: object) -> None:
            try:
                fn(*args)
            except Exception:
                self.callback_errors += 1
                log.exception("error in MQTT callback %s of %s", fn.__name__, self.options.client_id)

        return guarded

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.options.session_expiry_s if self.options.persistent else 0
        props.ReceiveMaximum = self.options.receive_maximum
        return props

    def start(self, timeout: float = 10.0) -> None:
        """Connect and run the network loop in a background thread; wait for the first connect."""
        self.client.connect_async(
            self.broker.host,
            self.broker.port,
            keepalive=self.options.keepalive_s,
            clean_start=not self.options.persistent,
            properties=self._connect_properties(),
        )
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while not self.connected.wait(0.05):
            if self.auth_error:  # refused for good: say so now rather than at the timeout
                release(self.client)
                raise AuthenticationFailed(self.auth_error)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no connection to {self.broker.host}:{self.broker.port} within {timeout}s")

    def stop(self, *, publish: Outgoing | None = None, end_session: bool = False) -> None:
        """Optionally publish a final message, then disconnect cleanly and stop the loop.

        A persistent session outlives the disconnect (the broker queues for it) unless
        `end_session` asks the broker to discard it.
        """
        if publish is not None and self.connected.is_set():
            info = self.client.publish(publish.topic, publish.payload, publish.qos, publish.retain)
            info.wait_for_publish(timeout=5)
        props = None
        if end_session:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        release(self.client)

    def publish(self, message: Outgoing, *, wait_s: float | None = None) -> mqtt.MQTTMessageInfo:
        """Publish one message; with wait_s, block until the broker acknowledged it."""
        info = self.client.publish(message.topic, message.payload, message.qos, message.retain,
                                   properties=message.properties())
        if wait_s is not None:
            info.wait_for_publish(timeout=wait_s)
            if not info.is_published():
                raise TimeoutError(f"broker did not acknowledge {message.topic} within {wait_s}s")
        return info

    def ack(self, mid: int, qos: int, generation: int) -> None:
        """Acknowledge a received message, unless it came on an earlier connection."""
        if generation == self.generation:
            self.client.ack(mid, qos)

    def ack_many(self, mids: list[int], generation: int) -> None:
        """Acknowledge QoS 1 messages in one write, unless they came on an earlier connection (the
        broker sends those again on the new one)."""
        if generation == self.generation:
            self.client.ack_many(mids)

    def _handle_connect(self, client: mqtt.Client, _userdata, _flags, reason, _props) -> None:
        if reason.is_failure:
            if reason.value in _AUTH_FAILURES:
                self.auth_error = f"broker refused {self.options.client_id}: {reason}"
                log.error("%s; not retrying", self.auth_error)
                client.disconnect()
                client.loop_stop()
            else:
                log.warning("connect of %s refused: %s", self.options.client_id, reason)
            return
        self.generation += 1
        self.connects += 1
        for birth in self.options.births:
            client.publish(birth.topic, birth.payload, birth.qos, birth.retain)
        log.info("%s connected to %s:%s", self.options.client_id, self.broker.host, self.broker.port)
        if self.options.subscriptions:
            retain = SubscribeOptions.RETAIN_DO_NOT_SEND if self.options.skip_retained \
                else SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE
            client.subscribe([(f, SubscribeOptions(qos=q, retainHandling=retain))
                              for f, q in self.options.subscriptions])
        else:
            self.connected.set()

    def _handle_subscribed(self, _client, _userdata, _mid, reason_codes, _props) -> None:
        # Ready only once the broker holds our subscriptions: nothing published after
        # start() returns can slip past us.
        refused = [r for r in reason_codes if r.is_failure]
        if refused:
            log.error("%s: broker refused subscriptions: %s", self.options.client_id, refused)
        self.connected.set()

    def _handle_disconnect(self, _client, _userdata, _flags, reason, _props) -> None:
        self.connected.clear()
        if reason.is_failure:
            log.warning("%s disconnected: %s; reconnecting", self.options.client_id, reason)

    def _handle_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        if self._on_message is not None:
            self._on_message(message)
        elif self._on_publishes is not None:  # one the bulk reader left to paho (QoS 2, a topic alias)
            self._on_publishes([(message.topic, bytes(message.payload), message.mid, message.qos,
                                 bool(message.retain))], self.generation)

    def _handle_publishes(self, received: list[Received]) -> None:
        self._on_publishes(received, self.generation)
