"""Garbage weighings as a real scale makes them: one bin at a time, each weighing its own record."""

from __future__ import annotations

import json
from collections import defaultdict

from simulators.province import generate_province
from simulators.traffic import Traffic, simulate_traffic
from simulators.weighings import WEIGHING_S, next_free

# Province seed 908 (40 institutions), the day up to 2026-01-01 18:00 China time: the simulator once drew two
# weighings of card C00011401 on scale guy-off-00021-s1 in one second (11:34:31, 6.7 kg and 16.07 kg), one key
# in the store and two in the simulator's count: the demo's "weighings stored" row one short.
SEED, INSTITUTIONS, END = 908, 40, 1_767_261_600
SCALE, CARD, SECOND = "guy-off-00021-s1", "C00011401", 1_767_238_471


def one_day() -> Traffic:
    return simulate_traffic(generate_province(INSTITUTIONS, SEED), END - 86400, END, SEED)


def weighings_of(traffic: Traffic) -> list[tuple[str, int, str, float]]:
    """(scale, ts, card, weight) of every weighing message, as the gateways send them."""
    out = []
    for m in traffic.messages:
        if m.topic.endswith("/weighing"):
            body = json.loads(m.payload)
            out.append((m.topic.split("/")[3], body["ts"], body["card"], body["weight_kg"]))
    return out


def test_a_scale_weighs_one_bin_at_a_time():
    traffic = one_day()
    weighings = weighings_of(traffic)
    by_scale: dict[str, list[int]] = defaultdict(list)
    for scale, ts, _, _ in weighings:
        by_scale[scale].append(ts)
    too_close = [(scale, a, b) for scale, times in by_scale.items()
                 for a, b in zip(sorted(times), sorted(times)[1:]) if b - a < WEIGHING_S]
    assert too_close == []
    assert len({(s, ts, c) for s, ts, c, _ in weighings}) == len(weighings) == traffic.valid_weighings


def test_the_weighing_that_vanished_from_the_demo_is_kept_a_weighing_later():
    both = sorted((ts, kg) for scale, ts, card, kg in weighings_of(one_day()) if (scale, card) == (SCALE, CARD))
    assert both == [(SECOND, 6.7), (SECOND + WEIGHING_S, 16.07)]


def test_next_free_moves_a_weighing_past_every_one_it_would_overlap():
    assert next_free(50, [100]) == 50  # 50 s before: the bin was off long before
    assert next_free(100, [100]) == 100 + WEIGHING_S
    assert next_free(110, [130, 100]) == 130 + WEIGHING_S  # after 100 it would overlap 130: after that too
    assert next_free(200, [100, 130]) == 200
