"""Rule inputs gathered from the store, aligned with the registry (the only I/O of analytics).

Every function asks the store for aggregates (pushed down as InfluxQL or
SQL) and returns numpy arrays in the order of a device or institution list,
with NaN where the store had nothing.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass

import numpy as np

from analytics import bills
from analytics.quota import GBT2589, energy_kgce
from meterwatch.const import METER_KINDS
from meterwatch.localtime import DAY, local_midnight
from meterwatch.registry import Device, Registry
from meterwatch.store import BillPoint, ChangeMark, ReadingPoint, Store, WeighingPoint
from meterwatch.store.aggregate import Aggregate
from meterwatch.store.changes import CHANGE_MARK_AGE_S

@dataclass(frozen=True)
class MeterActivity:
    devices: list[Device]
    last_ts: np.ndarray
    usual_interval_s: np.ndarray


def meters(registry: Registry, kinds: frozenset[str] = METER_KINDS) -> list[Device]:
    return sorted((d for d in registry.devices.values() if d.kind in kinds), key=lambda d: d.id)


def align(keys: list[str], result: dict, key: str, column: str, fill: float = np.nan) -> np.ndarray:
    """``result[column]`` reordered to ``keys`` (by ``result[key]``), ``fill`` where missing."""
    index = {k: i for i, k in enumerate(result[key])}
    out = np.full(len(keys), fill, dtype=np.float64)
    for j, k in enumerate(keys):
        i = index.get(k)
        if i is not None:
            out[j] = result[column][i]
    return out


async def meter_activity(store: Store, registry: Registry, start: int, end: int,
                         fresh_s: float = 0.0) -> MeterActivity:
    """Every registry meter, with NaN where the store has no reading in [start, end].

    The usual interval (a median over the window, the costliest aggregate there is) is asked only of
    the meters whose newest reading is more than ``fresh_s`` old: the silent rule's floor, within which
    no meter is silent whatever its interval (NaN for the others)."""
    devices = meters(registry)
    latest = await store.latest_readings(start, until=end)
    last = np.array([latest[d.id][0] if d.id in latest else np.nan for d in devices], dtype=np.float64)
    doubt = ~(end - last <= fresh_s)  # NaN (nothing in the window) is in doubt
    activity = await store.device_activity(start, end, devices=[d.id for d, x in zip(devices, doubt, strict=True) if x])
    index = {d: i for i, d in enumerate(activity.device)}
    interval = np.array([activity.usual_interval_s[index[d.id]] if d.id in index else np.nan for d in devices])
    return MeterActivity(devices, last, interval)


def _ids(devices: list[Device], only: np.ndarray | None) -> tuple[str, ...] | None:
    """The ids of ``devices`` where ``only`` is true (None: no restriction)."""
    return None if only is None else tuple(d.id for d, keep in zip(devices, only, strict=True) if keep)


async def flow(store: Store, devices: list[Device], start: int, end: int, func: str,
               default_interval_s: float, only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per device: (``func`` of the flow in m3/h over [start, end), readings counted); a reading without an
    interval counts ``default_interval_s``.  With ``only`` (a mask over ``devices``) the others are NaN, 0."""
    ids = [d.id for d in devices]
    res = await store.aggregate(Aggregate(ReadingPoint, {"c": (func, "consumption"), "iv": ("max", "interval_s"),
                                                         "n": ("count", "consumption")},
                                          start, end, by=("device",), where={"kind": "water"},
                                          devices=_ids(devices, only)))
    interval = align(ids, res, "device", "iv")
    interval = np.where(np.isfinite(interval) & (interval > 0), interval, default_interval_s)
    return align(ids, res, "device", "c") / interval * 3600, align(ids, res, "device", "n", 0.0)


async def bucketed_flows(store: Store, devices: list[Device], start: int, end: int, bucket_s: int,
                         default_interval_s: float) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Devices x buckets in [start, end): minimum flow (m3/h) and readings per bucket; bucket start times."""
    hours = list(range(start, end, bucket_s))
    res = await store.aggregate(Aggregate(ReadingPoint, {"c": ("min", "consumption"), "iv": ("max", "interval_s"),
                                                         "n": ("count", "consumption")},
                                          start, end, by=("device",), where={"kind": "water"}, bucket_s=bucket_s))
    row = {d.id: i for i, d in enumerate(devices)}
    flows = np.full((len(devices), len(hours)), np.nan)
    counts = np.zeros((len(devices), len(hours)))
    i = np.array([row.get(device, -1) for device in res["device"]], dtype=np.int64)
    k = (res["bucket"] - start) // bucket_s
    ok = (i >= 0) & (k >= 0) & (k < len(hours))
    interval = np.where(np.isfinite(res["iv"]) & (res["iv"] > 0), res["iv"], default_interval_s)
    flows[i[ok], k[ok]] = (res["c"] / interval * 3600)[ok]
    counts[i[ok], k[ok]] = res["n"][ok]
    return flows, counts, hours


async def night_flows(store: Store, devices: list[Device], at: int, nights: int, default_interval_s: float,
                      above: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:
    """Devices x nights (oldest first): the smallest flow between 02:00 and 04:00 local; night start times.

    With ``above`` (a threshold per device) the nights are read newest first and an earlier night only
    of the devices above their threshold every night since: the others (NaN there) cannot be on a streak."""
    last = local_midnight(at - 4 * 3600)  # the latest night that is over
    starts = [last - DAY * k + 2 * 3600 for k in range(nights - 1, -1, -1)]
    columns: list[np.ndarray] = []
    only = None
    for s in reversed(starts):
        column = (await flow(store, devices, s, s + 2 * 3600, "min", default_interval_s, only))[0]
        columns.insert(0, column)
        if above is not None:
            only = (column > above) if only is None else (only & (column > above))
    return (np.stack(columns, axis=1) if columns else np.zeros((len(devices), 0))), starts


async def daily_use(store: Store, devices: list[Device], start: int, end: int, percentile: float = 50,
                    only: np.ndarray | None = None) -> np.ndarray:
    """Per device: a percentile of its daily consumption over [start, end) (NaN without data, or outside
    ``only``, a mask over ``devices``)."""
    ids = [d.id for d in devices]
    res = await store.aggregate(Aggregate(ReadingPoint, {"c": ("sum", "consumption")}, start, end,
                                          by=("device",), bucket_s=DAY, devices=_ids(devices, only)))
    per: dict[str, list[float]] = {}
    for device, value in zip(res["device"], res["c"], strict=True):
        per.setdefault(device, []).append(value)
    return np.array([np.percentile(per[i], percentile) if i in per else np.nan for i in ids])


async def use_and_count(store: Store, devices: list[Device], start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    ids = [d.id for d in devices]
    res = await store.aggregate(Aggregate(ReadingPoint, {"c": ("sum", "consumption"), "n": ("count", "register")},
                                          start, end, by=("device",)))
    return align(ids, res, "device", "c"), align(ids, res, "device", "n", 0.0)


async def flag_counts(store: Store, devices: list[Device], start: int, end: int, flag: str) -> np.ndarray:
    """Per device: its readings in [start, end) that carry ``flag``.  Flagged readings are few (sparse): a
    store may read them rather than group every device's series."""
    ids = [d.id for d in devices]
    res = await store.aggregate(Aggregate(ReadingPoint, {"n": ("count", "register")}, start, end,
                                          by=("device",), where={"flag": flag}, sparse=True))
    return align(ids, res, "device", "n", 0.0)


async def garbage(store: Store, institutions: list[str], scales: list[Device], start: int, end: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(recyclable kg, total kg, recyclable weighings, weighings) per institution; unknown-card weighings per scale."""
    res = await store.aggregate(Aggregate(WeighingPoint, {"kg": ("sum", "weight_kg"), "n": ("count", "weight_kg")},
                                          start, end, by=("institution", "category"), sparse=True))
    recyclable = np.zeros(len(institutions))
    total = np.zeros(len(institutions))
    count = np.zeros(len(institutions))
    recyclable_count = np.zeros(len(institutions))
    index = {inst: i for i, inst in enumerate(institutions)}
    for inst, category, kg, n in zip(res["institution"], res["category"], res["kg"], res["n"], strict=True):
        if inst in index:
            total[index[inst]] += kg
            count[index[inst]] += n
            if category == "recyclable":
                recyclable[index[inst]] += kg
                recyclable_count[index[inst]] += n
    unknown = await store.aggregate(Aggregate(WeighingPoint, {"n": ("count", "weight_kg")}, start, end,
                                              by=("scale",), where={"category": "unknown"}))
    return recyclable, total, recyclable_count, count, align([s.id for s in scales], unknown, "scale", "n", 0.0)


_FILLING: weakref.WeakKeyDictionary[Store, asyncio.Lock] = weakref.WeakKeyDictionary()


def _filling(store: Store) -> asyncio.Lock:
    """The lock of a store's caches below (rules gather at the same time, ``rules_at_once``)."""
    return _FILLING.setdefault(store, asyncio.Lock())


SETTLED_AFTER_DAYS = 4  # days older than this rarely change: their sums are kept (until a write reaches them)
CLOCK_SLACK_S = 600  # marks stamped this long before a look are looked at again: writers' clocks, writes in flight
assert SETTLED_AFTER_DAYS * DAY > CHANGE_MARK_AGE_S  # every write into the kept days leaves a mark


@dataclass
class _Watch:
    """The marks of writes into the past (``ChangeMark``) that kept sums have seen: those since ``since``."""

    since: int  # seconds
    seen: set[int]  # ``ts_ns`` of marks at or after ``since``

    @classmethod
    async def start(cls, store: Store) -> _Watch:
        """Before summing: a mark seen now has its readings in the sums about to be asked for."""
        since = int(time.time()) - CLOCK_SLACK_S
        return cls(since, {m.ts_ns for m in await store.fetch(ChangeMark, start=since, record="reading")})

    async def reached(self, store: Store, before: int) -> bool:
        """True when a write not seen yet holds readings before ``before``; else the new marks are seen."""
        now = int(time.time())
        marks = await store.fetch(ChangeMark, start=self.since, record="reading")
        if any(m.oldest < before for m in marks if m.ts_ns not in self.seen):
            return True
        self.since = now - CLOCK_SLACK_S
        self.seen = {m.ts_ns for m in marks if m.ts_ns >= self.since * 1_000_000_000}
        return False


@dataclass
class _Settled:
    through: int  # the sums cover [start, through)
    watch: _Watch  # late or imported readings into [start, through) leave marks it has not seen
    sums: dict[str, np.ndarray]


_YEAR: weakref.WeakKeyDictionary[Store, dict[tuple, _Settled]] = weakref.WeakKeyDictionary()


async def year_to_date(store: Store, institutions: list[str], start: int, end: int) -> dict[str, np.ndarray]:
    """Consumption per institution and kind over [start, end): {"water": array, "electricity": ..., "heat": ...}.

    Every evaluation asks for the year so far (overuse, statistics): the days before the last few are
    summed once per store and then only the days since, while a count of their readings stays the same;
    at 50,100 institutions a year of raw readings is billions of points.
    """
    async with _filling(store):  # rules at once: one fills the cache, the others use it
        return await _year_to_date(store, institutions, start, end)


async def _year_to_date(store: Store, institutions: list[str], start: int, end: int) -> dict[str, np.ndarray]:
    settle = max(start, min(end, local_midnight(end) - SETTLED_AFTER_DAYS * DAY))
    key = (start, tuple(institutions))
    kept = _YEAR.setdefault(store, {}).get(key)
    if kept is not None and (kept.through > settle or await kept.watch.reached(store, kept.through)):
        kept = None  # an earlier end, or readings written into the kept days: sum them again
    if kept is None:
        kept = _Settled(start, await _Watch.start(store), await _use_by_kind(store, institutions, start, start))
    if kept.through < settle:
        more = await _use_by_kind(store, institutions, kept.through, settle)
        kept = _Settled(settle, kept.watch, {k: kept.sums[k] + more[k] for k in kept.sums})
    _YEAR[store][key] = kept
    recent = await _use_by_kind(store, institutions, kept.through, end)
    return {k: kept.sums[k] + recent[k] for k in kept.sums}


async def _use_by_kind(store: Store, institutions: list[str], start: int, end: int) -> dict[str, np.ndarray]:
    out = {kind: np.zeros(len(institutions)) for kind in ("water", "electricity", "heat")}
    if end <= start:
        return out
    res = await store.aggregate(Aggregate(ReadingPoint, {"c": ("sum", "consumption")}, start, end,
                                          by=("institution", "kind")))
    index = {inst: i for i, inst in enumerate(institutions)}
    for inst, kind, value in zip(res["institution"], res["kind"], res["c"], strict=True):
        if inst in index and kind in out and np.isfinite(value):
            out[kind][index[inst]] += value
    return out


@dataclass
class _Profiles:
    watch: _Watch  # readings written into the window since: read again
    bills: tuple[int, float]  # bills and billed quantity in the window when computed
    profiles: dict[tuple[str, str], np.ndarray]


# Per store object (gone with it), per window: last year's profiles are read by the overuse rule, the budget
# step and the statistics of every evaluation, and change only when readings are imported into last year.
_PROFILES: weakref.WeakKeyDictionary[Store, dict[tuple[int, int, int], _Profiles]] = weakref.WeakKeyDictionary()


async def bills_in(store: Store, start: int, end: int) -> tuple[int, float]:
    """How many bills of [start, end) the store holds, and their quantities summed (a bill imported again
    with another figure overwrites it: the count alone would not change)."""
    res = await store.aggregate(Aggregate(BillPoint, {"n": ("count", "quantity"), "q": ("sum", "quantity")},
                                          start, end))
    return (int(res["n"][0]), float(np.nan_to_num(res["q"][0]))) if len(res["n"]) else (0, 0.0)


async def type_profiles(store: Store, start: int, end: int, min_days: int) -> dict[tuple[str, str], np.ndarray]:
    """(type, indicator) -> 365 daily weights from last year's province data, where there are enough days.

    The energy indicator's profile is electricity's plus heat's, each in kgce.  A type and kind without
    enough days of readings takes its institutions' bills, where they cover enough (``analytics.bills``).
    Kept per store and window while no reading is written into the window (``ChangeMark``) and its bills
    stay the same: an import (or late readings) into the window makes the next call read it again.
    """
    async with _filling(store):  # rules at once: one fills the cache, the others use it
        billed = await bills_in(store, start, end)
        cached = _PROFILES.setdefault(store, {}).get((start, end, min_days))
        if cached is None or cached.bills != billed or await cached.watch.reached(store, end):
            watch = await _Watch.start(store)
            cached = _PROFILES[store][(start, end, min_days)] = _Profiles(
                watch, billed, await _type_profiles(store, start, end, min_days))
        return cached.profiles


async def _type_profiles(store: Store, start: int, end: int, min_days: int) -> dict[tuple[str, str], np.ndarray]:
    res = await store.aggregate(Aggregate(ReadingPoint, {"c": ("sum", "consumption")}, start, end,
                                          by=("type", "kind"), bucket_s=DAY))
    days: dict[tuple[str, str], np.ndarray] = {}
    for kind_type, kind, bucket, value in zip(res["type"], res["kind"], res["bucket"], res["c"], strict=True):
        series = days.setdefault((kind_type, kind), np.full(365, np.nan))
        k = int((bucket - start) // DAY)
        if 0 <= k < 365 and np.isfinite(value):
            series[k] = max(value, 0.0)
    out: dict[tuple[str, str], np.ndarray] = {}
    for (kind_type, kind), series in days.items():
        if np.isfinite(series).sum() >= min_days:
            out[(kind_type, kind)] = np.where(np.isfinite(series), series, np.nanmean(series))
    billed = bills.daily_profiles(await bills.fetch_bills(store, start, end), start, min_days)
    out |= {key: profile for key, profile in billed.items() if key not in out}  # the meters win
    for kind_type in {t for t, _ in out}:
        e, h = out.get((kind_type, "electricity")), out.get((kind_type, "heat"))
        if e is not None:
            out[(kind_type, "energy")] = energy_kgce(e, h if h is not None else np.zeros_like(e), GBT2589)
    return out
