"""Per-device MQTT credentials.

A device's username is its id. Its password is derived from a provisioning secret
held by the platform (HMAC-SHA256 of the id), so it can be printed onto a device at
registration and re-issued by rotating the secret; the broker stores only its hash.
"""

import hashlib
import hmac


def device_password(provisioning_secret: str, device_id: str) -> str:
    """The MQTT password of one device under the given provisioning secret."""
    return hmac.new(provisioning_secret.encode(), device_id.encode(), hashlib.sha256).hexdigest()[:32]
