"""Cumulative register to consumption, per device, tolerant of late and repeated readings.

A device keeps its most recent readings in time order.  A new reading gets
``consumption = register - previous register``; a late one that lands
between two known readings also rewrites the consumption of the one after
it, so the intervals it splits are both right.  The window is contiguous
only from its oldest reading on: a reading older than that gets no
consumption rather than a wrong one.

A register that goes down never yields negative consumption: the interval
gets none and the caller is told (rollover / replacement classification is
the job of a later stage).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["new", "duplicate", "conflict"]
REGISTER_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class Interval:
    """A reading as it must be (re)written: its consumption since the reading before it."""

    ts: int
    register: float
    consumption: float | None
    interval_s: int | None
    decreased: bool = False


@dataclass(frozen=True, slots=True)
class AddResult:
    status: Status
    points: tuple[Interval, ...] = ()


def _delta(prev_ts: int, prev_reg: float, ts: int, reg: float) -> Interval:
    if reg + REGISTER_TOLERANCE < prev_reg:
        return Interval(ts, reg, None, ts - prev_ts, decreased=True)
    return Interval(ts, reg, max(reg - prev_reg, 0.0), ts - prev_ts)


@dataclass
class DeviceHistory:
    """Recent readings of one device; every reading at or after ``known_from`` is in it."""

    capacity: int = 64
    ts: list[int] = field(default_factory=list)
    register: list[float] = field(default_factory=list)
    known_from: float = float("-inf")

    def add(self, ts: int, register: float) -> AddResult:
        i = bisect.bisect_left(self.ts, ts)
        if i < len(self.ts) and self.ts[i] == ts:
            same = abs(self.register[i] - register) <= REGISTER_TOLERANCE * max(1.0, abs(register))
            return AddResult("duplicate" if same else "conflict")
        if ts < self.known_from:
            # Older than the contiguous window: a neighbour may be missing, so no delta.
            return AddResult("new", (Interval(ts, register, None, None),))
        points = [_delta(self.ts[i - 1], self.register[i - 1], ts, register) if i > 0
                  else Interval(ts, register, None, None)]
        if i < len(self.ts):
            points.append(_delta(ts, register, self.ts[i], self.register[i]))
        self.ts.insert(i, ts)
        self.register.insert(i, register)
        if len(self.ts) > self.capacity:
            del self.ts[0], self.register[0]
            self.known_from = self.ts[0]
        return AddResult("new", tuple(points))


def seed(ts: int, register: float, capacity: int) -> DeviceHistory:
    """History known from the store: only its newest reading, nothing before it."""
    return DeviceHistory(capacity, [ts], [register], known_from=ts)
