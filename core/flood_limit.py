"""Per-device flood limit: one misbehaving device must not crowd out the others.

A token bucket per device: `burst` messages at once, then `rate` per second of the
device's own time. Buckets refill by the time the readings say they were taken, not by
when they reach this worker: a device within the contract's rate that waited behind an
outage (its own, the broker's or this worker's) delivers its whole backlog at once and
is never limited, even when live readings arrive between the replayed ones. A device's
time counts only up to now and only back to `horizon` seconds ago, so neither a fast
clock nor back-dated readings earn more than `horizon` seconds of credit, and two
interleaved streams at most twice the rate. What is over the limit is not dropped: it is dead-lettered whole with
the reason, and kept out of the telemetry, the device state and the rollups.
"""

LIMIT_REASON = "flood limit"


class DeviceRateLimit:
    """Token buckets keyed by device id, refilled by device time."""

    def __init__(self, rate_per_s: float, burst: int, horizon_s: float = 3600.0) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.horizon = horizon_s
        # device -> (tokens, newest device time, replay device time, arrival of its last message)
        self._buckets: dict[str, tuple[float, float | None, float | None, float]] = {}
        # the dead-letter reason of a message over the limit
        self.reason = f"{LIMIT_REASON}: more than {burst} at once or {rate_per_s:g} per second"
        self._pruned_at = 0.0

    @property
    def enabled(self) -> bool:
        """False when configured off (a rate of zero)."""
        return self.rate > 0

    def allow(self, device_id: str, device_time: float | None, now: float) -> bool:
        """Take one token from the device's bucket; False when it is empty.

        `device_time` is when the device says the message was made (epoch seconds; None
        when the message carries no reading time) and `now` when it arrived here.
        """
        bucket = self._buckets.get(device_id)
        tokens, cursor, replay = (self.burst, None, None) if bucket is None else bucket[:3]
        if device_time is not None:
            # A device's own time, taken no later than now and no earlier than the horizon.
            at = min(max(device_time, now - self.horizon), now)
            if cursor is not None and at >= cursor:  # the usual case, inline: once per message
                tokens, cursor = min(self.burst, tokens + (at - cursor) * self.rate), at
            else:
                earned, cursor, replay = _advance(at, cursor, replay)
                tokens = min(self.burst, tokens + earned * self.rate)
        # A message without a reading's time (a status, an acknowledgement, an unreadable
        # one) takes a token but moves no clock: a birth dated now must not make the
        # backlog behind it look old.
        allowed = tokens >= 1.0
        self._buckets[device_id] = (tokens - 1.0 if allowed else tokens, cursor, replay, now)
        if now - self._pruned_at > 60:
            self._prune(now)
        return allowed

    def _prune(self, now: float) -> None:
        # A device silent for as long as its bucket takes to refill is the same as a new one:
        # forget it, so the map holds only devices that sent recently. (Judged by arrival: a
        # slow clock must not earn a fresh bucket every minute.)
        self._pruned_at = now
        idle = self.burst / self.rate if self.rate else 0.0
        for device_id in [d for d, (*_, seen) in self._buckets.items() if now - seen >= idle]:
            del self._buckets[device_id]

    def __len__(self) -> int:
        return len(self._buckets)


def _advance(at: float, cursor: float | None, replay: float | None) -> tuple[float, float, float | None]:
    """Seconds of device time a message at `at` adds, and the two clocks after it.

    The newest time seen earns what it moves forward. A device back online sends live
    readings between the ones it replays from its buffer, so an older message is read on a
    second clock, the replay, which earns what it moves forward in its own stream. A stream
    older still starts the replay again and earns nothing until it moves.
    """
    if cursor is None or at >= cursor:
        return (0.0 if cursor is None else at - cursor), at, replay
    if replay is None or at < replay:
        return 0.0, cursor, at
    return at - replay, cursor, at
