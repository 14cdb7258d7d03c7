"""Settings of the ingest service (env prefix INGEST_)."""

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    """How an ingest worker subscribes, batches and judges device clocks."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    worker_id: str = "1"
    # Empty: a plain persistent subscription, which Mosquitto restores after a restart.
    # Set a group (e.g. "ingest") to split the load over several workers; Mosquitto
    # 2.0.11 does not restore shared subscriptions from its persistence file, so with
    # it, messages published between a broker restart and the workers' resubscription
    # are lost (see docs/reliability.md).
    share_group: str = ""
    batch_size: int = 2000
    batch_wait_ms: int = 200
    queue_max: int = 20000  # bounded hand-off from the network thread: full means backpressure
    receive_maximum: int = 4000  # unacknowledged messages the broker may have in flight to us
    skew_flag_s: int = 300  # device time this far in the future is flagged
    max_future_s: int = 3600  # further in the future: dead-lettered
    max_past_s: int = 7 * 86400  # older than this: dead-lettered
    # Flood limit per device (see core/flood_limit.py); a rate of 0 turns it off. With
    # several workers on a share group each keeps its own buckets.
    device_rate_per_s: float = 2.0
    device_burst: int = 1200
    # How far back a device's own time earns flood-limit credit: the longest backlog
    # (an outage anywhere between device and database) a compliant device is never
    # limited for. Longer outages: raise it.
    device_backlog_s: float = 3600.0
    # The worker's journal (ingest/spool.py): default <COCKPIT_DATA_DIR>/ingest-spool/<worker_id>.
    # It must outlive the process (a volume in a container) and belongs to this worker id.
    spool_dir: Path | None = None
    # How much backlog the journal holds before the broker must keep the rest: 4 GiB is
    # about an hour of a whole province's traffic (3,500 readings/s of ~300 bytes) on one worker.
    spool_max_bytes: int = 4 << 30
    heartbeat_timeout_s: int = 180  # no message for this long: offline
    heartbeat_sweep_s: int = 15
    health_host: str = "127.0.0.1"
    health_port: int = 0  # 0: no health/metrics endpoint
    db_retry_max_s: float = 30.0


@lru_cache
def ingest_settings() -> IngestSettings:
    """The ingest settings, read once from the environment."""
    return IngestSettings()
