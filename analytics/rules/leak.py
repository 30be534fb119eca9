"""``leak``: water that never stops at night.

A healthy building has quarter-hours of zero flow between 02:00 and 04:00;
a leaking one does not.  The minimum night flow (m3/h) must exceed a
threshold that grows with the building (a hospital of 2,000 people is not
a kindergarten) on ``nights`` consecutive nights, so one late cleaner or a
night of filling a tank raises nothing.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from analytics import inputs
from analytics.costs import loss_phrase, water_loss_per_day
from analytics.rules.base import Context, Rule, RuleResult


class LeakSettings(BaseModel):
    nights: int = Field(3, ge=1, description="consecutive nights of flow before a leak alert")
    floor_m3h: float = Field(0.03, ge=0, description="night flow below this is never a leak")
    per_person_m3h: float = Field(0.0002, ge=0, description="allowed night flow per occupant")
    type_factor: dict[str, float] = Field(default_factory=lambda: {"medical": 3.0, "venue": 1.5},
                                          description="threshold multiplier per institution type (others 1.0)")


def leak_threshold(occupants: np.ndarray, *, floor_m3h: float, per_person_m3h: float,
                   type_factor: np.ndarray) -> np.ndarray:
    return np.maximum(floor_m3h, per_person_m3h * occupants) * type_factor


def leak(night_flow: np.ndarray, threshold: np.ndarray, nights: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per device: (leaking, smallest night flow of the streak in m3/h, nights in the streak).

    ``night_flow`` is devices x nights (oldest first; NaN = no data that night).  A night without
    data neither proves nor disproves a leak: it breaks the streak.
    """
    above = night_flow > threshold[:, None]  # NaN compares False
    streak = np.zeros(len(night_flow), dtype=np.int64)
    for k in range(night_flow.shape[1]):  # consecutive nights ending with the latest
        streak = np.where(above[:, k], streak + 1, 0)
    recent = night_flow[:, -nights:] if nights else night_flow[:, :0]
    with np.errstate(all="ignore"):
        value = np.where(streak >= nights, np.nanmin(np.where(np.isnan(recent), np.inf, recent), axis=1), np.nan)
    return streak >= nights, value, streak


async def evaluate(ctx: Context[LeakSettings]) -> RuleResult:
    cfg, registry = ctx.settings, ctx.registry
    devices = inputs.meters(registry, frozenset({"water"}))
    insts = [registry.institutions[d.institution] for d in devices]
    threshold = leak_threshold(np.array([i.occupants for i in insts], dtype=float), floor_m3h=cfg.floor_m3h,
                               per_person_m3h=cfg.per_person_m3h,
                               type_factor=np.array([cfg.type_factor.get(i.type, 1.0) for i in insts]))
    flows, starts = await inputs.night_flows(ctx.store, devices, ctx.at, cfg.nights, ctx.analytics.default_interval_s,
                                             above=threshold)
    hit, value, streak = leak(flows, threshold, cfg.nights)
    findings = []
    for i in np.flatnonzero(hit):
        d, inst = devices[i], insts[i]
        since = starts[max(0, len(starts) - int(streak[i]))]
        cost_cn, cost_en = loss_phrase(water_loss_per_day(registry, d.institution, float(value[i]), ctx.at))
        findings.append(ctx.finding(
            d.institution, d.id, since, round(float(value[i]), 3), "m3/h",
            f"{inst.name} 水表 {d.id} 连续 {int(streak[i])} 夜最小夜间流量 {value[i]:.3f} m³/h"
            f"（阈值 {threshold[i]:.3f}），疑似漏水{cost_cn}",
            f"water meter {d.id} of {d.institution}: minimum night flow {value[i]:.3f} m3/h for "
            f"{int(streak[i])} nights (threshold {threshold[i]:.3f}): probable leak{cost_en}"))
    return RuleResult(findings, {d.id for d in devices})


RULE = Rule("leak", "漏水", "Leak", LeakSettings, evaluate)
