"""What a report reads from the store: aggregates over one window, aligned with the scope's institutions.

Every figure is the store's own aggregate (InfluxQL ``GROUP BY`` or DuckDB SQL) over [start, end), filtered
to the scope in the store; the arrays come back in the order of the scope's institutions (0 where the
store has nothing) so that the report's sections are plain numpy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from analytics import bills
from analytics.costs import KWH_PER_GJ
from analytics.quota import energy_kgce
from meterwatch.const import GARBAGE_CATEGORIES, UNKNOWN
from meterwatch.localtime import DAY
from meterwatch.registry import Registry
from meterwatch.store import AlertPoint, CostPoint, ReadingPoint, Store, WeighingPoint
from meterwatch.store.aggregate import Aggregate
from reports.period import Window
from reports.scope import Scope

QUANTITIES = ("electricity_kwh", "water_m3", "heat_gj", "energy_kgce", "cost_yuan", "kgco2e")
KIND_QUANTITY = {"electricity": "electricity_kwh", "water": "water_m3", "heat": "heat_gj"}
FLAGS = ("rollover", "replacement", "bad_reading", "jump")


@dataclass
class Use:
    """Per institution of the scope: each quantity of ``QUANTITIES`` and garbage kg per category."""

    window: Window
    values: dict[str, np.ndarray]
    garbage: dict[str, np.ndarray]  # category (incl. unknown) -> kg
    weighings: dict[str, np.ndarray]  # category -> count
    billed: int = 0  # institution-months of a kind taken from bills (``analytics.bills``)

    def total(self, quantity: str) -> float:
        return float(np.sum(self.values[quantity]))


async def use(store: Store, registry: Registry, scope: Scope, window: Window, conversion: dict[str, float]) -> Use:
    """Consumption, comprehensive energy, cost, emissions and garbage of every institution over ``window``."""
    ids = [i.id for i in scope.institutions]
    index = {i: k for k, i in enumerate(ids)}
    values = {q: np.zeros(len(ids)) for q in QUANTITIES}
    res = await store.aggregate(Aggregate(ReadingPoint, {"c": ("sum", "consumption")}, window.start, window.end,
                                          by=("institution", "kind", "device"), where=scope.where))
    for inst, kind, device, c in zip(res["institution"], res["kind"], res["device"], res["c"], strict=True):
        k = index.get(inst)
        if k is None or kind not in KIND_QUANTITY or not np.isfinite(c):
            continue
        meter = registry.devices.get(device)
        per = 1 / KWH_PER_GJ if kind == "heat" and meter is not None and meter.unit == "kWh" else 1.0
        values[KIND_QUANTITY[kind]][k] += c * per
    res = await store.aggregate(Aggregate(CostPoint, {"y": ("sum", "yuan"), "c": ("sum", "kgco2e")}, window.start,
                                          window.end, by=("institution",), where=scope.where))
    for inst, yuan, co2 in zip(res["institution"], res["y"], res["c"], strict=True):
        if inst in index:
            values["cost_yuan"][index[inst]] += np.nan_to_num(yuan)
            values["kgco2e"][index[inst]] += np.nan_to_num(co2)
    billed = await _billed(store, scope, window, index, values)
    values["energy_kgce"] = energy_kgce(values["electricity_kwh"], values["heat_gj"], conversion)
    garbage = {c: np.zeros(len(ids)) for c in (*GARBAGE_CATEGORIES, UNKNOWN)}
    weighings = {c: np.zeros(len(ids)) for c in garbage}
    res = await store.aggregate(Aggregate(WeighingPoint, {"kg": ("sum", "weight_kg"), "n": ("count", "weight_kg")},
                                          window.start, window.end, by=("institution", "category"), where=scope.where))
    for inst, category, kg, n in zip(res["institution"], res["category"], res["kg"], res["n"], strict=True):
        if inst in index:
            cat = category if category in garbage else UNKNOWN
            garbage[cat][index[inst]] += np.nan_to_num(kg)
            weighings[cat][index[inst]] += np.nan_to_num(n)
    return Use(window, values, garbage, weighings, billed)


async def _billed(store: Store, scope: Scope, window: Window, index: dict[str, int],
                  values: dict[str, np.ndarray]) -> int:
    """Add the bills of the window's whole months where the meters have nothing of that institution and
    kind that month (a new deployment's last year); the number of institution-months taken from bills."""
    months = [b for b in await bills.fetch_bills(store, window.start, window.end)
              if b.institution in index and bills.month_end(b.ts) <= window.end]
    taken = 0
    for first in sorted({b.ts for b in months}):
        end = bills.month_end(first)
        res = await store.aggregate(Aggregate(ReadingPoint, {"c": ("sum", "consumption")}, first, end,
                                              by=("institution", "kind"), where=scope.where))
        metered = {(i, k) for i, k, c in zip(res["institution"], res["kind"], res["c"], strict=True) if c > 0}
        res = await store.aggregate(Aggregate(CostPoint, {"y": ("sum", "yuan")}, first, end,
                                              by=("institution", "kind"), where=scope.where))
        priced = {(i, k) for i, k, y in zip(res["institution"], res["kind"], res["y"], strict=True) if y > 0}
        for b in (b for b in months if b.ts == first):
            k = index[b.institution]
            if (b.institution, b.kind) not in metered:
                values[KIND_QUANTITY[b.kind]][k] += b.quantity  # bills count heat in GJ
                taken += 1
            if b.yuan is not None and (b.institution, b.kind) not in priced:
                values["cost_yuan"][k] += b.yuan
    return taken


async def garbage_by(store: Store, scope: Scope, window: Window, tag: str) -> dict[tuple[str, str], tuple[float, int]]:
    """(tag value, category) -> (kg, weighings): an institution's garbage by zone, owner unit or cleaner."""
    res = await store.aggregate(Aggregate(WeighingPoint, {"kg": ("sum", "weight_kg"), "n": ("count", "weight_kg")},
                                          window.start, window.end, by=(tag, "category"), where=scope.where))
    return {(v, c): (float(kg), int(n)) for v, c, kg, n in zip(res[tag], res["category"], res["kg"], res["n"],
                                                                 strict=True)}


async def unknown_cards(store: Store, scope: Scope, window: Window) -> dict[tuple[str, str], tuple[float, int]]:
    """(institution, scale) -> (kg, weighings) of cards the registry does not know."""
    res = await store.aggregate(Aggregate(WeighingPoint, {"kg": ("sum", "weight_kg"), "n": ("count", "weight_kg")},
                                          window.start, window.end, by=("institution", "scale"),
                                          where={**scope.where, "category": UNKNOWN}))
    return {(i, s): (float(kg), int(n)) for i, s, kg, n in zip(res["institution"], res["scale"], res["kg"], res["n"],
                                                                strict=True)}


async def days_reported(store: Store, scope: Scope, window: Window) -> dict[str, tuple[int, int]]:
    """device -> (local days of the window with at least one reading, the last such day's start)."""
    res = await store.aggregate(Aggregate(ReadingPoint, {"n": ("count", "register")}, window.start, window.end,
                                          by=("device",), bucket_s=DAY, where=scope.where))
    out: dict[str, tuple[int, int]] = {}
    for device, bucket, n in zip(res["device"], res["bucket"], res["n"], strict=True):
        if n > 0:
            days, last = out.get(device, (0, 0))
            out[device] = (days + 1, max(last, int(bucket)))
    return out


async def flagged(store: Store, scope: Scope, window: Window) -> dict[tuple[str, str], int]:
    """(device, flag) -> readings the collector flagged (rollover, replacement, bad_reading, jump)."""
    # flag is a field, not a tag: InfluxQL can filter on it but not group by it, so one query per flag, at once
    results = await asyncio.gather(*(
        store.aggregate(Aggregate(ReadingPoint, {"n": ("count", "register")}, window.start, window.end,
                                  by=("device",), where={**scope.where, "flag": flag})) for flag in FLAGS))
    return {(d, flag): int(n) for flag, res in zip(FLAGS, results, strict=True)
            for d, n in zip(res["device"], res["n"], strict=True) if n > 0}


async def alerts(store: Store, scope: Scope, end: int) -> list[AlertPoint]:
    """Every alert event up to ``end`` of the scope's institutions (an alert open at the start began before it)."""
    where = {"institution": scope.key} if scope.level == "institution" else {}
    events = await store.fetch(AlertPoint, end=end - 1, **where)
    ids = {i.id for i in scope.institutions}
    return [e for e in events if e.institution in ids]
