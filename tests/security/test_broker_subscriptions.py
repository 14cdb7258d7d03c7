"""What a device that subscribes outside its own command topic gets from the real broker.

Mosquitto 2.0's access-list check answers every SUBSCRIBE with success (src/security_default.c:
"FIXME - implement ACL subscription strings"), so the SUBACK grants `#`, `$SYS/#` and other
devices' topics alike; the access list is applied to each message delivered instead (read
access, retained messages included). This test pins both halves on the broker it runs on and
records its version: the confinement must always hold; a SUBACK that starts refusing on a 2.0.x
broker fails the test, because docs/mqtt-contract.md says it does not.
"""

import subprocess

import paho.mqtt.client as mqtt
import pytest

from core import contract
from core.contract import Channel
from core.credentials import API, MONITOR, PATROL
from tests.security.test_broker_auth import INGEST, secured  # noqa: F401 - the fixture

REFUSED = 0x80  # SUBACK reason codes from here up refuse a subscription


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311], ids=["mqtt5", "mqtt311"])
def test_a_device_subscribed_everywhere_receives_only_its_own_commands(secured, protocol,  # noqa: F811
                                                                       record_property):
    a, b = secured.devices
    own, others = contract.topic(a, Channel.COMMAND), contract.topic(b, Channel.COMMAND)
    wanted = ["#", "$SYS/#", contract.subscription(Channel.TELEMETRY), others, own]

    binary = subprocess.run([secured.broker.binary, "-h"], capture_output=True, text=True).stdout.splitlines()[0]
    monitor = secured.peer(MONITOR)
    monitor.subscribe("$SYS/broker/version")
    version = monitor.next()[1].decode()
    assert version in binary  # the broker that answers is the binary the suite started

    device = secured.peer(a, protocol=protocol)
    codes = device.subscribe(*wanted)
    refused = [topic for topic, code in zip(wanted, codes, strict=True) if code >= REFUSED]
    record_property("broker_version", version)
    record_property("suback", dict(zip(wanted, codes, strict=True)))
    print(f"\n{version}: SUBACK {dict(zip(wanted, codes, strict=True))}; refused: {refused or 'none'}")
    assert own not in refused
    if version.startswith("mosquitto version 2.0."):
        assert refused == [], (f"{version} now refuses {refused} in the SUBACK; docs/mqtt-contract.md says "
                               "Mosquitto 2.0 grants every subscription and filters delivery: update it")

    # what the device must not read: another device's reading, status and command, a notice,
    # and the broker's own $SYS figures, published live (one sys_interval) after it subscribed
    ingest, api, patrol, other = secured.peer(INGEST), secured.peer(API), secured.peer(PATROL), secured.peer(b)
    ingest.subscribe(contract.subscription(Channel.TELEMETRY))
    other.publish(contract.topic(b, Channel.TELEMETRY), b"b's reading")
    assert ingest.next() == (contract.topic(b, Channel.TELEMETRY), b"b's reading")  # it did flow
    other.publish(contract.topic(b, Channel.STATUS), b"b's status", retain=True)
    api.publish(others, b"for b")
    patrol.publish("edu/ops/alerts", b"a notice")
    monitor.subscribe("$SYS/broker/uptime")
    monitor.next()  # the retained value
    assert monitor.next(timeout=30)[0] == "$SYS/broker/uptime"  # a live update, queued for all readers at once

    api.publish(own, b"for a")  # last: everything above was queued for the device before it
    assert device.until((own, b"for a")) == []
