"""What a device that subscribes outside its own command topic gets from the real broker.

Mosquitto 2.0's access list answers every SUBSCRIBE with success (src/security_default.c: "FIXME -
implement ACL subscription strings") and only filters what it delivers. The broker's guard
(deploy/mosquitto/guard.c) refuses in the SUBACK every filter of a device's but its own command
topic. Both layers are checked here, on the broker the suite started, whose version is recorded.
"""

import subprocess

import paho.mqtt.client as mqtt
import pytest

from core import contract
from core.contract import Channel
from core.credentials import API, MONITOR, PATROL
from tests.security.test_broker_auth import INGEST, _secured

REFUSED = 0x80  # SUBACK reason codes from here up refuse a subscription
NOT_AUTHORIZED = {mqtt.MQTTv5: 0x87, mqtt.MQTTv311: 0x80}  # 3.1.1 has one code: "failure"


@pytest.fixture
def secured(tmp_path, db, registry):
    """The secured broker of tests/security/test_broker_auth.py, publishing its $SYS figures every
    second rather than every ten: a test here waits for one to go by."""
    yield from _secured(tmp_path, db, registry, None, conf="sys_interval 1\n")


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311], ids=["mqtt5", "mqtt311"])
def test_a_device_subscribed_everywhere_receives_only_its_own_commands(secured, protocol,
                                                                       record_property):
    a, b = secured.devices
    own, others = contract.topic(a, Channel.COMMAND), contract.topic(b, Channel.COMMAND)
    wanted = ["#", "$SYS/#", "edu/#", contract.subscription(Channel.TELEMETRY), others, f"$share/g/{own}",
              contract.topic(a, Channel.REFUSED), f"{contract.TOPIC_ROOT}/{a}/+", own]

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
    assert refused == wanted[:-1]
    assert all(code == NOT_AUTHORIZED[protocol] for code in codes[:-1])

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


def test_services_subscribe_as_their_access_list_says(secured):
    """The guard leaves the platform's own accounts to the access list: shared and wildcard
    subscriptions of the ingest and the monitor are granted."""
    ingest, monitor = secured.peer(INGEST), secured.peer(MONITOR)
    assert all(code < REFUSED for code in ingest.subscribe(*(contract.subscription(c, "ingest")
                                                            for c in contract.INGESTED)))
    assert all(code < REFUSED for code in monitor.subscribe("$SYS/#", "edu/ops/#"))
