"""Cumulative register to consumption, per device, tolerant of late, repeated and odd readings.

A device keeps its most recent readings in time order.  A new reading gets
``consumption = register - previous register``; a late one that lands
between two known readings also rewrites the consumption of the one after
it, so the intervals it splits are both right.  The window is contiguous
only from ``known_from`` on: a reading older than that gets no consumption
rather than a wrong one.

Registers that go down or leap are classified by ``collector.registers``;
consumption is never negative and never a spike.

A batch newer than the history with nothing odd in it (the common case: a
meter's next upload) is appended at once by ``extend``, as numpy
operations; whatever ``extend`` cannot prove ordinary (a duplicate, a late
or out-of-order reading, a register that went down, a jump) goes through
``add`` reading by reading, the reference ``extend`` is tested against.
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from collector.registers import (
    JUMP_FACTOR,
    JUMP_MIN_HISTORY,
    JUMP_REFRESH,
    JUMP_WINDOW,
    classify_decrease,
    is_jump,
    median_rate,
)

Status = Literal["new", "duplicate", "conflict", "late"]
HELD = -1  # in ``DeviceHistory._medians``: the median held from before the batch
REGISTER_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class Interval:
    """A reading as it must be (re)written: its consumption since the reading before it."""

    ts: int
    register: float
    consumption: float | None
    interval_s: int | None
    flag: str | None = None  # rollover, replacement, bad_reading, jump


@dataclass(frozen=True, slots=True)
class AddResult:
    status: Status
    points: tuple[Interval, ...] = ()


@dataclass(frozen=True, slots=True)
class Extended:
    """Readings appended at once by ``DeviceHistory.extend``: the columns of what is stored, in time order."""

    ts: np.ndarray  # int64
    register: np.ndarray  # float64, after the multiplier
    consumption: np.ndarray  # float64; NaN: none (the device's first reading)
    interval_s: np.ndarray  # int64; -1: none


def interval(prev_ts: int, prev_reg: float, ts: int, reg: float, multiplier: float = 1.0) -> Interval:
    """The interval from one reading to the next, classifying a register that went down."""
    if reg + REGISTER_TOLERANCE < prev_reg:
        flag, consumption = classify_decrease(prev_reg, reg, multiplier)
        return Interval(ts, reg, consumption, ts - prev_ts, flag)
    return Interval(ts, reg, max(reg - prev_reg, 0.0), ts - prev_ts)


def placed(before: tuple[int, float] | None, ts: int, register: float, after: tuple[int, float] | None,
           multiplier: float = 1.0) -> tuple[Interval, ...]:
    """A reading placed between its neighbours (each ``(ts, register)`` or None): what must be (re)written.

    The reading gets its interval from the one before; the one after gets the
    rest of what used to be one interval.  The one home of this arithmetic,
    whether the neighbours are in memory (``DeviceHistory``) or in the store
    (``collector.late``).
    """
    first = Interval(ts, register, None, None) if before is None else interval(*before, ts, register, multiplier)
    return (first,) if after is None else (first, interval(ts, register, *after, multiplier))


def same_register(a: float, b: float) -> bool:
    """Two register values that are one reading (a retry), not a conflict."""
    return abs(a - b) <= REGISTER_TOLERANCE * max(1.0, abs(b))


@dataclass
class DeviceHistory:
    """Recent good readings of one device; every reading at or after ``known_from`` is in it."""

    capacity: int = 128  # a daily upload of 96 quarter-hours fits, so its retry is recognised
    ts: array = field(default_factory=lambda: array("q"))  # compact: 25,000 devices x 128 readings ~ 51 MB
    register: array = field(default_factory=lambda: array("d"))
    known_from: float = float("-inf")
    multiplier: float = 1.0
    _bad: set[int] = field(default_factory=set)  # times of readings kept out as bad
    _jumps: set[int] = field(default_factory=set)  # times of readings flagged as jumps
    _median: float | None = None  # median rate of rise, refreshed every JUMP_REFRESH appends
    _median_due: int = 0

    def add(self, ts: int, register: float) -> AddResult:
        i = bisect.bisect_left(self.ts, ts)
        if (i < len(self.ts) and self.ts[i] == ts) or ts in self._bad:
            known = self.register[i] if i < len(self.ts) and self.ts[i] == ts else None
            return AddResult("duplicate" if known is None or same_register(known, register) else "conflict")
        if ts < self.known_from:
            # Older than the contiguous window: its neighbours are in the store, not here.
            return AddResult("late", (Interval(ts, register, None, None),))
        if i == len(self.ts):
            return AddResult("new", self._append(ts, register))
        before = (self.ts[i - 1], self.register[i - 1]) if i > 0 else None
        points = placed(before, ts, register, (self.ts[i], self.register[i]), self.multiplier)
        self._insert(i, ts, register)
        return AddResult("new", points)

    def extend(self, ts: np.ndarray, register: np.ndarray) -> Extended | None:
        """Append a batch newer than the history in one go, exactly as ``add`` would one by one.

        None, with the history untouched, when some reading needs ``add``: a
        time repeated in the batch or not after the newest reading, a time of
        a reading kept out as bad, a register that goes down, a jump, or a
        window too short to hold the median's readings.
        """
        if self.capacity <= JUMP_WINDOW:
            return None
        gaps = ts[1:] - ts[:-1]
        if not (gaps > 0).all():
            order = np.argsort(ts, kind="stable")
            ts, register = ts[order], register[order]
            gaps = ts[1:] - ts[:-1]
            if not (gaps > 0).all():
                return None  # a time twice in the batch: a duplicate or a conflict, one by one
        known = len(self.ts)
        if known:
            first_ts = int(ts[0])
            if first_ts <= self.ts[-1] or (self._bad and max(self._bad) >= first_ts):
                return None
            prev_reg = np.concatenate(((self.register[-1],), register[:-1]))
            steps, new_reg = np.concatenate(((first_ts - self.ts[-1],), gaps)), register
        else:  # the device's very first reading has nothing before it
            prev_reg, steps, new_reg = register[:-1], gaps, register[1:]
        if (new_reg + REGISTER_TOLERANCE < prev_reg).any():
            return None
        medians, median, due = self._medians(ts, register, len(steps))
        rise = new_reg - prev_reg
        if medians is not None and ((medians > 0) & (rise / steps > JUMP_FACTOR * medians)).any():
            return None
        consumption, interval_s = np.maximum(rise, 0.0), steps
        if not known:
            consumption = np.concatenate(((np.nan,), consumption))
            interval_s = np.concatenate(((-1,), steps))
        self._median, self._median_due = median, due
        self.ts.frombytes(ts.tobytes())
        self.register.frombytes(register.tobytes())
        self._trim()
        return Extended(ts, register, consumption, interval_s)

    def _medians(self, ts: np.ndarray, register: np.ndarray, count: int
                 ) -> tuple[np.ndarray | float | None, float | None, int]:
        """The median rate ``_append`` would judge each of the last ``count`` readings by, and the state after them.

        One number when one median judges them all (the common case), None
        when none has a median, else an array (NaN: none).  ``ts`` and
        ``register`` are the batch, newer than the history.
        """
        median, due = self._median, self._median_due
        if median is not None and due >= count:
            return median, median, due - count
        start = len(self.ts) + len(ts) - count  # readings before the first judged one
        # Where ``_append`` would compute the median again, one append after another: ``end`` is how many
        # readings it is of (HELD: the one held before the batch; None: too few readings for one; times only
        # rise here, so ``median_rate`` has a median exactly when it has enough readings).
        runs: list[tuple[int, int, int | None]] = []  # (first judged, how many, end)
        end: int | None = HELD if median is not None else None
        k = 0
        while k < count:
            if end is None or due <= 0:
                end, due = start + k, JUMP_REFRESH
                end = end if end >= JUMP_MIN_HISTORY + 1 else None
            run = 1 if end is None else min(due, count - k)  # appends judged by this median
            runs.append((k, run, end))
            due -= run
            k += run
        values = self._window_medians(ts, register, [e for _, _, e in runs if e is not None and e != HELD])
        values[HELD] = median
        medians = np.full(count, np.nan)
        for k, run, e in runs:
            if e is not None:
                medians[k:k + run] = values[e]
        if not runs:
            return None, median, due
        judged = any(e is not None for _, _, e in runs)
        last = runs[-1][2]
        return (medians if judged else None), (None if last is None else values[last]), due

    def _window_medians(self, ts: np.ndarray, register: np.ndarray, ends: list[int]) -> dict[int, float | None]:
        """``median_rate`` of the history followed by the batch, at each of ``ends``, all at once."""
        if not ends:
            return {}
        every_ts = np.concatenate((np.frombuffer(self.ts, dtype=np.int64), ts))
        every_reg = np.concatenate((np.frombuffer(self.register, dtype=np.float64), register))
        rates = np.diff(every_reg) / np.diff(every_ts)  # every step rises: rate i is from reading i to i + 1
        full = [e for e in ends if e - 1 >= JUMP_WINDOW]  # a whole window of JUMP_WINDOW rates before e - 1
        out: dict[int, float | None] = {}
        if full:
            windows = sliding_window_view(rates, JUMP_WINDOW)[[e - 1 - JUMP_WINDOW for e in full]]
            out.update(zip(full, np.sort(windows, axis=1)[:, JUMP_WINDOW // 2].tolist(), strict=True))
        for e in ends:
            if e not in out:
                window = np.sort(rates[:e - 1])
                out[e] = float(window[len(window) // 2])
        return out

    def repeats_latest(self, ts: int, register: float, within_s: float) -> bool:
        """True when ``register`` at ``ts`` is the newest reading again, less than ``within_s`` later.

        Binary frames carry no time and are stamped on receipt: a redelivered
        frame looks like a new reading a few seconds after the first.
        """
        return bool(self.ts) and 0 <= ts - self.ts[-1] < within_s and same_register(self.register[-1], register)

    def _append(self, ts: int, register: float) -> tuple[Interval, ...]:
        if not self.ts:
            self._insert(0, ts, register)
            return (Interval(ts, register, None, None),)
        prev_ts, prev_reg = self.ts[-1], self.register[-1]
        if register + REGISTER_TOLERANCE < prev_reg and prev_ts in self._jumps and self.register[-2] <= register:
            # Back to the level before the jump: the jump was the bad reading.
            bad = Interval(prev_ts, prev_reg, None, None, "bad_reading")
            del self.ts[-1], self.register[-1]
            self._bad.add(prev_ts)
            point = interval(self.ts[-1], self.register[-1], ts, register, self.multiplier)
            self._insert(len(self.ts), ts, register)
            return bad, point
        if self._median is None or self._median_due <= 0:
            self._median, self._median_due = median_rate(self.ts, self.register), JUMP_REFRESH
        self._median_due -= 1
        if is_jump(prev_ts, prev_reg, ts, register, self._median):
            self._jumps.add(ts)
            self._insert(len(self.ts), ts, register)
            return (Interval(ts, register, None, ts - prev_ts, "jump"),)
        point = interval(prev_ts, prev_reg, ts, register, self.multiplier)
        if point.flag == "bad_reading":
            self._bad.add(ts)  # kept, flagged, but never a baseline
            return (point,)
        self._insert(len(self.ts), ts, register)
        return (point,)

    def _insert(self, i: int, ts: int, register: float) -> None:
        self.ts.insert(i, ts)
        self.register.insert(i, register)
        self._trim()

    def _trim(self) -> None:
        """Keep the newest ``capacity`` readings; the window is contiguous from the oldest kept."""
        extra = len(self.ts) - self.capacity
        if extra > 0:
            del self.ts[:extra], self.register[:extra]
            self.known_from = self.ts[0]
            self._bad = {t for t in self._bad if t >= self.known_from}
            self._jumps = {t for t in self._jumps if t >= self.known_from}


def seed(ts: int, register: float, capacity: int, multiplier: float = 1.0) -> DeviceHistory:
    """History known from the store: only its newest reading, nothing before it."""
    return DeviceHistory(capacity, array("q", [ts]), array("d", [register]), known_from=ts, multiplier=multiplier)
