"""Per-device flood limit: one misbehaving device must not crowd out the others.

A token bucket per device: `burst` messages at once (a device back online replays
what it buffered while away, up to 1,000 messages), then `rate` per second. What is
over the limit is not dropped: it is dead-lettered whole with the reason, and kept out
of the telemetry, the device state and the rollups.
"""

LIMIT_REASON = "flood limit"


class DeviceRateLimit:
    """Token buckets keyed by device id, fed by message arrival times."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # device -> (tokens, at)
        # the dead-letter reason of a message over the limit
        self.reason = f"{LIMIT_REASON}: more than {burst} at once or {rate_per_s:g} per second"
        self._pruned_at = 0.0

    @property
    def enabled(self) -> bool:
        """False when configured off (a rate of zero)."""
        return self.rate > 0

    def allow(self, device_id: str, now: float) -> bool:
        """Take one token from the device's bucket; False when it is empty."""
        tokens, at = self._buckets.get(device_id, (self.burst, now))
        tokens = min(self.burst, tokens + max(now - at, 0.0) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[device_id] = (tokens - 1.0 if allowed else tokens, now)
        if now - self._pruned_at > 60:
            self._prune(now)
        return allowed

    def _prune(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: forget it, so the map
        # holds only devices that sent recently.
        self._pruned_at = now
        full = [d for d, (tokens, at) in self._buckets.items() if tokens + (now - at) * self.rate >= self.burst]
        for device_id in full:
            del self._buckets[device_id]

    def __len__(self) -> int:
        return len(self._buckets)
