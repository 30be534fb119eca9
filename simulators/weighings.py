"""Garbage weighings: which card weighs how much when, including the faults of sorting.

Shared by the MQTT traffic (messages) and the backfill (points).  Cleaners
weigh 2-6 bins a working day between 08:00 and 18:00; an institution that
mis-sorts puts everything under its 'other' cards; a share of weighings
carry a card that is not in the registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from meterwatch.const import LOCAL_UTC_OFFSET_S
from meterwatch.registry import Device
from simulators.faults import FaultRates, Label
from simulators.province import Province


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
        self.labels = [Label("mis_sorted", inst, "", "sorting", start, end, 0.0) for inst in sorted(self.mis_sorted)]

    def events(self, start: int, end: int, rng: np.random.Generator, labels: list[Label]) -> Iterator[Weighing]:
        day = 86400
        for scale in self.scales:
            by_category = self.cards.get(scale.institution, {})
            every_card = [c for cs in by_category.values() for c in cs]
            for local_day in range((start + LOCAL_UTC_OFFSET_S) // day, (end + LOCAL_UTC_OFFSET_S) // day + 1):
                day_start = local_day * day - LOCAL_UTC_OFFSET_S
                for _ in range(int(rng.integers(2, 7))):
                    ts = day_start + int(rng.integers(8 * 3600, 18 * 3600))
                    if not start <= ts < end:
                        continue
                    if scale.institution in self.mis_sorted and by_category.get("other"):
                        card = str(rng.choice(by_category["other"]))
                    else:
                        card = str(rng.choice(every_card)) if every_card else ""
                    if not card or rng.random() < self.rates.unknown_card:
                        card = f"X{int(rng.integers(0, 10**8)):08d}"
                        labels.append(Label("unknown_card", scale.institution, scale.id, "sorting", ts, ts, 1.0))
                    yield Weighing(scale, ts, card, round(float(rng.gamma(2.0, 6.0)) + 0.5, 2))
