"""Injected faults and their ground truth.

A fault plan is drawn once per (seed, window) and applied to the true-use
matrix of the fleet (devices x quarter-hours).  Each fault is written down
as a ``Label`` naming what meterwatch should make of it: an alert rule of
the contract, a reject reason (``reject:<reason>``), a ``duplicate``, or a
register ``flag``.
"""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np

COUNTER_MAX = 100_000.0  # a five-digit register: what a rollover wraps around


@dataclass(frozen=True, slots=True)
class Label:
    fault: str  # leak, burst, silent, frozen, backwards, rollover, replacement, spoof, malformed, retry, ...
    institution: str
    device: str
    expect: str  # leak / burst / silent / meter_fault / sorting / reject:<reason> / duplicate / flag:<flag>
    start: int
    end: int
    magnitude: float  # leak / burst: m3/h; silent: h; others as noted per fault


@dataclass(frozen=True)
class FaultRates:
    """Share of eligible meters (or messages) that get each fault."""

    leak: float = 0.01  # water meters: constant flow day and night
    burst: float = 0.003  # water meters: a few hours of very high flow
    silent: float = 0.01  # any meter: stops reporting
    frozen: float = 0.003  # register stops while the building uses
    backwards: float = 0.001  # register runs backwards
    rollover: float = 0.003  # register passes its maximum in the window
    replacement: float = 0.002  # meter swapped: register starts again near zero
    spoof: float = 0.002  # messages re-sent under another institution's topic
    malformed: float = 0.002  # messages garbled
    retry: float = 0.02  # messages sent twice
    unknown_device: int = 3
    unknown_card: float = 0.03  # scales where a new cleaner weighs with an unregistered card
    mis_sorted: float = 0.03  # scale institutions whose cleaners put everything in 'other'


@dataclass(frozen=True)
class Fault:
    kind: str
    device: int  # index into the fleet
    start: int  # Unix seconds
    end: int
    magnitude: float


def plan_faults(kinds: np.ndarray, start: int, end: int, rng: np.random.Generator,
                rates: FaultRates) -> list[Fault]:
    """Which meters fail how and when within [start, end]; at most one fault a meter."""
    n = len(kinds)
    taken = np.zeros(n, dtype=bool)
    span = end - start
    faults: list[Fault] = []

    def pick(eligible: np.ndarray, share: float) -> np.ndarray:
        candidates = np.flatnonzero(eligible & ~taken)
        count = min(len(candidates), int(round(share * eligible.sum())))
        chosen = rng.choice(candidates, size=count, replace=False) if count else np.array([], dtype=np.int64)
        taken[chosen] = True
        return np.sort(chosen)

    water, meters = kinds == "water", kinds != "scale"
    for d in pick(water, rates.leak):
        s = start + int(rng.uniform(0.0, 0.5) * span)
        faults.append(Fault("leak", int(d), s, end, float(rng.uniform(0.05, 0.5))))
    for d in pick(water, rates.burst):
        s = start + int(rng.uniform(0.1, 0.8) * span)
        faults.append(Fault("burst", int(d), s, min(end, s + int(rng.uniform(1, 6) * 3600)),
                            float(rng.uniform(6.0, 15.0))))  # scaled to the building by the fleet model
    for kind, share in (("silent", rates.silent), ("frozen", rates.frozen), ("backwards", rates.backwards),
                        ("replacement", rates.replacement)):
        for d in pick(meters, share):
            s = start + int(rng.uniform(0.2, 0.6) * span)
            faults.append(Fault(kind, int(d), s, end, 0.0))
    for d in pick(meters, rates.rollover):
        faults.append(Fault("rollover", int(d), start, end, COUNTER_MAX))
    return faults


# What meterwatch should make of each injected fault (a label's ``expect``): the one map of fault kinds to
# alert rules (analytics' rule names), register flags and rejects.  The accuracy benchmark scores every rule
# named here.
EXPECT = {"leak": "leak", "burst": "burst", "silent": "silent", "frozen": "meter_fault",
          "backwards": "meter_fault", "rollover": "flag:rollover", "replacement": "flag:replacement",
          "mis_sorted": "sorting", "unknown_card": "sorting"}


def write_labels(labels: list[Label], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([f.name for f in fields(Label)])
        writer.writerows(astuple(label) for label in labels)


def read_labels(path: Path) -> list[Label]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [Label(r["fault"], r["institution"], r["device"], r["expect"], int(r["start"]), int(r["end"]),
                      float(r["magnitude"])) for r in csv.DictReader(fh)]
