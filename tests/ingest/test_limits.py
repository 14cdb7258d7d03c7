"""The per-device flood limit on its own: burst, refill by device time, forgetting idle devices."""

from core.flood_limit import DeviceRateLimit


def test_a_burst_passes_then_the_rate_holds():
    limit = DeviceRateLimit(rate_per_s=2, burst=5)
    assert [limit.allow("A", 100.0, 100.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limit.allow("A", 100.5, 100.5)  # one token back after half a second
    assert not limit.allow("A", 100.5, 100.5)
    assert [limit.allow("A", 101.0 + i, 101.0 + i) for i in range(3)] == [True] * 3


def test_devices_have_buckets_of_their_own():
    limit = DeviceRateLimit(rate_per_s=1, burst=2)
    assert limit.allow("A", 0.0, 0.0) and limit.allow("A", 0.0, 0.0) and not limit.allow("A", 0.0, 0.0)
    assert limit.allow("B", 0.0, 0.0), "a flooding device must not use up another's allowance"


def test_a_compliant_backlog_arriving_at_once_is_never_limited():
    # 11 minutes at the contract's 2 per second, held back by an outage, delivered in one go
    limit = DeviceRateLimit(rate_per_s=2, burst=1200)
    now = 10_000.0
    times = [now - 660 + i * 0.5 for i in range(1320)]
    assert all(limit.allow("A", t, now) for t in times)


def test_a_flood_is_limited_whatever_times_it_claims():
    limit = DeviceRateLimit(rate_per_s=2, burst=100, horizon_s=600)
    now = 10_000.0
    # stamped in the future (a fast clock, or a device lying): counts as now
    ahead = [limit.allow("A", now + i, now) for i in range(200)]
    assert ahead.count(True) == 100
    # back-dated far beyond the horizon: earns at most the horizon's credit
    back = [limit.allow("B", now - 86_400 + i * 0.5, now) for i in range(5000)]
    assert back.count(True) <= 100 + 600 * 2 + 1


def test_old_readings_after_newer_ones_earn_nothing():
    limit = DeviceRateLimit(rate_per_s=1, burst=2)
    assert limit.allow("A", 100.0, 100.0) and limit.allow("A", 100.0, 100.0)
    assert not limit.allow("A", 50.0, 100.0), "time running backwards must not refill the bucket"


def test_messages_without_a_readable_time_count_at_arrival():
    limit = DeviceRateLimit(rate_per_s=1, burst=3)
    assert [limit.allow("A", None, 5.0) for _ in range(4)] == [True] * 3 + [False]


def test_refilled_buckets_are_forgotten():
    limit = DeviceRateLimit(rate_per_s=1, burst=10)
    for i in range(100):
        limit.allow(f"D{i}", 0.0, 0.0)
    limit.allow("late", 5.0, 5.0)
    assert len(limit) == 101
    limit.allow("later", 70.0, 70.0)  # a minute on: every bucket but the newest has refilled
    assert len(limit) == 1


def test_a_rate_of_zero_is_off():
    assert not DeviceRateLimit(rate_per_s=0, burst=1).enabled


def test_a_birth_before_the_backlog_does_not_make_it_look_old():
    # the contract's birth message on reconnect carries no reading time
    limit = DeviceRateLimit(rate_per_s=2, burst=1200)
    now = 10_000.0
    assert limit.allow("A", None, now)
    assert all(limit.allow("A", now - 650 + i * 0.5, now) for i in range(1300))


def test_a_slow_clock_earns_no_fresh_bucket():
    # 50 messages a second for 3 minutes, its clock 11 minutes behind: held to the burst and the rate
    limit = DeviceRateLimit(rate_per_s=2, burst=1200)
    start = 100_000.0
    allowed = sum(limit.allow("A", start + i / 50 - 660, start + i / 50) for i in range(50 * 180))
    assert allowed <= 1200 + 180 * 2 + 1


def test_live_readings_between_the_replayed_ones_do_not_starve_the_backlog():
    # 30 minutes at 2/s replayed oldest first, a live reading (dated now) after every 100
    limit = DeviceRateLimit(rate_per_s=2, burst=1200)
    now = 50_000.0
    outcomes = []
    for i in range(3600):
        outcomes.append(limit.allow("A", now - 1800 + i * 0.5, now))
        if i % 100 == 99:
            outcomes.append(limit.allow("A", now, now))
    assert all(outcomes)


def test_interleaving_two_streams_earns_at_most_twice_the_rate():
    limit = DeviceRateLimit(rate_per_s=2, burst=100, horizon_s=600)
    now = 10_000.0
    allowed = sum(limit.allow("A", t, now) for i in range(5000) for t in (now - 600 + i * 0.1, now - 300 + i * 0.1))
    assert allowed <= 100 + 2 * 600 * 2 + 2
