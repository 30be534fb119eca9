"""What each institution's use cost, day by day: the one place where stored consumption gets a price.

Each local day is priced once per institution and kind and kept in the
``cost`` measurement, so that budgets, statistics, reports and dashboards
read yuan the way they read kWh (a sum over days), and a year of history
is never re-priced on every evaluation:

- electricity from the stored profile: hourly sums of the consumption each
  reading closes (``Aggregate(closing=True)``), each hour spread evenly and
  priced by the bands and schedule in force (``meterwatch.registry.tariffs``);
- water from daily sums, the month's earlier days included, so that the
  progressive surcharge accrues on the days that pass the monthly quota
  (annual constraint / 12);
- heat from daily sums per meter (kWh meters converted to GJ), per GJ, or
  per m2 spread over the heating season.

Carbon (kgCO2e) comes with it, from dated emission factors in the
``[[conversion.emission]]`` tables of ``quotas.toml``.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections import Counter
from dataclasses import dataclass
from datetime import date

import numpy as np

from analytics.quota import QuotaTable
from meterwatch.localtime import DAY, day_start, day_to_date, local_date, local_day, local_year, midnight_of
from meterwatch.registry import Institution, Registry
from meterwatch.registry.tariffs import BANDS, Tariffs, emission_problem, price_electricity, price_heat, price_water
from meterwatch.store import Batch, CostPoint, MeterValuePoint, PricedDay, ReadingPoint, Store
from meterwatch.store.aggregate import Aggregate

log = logging.getLogger(__name__)
KWH_PER_GJ = 1 / 0.0036  # 1 kWh = 3.6 MJ
# Defaults when quotas.toml gives none.  Grid: the national average of 2022, 0.5366 kgCO2/kWh, published by
# the Ministry of Ecology and Environment and the National Bureau of Statistics (announcement of 2024-12);
# heat: 0.11 tCO2/GJ, the default for purchased heat in GB/T 32150-2025.
DEFAULT_EMISSION = ((date(2000, 1, 1), 0.5366, 110.0),)


@dataclass(frozen=True)
class Emission:
    """Dated emission factors: each applies from its date until the next."""

    steps: tuple[tuple[date, float, float], ...] = DEFAULT_EMISSION  # (from, kgCO2/kWh, kgCO2/GJ)

    @classmethod
    def from_quotas(cls, quotas: dict) -> Emission:
        rows = quotas.get("conversion", {}).get("emission", [])
        steps = sorted((r["from"], float(r["grid_kgco2_per_kwh"]), float(r["heat_kgco2_per_gj"]))
                       for r in rows if not emission_problem(r))  # registry check names the bad rows
        return cls(tuple(steps)) if steps else cls()

    def factors(self, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(grid kgCO2/kWh, heat kgCO2/GJ) for each local day number; the first step also covers earlier days."""
        starts = np.array([local_day(midnight_of(d)) for d, _, _ in self.steps])
        k = np.clip(np.searchsorted(starts, np.asarray(days), side="right") - 1, 0, len(self.steps) - 1)
        return np.array([s[1] for s in self.steps])[k], np.array([s[2] for s in self.steps])[k]


def _timelines(tariffs: Tariffs, kind: str, institutions: list[Institution]) -> list[list]:
    """Each institution's ``kind`` timeline.  A schedule applies by city and type (``Schedule.applies_to``),
    so the timeline is worked out once per (city, type), not once per institution (50,100 at 10x)."""
    memo: dict[tuple[str, str], list] = {}
    out = []
    for inst in institutions:
        timeline = memo.get((inst.city, inst.type))
        if timeline is None:
            timeline = memo[(inst.city, inst.type)] = tariffs.timeline(kind, inst)
        out.append(timeline)
    return out


def _by_timeline(tariffs: Tariffs, kind: str, institutions: list[Institution], rows: np.ndarray
                 ) -> list[tuple[list, np.ndarray]]:
    """Group row indices by the tariff timeline of their institution: one vectorised price call per group."""
    timelines = _timelines(tariffs, kind, institutions)
    numbers: dict[tuple, int] = {}  # the same schedules from the same times: one group
    seen: dict[int, int] = {}  # id of a (shared) timeline list -> its group
    group = np.empty(len(institutions), dtype=np.int64)
    first: list[list] = []
    for k, timeline in enumerate(timelines):
        g = seen.get(id(timeline))
        if g is None:
            key = tuple((since, id(s)) for since, s in timeline)
            g = seen[id(timeline)] = numbers.setdefault(key, len(numbers))
            if g == len(first):
                first.append(timeline)
        group[k] = g
    of_row = group[rows] if len(rows) else np.zeros(0, dtype=np.int64)
    return [(first[g], np.flatnonzero(of_row == g)) for g in np.unique(of_row).tolist()]


def _daily_totals(inst_idx: np.ndarray, days: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum ``values`` (n, ...) per (institution, day): unique keys and sums."""
    keys = inst_idx.astype(np.int64) * 1_000_000 + days.astype(np.int64)
    unique, where = np.unique(keys, return_inverse=True)
    sums = np.zeros((len(unique),) + values.shape[1:])
    np.add.at(sums, where, values)
    return unique // 1_000_000, unique % 1_000_000, sums


async def _sums(store: Store, kind: str, start: int, end: int, bucket_s: int, by: str = "institution") -> dict:
    return await store.aggregate(Aggregate(ReadingPoint, {"c": ("sum", "consumption")}, start, end, by=(by,),
                                           where={"kind": kind}, bucket_s=bucket_s, closing=True))


async def price_days(store: Store, registry: Registry, first_day: int, last_day: int) -> list[CostPoint]:
    """Cost points for every institution, kind and local day in [first_day, last_day] (local day numbers)."""
    tariffs = registry.tariffs
    if not tariffs:
        return []
    institutions = sorted(registry.institutions.values(), key=lambda i: i.id)
    index = {inst.id: k for k, inst in enumerate(institutions)}
    start, end = day_start(first_day), day_start(last_day + 1)
    emission = Emission.from_quotas(registry.quotas)
    tag = tariffs.fingerprint
    points: list[CostPoint] = []

    def emit(kind: str, inst_idx: np.ndarray, days: np.ndarray, qty: np.ndarray, yuan: np.ndarray,
             carbon: np.ndarray | None, bands: np.ndarray | None = None, method: str | np.ndarray = "profile") -> None:
        """One cost point per row, from whole columns turned into lists first (450,000 rows at 10x)."""
        n = len(days)
        starts = [day_start(d) for d in np.asarray(days).tolist()]
        quantity = [round(v, 6) for v in np.asarray(qty, dtype=np.float64).tolist()]
        money = [round(v, 4) if math.isfinite(v) else None for v in np.asarray(yuan, dtype=np.float64).tolist()]
        co2 = [None] * n if carbon is None else [round(v, 4) for v in np.asarray(carbon, dtype=np.float64).tolist()]
        split = [tuple(round(v, 6) for v in row) for row in bands.tolist()] if bands is not None \
            else [(None,) * len(BANDS)] * n
        methods = [method] * n if isinstance(method, str) else [str(m) for m in method]
        for k, ts, q, y, c, b, m in zip(inst_idx.tolist(), starts, quantity, money, co2, split, methods, strict=True):
            inst = institutions[k]
            points.append(CostPoint(inst.id, inst.city, inst.type, kind, ts, q, y, c, *b, method=m, tariff=tag))

    # electricity: hourly profile, each hour spread evenly over its bands
    res = await _sums(store, "electricity", start, end, 3600)
    known = np.array([i in index for i in res["institution"]], dtype=bool) & np.isfinite(res["c"])
    rows = np.array([index[i] for i, ok in zip(res["institution"], known, strict=True) if ok], dtype=np.int64)
    hours, kwh = res["bucket"][known], res["c"][known]
    split, cost = np.zeros((len(rows), len(BANDS))), np.full(len(rows), np.nan)
    for timeline, idx in _by_timeline(tariffs, "electricity", institutions, rows):
        split[idx], cost[idx] = price_electricity(timeline, hours[idx], hours[idx] + 3600, kwh[idx])
    days = local_day(hours) if len(hours) else np.array([], dtype=np.int64)
    inst_idx, day_idx, sums = _daily_totals(rows, days, np.column_stack([split, kwh, np.nan_to_num(cost, nan=np.inf)]))
    grid, heat_factor = emission.factors(day_idx)
    yuan = np.where(np.isfinite(sums[:, 5]), sums[:, 5], np.nan)
    registers = await register_bands(store, registry, institutions, first_day, last_day)
    method = np.full(len(day_idx), "profile", dtype=object)
    for j, (k, d) in enumerate(zip(inst_idx.tolist(), day_idx.tolist(), strict=True)):
        bands = registers.get((k, d))
        if bands is None:  # priced from the profile: no schedule to look up
            continue
        schedule = tariffs.schedule_for("electricity", institutions[k], day_to_date(d))
        if schedule is not None:
            sums[j, :4], sums[j, 4] = bands, bands.sum()
            yuan[j], method[j] = float(bands @ np.array(schedule.band_price)), "registers"
    emit("electricity", inst_idx, day_idx, sums[:, 4], yuan, sums[:, 4] * grid, sums[:, :4], method)

    # water: daily, the month's earlier days too, so that the surcharge accrues where the quota is passed
    res = await _sums(store, "water", midnight_of(_first_of_month(first_day)), end, DAY)
    known = np.array([i in index for i in res["institution"]], dtype=bool) & np.isfinite(res["c"])
    rows = np.array([index[i] for i, ok in zip(res["institution"], known, strict=True) if ok], dtype=np.int64)
    wdays, m3 = local_day(res["bucket"][known]), res["c"][known]
    monthly = monthly_water_quota(registry, institutions)
    yuan = np.full(len(rows), np.nan)
    for timeline, idx in _by_timeline(tariffs, "water", institutions, rows):
        yuan[idx] = price_water(timeline, wdays[idx], m3[idx], monthly[rows[idx]], group=rows[idx])
    keep = wdays >= first_day
    emit("water", rows[keep], wdays[keep], m3[keep], yuan[keep], None)

    # heat: per meter (a kWh heat meter is converted to GJ), then per institution and day
    res = await _sums(store, "heat", start, end, DAY, by="device")
    devices = [registry.devices.get(d) for d in res["device"]]
    known = np.array([d is not None and d.institution in index for d in devices], dtype=bool) & np.isfinite(res["c"])
    per_gj = np.array([1 / KWH_PER_GJ if d is not None and d.unit == "kWh" else 1.0 for d in devices])
    rows = np.array([index[d.institution] for d, ok in zip(devices, known, strict=True) if ok], dtype=np.int64)
    inst_idx, day_idx, sums = _daily_totals(rows, local_day(res["bucket"][known]),
                                            np.nan_to_num(res["c"][known] * per_gj[known])[:, None])
    gj = sums[:, 0]
    # institutions heated by floor area are charged every day of the season, metered or not
    area = [k for k, timeline in enumerate(_timelines(tariffs, "heat", institutions))
            if any(s.basis == "m2" for _, s in timeline)]
    if area:
        metered = dict(zip(zip(inst_idx.tolist(), day_idx.tolist(), strict=True), gj.tolist(), strict=True))
        span = np.arange(first_day, last_day + 1)
        extra = [(k, d) for k in area for d in span.tolist() if (k, d) not in metered]
        inst_idx = np.r_[inst_idx, np.array([k for k, _ in extra], dtype=np.int64)]
        day_idx = np.r_[day_idx, np.array([d for _, d in extra], dtype=np.int64)]
        gj = np.r_[gj, np.zeros(len(extra))]
    yuan = np.full(len(inst_idx), np.nan)
    method = np.full(len(inst_idx), "profile", dtype=object)
    areas = np.array([i.floor_area_m2 for i in institutions])
    for timeline, idx in _by_timeline(tariffs, "heat", institutions, inst_idx):
        yuan[idx] = price_heat(timeline, day_idx[idx], gj[idx], areas[inst_idx[idx]])
        if any(s.basis == "m2" for _, s in timeline):
            method[idx] = "area"
    _, heat_factor = emission.factors(day_idx)
    emit("heat", inst_idx, day_idx, gj, yuan, gj * heat_factor, method=method)
    return points


async def register_bands(store: Store, registry: Registry, institutions: list[Institution], first_day: int,
                         last_day: int) -> dict[tuple[int, int], np.ndarray]:
    """(institution index, day) -> kWh per band from DL/T 645 tariff register deltas, where the schedule in
    force maps its registers to bands and every electricity meter of the institution has both that day's
    and the day before's last value of every mapped register."""
    tariffs = registry.tariffs
    if tariffs is None or not any(s.registers for s in tariffs.schedules.get("electricity", ())):
        return {}
    start, end = day_start(first_day - 1), day_start(last_day + 1)
    width = max(len(s.registers) for s in tariffs.schedules["electricity"])
    last: dict[tuple[str, int, int], float] = {}  # (device, register, day) -> the day's last (largest) value
    for k in range(1, width + 1):
        for direction in ("forward", "combined"):
            res = await store.aggregate(Aggregate(MeterValuePoint, {"v": ("max", "value")}, start, end,
                                                  by=("device",), where={"quantity": f"energy_{direction}_tariff_{k}"},
                                                  bucket_s=DAY, closing=True))  # 24:00's value closes the day
            for device, bucket, value in zip(res["device"], res["bucket"].tolist(), res["v"].tolist(), strict=True):
                last.setdefault((device, k, int(local_day(bucket))), value)
    index = {inst.id: k for k, inst in enumerate(institutions)}
    meters: dict[int, list] = {}
    for d in registry.devices.values():
        if d.kind == "electricity" and d.institution in index:
            meters.setdefault(index[d.institution], []).append(d)
    out: dict[tuple[int, int], np.ndarray] = {}
    for k, devices in meters.items():
        for day in range(first_day, last_day + 1):
            schedule = tariffs.schedule_for("electricity", institutions[k], day_to_date(day))
            if schedule is None or not schedule.registers:
                continue
            bands = np.zeros(len(BANDS))
            for d in devices:
                for reg, band in enumerate(schedule.registers, start=1):
                    now, before = last.get((d.id, reg, day)), last.get((d.id, reg, day - 1))
                    if now is None or before is None or now < before:
                        break  # a gap or a register that went back: this day is priced from the profile
                    bands[BANDS.index(band)] += (now - before) * d.multiplier
                else:
                    continue
                break
            else:
                out[(k, day)] = bands
    return out


def monthly_water_quota(registry: Registry, institutions: list[Institution]) -> np.ndarray:
    """The monthly constraint (annual / 12) of each institution's water quota, 0 without one."""
    table = QuotaTable(registry.quotas)
    out = np.zeros(len(institutions))
    for k, inst in enumerate(institutions):
        annual = table.annual(inst, "water")
        out[k] = 0.0 if isinstance(annual, str) else annual[0] / 12
    return out


def _first_of_month(day: int) -> date:
    return day_to_date(day).replace(day=1)


async def ensure_priced(store: Store, registry: Registry, first_day: int, last_day: int, *,
                        recent_days: int = 3, chunk_days: int = 7, max_days: int | None = None) -> int:
    """Price the days in [first_day, last_day] that the ledger does not show priced with the current tariffs,
    and the last ``recent_days`` again (late readings); returns the number of cost points written.

    ``max_days`` bounds the work of one call (an evaluation must not spend many minutes re-pricing a year
    after a tariff change): the recent days come first, then the oldest missing ones; the rest wait for the
    next call."""
    if not registry.tariffs:
        return 0
    start, end = day_start(first_day), day_start(last_day + 1)
    ledger = await store.fetch(PricedDay, start=start, end=end - 1)
    priced = {int(local_day(p.ts)) for p in ledger if p.tariff == registry.tariffs.fingerprint}
    recent = [d for d in range(max(first_day, last_day - recent_days + 1), last_day + 1)]
    missing = [d for d in range(first_day, last_day + 1) if d not in priced and d not in recent]
    todo = sorted(recent + missing[:None if max_days is None else max(0, max_days - len(recent))])
    if max_days is not None and len(missing) > max_days - len(recent):
        log.info("pricing history a part at a time", extra={"days_left": len(missing) - len(todo) + len(recent)})
    written, last_log = 0, time.monotonic()
    for run in _runs(todo, chunk_days):
        points = await price_days(store, registry, run[0], run[-1])
        per_day = Counter(p.ts for p in points)
        done = [PricedDay(day_start(d), registry.tariffs.fingerprint, per_day[day_start(d)]) for d in run]
        await store.write(Batch(costs=points, ledger=done))  # the ledger in the same write as the costs
        written += len(points)
        if time.monotonic() - last_log > 5:
            log.info("pricing", extra={"through": str(day_to_date(run[-1])), "to": str(day_to_date(last_day)),
                                       "points": written})
            last_log = time.monotonic()
    return written


def _runs(days: list[int], size: int) -> list[list[int]]:
    """Consecutive days in chunks of at most ``size``."""
    runs: list[list[int]] = []
    for d in days:
        if runs and runs[-1][-1] == d - 1 and len(runs[-1]) < size:
            runs[-1].append(d)
        else:
            runs.append([d])
    return runs


def water_loss_per_day(registry: Registry, institution: str, m3h: float, at: int) -> float | None:
    """What a flow of ``m3h`` running all day costs at the water price in force (None without a tariff)."""
    inst = registry.institutions.get(institution)
    schedule = registry.tariffs.schedule_for("water", inst, local_date(at)) if registry.tariffs and inst else None
    return None if schedule is None or not np.isfinite(m3h) else float(m3h) * 24 * schedule.price


def loss_phrase(yuan_per_day: float | None) -> tuple[str, str]:
    """(Chinese, English) clauses saying what a leak or burst costs, or nothing without a price."""
    if yuan_per_day is None:
        return "", ""
    return f"，按现行水价每天约损失 ¥{yuan_per_day:,.0f}", f"; at the current price it costs about ¥{yuan_per_day:,.0f} a day"


# Per store: when (evaluation time) its last days were last priced again.
_REPRICED: weakref.WeakKeyDictionary[Store, int] = weakref.WeakKeyDictionary()


async def price_through(store: Store, registry: Registry, at: int, max_days: int | None = None,
                        reprice_every_s: float = 0.0) -> int:
    """Price every day from 1 January of last year to the day holding ``at`` (only what the ledger lacks, and
    the last few days again, at most every ``reprice_every_s`` of evaluation time): last year is the
    electricity standard's own price and the year-on-year cost.  At 50,100 institutions the last days'
    hourly sums are millions of rows: priced again every five minutes they were most of an evaluation."""
    if not registry.tariffs:
        return 0
    _, _, jan1 = local_year(at)
    last = _REPRICED.get(store)
    again = last is None or not 0 <= at - last < reprice_every_s
    written = await ensure_priced(store, registry, int(local_day(jan1)) - 365, int(local_day(at)), max_days=max_days,
                                  recent_days=3 if again else 0)
    if again:
        _REPRICED[store] = at
    return written
