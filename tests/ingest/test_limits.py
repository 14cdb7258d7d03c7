"""The per-device flood limit on its own: burst, refill, forgetting idle devices."""

from ingest.limits import DeviceRateLimit


def test_a_burst_passes_then_the_rate_holds():
    limit = DeviceRateLimit(rate_per_s=2, burst=5)
    assert [limit.allow("A", 100.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limit.allow("A", 100.5)  # one token back after half a second
    assert not limit.allow("A", 100.5)
    assert [limit.allow("A", 101.0 + i) for i in range(3)] == [True] * 3  # 2 per second, never more than asked


def test_devices_have_buckets_of_their_own():
    limit = DeviceRateLimit(rate_per_s=1, burst=2)
    assert limit.allow("A", 0.0) and limit.allow("A", 0.0) and not limit.allow("A", 0.0)
    assert limit.allow("B", 0.0), "a flooding device must not use up another's allowance"


def test_refilled_buckets_are_forgotten():
    limit = DeviceRateLimit(rate_per_s=1, burst=10)
    for i in range(100):
        limit.allow(f"D{i}", 0.0)
    limit.allow("late", 5.0)
    assert len(limit) == 101
    limit.allow("later", 70.0)  # a minute on: every bucket but the newest has refilled
    assert len(limit) == 1


def test_a_rate_of_zero_is_off():
    assert not DeviceRateLimit(rate_per_s=0, burst=1).enabled
