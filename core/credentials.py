"""MQTT credentials: one broker account per device and one per service process.

A device's username is its id. Its password is derived from a provisioning secret
held by the platform (HMAC-SHA256 of the id), so it can be printed onto a device at
registration and re-issued by rotating the secret; the broker stores only its hash.

Each service process (an ingest worker, the patrol, the API's command sender) has its
own account, named `svc.<service>`. The broker replaces every client id with the
username (`use_username_as_clientid`), so an account owns exactly one client id and no
one else can take it over. The dot cannot occur in a device id (core.contract's
DEVICE_ID_PATTERN, enforced by the registry's CHECK constraint), so no device can ever
be registered under a service's name. Service passwords derive the same way from the
platform's broker secret (COCKPIT_MQTT_PLATFORM_PASSWORD).
"""

import hashlib
import hmac
import re

SERVICE_PREFIX = "svc."
SERVICE_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,48}$"  # what may follow the prefix

INGEST = "ingest"
PATROL = f"{SERVICE_PREFIX}patrol"
API = f"{SERVICE_PREFIX}api"  # the API's command sender
MONITOR = f"{SERVICE_PREFIX}monitor"  # health checks: $SYS and the patrol's notices, read only
SNAPSHOTS = f"{SERVICE_PREFIX}snapshots"  # the snapshot intake: reads camera stills, nothing else


def derived_password(secret: str, username: str) -> str:
    """The MQTT password of one account under the given secret (HMAC-SHA256, 32 hex digits)."""
    return hmac.new(secret.encode(), username.encode(), hashlib.sha256).hexdigest()[:32]


def device_password(provisioning_secret: str, device_id: str) -> str:
    """The MQTT password of one device under the given provisioning secret."""
    return derived_password(provisioning_secret, device_id)


def service_account(name: str) -> str:
    """The broker account of a service: `svc.<name>`; ValueError for a name unfit for one."""
    if not re.fullmatch(SERVICE_NAME_PATTERN, name):
        raise ValueError(f"service account name {name!r} must be 1-48 characters of A-Z a-z 0-9 _ -")
    return f"{SERVICE_PREFIX}{name}"


def ingest_account(worker_id: str) -> str:
    """The broker account (and so the persistent session) of one ingest worker."""
    return service_account(f"{INGEST}-{worker_id}")


def is_service_account(username: str) -> bool:
    """True for a service's account name; never for a device id."""
    return username.startswith(SERVICE_PREFIX)


def derive_cockpit_secret(secret_key: str) -> str:
    """The credential with which the cockpit forwards a browser's address to the API, derived
    from the API's signing key (the key itself never travels)."""
    return hmac.new(secret_key.encode(), b"cockpit client forwarding", hashlib.sha256).hexdigest()
