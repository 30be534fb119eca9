"""The officers' statistics as of an evaluation: computed from the store, written back, summarised."""

from __future__ import annotations

import numpy as np

from analytics import inputs
from analytics.budget import KINDS, Execution, execution
from analytics.quota import QuotaTable, Standing, day_to_date, energy_kgce, standing
from analytics.statistics import intensities
from meterwatch.localtime import DAY, local_midnight, local_year
from meterwatch.numbers import finite_or_none
from meterwatch.registry import Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import Batch, StatisticPoint, Store

PROFILE_MIN_DAYS = AnalyticsSettings.model_fields["profile_min_days"].default


async def statistics(store: Store, registry: Registry, at: int, profile_min_days: int = PROFILE_MIN_DAYS
                     ) -> tuple[list[StatisticPoint], list[str]]:
    """Statistic points for every institution and indicator (written to the store, one point per
    institution, indicator and local day: rewriting the day replaces it), and a few lines for the console."""
    institutions = sorted(registry.institutions.values(), key=lambda i: i.id)
    ids = [i.id for i in institutions]
    year, day_of_year, jan1 = local_year(at)
    this = await inputs.year_to_date(store, ids, jan1, at)
    profiles = await inputs.type_profiles(store, jan1 - 365 * DAY, jan1, min_days=profile_min_days)
    table = QuotaTable(registry.quotas)
    last = await inputs.year_to_date(store, ids, jan1 - 365 * DAY, at - 365 * DAY)
    conversion = table.conversion  # GB/T 2589 unless quotas.toml says otherwise
    occupants = np.array([i.occupants for i in institutions], dtype=float)
    area = np.array([i.floor_area_m2 for i in institutions], dtype=float)
    types = np.array([i.type for i in institutions])
    cities = np.array([i.city for i in institutions])
    points, lines = [], []
    day = local_midnight(at)
    ex = await execution(store, registry, at, profile_min_days=profile_min_days, monthly=False) \
        if registry.tariffs else None
    money = _money(ex)
    for indicator in ("water", "electricity", "energy"):
        use = energy_kgce(this["electricity"], this["heat"], conversion) if indicator == "energy" else this[indicator]
        before = energy_kgce(last["electricity"], last["heat"], conversion) if indicator == "energy" else last[indicator]
        stats = intensities(use, before, occupants, area, types, cities, reporting=use != 0)
        st = standing(table, institutions, indicator, use, profiles, day_of_year)
        for k, inst in enumerate(institutions):
            points.append(StatisticPoint(
                inst.id, inst.city, inst.type, indicator, day, float(use[k]), _num(stats.per_capita[k]),
                _num(stats.per_m2[k]), _int(stats.rank_type[k]), _int(stats.rank_type_city[k]),
                _int(stats.rank_type_capita[k]), _int(stats.rank_type_city_capita[k]), _num(stats.yoy[k]),
                stats.flag[k] or None, *_standing(st, k, year), name=inst.name,
                cost_yuan=money[indicator][0][k] if money else None, kgco2e=money[indicator][1][k] if money else None))
        flagged = int((stats.flag != "").sum())
        lines.append(f"{indicator}: {flagged} implausible figure(s) to check" if flagged else f"{indicator}: all plausible")
        if indicator == "electricity":
            for t in sorted(set(types)):
                idx = np.flatnonzero((types == t) & np.isfinite(stats.per_m2))
                if idx.size:
                    order = idx[np.argsort(stats.per_m2[idx])]
                    best, worst = institutions[order[0]], institutions[order[-1]]
                    lines.append(f"  electricity per m2, {t}: lowest {best.name} {stats.per_m2[order[0]]:.1f}, "
                                 f"highest {worst.name} {stats.per_m2[order[-1]]:.1f} kWh/m2 (of {idx.size})")
    if ex is not None:
        points += _budget_rows(ex, day)
        over = int(np.sum(ex.status == "over"))
        lines.append(f"budget: {over} institution(s) heading over their budget" if over else "budget: none over")
    await store.write(Batch(statistics=points))
    return points, lines


def _money(ex: Execution | None) -> dict[str, tuple[list[float | None], list[float | None]]]:
    """Per indicator: (yuan so far, kgCO2e) per institution; energy is electricity and heat."""
    if ex is None:
        return {}
    def pair(kinds: tuple[str, ...]) -> tuple[list[float | None], list[float | None]]:
        return ([_num(v) for v in sum(ex.cost[k] for k in kinds)], [_num(v) for v in sum(ex.kgco2e[k] for k in kinds)])
    water_cost, _ = pair(("water",))
    return {"water": (water_cost, [None] * len(water_cost)), "electricity": pair(("electricity",)),
            "energy": pair(("electricity", "heat"))}


def _budget_rows(ex: Execution, day: int) -> list[StatisticPoint]:
    """The ``cost`` indicator: yuan so far against the budget, in the quota standing's columns (constraint =
    budget, guide = the standard's guide, pro-rated budget, projection, status, expected crossing date)."""
    guide = ex.standard.guide
    guide_total = np.where(np.isfinite(np.vstack([guide[k] for k in KINDS])).any(axis=0),
                           np.nansum(np.vstack([guide[k] for k in KINDS]), axis=0), np.nan)
    rows = []
    for k, inst in enumerate(ex.institutions):
        has = bool(ex.status[k])
        crossing = ex.crossing_date(k)
        rows.append(StatisticPoint(
            inst.id, inst.city, inst.type, "cost", day, float(ex.cost["total"][k]), None, None, None, None, None,
            None, None, None, _num(ex.budget["total"][k]) if has else None, _num(guide_total[k]) if has else None,
            _num(ex.prorated[k]) if has else None, _num(ex.projected["total"][k]) if has else None,
            str(ex.status[k]) or None, crossing.isoformat() if crossing else None, name=inst.name,
            cost_yuan=_num(ex.cost["total"][k]), kgco2e=_num(ex.kgco2e["total"][k])))
    return rows


def _standing(st: Standing, k: int, year: int) -> tuple:
    """(constraint, guide, pro-rated constraint, projection, status, crossing date) or Nones without a quota."""
    if not np.isfinite(st.constraint[k]):
        return (None,) * 6
    crossing = day_to_date(year, int(st.crossing[k])).isoformat() if st.crossing[k] >= 0 else None
    return (float(st.constraint[k]), float(st.guide[k]), float(st.constraint[k] * st.share[k]),
            _num(st.projected[k]), str(st.status[k]), crossing)


def _num(value: float | None, digits: int = 6) -> float | None:
    return finite_or_none(value, digits)


def _int(value: float) -> int | None:
    return None if not np.isfinite(value) else int(value)
