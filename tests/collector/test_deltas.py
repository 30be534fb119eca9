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


def feed(h: DeviceHistory, values, start=0, step=900):
    out = []
    for k, v in enumerate(values):
        out += h.add(start + step * (k + 1), v).points
    return out


def test_rollover_near_the_counter_maximum_wraps_around():
    h = DeviceHistory()
    points = feed(h, [99_990.0, 99_996.0, 3.0, 9.0])
    assert [(p.consumption, p.flag) for p in points[2:]] == [(7.0, "rollover"), (6.0, None)]


def test_rollover_is_judged_on_the_raw_counter_not_the_scaled_register():
    h = DeviceHistory(multiplier=40.0)  # a CT meter: register = raw x 40
    points = feed(h, [9_990.0 * 40, 9_998.0 * 40, 1.0 * 40])
    assert points[-1].flag == "rollover" and points[-1].consumption == 3.0 * 40


def test_meter_replacement_gives_no_consumption_and_a_new_baseline():
    h = DeviceHistory()
    points = feed(h, [5_000.0, 5_010.0, 2.0, 4.5])
    assert [(p.consumption, p.flag) for p in points[2:]] == [(None, "replacement"), (2.5, None)]


def test_small_dip_is_a_bad_reading_that_never_becomes_the_baseline():
    h = DeviceHistory()
    points = feed(h, [100.0, 110.0, 120.0, 117.0, 125.0])
    assert [(p.ts, p.consumption, p.flag) for p in points[3:]] == [(3600, None, "bad_reading"), (4500, 5.0, None)]


def test_spike_that_falls_back_is_rewritten_as_a_bad_reading():
    h = DeviceHistory()
    points = feed(h, [100.0, 101.0, 102.0, 103.0, 104.0, 9_000.0, 105.0])
    jump, bad, good = points[5], points[6], points[7]
    assert (jump.ts, jump.consumption, jump.flag) == (5400, None, "jump")  # no spike even before we know
    assert (bad.ts, bad.consumption, bad.flag) == (5400, None, "bad_reading")  # rewritten
    assert (good.ts, good.consumption, good.interval_s) == (6300, 1.0, 1800)


def test_jump_that_stays_is_flagged_once_and_the_new_level_continues():
    h = DeviceHistory()
    points = feed(h, [100.0, 101.0, 102.0, 103.0, 104.0, 50_000.0, 50_001.0])
    assert [(p.consumption, p.flag) for p in points[5:]] == [(None, "jump"), (1.0, None)]


def test_reading_older_than_the_seeded_baseline_gets_no_consumption_and_rewrites_nothing():
    h = seed(10_000, 50.0, capacity=8)
    result = h.add(9_000, 40.0)
    assert result.status == "late" and result.points[0].consumption is None and result.points[0].ts == 9_000


def test_window_eviction_keeps_later_readings_correct():
    h = DeviceHistory(capacity=3)
    for i in range(10):
        h.add(900 * (i + 1), float(i))
    assert list(h.ts) == [7200, 8100, 9000] and h.known_from == 7200
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


def test_a_reading_between_neighbours_is_split_the_same_in_memory_and_from_the_store():
    from collector.deltas import placed

    h = DeviceHistory()
    h.add(900, 10.0)
    h.add(2700, 16.0)
    in_memory = h.add(1800, 13.0).points
    assert placed((900, 10.0), 1800, 13.0, (2700, 16.0)) == in_memory
    assert [(p.consumption, p.interval_s) for p in in_memory] == [(3.0, 900), (3.0, 900)]
    assert placed(None, 1800, 13.0, None)[0].consumption is None  # nothing before it: no consumption, not a guess
