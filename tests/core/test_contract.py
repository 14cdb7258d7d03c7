"""The device contract: topic grammar, payload models and the published JSON Schemas."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from core import contract
from core.contract import Channel
from core.settings import PROJECT_ROOT
from core.telemetry_decode import ClockPolicy, Record, decode

DOC = PROJECT_ROOT / "docs" / "mqtt-contract.md"


def test_topics_round_trip():
    assert contract.topic("B42-001", Channel.TELEMETRY) == "edu/dev/B42-001/telemetry"
    assert contract.parse_topic("edu/dev/B42-001/ack") == ("B42-001", Channel.ACK)
    assert contract.subscription(Channel.EVENT, "ingest") == "$share/ingest/edu/dev/+/event"
    with pytest.raises(ValueError):
        contract.parse_topic("edu/dev/B42-001/telemetry/extra")


def test_published_schemas_match_the_models():
    folder = PROJECT_ROOT / "docs" / "schemas"
    for name, schema in contract.json_schemas().items():
        on_disk = json.loads((folder / name).read_text())
        assert on_disk == json.loads(json.dumps(schema)), f"{name} is stale: run 'cockpit contract-schemas'"


def _doc_examples() -> list[tuple[str, str]]:
    """Every `mosquitto_pub -t TOPIC -m 'PAYLOAD'` example in the contract document."""
    return re.findall(r"mosquitto_pub [^\n]*?-t (\S+) [^\n]*?-m '([^']+)'", DOC.read_text())


def test_every_documented_example_is_valid():
    from datetime import UTC, datetime, timedelta

    examples = _doc_examples()
    assert len(examples) >= 6
    for topic, payload in examples:
        _, channel = contract.parse_topic(topic)
        if channel is Channel.COMMAND:
            contract.Command.model_validate_json(payload)
            continue
        sent = json.loads(payload).get("ts")
        now = datetime.fromisoformat(sent) if sent else datetime.now(UTC)
        policy = ClockPolicy(timedelta(minutes=5), timedelta(hours=1), timedelta(days=7))
        assert isinstance(decode(topic, payload.encode(), now, policy), Record), (topic, payload)


def test_documented_examples_publish_with_mosquitto_pub(broker):
    for topic, payload in _doc_examples():
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-t", topic,
                        "-m", payload], check=True, timeout=10)


def test_schema_folder_is_where_the_document_says():
    assert "docs/schemas/" in DOC.read_text()
    assert Path(PROJECT_ROOT / "docs" / "schemas" / "telemetry.board.schema.json").exists()
