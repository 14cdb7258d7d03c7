"""What goes wrong with simulated devices, when, and for how long.

Each fault has the device kinds it strikes, a chance per device and hour, and a range
of durations. The simulator asks the schedule once a second which faults start and
which end; a fault can also be injected on purpose (for a demonstration, a test or a
benchmark). A school's network going down is one fault of its gateway that takes every
device of the school off the network with it.

Besides faults, a few devices misbehave as real ones do: a clock that is off, a
message sent twice, a message that arrives after the next one.
"""

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class FaultKind:
    """How one kind of fault strikes."""

    kinds: tuple[str, ...]
    per_hour: float  # chance per device and hour
    minutes: tuple[float, float]  # how long it lasts
    cuts_connection: bool = False  # the device drops off the network (the broker sends its last will)


# The faults devices.behaviour knows, and how often they strike at a scale of 1.
FAULTS: dict[str, FaultKind] = {
    "offline": FaultKind(("board", "recorder", "gateway"), 0.03, (3, 20), cuts_connection=True),
    "network_down": FaultKind(("gateway",), 0.004, (5, 30), cuts_connection=True),
    "overheat": FaultKind(("board",), 0.01, (15, 60)),
    "disk_full": FaultKind(("board",), 0.002, (120, 600)),
    "camera_lost": FaultKind(("recorder",), 0.01, (5, 40)),
    "stream_dropped": FaultKind(("recorder",), 0.02, (2, 10)),
    "frames_dropping": FaultKind(("recorder",), 0.01, (5, 20)),
    "frozen_picture": FaultKind(("recorder",), 0.005, (3, 15)),
    "black_picture": FaultKind(("recorder",), 0.003, (5, 30)),
    "storage_low": FaultKind(("recorder",), 0.001, (60, 600)),
    "saturated": FaultKind(("gateway",), 0.01, (15, 45)),
    "lossy": FaultKind(("gateway",), 0.01, (10, 30)),
    "aps_down": FaultKind(("gateway",), 0.003, (10, 60)),
    # camera stills (devices/frames.py): a lens out of focus, a lens covered
    "blurred_picture": FaultKind(("recorder", "board"), 0.004, (5, 30)),
    "covered_camera": FaultKind(("recorder", "board"), 0.003, (3, 20)),
}


def parse_injection(text: str) -> tuple[str, str, float]:
    """DEVICE:FAULT[:MINUTES] as given on the command line (minutes default to 10)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError(f"{text!r}: expected DEVICE:FAULT[:MINUTES]")
    fault = parts[1]
    if fault not in FAULTS:
        raise ValueError(f"{text!r}: unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    minutes = float(parts[2]) if len(parts) == 3 else 10.0
    if minutes <= 0:
        raise ValueError(f"{text!r}: minutes must be positive")
    return parts[0], fault, minutes


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (how many of many devices, each with a small chance, are struck)."""
    if mean > 30:  # normal approximation; exact enough for counts this large
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


class FaultSchedule:
    """Which faults each device has now and until when."""

    def __init__(self, rng: random.Random, kinds: dict[str, str], scale: float = 1.0) -> None:
        self.rng = rng
        self.scale = scale
        self.active: dict[tuple[str, str], float] = {}  # (device id, fault) -> ends at (epoch seconds)
        self._eligible = {fault: [d for d, kind in kinds.items() if kind in how.kinds] for fault, how in FAULTS.items()}

    def inject(self, device_id: str, fault: str, now: float, minutes: float) -> None:
        """Start a fault on purpose (or extend one already running)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        self.active[(device_id, fault)] = max(self.active.get((device_id, fault), 0.0), now + 60 * minutes)

    def tick(self, now: float, elapsed_s: float) -> tuple[list, list]:
        """Faults that start and end in the last `elapsed_s` seconds: ([(device, fault)], [(device, fault)]).

        The number struck is drawn once per fault (not a coin per device), so a tick
        costs the same for a school as for a province.
        """
        ended = [key for key, until in self.active.items() if now >= until]
        for key in ended:
            del self.active[key]
        started = []
        for fault, how in FAULTS.items():
            devices = self._eligible[fault]
            if not devices or self.scale <= 0:
                continue
            for _ in range(poisson(self.rng, len(devices) * how.per_hour * self.scale * elapsed_s / 3600)):
                device_id = self.rng.choice(devices)
                if (device_id, fault) not in self.active:
                    self.inject(device_id, fault, now, self.rng.uniform(*how.minutes))
                    started.append((device_id, fault))
        return started, ended


@dataclass(frozen=True)
class Misbehaviour:
    """Shares of devices with a wrong clock, and of messages sent twice or late."""

    skewed_share: float = 0.01  # devices whose clock is off
    skew_s: tuple[float, float] = (-900.0, 900.0)  # by how much
    duplicate_share: float = 0.002  # messages published twice (same sequence number)
    late_share: float = 0.002  # messages held back and published after the device's next one

    def clock_offset(self, rng: random.Random) -> float:
        """A device's clock error in seconds (0 for most devices)."""
        return rng.uniform(*self.skew_s) if rng.random() < self.skewed_share else 0.0
