from hypothesis import given
from hypothesis import strategies as st

from collector.deltas import DeviceHistory, seed


def test_in_order_readings_give_consumption_and_interval():
    h = DeviceHistory()
    assert h.add(900, 10.0).points[0].consumption is None
    p = h.add(1800, 12.5).points
    assert len(p) == 1 and p[0].consumption == 2.5 and p[0].interval_s == 900


def test_same_reading_twice_is_a_duplicate_and_writes_nothing():
    h = DeviceHistory()
    h.add(900, 10.0)
    result = h.add(900, 10.0)
    assert result.status == "duplicate" and result.points == ()


def test_different_value_for_the_same_second_is_a_conflict():
    h = DeviceHistory()
    h.add(900, 10.0)
    assert h.add(900, 11.0).status == "conflict"


def test_late_reading_splits_the_interval_and_rewrites_the_next_one():
    h = DeviceHistory()
    h.add(900, 10.0)
    h.add(2700, 16.0)
    points = h.add(1800, 13.0).points
    assert [(p.ts, p.consumption, p.interval_s) for p in points] == [(1800, 3.0, 900), (2700, 3.0, 900)]


def test_register_going_down_never_gives_negative_consumption():
    h = DeviceHistory()
    h.add(900, 100.0)
    (p,) = h.add(1800, 3.0).points
    assert p.consumption is None and p.decreased


def test_reading_older_than_the_seeded_baseline_gets_no_consumption_and_rewrites_nothing():
    h = seed(10_000, 50.0, capacity=8)
    (p,) = h.add(9_000, 40.0).points
    assert p.consumption is None and p.ts == 9_000


def test_window_eviction_keeps_later_readings_correct():
    h = DeviceHistory(capacity=3)
    for i in range(10):
        h.add(900 * (i + 1), float(i))
    assert h.ts == [7200, 8100, 9000] and h.known_from == 7200
    (p,) = h.add(900, 0.0).points  # far too late: outside the contiguous window
    assert p.consumption is None


@given(st.lists(st.tuples(st.integers(0, 10_000), st.floats(0, 1e6)), min_size=1, max_size=60))
def test_consumption_is_never_negative(pairs):
    h = DeviceHistory(capacity=16)
    for ts, value in pairs:
        for p in h.add(ts, value).points:
            assert p.consumption is None or p.consumption >= 0


@given(st.permutations(list(range(1, 21))))
def test_any_arrival_order_of_a_monotone_register_sums_to_the_total(order):
    """Late data lands in the right interval: final consumption equals last - first."""
    h = DeviceHistory(capacity=64)
    latest: dict[int, float | None] = {}
    for k in order:
        for p in h.add(900 * k, 1.5 * k).points:
            latest[p.ts] = p.consumption
    total = sum(c for c in latest.values() if c is not None)
    assert abs(total - 1.5 * 19) < 1e-9
