"""The HTTP push's request and answer: a batch of readings in the device contract's JSON, and
what became of each."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_READINGS = 5_000
MAX_BODY_BYTES = 8 * 1024 * 1024


class PushChannel(StrEnum):
    """The channels a vendor platform may push: the sequenced ones, stored once per (device, seq, ts), and
    camera stills, stored once per (device, camera, ts)."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    SNAPSHOT = "snapshot"


class PushBatch(BaseModel):
    """A batch of readings; each is the contract's payload for the channel plus its `device_id`.

    The readings themselves are judged one by one as the MQTT ingest judges a message, so one
    bad reading is dead-lettered with its reason and never refuses the batch.
    """

    model_config = ConfigDict(extra="forbid")

    readings: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_READINGS)


# The body as documented: a schema without nested definitions, so it can sit inline in the
# operation (the route reads the body itself, to bound its size before parsing it).
PUSH_BATCH_SCHEMA: dict = {
    "title": "PushBatch",
    "type": "object",
    "additionalProperties": False,
    "required": ["readings"],
    "properties": {
        "readings": {
            "type": "array", "minItems": 1, "maxItems": MAX_READINGS,
            "items": {
                "type": "object",
                "description": "the contract's payload for the channel (docs/mqtt-contract.md) with a "
                               "`device_id`; judged one by one, never refusing the batch",
            },
        },
    },
}


class Refusal(BaseModel):
    """A reading not stored: for a device that is not the vendor's, or dead-lettered with its reason."""

    index: int = Field(description="its position in the batch, from 0")
    device_id: str | None
    reason: str


class PushOutcome(BaseModel):
    """What a committed batch did (answered only after the commit)."""

    stored: int = Field(description="readings stored now")
    duplicates: int = Field(description="readings already stored (a retry): skipped, not stored twice")
    dead_lettered: int = Field(description="readings of the vendor's devices refused with a reason")
    refused: int = Field(description="readings for devices that are not the vendor's (also dead-lettered)")
    rejected: list[Refusal] = Field(description="every reading not stored, refused ones first")
