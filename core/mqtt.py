"""The one owner of a service's MQTT connection.

`MqttLink` sets the last will before connecting, re-subscribes and publishes its
birth messages on every (re)connect, reconnects with a bounded back-off and stops for
good on an authentication failure, and catches, logs and counts every exception
raised inside a callback so none vanishes.
"""

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
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


class _Client(mqtt.Client):
    """Paho's client over a buffered socket."""

    def _create_socket(self):
        return _BufferedSocket(super()._create_socket())


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
    ) -> None:
        self.broker = broker
        self.options = options
        self._on_message = on_message
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
