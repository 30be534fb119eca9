"""Every rule on small hand-built arrays: what it must catch and what it must leave alone."""

import numpy as np

from analytics.rules.burst import burst
from analytics.rules.leak import leak, leak_threshold
from analytics.rules.meter_fault import BACKWARDS, FROZEN, JUMP, meter_fault
from analytics.rules.sorting import low_recycling, unknown_cards

NAN = np.nan


def test_leak_needs_consecutive_nights_above_a_size_relative_threshold():
    flows = np.array([
        [0.2, 0.2, 0.3],    # leaking three nights
        [0.0, 0.0, 0.0],    # healthy: zero flow at night
        [0.4, 0.0, 0.4],    # one quiet night breaks the streak
        [0.2, NAN, 0.2],    # missing night: no verdict that night
        [0.3, 0.3, 0.3],    # a big hospital: 0.3 m3/h at night is normal for 2,000 people
    ])
    occupants = np.array([100, 100, 100, 100, 2000])
    threshold = leak_threshold(occupants, floor_m3h=0.03, per_person_m3h=0.0002, type_factor=np.ones(5))
    assert threshold.tolist() == [0.03, 0.03, 0.03, 0.03, 0.4]
    hit, value, streak = leak(flows, threshold, nights=3)
    assert hit.tolist() == [True, False, False, False, False]
    assert value[0] == 0.2 and streak.tolist() == [3, 0, 1, 1, 0]


def test_latest_full_hour_is_found_even_when_uploads_are_late():
    from analytics.rules.burst import latest_hour

    flows = np.array([[0.1, 5.0, NAN], [0.2, 0.3, 0.4], [NAN, NAN, NAN]])
    counts = np.array([[4, 4, 1], [4, 4, 4], [0, 0, 0]])
    flow, hour = latest_hour(flows, counts, min_readings=3)
    assert np.allclose(flow[:2], [5.0, 0.4]) and np.isnan(flow[2]) and hour.tolist() == [1, 2, -1]


def test_burst_is_sustained_and_relative_to_the_devices_own_peak():
    recent_min = np.array([6.0, 6.0, 0.5, NAN, 0.04])
    normal_p95 = np.array([1.0, 4.0, 0.05, 1.0, 0.001])
    hit, ratio = burst(recent_min, normal_p95, factor=3.0, floor_m3h=0.1)
    assert hit.tolist() == [True, False, True, False, False]
    assert ratio[0] == 6.0


def test_meter_fault_frozen_backwards_jump_and_what_is_not_a_fault():
    code = meter_fault(
        recent_use=np.array([0.0, 0.0, 0.0, 5.0, 5.0, NAN, 0.0]),
        recent_count=np.array([288, 288, 288, 288, 288, 0, 5]),
        usual_daily_use=np.array([3.0, 0.0, 3.0, 3.0, 3.0, 3.0, 3.0]),
        neighbours_moving=np.array([True, True, False, True, True, True, True]),
        bad_readings=np.array([0, 0, 0, 4, 0, 0, 0]),
        jumps=np.array([0, 0, 0, 0, 1, 0, 0]),
        min_backwards=2, min_count=36,
    )
    # frozen; never moves anyway (a spare meter); building closed; backwards; jump; no data; went silent
    assert code.tolist() == [FROZEN, 0, 0, BACKWARDS, JUMP, 0, 0]


def test_sorting_share_and_unknown_cards():
    low, share = low_recycling(np.array([30.0, 2.0, 1.0, 2.0, 6.0]), np.array([100.0, 100.0, 5.0, 100.0, 100.0]),
                               np.array([15, 1, 1, 1, 5]), np.array([50, 50, 50, 12, 50]),
                               target_share=0.15, min_total_kg=20.0, min_weighings=40)
    # fine; 1 recyclable bin of 50: sure; too little weight; too few bins; 6% by weight but 5 of 50 bins: not sure
    assert low.tolist() == [False, True, False, False, False] and share[1] == 0.02
    assert unknown_cards(np.array([0, 1, 3]), min_count=1).tolist() == [False, True, True]
