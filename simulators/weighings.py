"""Garbage weighings: which card weighs how much when, including the faults of sorting.

Shared by the MQTT traffic (messages) and the backfill (points).  Cleaners
weigh 2-6 bins a working day between 08:00 and 18:00; an institution that
mis-sorts puts everything under its 'other' cards; a share of weighings
carry a card that is not in the registry.  A scale weighs one bin at a
time, so two weighings of one scale are at least ``WEIGHING_S`` apart:
never two with one key (scale, second, card) that a store would merge.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from meterwatch.localtime import DAY, LOCAL_UTC_OFFSET_S, local_day
from meterwatch.registry import Device
from simulators.faults import EXPECT, FaultRates, Label
from simulators.province import Province

# How often a bin of each category is weighed, and how heavy it is (gamma shape, scale in kg).  With these,
# recyclables are ~30% of the weight, kitchen waste ~40%, hazardous ~1%: typical of sorted office waste.
CATEGORY_ODDS = {"recyclable": 0.32, "kitchen": 0.30, "other": 0.30, "hazardous": 0.08}
CATEGORY_WEIGHT = {"recyclable": (2.0, 4.5), "kitchen": (3.0, 6.5), "other": (2.0, 4.5), "hazardous": (1.5, 0.6)}
OPEN_S, CLOSE_S = 8 * 60 * 60, 18 * 60 * 60  # bins are weighed between 08:00 and 18:00 local time
# A scale weighs one bin at a time: tap the card, put the bin on, wait for a steady reading, take it off.
WEIGHING_S = 30


@dataclass(frozen=True, slots=True)
class Weighing:
    scale: Device
    ts: int
    card: str
    weight_kg: float


class WeighingModel:
    def __init__(self, province: Province, seed: int, start: int, end: int, rates: FaultRates) -> None:
        self.rates = rates
        self.scales = [d for d in province.devices if d.kind == "scale"]
        self.cards: dict[str, dict[str, list[str]]] = {}
        for c in province.cards:
            self.cards.setdefault(c.institution, {}).setdefault(c.category, []).append(c.card)
        rng = np.random.default_rng([seed, 6])
        institutions = sorted({d.institution for d in self.scales})
        count = int(round(rates.mis_sorted * len(institutions)))
        self.mis_sorted = {institutions[i] for i in rng.choice(len(institutions), size=count, replace=False)}
        self.labels = [Label("mis_sorted", inst, "", EXPECT["mis_sorted"], start, end, 0.0)
                       for inst in sorted(self.mis_sorted)]
        # A new cleaner whose card was never registered: one scale, from some day on, a share of its weighings.
        count = int(round(rates.unknown_card * len(self.scales)))
        picked = sorted(rng.choice(len(self.scales), size=count, replace=False).tolist()) if count else []
        self.new_cleaner: dict[str, tuple[int, str]] = {}
        for k in picked:
            scale = self.scales[k]
            since = start + int(rng.uniform(0.0, 0.7) * (end - start))
            self.new_cleaner[scale.id] = (since, f"X{int(rng.integers(0, 10**8)):08d}")
            self.labels.append(Label("unknown_card", scale.institution, scale.id, EXPECT["unknown_card"], since, end,
                                     0.3))

    def events(self, start: int, end: int, rng: np.random.Generator) -> Iterator[Weighing]:
        for scale in self.scales:
            by_category = self.cards.get(scale.institution, {})
            for day in range(int(local_day(start)), int(local_day(end)) + 1):
                day_start = day * DAY - LOCAL_UTC_OFFSET_S
                taken: list[int] = []
                for _ in range(int(rng.integers(2, 7))):
                    ts = next_free(day_start + int(rng.integers(OPEN_S, CLOSE_S)), taken)
                    if not start <= ts < end:
                        continue
                    taken.append(ts)
                    category = self._category(rng, by_category)
                    if scale.institution in self.mis_sorted and by_category.get("other"):
                        card = str(rng.choice(by_category["other"]))  # everything goes in as 'other'
                    else:
                        card = str(rng.choice(by_category[category])) if category else ""
                    newcomer = self.new_cleaner.get(scale.id)
                    if newcomer is not None and ts >= newcomer[0] and rng.random() < 0.3:
                        card = newcomer[1]
                    if not card:
                        card = "UNREGISTERED"
                    shape, size = CATEGORY_WEIGHT.get(category or "other", CATEGORY_WEIGHT["other"])
                    yield Weighing(scale, ts, card, round(float(rng.gamma(shape, size)) + 0.2, 2))

    @staticmethod
    def _category(rng: np.random.Generator, by_category: dict[str, list[str]]) -> str | None:
        present = [c for c in CATEGORY_ODDS if by_category.get(c)]
        if not present:
            return None
        odds = np.array([CATEGORY_ODDS[c] for c in present])
        return present[int(rng.choice(len(present), p=odds / odds.sum()))]


def next_free(ts: int, taken: list[int]) -> int:
    """The first second from ``ts`` on that is ``WEIGHING_S`` away from every weighing the scale already made."""
    for t in sorted(taken):
        if t - WEIGHING_S < ts < t + WEIGHING_S:
            ts = t + WEIGHING_S
    return ts
