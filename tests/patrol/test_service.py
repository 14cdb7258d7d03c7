"""The patrol service as it runs: a real broker, a real device's last will, a notice on the operations topic."""

import json
import queue
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.mqtt import release
from core.settings import platform_settings
from patrol.service import PatrolService
from patrol.settings import PatrolSettings
from tests.fixtures.devices import wait_for

TOPIC = "edu/ops/alerts-test"


def test_a_last_will_reaches_the_operations_topic_within_seconds(db, registry, broker, device, start_ingest):
    registry.area()
    gateway = registry.device(registry.school(), "gateway")
    start_ingest()
    # the rule's policy waits are lifted so any hour will do
    db.execute("UPDATE patrol_rule SET for_s = 0, active_in = 'always' WHERE id = 'gateway_offline'")
    notices: queue.Queue[dict] = queue.Queue()
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="notice-watcher")
    watcher.on_message = lambda _c, _u, message: notices.put(json.loads(message.payload))
    watcher.on_connect = lambda client, *_: client.subscribe(TOPIC, 1)
    watcher.connect_async("127.0.0.1", broker.port)
    watcher.loop_start()
    service = PatrolService(platform_settings(), PatrolSettings(cycle_s=3600, default_mqtt_topic=TOPIC))
    service.start()
    try:
        d = device(gateway)  # its birth and its will carry the same time, as a real device's do
        online = "SELECT online FROM device_state WHERE device_id = %s"
        wait_for(lambda: (db.execute(online, (gateway,)).fetchone() or {}).get("online") is True)
        # the service's first cycle is done (its cycle counter moved; the next is an hour away): only the
        # last will can raise the alert now
        wait_for(lambda: service.metrics.cycles._value.get() >= 1)
        d.cut()
        cut_at = time.monotonic()
        notice = notices.get(timeout=10)
        elapsed = time.monotonic() - cut_at
    finally:
        service.stop()
        watcher.disconnect()
        release(watcher)
    assert [a["device_id"] for a in notice["alerts"]] == [gateway]
    assert notice["alerts"][0]["rule"] == "gateway_offline"
    assert elapsed < 5, f"the notice took {elapsed:.1f}s"
    assert service.metrics.wills._value.get() == 1
