"""Quotas: what each institution may use in a year, and where it is heading.

``quotas.toml`` (see ``examples/registry/quotas.toml``) gives, per
institution type, optionally per subclass, and optionally per institution,
for each indicator (``water`` m3, ``electricity`` kWh, ``energy`` kgce):
``per`` ("capita", "m2" or "institution"), ``constraint`` (约束值, must not
exceed) and ``guide`` (引导值, good practice), per year.

Comprehensive energy is converted per GB/T 2589-2020 (Appendix A,
equivalent values): electricity 0.1229 kgce/kWh, heat 0.03412 kgce/MJ
(34.12 kgce/GJ).  The file's ``[conversion]`` table may override them.

Projection: year-to-date use divided by the share of a normal year that
has elapsed, where "normal" is the seasonal profile of the institution's
type (last year's province data when there is enough, else flat): an
office that used 30% of its quota by March is heading for 120%.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from meterwatch.registry import Institution

INDICATORS = {"water": "m3", "electricity": "kWh", "energy": "kgce"}
INDICATOR_CN = {"water": "用水", "electricity": "用电", "energy": "综合能耗"}
GBT2589 = {"electricity_kgce_per_kwh": 0.1229, "heat_kgce_per_gj": 34.12}


@dataclass(frozen=True)
class Quota:
    indicator: str
    per: str
    constraint: float  # per unit (capita / m2 / institution), per year
    guide: float
    source: str  # which table of quotas.toml it came from

    def annual(self, inst: Institution) -> tuple[float, float] | str:
        """(constraint, guide) for the whole institution and year, or why there is none."""
        size = {"capita": inst.occupants, "m2": inst.floor_area_m2, "institution": 1.0}.get(self.per)
        if size is None:
            return f"{self.source}: unknown basis per = {self.per!r}"
        if size <= 0:
            what = {"capita": "occupants", "m2": "floor area"}.get(self.per, self.per)
            return f"{self.source}: per-{self.per} quota but the registry gives {inst.id} no {what}"
        return self.constraint * size, self.guide * size


class QuotaTable:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.conversion = {**GBT2589, **data.get("conversion", {})}
        self._found: dict[tuple[str, str, str, str], Quota | str] = {}  # see ``quota``

    def _entry(self, table: dict[str, Any], indicator: str, source: str) -> Quota | None:
        raw = table.get(indicator)
        if not isinstance(raw, dict) or "constraint" not in raw:
            return None
        return Quota(indicator, str(raw.get("per", "capita")), float(raw["constraint"]),
                     float(raw.get("guide", raw["constraint"])), source)

    def quota(self, inst: Institution, indicator: str) -> Quota | str:
        """The most specific quota: institution, then subclass, then type; or why there is none.

        Looked up once per (institution of its own, or none), type, subclass and indicator: 50,100
        institutions share a few dozen answers."""
        own = inst.id if inst.id in self.data.get("institution", {}) else ""
        key = (own, inst.type, inst.subclass, indicator)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = self._lookup(inst, indicator)
        return found

    def _lookup(self, inst: Institution, indicator: str) -> Quota | str:
        by_type = self.data.get("type", {}).get(inst.type, {})
        candidates = [
            (self.data.get("institution", {}).get(inst.id, {}), f"institution.{inst.id}"),
            (by_type.get("subclass", {}).get(inst.subclass, {}), f"type.{inst.type}.subclass.{inst.subclass}"),
            (by_type, f"type.{inst.type}"),
        ]
        for table, source in candidates:
            found = self._entry(table, indicator, f"{source}.{indicator}")
            if found is not None:
                return found
        return f"no {indicator} quota for type {inst.type!r}"

    def annual(self, inst: Institution, indicator: str) -> tuple[float, float] | str:
        """(constraint, guide) of ``inst`` for the whole year, or why there is none."""
        quota = self.quota(inst, indicator)
        return quota if isinstance(quota, str) else quota.annual(inst)


def energy_kgce(electricity_kwh: np.ndarray, heat_gj: np.ndarray, conversion: dict[str, float]) -> np.ndarray:
    return (np.nan_to_num(electricity_kwh) * conversion["electricity_kgce_per_kwh"]
            + np.nan_to_num(heat_gj) * conversion["heat_kgce_per_gj"])


def elapsed_share(profile: np.ndarray, day_of_year: int) -> float:
    """Share of a normal year's use that falls before ``day_of_year`` (0-based)."""
    total = profile.sum()
    return float(profile[:day_of_year].sum() / total) if total > 0 else day_of_year / len(profile)


def project(ytd: np.ndarray, share: np.ndarray | float) -> np.ndarray:
    """Year-end projection: the year-to-date pace stretched over the profile."""
    with np.errstate(all="ignore"):
        return np.where(np.asarray(share) > 0, ytd / share, np.nan)


def status(projected: np.ndarray, constraint: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """'guide' (on track for good practice), 'between', or 'over' (heading past the constraint)."""
    return np.where(projected > constraint, "over", np.where(projected > guide, "between", "guide"))


def crossing_day(ytd: np.ndarray, projected: np.ndarray, constraint: np.ndarray, profile: np.ndarray,
                 day_of_year: int) -> np.ndarray:
    """Day of year (0-based) on which cumulative use is expected to pass the constraint; -1 = never,
    the current day if already past.  ``profile`` is one (D,) for all, or one row per institution (I, D)."""
    profile = np.asarray(profile, dtype=np.float64)
    cum = np.cumsum(profile, axis=-1) / np.maximum(profile.sum(axis=-1, keepdims=True), 1e-12)
    now = cum[..., day_of_year - 1:day_of_year] if day_of_year > 0 else np.zeros(cum.shape[:-1] + (1,))
    days = np.arange(profile.shape[-1])
    rest = np.clip((cum - now) / np.maximum(1 - now, 1e-12), 0, 1)  # share of the remaining use done by each day
    path = ytd[:, None] + (projected - ytd)[:, None] * np.atleast_2d(rest)  # (I, D)
    over = (path > constraint[:, None]) & (days[None, :] >= day_of_year)
    first = np.where(over.any(axis=1), over.argmax(axis=1), -1)
    return np.where(ytd > constraint, day_of_year, first)


FLAT = np.ones(365)  # a seasonal profile for types without a year of history


@dataclass
class Standing:
    """Where each institution stands against its quota for one indicator; NaN, "" or -1 without one."""

    constraint: np.ndarray  # annual, in the indicator's unit
    guide: np.ndarray
    share: np.ndarray  # share of a normal year's use already behind us (the type's seasonal profile)
    projected: np.ndarray  # year-end projection
    status: np.ndarray  # guide / between / over, "" without a quota
    crossing: np.ndarray  # day of year the constraint is expected to be passed, -1 never or no quota
    missing: list[tuple[str, str]]  # (institution, why) for each one without a usable quota


def standing(table: QuotaTable, institutions: list[Institution], indicator: str, use: np.ndarray,
             profiles: dict[tuple[str, str], np.ndarray], day_of_year: int) -> Standing:
    """The one computation behind the overuse rule and the officers' statistic."""
    n = len(institutions)
    constraint, guide, share = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    missing: list[tuple[str, str]] = []
    shares: dict[str, float] = {}  # one per type: its seasonal profile
    for k, inst in enumerate(institutions):
        annual = table.annual(inst, indicator)
        if isinstance(annual, str):
            missing.append((inst.id, annual))
            continue
        constraint[k], guide[k] = annual
        if inst.type not in shares:
            shares[inst.type] = elapsed_share(profiles.get((inst.type, indicator), FLAT), day_of_year)
        share[k] = shares[inst.type]
    projected = project(use, share)
    has = np.isfinite(constraint)
    state = np.where(has, status(projected, constraint, guide), "")
    crossing = np.full(n, -1, dtype=np.int64)
    types = np.array([i.type for i in institutions])
    for kind in set(types[has]):  # one seasonal profile per type: vectorised within it
        rows = np.flatnonzero(has & (types == kind))
        crossing[rows] = crossing_day(use[rows], projected[rows], constraint[rows],
                                      profiles.get((kind, indicator), FLAT), day_of_year)
    return Standing(constraint, guide, share, projected, state, crossing, missing)


def day_to_date(year: int, day: int) -> date:
    return date.fromordinal(date(year, 1, 1).toordinal() + int(day))
