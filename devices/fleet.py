"""Many device connections in one thread.

Every simulated device has its own MQTT connection (its own client id, credentials
and last will), as a real device does. Thousands of paho clients are driven by one
selector loop through paho's external-loop socket callbacks instead of a thread each.
"""

import logging
import selectors
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core import contract
from core.contract import Channel
from core.settings import BrokerAddress

log = logging.getLogger(__name__)

CommandHandler = Callable[["DeviceConnection", bytes], None]


class DeviceConnection:
    """One device's MQTT connection: will set before connecting, birth on every connect."""

    def __init__(self, fleet: "Fleet", device_id: str, password: str | None) -> None:
        self.fleet = fleet
        self.device_id = device_id
        self.retry_at = 0.0
        self.wanted = False
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv5)
        client.suppress_exceptions = True
        if password is not None:
            client.username_pw_set(device_id, password)
        client.on_connect = fleet.guard(self._connected)
        client.on_message = fleet.guard(self._command)
        client.on_socket_open = fleet.guard(fleet._socket_open)
        client.on_socket_close = fleet.guard(fleet._socket_close)
        client.on_socket_register_write = fleet.guard(fleet._want_write)
        client.on_socket_unregister_write = fleet.guard(fleet._done_writing)
        client.max_queued_messages_set(1000)  # a device buffers at most this much while offline
        self.client = client

    @property
    def connected(self) -> bool:
        """True while the broker has accepted this connection."""
        return self.client.is_connected()

    def connect(self) -> None:
        """Open the connection (TCP now, CONNACK through the loop)."""
        now = datetime.now(UTC)
        self.client.will_set(contract.topic(self.device_id, Channel.STATUS),
                             contract.encode(contract.will(now)), qos=1, retain=True)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 24 * 3600  # commands wait for a device that is briefly away
        self.client.connect(self.fleet.broker.host, self.fleet.broker.port, keepalive=30,
                            clean_start=False, properties=props)

    def _connected(self, client, _userdata, _flags, reason, _props) -> None:
        if reason.is_failure:
            log.warning("device %s refused: %s", self.device_id, reason)
            self.fleet.refused += 1
            return
        client.subscribe(contract.topic(self.device_id, Channel.COMMAND), contract.QOS)
        self.publish(Channel.STATUS, contract.birth(datetime.now(UTC)), retain=True)
        self.fleet.on_connected(self)

    def _command(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        if self.fleet.on_command:
            self.fleet.on_command(self, message.payload)

    def publish(self, channel: Channel, message, retain: bool = False) -> None:
        """Publish one payload model on one of this device's channels."""
        self.client.publish(contract.topic(self.device_id, channel), contract.encode(message),
                            qos=contract.QOS, retain=retain)
        self.fleet.published += 1

    def shutdown(self, moment: datetime) -> None:
        """Go offline deliberately: offline status (no will), then DISCONNECT."""
        status = contract.DeviceStatus(v=1, ts=moment, online=False, reason=contract.StatusReason.SHUTDOWN)
        self.publish(Channel.STATUS, status, retain=True)
        self.client.disconnect()

    def cut(self) -> None:
        """Lose the connection abruptly, as a power cut or a broken link does: the broker sends the will."""
        sock = self.client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Fleet:
    """A selector loop over many device connections."""

    def __init__(self, broker: BrokerAddress,
                 on_connected: Callable[[DeviceConnection], None] = lambda c: None,
                 on_command: CommandHandler | None = None) -> None:
        self.broker = broker
        self.on_connected = on_connected
        self.on_command = on_command
        self.selector = selectors.DefaultSelector()
        self.connections: dict[str, DeviceConnection] = {}
        self.callback_errors = 0
        self.published = 0
        self.refused = 0
        self._last_misc = 0.0

    def guard(self, fn: Callable[..., None]) -> Callable[..., None]:
        """Wrap a callback so an exception in it is logged and counted, never lost."""
        def guarded(*args: object) -> None:
            try:
                fn(*args)
            except Exception:
                self.callback_errors += 1
                log.exception("error in device callback %s", fn.__name__)
        return guarded

    def add(self, device_id: str, password: str | None = None) -> DeviceConnection:
        """Create (but do not open) a device's connection."""
        conn = DeviceConnection(self, device_id, password)
        self.connections[device_id] = conn
        return conn

    def _socket_open(self, client, _userdata, sock) -> None:
        self.selector.register(sock, selectors.EVENT_READ, client)

    def _socket_close(self, _client, _userdata, sock) -> None:
        try:
            self.selector.unregister(sock)
        except (KeyError, ValueError):
            pass

    def _want_write(self, client, _userdata, sock) -> None:
        self.selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _done_writing(self, client, _userdata, sock) -> None:
        try:
            self.selector.modify(sock, selectors.EVENT_READ, client)
        except (KeyError, ValueError):
            pass

    def poll(self, timeout: float) -> None:
        """Move bytes for every connection that is ready; run keepalives once a second."""
        if not self.selector.get_map():
            time.sleep(timeout)
        else:
            for key, mask in self.selector.select(timeout):
                client: mqtt.Client = key.data
                if mask & selectors.EVENT_READ:
                    client.loop_read(100)
                if mask & selectors.EVENT_WRITE:
                    client.loop_write()
        now = time.monotonic()
        if now - self._last_misc >= 1.0:
            self._last_misc = now
            for conn in self.connections.values():
                if conn.client.socket() is not None:
                    conn.client.loop_misc()
            self._reconnect(now)

    def _reconnect(self, now: float, budget: int = 400) -> None:
        # A bounded number of connects a second, so a whole fleet coming back after a
        # broker restart does not stall the loop (and the broker) in one burst.
        for conn in self.connections.values():
            if budget <= 0:
                return
            if conn.wanted and conn.client.socket() is None and now >= conn.retry_at:
                budget -= 1
                try:
                    conn.connect()
                    conn.retry_at = now + 2
                except OSError as exc:
                    conn.retry_at = now + 5
                    log.debug("device %s cannot reach the broker: %s", conn.device_id, exc)

    def close(self) -> None:
        """Disconnect every device cleanly."""
        for conn in self.connections.values():
            if conn.connected:
                conn.client.disconnect()
        deadline = time.monotonic() + 3
        while self.selector.get_map() and time.monotonic() < deadline:
            self.poll(0.05)
        self.selector.close()
