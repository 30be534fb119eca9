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
meter's next upload) is appended at once, as numpy operations:
``extend_all`` takes one batch of each of many devices (a flush), and
``extend`` is the same for one batch, sorted first.  Whatever they cannot
prove ordinary (a duplicate, a late reading, a register that went down, a
jump) goes through ``add`` reading by reading, the reference both are
tested against.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence
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
        a reading kept out as bad, a register that goes down, a jump (see
        ``extend_all``, which this is for one device).
        """
        if not (ts[1:] > ts[:-1]).all():
            order = np.argsort(ts, kind="stable")
            ts, register = ts[order], register[order]
        extended = extend_all([self], ts, register, [len(ts)])
        if not extended.done[0]:
            return None
        return Extended(ts, register, extended.consumption, extended.interval_s)

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


@dataclass(frozen=True, slots=True)
class ExtendedAll:
    """What ``extend_all`` appended: which batches, and the columns of every batch's rows (garbage where not done)."""

    done: list[bool]
    consumption: np.ndarray  # float64; NaN: none (a device's first reading)
    interval_s: np.ndarray  # int64; -1: none


def extend_all(histories: Sequence[DeviceHistory], ts: np.ndarray, register: np.ndarray, counts: Sequence[int]
               ) -> ExtendedAll:
    """``extend`` for one batch of each of many devices at once, exactly as ``add`` would reading by reading.

    ``ts`` and ``register`` (after the multiplier) are the batches one after
    another, ``counts`` how many rows each has; each history appears once.
    A batch is appended when it is plainly the device's next upload: times
    rising and after the newest reading (and after any reading kept out as
    bad), registers not going down, no jump.  Every other batch is left
    untouched (``done`` False) for ``add``.

    A jump is judged against the median rate ``_append`` would hold at each
    reading: the one held before the batch for its first ``due`` readings,
    then one computed every ``JUMP_REFRESH`` readings from the readings
    before it, history and batch alike; all of them computed in one go.
    """
    ts, register = np.asarray(ts, dtype=np.int64), np.asarray(register, dtype=np.float64)  # (frombytes below)
    n, rows = len(histories), len(ts)
    counts_ = np.asarray(counts, dtype=np.int64)
    starts = np.cumsum(counts_) - counts_
    owner = np.repeat(np.arange(n), counts_)
    last_ts, last_reg, bad_after, held, firsts, splits, bases = [], [], [], [], [], [], []
    windows: list[tuple[int, int]] = []  # a median computed within a batch: (batch, readings before it)
    after: list[tuple[int, float | None, int]] = []  # per batch: (medians computed, else the one held after; due)
    refused = [h.capacity <= JUMP_WINDOW for h in histories]  # a window too short for ``extend``'s bookkeeping
    for i, (h, count) in enumerate(zip(histories, counts, strict=True)):
        known, median, due = len(h.ts), h._median, h._median_due
        first = 0 if known else 1  # a device's very first reading has nothing before it: not judged
        before, judged = known + first, count - first  # readings before the first judged one; judged ones
        if median is not None and due > 0:
            split = min(due, judged)  # the first ``split`` judged by the median held
            due -= split
        else:  # readings too few for a median are judged by none, each one asking again
            split = min(max(0, JUMP_MIN_HISTORY + 1 - before), judged)
            median, due = (None, JUMP_REFRESH - 1) if split else (median, due)
        held.append(np.nan if median is None else median)
        ends = range(before + split, before + judged, JUMP_REFRESH)  # each: the readings before a new median
        if ends and ends[0] <= JUMP_MIN_HISTORY:
            ends, refused[i] = range(0), True  # a history shortened by a bad reading: ``add`` knows
        bases.append(len(windows))
        windows += [(i, end) for end in ends]
        if ends:  # the last median computed holds on, due again after JUMP_REFRESH readings from its own
            median, due = None, JUMP_REFRESH - (before + judged - ends[-1])
        after.append((len(ends), median, due))
        last_ts.append(h.ts[-1] if known else 0)
        last_reg.append(h.register[-1] if known else 0.0)
        bad_after.append(max(h._bad) if h._bad else -(2**62))
        firsts.append(first)
        splits.append(split)
    computed = np.append(_window_medians(histories, ts, register, starts, windows) if windows else [], np.nan)
    k = np.arange(rows) - starts[owner] - np.asarray(firsts)[owner]  # the row's place among its batch's judged
    split_rows = np.asarray(splits)[owner]
    run = np.where(k >= split_rows, np.asarray(bases)[owner] + (k - split_rows) // JUMP_REFRESH, -1)
    judge = np.where(k < split_rows, np.asarray(held)[owner], computed[run])
    prev_ts = np.empty(rows, dtype=np.int64)
    prev_ts[1:] = ts[:-1]
    prev_ts[starts] = last_ts
    prev_reg = np.empty(rows, dtype=np.float64)
    prev_reg[1:] = register[:-1]
    prev_reg[starts] = last_reg
    steps, rise, has_prev = ts - prev_ts, register - prev_reg, k >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        odd = has_prev & ((steps <= 0) | (register + REGISTER_TOLERANCE < prev_reg)
                          | ((judge > 0) & (rise / steps > JUMP_FACTOR * judge)))
    odd_batches = (np.add.reduceat(odd, starts) > 0) | (ts[starts] <= np.asarray(bad_after, dtype=np.int64))
    done = [not (o or r) for o, r in zip(odd_batches.tolist(), refused, strict=True)]
    medians = computed.tolist()
    for i, (h, start, count) in enumerate(zip(histories, starts.tolist(), counts, strict=True)):
        if done[i]:
            made, median, due = after[i]
            h.ts.frombytes(ts[start:start + count].tobytes())
            h.register.frombytes(register[start:start + count].tobytes())
            h._median, h._median_due = (medians[bases[i] + made - 1] if made else median), due
            h._trim()
    return ExtendedAll(done, np.where(has_prev, np.maximum(rise, 0.0), np.nan), np.where(has_prev, steps, -1))


def _window_medians(histories: Sequence[DeviceHistory], ts: np.ndarray, register: np.ndarray, starts: np.ndarray,
                    windows: list[tuple[int, int]]) -> np.ndarray:
    """``median_rate`` at each ``(batch, end)``: of the ``end`` readings before, its history's then its batch's.

    Each batch with a window is laid out once, its history's last ``JUMP_WINDOW + 1`` readings then its
    own, and the rates between neighbours computed once along the layout; every window is then a slice
    of those rates, gathered into one matrix.
    """
    width = JUMP_WINDOW + 1
    pieces_ts: list[np.ndarray] = []
    pieces_reg: list[np.ndarray] = []
    where: dict[int, int] = {}  # batch -> position in the layout of the reading after its history
    laid = 0
    for i, _ in windows:
        if i in where:
            continue
        h, start = histories[i], int(starts[i])
        known = len(h.ts)
        tail = min(known, width)
        end = int(starts[i + 1]) if i + 1 < len(starts) else len(ts)  # the batch is ts[start:end]
        pieces_ts += [np.frombuffer(h.ts, dtype=np.int64)[known - tail:], ts[start:end]]
        pieces_reg += [np.frombuffer(h.register, dtype=np.float64)[known - tail:], register[start:end]]
        where[i] = laid + tail - known  # + a reading's index (history then batch) = its place in the layout
        laid += tail + end - start
    with np.errstate(invalid="ignore", divide="ignore"):  # the rate between each reading and the next
        rates = np.diff(np.concatenate(pieces_reg)) / np.diff(np.concatenate(pieces_ts))
    ends = np.array([where[i] + end for i, end in windows], dtype=np.int64)  # place of the reading after
    sizes = np.minimum(np.array([end for _, end in windows], dtype=np.int64), width)
    firsts = ends - width  # a window's first rate is the one after its first reading
    out = np.empty(len(windows))
    full = sizes == width
    if full.any():  # the usual window, inside its batch's layout: the middle of its rates, no need to sort them all
        rows = sliding_window_view(rates, JUMP_WINDOW)[firsts[full]]
        out[full] = np.partition(rows, JUMP_WINDOW // 2, axis=1)[:, JUMP_WINDOW // 2]
    if not full.all():  # fewer readings: the rates before the window's first reading are NaN, which sorts last
        columns = np.arange(JUMP_WINDOW)
        inside = columns >= width - sizes[~full, None]
        rows = np.where(inside, rates[np.maximum(firsts[~full, None] + columns, 0)], np.nan)
        short = np.sort(rows, axis=1)
        out[~full] = short[np.arange(len(short)), (sizes[~full] - 1) // 2]
    return out


def seed(ts: int, register: float, capacity: int, multiplier: float = 1.0) -> DeviceHistory:
    """History known from the store: only its newest reading, nothing before it."""
    return DeviceHistory(capacity, array("q", [ts]), array("d", [register]), known_from=ts, multiplier=multiplier)
