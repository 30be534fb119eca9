"""The report: every section's figures for a scope and period, computed once (formats only render them).

``build`` reads the store (``reports.gather``) and analytics (quota standing, budget execution, intensities)
and returns a JSON-ready dict: the contract keys ``period``, ``scope``, ``totals``, ``institutions`` and
``quality``, and one key per section.  A section with nothing to show is an empty list with a ``notes``
line saying why.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import numpy as np

from analytics import inputs
from analytics.budget import execution
from analytics.quota import INDICATORS, QuotaTable, energy_kgce, standing
from analytics.statistics import intensities, rank_within
from meterwatch.const import GARBAGE_CATEGORIES, INSTITUTION_TYPES
from meterwatch.localtime import DAY, day_to_date, local_day, local_text, local_year, utc_text
from meterwatch.numbers import finite_or_none
from meterwatch.registry import Registry
from meterwatch.store import Store
from reports import gather
from reports.gather import QUANTITIES, Use
from reports.period import Windows
from reports.scope import Scope

FLAG_CN = {"rollover": "计数器回绕", "replacement": "换表", "bad_reading": "坏读数", "jump": "读数跳变"}
QUANTITY_CN = {"energy_kgce": "综合能耗", "water_m3": "用水"}
STATUS_CN = {"guide": "优于引导值", "between": "引导值与约束值之间", "over": "预计超约束值", "": "无定额"}


def _num(value: float | None, digits: int = 3) -> float | None:
    return finite_or_none(value, digits)


def _change(now: np.ndarray, before: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.where(before > 0, now / before - 1.0, np.nan)


async def build(store: Store, registry: Registry, scope: Scope, win: Windows, *, yoy_threshold: float,
                target_share: float, profile_min_days: int, generated_at: int | None = None) -> dict[str, Any]:
    conversion = QuotaTable(registry.quotas).conversion  # GB/T 2589 unless quotas.toml says otherwise
    this, previous, last = await asyncio.gather(*(gather.use(store, registry, scope, w, conversion)
                                                  for w in (win.this, win.previous, win.last_year)))
    stats = _intensities(scope, this, last)
    notes = _notes(scope, win, this)
    notes += [f"{name}: {use.billed} institution-months of a kind from utility bills (no meter readings in them)"
              for name, use in (("this period", this), ("previous period", previous), ("last year", last))
              if use.billed]
    report: dict[str, Any] = {
        "period": win.period.label, "period_cn": win.period.label_cn, "kind": win.period.kind,
        "start": utc_text(win.this.start), "end": utc_text(win.this.end), "ended": win.ended,
        "start_local": local_text(win.this.start), "end_local": local_text(win.this.end),
        "previous": win.previous.as_json(), "last_year": win.last_year.as_json(),
        "scope": scope.text, "scope_name": scope.name, "institutions_in_scope": len(scope.institutions),
        "generated_at": utc_text(generated_at if generated_at is not None else time.time()),
        "generated_local": local_text(generated_at if generated_at is not None else time.time()),
        "totals": _totals(this), "totals_previous": _totals(previous), "totals_last_year": _totals(last),
        "institutions": _institutions(scope, this, previous, last, stats),
        "structure": _structure(scope, this, conversion),
        "comparisons": _comparisons(scope, this, previous, last, stats),
        "standing": await _standing(store, registry, scope, win, profile_min_days, notes),
        "quality": await _quality(store, registry, scope, win, this, last, stats, yoy_threshold),
        "alerts": _alerts(await gather.alerts(store, scope, win.this.end), win),
        "garbage": await _garbage(store, scope, win, this, target_share),
        "notes": notes,
    }
    return report


def _notes(scope: Scope, win: Windows, this: Use) -> list[str]:
    notes = []
    if not win.ended:
        notes.append(f"本期未结束 period not ended: figures up to {local_text(win.this.end)} (UTC+8); the previous "
                     "period and last year are cut to the same length")
    if not scope.institutions:
        notes.append(f"no institution in scope {scope.text}")
    elif not any(this.total(q) for q in QUANTITIES) and not any(np.sum(v) for v in this.garbage.values()):
        notes.append(f"no data in the store for {scope.text} over {win.period.label}: every figure is zero")
    return notes


def _totals(use: Use) -> dict[str, Any]:
    out: dict[str, Any] = {q: _num(use.total(q)) for q in QUANTITIES}
    out["garbage_kg"] = {c: _num(float(np.sum(v))) for c, v in use.garbage.items()}
    return out


def _intensities(scope: Scope, this: Use, last: Use):
    insts = scope.institutions
    occupants = np.array([i.occupants for i in insts], dtype=float)
    area = np.array([i.floor_area_m2 for i in insts], dtype=float)
    types = np.array([i.type for i in insts], dtype=object).astype(str)
    cities = np.array([i.city for i in insts], dtype=object).astype(str)
    use = this.values["energy_kgce"]
    return intensities(use, last.values["energy_kgce"], occupants, area, types, cities, reporting=use != 0)


def _institutions(scope: Scope, this: Use, previous: Use, last: Use, stats) -> list[dict[str, Any]]:
    pop = _change(this.values["energy_kgce"], previous.values["energy_kgce"])
    rows = []
    for k, inst in enumerate(scope.institutions):
        row: dict[str, Any] = {"institution": inst.id, "name": inst.name, "city": inst.city, "type": inst.type}
        row.update({q: _num(this.values[q][k]) for q in QUANTITIES})
        row.update({"energy_kgce_previous": _num(previous.values["energy_kgce"][k]),
                    "energy_kgce_last_year": _num(last.values["energy_kgce"][k]),
                    "energy_yoy": _num(stats.yoy[k], 4), "energy_pop": _num(pop[k], 4),
                    "energy_kgce_per_capita": _num(stats.per_capita[k], 4),
                    "energy_kgce_per_m2": _num(stats.per_m2[k], 4),
                    "rank_type": _num(stats.rank_type[k], 0), "rank_type_city": _num(stats.rank_type_city[k], 0),
                    "garbage_kg": _num(float(sum(v[k] for v in this.garbage.values())))})
        rows.append(row)
    return rows


def _shares(groups: dict[str, np.ndarray], quantity: str, use: Use) -> list[dict[str, Any]]:
    total = use.total(quantity)
    rows = []
    for name, idx in groups.items():
        value = float(np.sum(use.values[quantity][idx]))
        row = {"group": name, quantity: _num(value), "share": _num(value / total, 4) if total > 0 else None}
        row.update({q: _num(float(np.sum(use.values[q][idx]))) for q in QUANTITIES if q != quantity})
        rows.append(row)
    return sorted(rows, key=lambda r: -(r[quantity] or 0.0))


def _structure(scope: Scope, this: Use, conversion: dict[str, float]) -> dict[str, Any]:
    energy = this.total("energy_kgce")
    kgce = {"electricity": this.total("electricity_kwh") * conversion["electricity_kgce_per_kwh"],
            "heat": this.total("heat_gj") * conversion["heat_kgce_per_gj"]}
    by_kind = [{"kind": kind, "energy_kgce": _num(v), "share": _num(v / energy, 4) if energy > 0 else None}
               for kind, v in kgce.items()]
    cities: dict[str, list[int]] = defaultdict(list)
    types: dict[str, list[int]] = defaultdict(list)
    for k, inst in enumerate(scope.institutions):
        cities[inst.city].append(k)
        types[inst.type].append(k)
    return {"by_kind": by_kind,
            "by_city": _shares({c: np.array(v) for c, v in cities.items()}, "energy_kgce", this),
            "by_type": [{**r, "type_cn": INSTITUTION_TYPES.get(r["group"], r["group"])}
                        for r in _shares({t: np.array(v) for t, v in types.items()}, "energy_kgce", this)]}


def _comparisons(scope: Scope, this: Use, previous: Use, last: Use, stats) -> dict[str, Any]:
    types = np.array([i.type for i in scope.institutions], dtype=object).astype(str)
    rank_city = rank_within(stats.per_m2, np.array([i.city for i in scope.institutions], dtype=object).astype(str))
    ratio = np.full(len(types), np.nan)
    for t in np.unique(types):
        idx = np.flatnonzero(types == t)
        if np.isfinite(stats.per_m2[idx]).any():
            median = np.nanmedian(stats.per_m2[idx])
            if median > 0:
                ratio[idx] = stats.per_m2[idx] / median
    pop = _change(this.values["energy_kgce"], previous.values["energy_kgce"])

    def row(k: int) -> dict[str, Any]:
        inst = scope.institutions[k]
        return {"institution": inst.id, "name": inst.name, "city": inst.city, "type": inst.type,
                "energy_kgce": _num(this.values["energy_kgce"][k]),
                "energy_kgce_per_m2": _num(stats.per_m2[k], 4), "energy_kgce_per_capita": _num(stats.per_capita[k], 4),
                "vs_type_median": _num(ratio[k], 3), "rank_type": _num(stats.rank_type[k], 0),
                "rank_type_city": _num(stats.rank_type_city[k], 0), "rank_city": _num(rank_city[k], 0),
                "energy_kgce_last_year": _num(last.values["energy_kgce"][k]), "yoy": _num(stats.yoy[k], 4),
                "energy_kgce_previous": _num(previous.values["energy_kgce"][k]), "pop": _num(pop[k], 4)}

    ranked = np.flatnonzero(np.isfinite(ratio))
    order = ranked[np.argsort(ratio[ranked], kind="stable")]
    moved = np.flatnonzero(np.isfinite(stats.yoy) | np.isfinite(pop))
    size = np.where(np.isfinite(stats.yoy), np.abs(stats.yoy), np.abs(pop))
    changes = moved[np.argsort(-size[moved], kind="stable")]
    return {"best": [row(k) for k in order[:10]], "worst": [row(k) for k in order[::-1][:10]],
            "changes": [row(k) for k in changes]}


async def _standing(store: Store, registry: Registry, scope: Scope, win: Windows, profile_min_days: int,
                    notes: list[str]) -> list[dict[str, Any]]:
    """Quota standing (water, electricity, energy) and budget execution as of the period's end, year to date."""
    insts = scope.institutions
    as_of = win.this.end
    year, _, jan1 = local_year(as_of - 1)
    day_of_year = (as_of - jan1) // DAY
    ids = [i.id for i in insts]
    ytd = await inputs.year_to_date(store, ids, jan1, as_of)
    table = QuotaTable(registry.quotas)
    ytd["energy"] = energy_kgce(ytd["electricity"], ytd["heat"], table.conversion)
    profiles = await inputs.type_profiles(store, jan1 - 365 * DAY, jan1, min_days=profile_min_days)
    rows = []
    for indicator, unit in INDICATORS.items():
        st = standing(table, insts, indicator, ytd[indicator], profiles, day_of_year)
        for k, inst in enumerate(insts):
            if np.isfinite(st.constraint[k]):
                crossing = day_to_date(local_day(jan1) + int(st.crossing[k])) if st.crossing[k] >= 0 else None
                rows.append(_standing_row(inst, indicator, unit, ytd[indicator][k], st.constraint[k], st.guide[k],
                                          st.constraint[k] * st.share[k], st.projected[k], str(st.status[k]),
                                          crossing))
        if st.missing:
            notes.append(f"{len(st.missing)} institution(s) without a quota for {indicator}, e.g. {st.missing[0][1]}")
    if registry.tariffs is None:
        notes.append("no tariffs.toml in the registry: no budget standing")
        return _standing_order(rows)
    # execution's year is the one holding its ``at``: at the very end of a year, a second before it
    at = as_of - 1 if local_year(as_of)[2] == as_of else as_of
    ex = await execution(store, registry, at, profile_min_days=profile_min_days, monthly=False)
    where = {i.id: k for k, i in enumerate(ex.institutions)}
    for inst in insts:
        k = where.get(inst.id)
        if k is not None and ex.status[k]:
            crossing = ex.crossing_date(k)
            rows.append(_standing_row(inst, "budget", "yuan", ex.cost["total"][k], ex.budget["total"][k],
                                      float(np.nansum([ex.standard.guide[kind][k] for kind in ex.standard.guide])),
                                      ex.prorated[k], ex.projected["total"][k], str(ex.status[k]), crossing))
    notes.extend(f"budget: {n}" for n in ex.notes)
    return _standing_order(rows)


def _standing_row(inst, indicator: str, unit: str, use: float, constraint: float, guide: float, prorated: float,
                  projected: float, status: str, crossing) -> dict[str, Any]:
    return {"institution": inst.id, "name": inst.name, "city": inst.city, "type": inst.type,
            "indicator": indicator, "unit": unit, "year_to_date": _num(use), "constraint": _num(constraint),
            "guide": _num(guide), "prorated": _num(prorated), "projected": _num(projected),
            "projected_share": _num(projected / constraint, 4) if constraint > 0 and np.isfinite(projected) else None,
            "status": status, "status_cn": STATUS_CN.get(status, status),
            "crossing": crossing.isoformat() if crossing else None}


def _standing_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Over first, then by how far the projection goes against the constraint."""
    rank = {"over": 0, "between": 1, "guide": 2}
    return sorted(rows, key=lambda r: (rank.get(r["status"], 3), -(r["projected_share"] or 0.0), r["institution"]))


def _quality_row(check: str, check_cn: str, inst, figure: float | None, unit: str, why: str,
                 device: str = "") -> dict[str, Any]:
    return {"check": check, "check_cn": check_cn, "institution": inst.id, "name": inst.name, "device": device,
            "figure": _num(figure, 4) if figure is not None else None, "unit": unit, "why": why}


async def _quality(store: Store, registry: Registry, scope: Scope, win: Windows, this: Use, last: Use, stats,
                   yoy_threshold: float) -> list[dict[str, Any]]:
    """统计质量控制: one row per item to verify with the institution, with the figure and why it is listed."""
    rows: list[dict[str, Any]] = []
    first_day, last_day = int(local_day(win.this.start)), int(local_day(win.this.end - 1))
    days = last_day - first_day + 1
    reported = await gather.days_reported(store, scope, win.this)
    by_inst = {i.id: i for i in scope.institutions}
    meters = sorted((d for d in registry.devices.values() if d.institution in by_inst and d.kind != "scale"),
                    key=lambda d: (d.institution, d.id))
    for d in meters:
        inst = by_inst[d.institution]
        n, last_bucket = reported.get(d.id, (0, 0))
        if n == 0:
            rows.append(_quality_row("silent", "无读数", inst, 0, "days",
                                     f"本期 {days} 天无读数 no reading in the period", d.id))
            continue
        quiet = last_day - int(local_day(last_bucket))
        if quiet >= 2:  # one row per meter: its silence, with what it covered before
            rows.append(_quality_row("silent", "停报", inst, quiet, "days",
                                     f"自 {day_to_date(int(local_day(last_bucket)) + 1)} 起无读数，{days} 天中 {n} 天"
                                     f"有读数 (silent for the last {quiet} days)", d.id))
        elif n < days:
            rows.append(_quality_row("missing_days", "缺数天", inst, days - n, "days",
                                     f"{days} 天中 {n} 天有读数，覆盖 {n / days:.0%} (readings on {n} of {days} days)", d.id))
    for (device, flag), count in sorted((await gather.flagged(store, scope, win.this)).items()):
        meter = registry.devices.get(device)
        inst = by_inst.get(meter.institution) if meter else None
        if inst is not None:
            rows.append(_quality_row(flag, FLAG_CN[flag], inst, count, "readings",
                                     f"{count} 条读数被采集端标记为{FLAG_CN[flag]} (flagged {flag})", device))
    for k, inst in enumerate(scope.institutions):
        if inst.occupants <= 0 or inst.floor_area_m2 <= 0:
            rows.append(_quality_row("registry", "登记数据", inst, None, "",
                                     f"登记人数 {inst.occupants}、面积 {inst.floor_area_m2:g} m²：无法计算人均或单位面积 "
                                     "(registry: occupants or floor area missing)"))
        elif stats.flag[k] == "far from the type's median":
            rows.append(_quality_row("implausible", "强度异常", inst, stats.per_m2[k], "kgce/m2",
                                     "单位面积能耗超过同类中位数 5 倍或不足五分之一：请核对面积和表计 (far from the type's median)"))
    for quantity, unit in (("energy_kgce", "kgce"), ("water_m3", "m3")):
        change = _change(this.values[quantity], last.values[quantity])
        for k in np.flatnonzero(np.isfinite(change) & (np.abs(change) > yoy_threshold)):
            inst = scope.institutions[k]
            rows.append(_quality_row("yoy", "同比变动大", inst, change[k], "ratio",
                                     f"{QUANTITY_CN[quantity]} {this.values[quantity][k]:,.1f} {unit}，去年同期 "
                                     f"{last.values[quantity][k]:,.1f}：{change[k]:+.0%}，超出 ±{yoy_threshold:.0%}"))
    return sorted(rows, key=lambda r: (r["institution"], r["device"], r["check"]))  # an institution's items together


def _alerts(events, win: Windows) -> list[dict[str, Any]]:
    """Per rule: alerts opened and resolved in the period, mean hours to resolve, still open at its end."""
    start, end = win.this.start, win.this.end
    opened: dict[str, dict[str, int]] = defaultdict(dict)  # rule -> id -> open ts
    resolved: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)  # rule -> id -> (ts, age_s)
    for e in events:
        if e.state == "open":
            opened[e.rule][e.id] = e.ts
        elif e.state == "resolved" and e.ts < end:
            resolved[e.rule][e.id] = (e.ts, e.age_s)
    rows = []
    for rule in sorted(set(opened) | set(resolved)):
        done = {i: v for i, v in resolved[rule].items() if v[0] >= start}
        ages = [age for _, age in done.values()]
        rows.append({"rule": rule, "opened": sum(1 for ts in opened[rule].values() if ts >= start),
                     "resolved": len(done),
                     "mean_hours_to_resolve": _num(float(np.mean(ages)) / 3600, 2) if ages else None,
                     "open_at_end": sum(1 for i in opened[rule] if i not in resolved[rule])})
    return rows


async def _garbage(store: Store, scope: Scope, win: Windows, this: Use, target_share: float) -> dict[str, Any]:
    total = float(sum(np.sum(v) for v in this.garbage.values()))
    by_category = [{"category": c, "category_cn": GARBAGE_CATEGORIES.get(c, "未登记卡"), "kg": _num(float(np.sum(v))),
                    "share": _num(float(np.sum(v)) / total, 4) if total > 0 else None,
                    "weighings": int(np.sum(this.weighings[c]))} for c, v in this.garbage.items()]
    recyclable = float(np.sum(this.garbage["recyclable"]))
    per_inst = []
    for k, inst in enumerate(scope.institutions):
        kg = float(sum(v[k] for v in this.garbage.values()))
        if kg > 0:
            share = this.garbage["recyclable"][k] / kg
            per_inst.append({"institution": inst.id, "name": inst.name, "kg": _num(kg),
                             "recyclable_kg": _num(this.garbage["recyclable"][k]), "recyclable_share": _num(share, 4),
                             "below_target": bool(share < target_share)})
    out: dict[str, Any] = {
        "total_kg": _num(total), "recyclable_share": _num(recyclable / total, 4) if total > 0 else None,
        "target_share": target_share, "by_category": by_category,
        "institutions": sorted(per_inst, key=lambda r: r["recyclable_share"]),
        "unknown_cards": [{"institution": i, "scale": s, "kg": _num(kg), "weighings": n}
                          for (i, s), (kg, n) in sorted((await gather.unknown_cards(store, scope, win.this)).items())],
    }
    if scope.level == "institution":
        for tag in ("zone", "owner_unit", "cleaner"):
            groups: dict[str, dict[str, Any]] = {}
            for (value, category), (kg, n) in (await gather.garbage_by(store, scope, win.this, tag)).items():
                g = groups.setdefault(value, {tag: value, "kg": 0.0, "recyclable_kg": 0.0, "weighings": 0})
                g["kg"] += kg
                g["weighings"] += n
                g["recyclable_kg"] += kg if category == "recyclable" else 0.0
            out[f"by_{tag}"] = [{**g, "kg": _num(g["kg"]), "recyclable_kg": _num(g["recyclable_kg"]),
                                 "recyclable_share": _num(g["recyclable_kg"] / g["kg"], 4) if g["kg"] > 0 else None}
                                for g in groups.values()]
    if total == 0:
        out["why_empty"] = "no weighing in the period for this scope"
    return out
