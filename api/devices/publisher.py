"""The API's connection to the broker, used only to send commands down to devices."""

import logging
import os
import socket

from core import contract
from core.contract import Channel, Command
from core.mqtt import LinkOptions, MqttLink, Outgoing
from core.settings import PlatformSettings

log = logging.getLogger(__name__)


class CommandPublisher:
    """Publishes commands at QoS 1 with an expiry, so a briefly offline device still gets them."""

    def __init__(self, platform: PlatformSettings) -> None:
        self.link = MqttLink(platform.require_broker(), LinkOptions(
            client_id=f"api-{socket.gethostname()}-{os.getpid()}",
            ca_file=str(platform.mqtt_ca_file) if platform.mqtt_ca_file else None,
        ))

    def start(self) -> None:
        """Connect in the background; commands fail fast until the broker is reachable."""
        try:
            self.link.start(timeout=5)
        except TimeoutError:
            log.warning("broker not reachable yet; commands will be sent once it is")

    def stop(self) -> None:
        """Disconnect."""
        self.link.stop()

    def send(self, device_id: str, command: Command, ttl_s: int) -> bool:
        """Publish one command; True when the broker acknowledged it."""
        if not self.link.connected.is_set():
            return False
        message = Outgoing(contract.topic(device_id, Channel.COMMAND), contract.encode(command), expiry_s=ttl_s)
        try:
            self.link.publish(message, wait_s=5)
        except (TimeoutError, RuntimeError, ValueError) as exc:
            log.warning("command %s to %s not published: %s", command.id, device_id, exc)
            return False
        return True
